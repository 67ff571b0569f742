"""dtrain's model in PyTorch (MODEL.md section 1), for checking and benchmarking.

`HybridModel` has exactly the parameters of a dtrain checkpoint, under the
same names and shapes (PyTorch layout), so checkpoint.load_checkpoint copies
them in with no transposes. Scoring is split the way dtrain computes it:

    user = model.encode_users(users, windows, ctx)      # alpha, e_u, h_d
    s = model.score(user, cands, tfidf_rows)            # [B, C]: each example's own candidates
    s = model.score_items(user, items, tfidf_rows)      # [B, N]: every example against one item list
                                                        # (v3: one GEMM; v1/v2: the head, chunked)
    scores, alpha = model(users, cands, histories, ctx, tfidf_rows)   # both steps

users [B] long, cands [B, C] long, windows a history.Windows (or a list of
B item lists: each example's own window, oldest first), ctx [B, 5] (v1/v2)
or [B, 7] (v3), tfidf_rows a callable mapping a LongTensor of item indices
to their dense TF-IDF rows [N, vocab] (None when the content tower is off).

Config keys read (cfg is a merged dtrain config): model.version, variant,
encoder (gru | sasrec), dim, gru_hidden, sasrec_blocks, sasrec_heads,
static_hidden, content_hidden1/2, gate_hidden, head_hidden, dropout_*, and
data.history_len (SASRec's positions: 2L).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .encoders import GRUEncoder, SASRecEncoder
from .history import Windows

VARIANTS = ("full", "no_dynamic", "no_content", "no_attention", "static_only", "dynamic_only")
FIXED_ALPHA = {"static_only": (1.0, 0.0, 0.0), "dynamic_only": (0.0, 1.0, 0.0),
               "no_attention": (1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0)}


class Static(nn.Module):
    def __init__(self, n_users, n_items, dim, hidden, mlp, bias):
        super().__init__()
        self.user_emb = nn.Embedding(n_users, dim)
        self.item_emb = nn.Embedding(n_items, dim)
        if bias:
            self.item_bias = nn.Parameter(torch.zeros(n_items))
        if mlp:
            self.fc1 = nn.Linear(2 * dim, hidden)
            self.fc2 = nn.Linear(hidden, dim)


class Content(nn.Module):
    def __init__(self, vocab, h1, h2, dim, user_proj):
        super().__init__()
        self.fc1 = nn.Linear(vocab, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.fc3 = nn.Linear(h2, dim)
        if user_proj:
            self.user_proj = nn.Linear(dim, dim, bias=False)


class Gate(nn.Module):
    def __init__(self, n_in, hidden):
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, 3)


class Head(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, 1)


class UserSide:
    """What one batch's examples contribute to every candidate's score."""

    def __init__(self, alpha, e_u, h_d):
        self.alpha, self.e_u, self.h_d = alpha, e_u, h_d


class HybridModel(nn.Module):
    """The thesis model (version 1/2) or dtrain's score-level mixture (3)."""

    def __init__(self, cfg, n_users, n_items, vocab):
        super().__init__()
        m = cfg["model"]
        self.version = int(m["version"][1])
        self.n_items = n_items
        self.variant = m["variant"]
        if self.variant not in VARIANTS:
            raise ValueError(f"model.variant {self.variant!r} is not one of {VARIANTS}")
        self.encoder = m.get("encoder", "gru")
        if self.encoder not in ("gru", "sasrec"):
            raise ValueError(f"model.encoder {self.encoder!r} is not gru or sasrec")
        v = self.variant
        self.use_static = v != "dynamic_only"
        self.use_dynamic = v not in ("static_only", "no_dynamic")
        self.use_content = v not in ("static_only", "no_content", "dynamic_only") and vocab > 0
        self.use_gate = v not in FIXED_ALPHA
        d = m["dim"]
        self.p_static, self.p_content, self.p_head = m["dropout_static"], m["dropout_content"], m["dropout_head"]
        self.static = Static(n_users, n_items, d, m["static_hidden"], self.version != 3, self.version == 3)
        if self.use_dynamic:
            if self.encoder == "gru":
                self.dynamic = GRUEncoder(n_items, d, m["gru_hidden"], m["dropout_gru"])
            else:
                self.dynamic = SASRecEncoder(n_items, d, cfg["data"]["history_len"], m.get("sasrec_blocks", 2),
                                             m.get("sasrec_heads", 1), m["dropout_gru"])
        if self.use_content:
            self.content = Content(vocab, m["content_hidden1"], m["content_hidden2"], d, self.version == 3)
        if self.use_gate:
            self.gate = Gate(7 if self.version == 3 else 5, m["gate_hidden"])
        if self.version != 3:
            self.head = Head(d, m["head_hidden"])

    # -- towers ---------------------------------------------------------------
    def history_state(self, histories):
        """h_d of each example: histories is a Windows or a list of item lists."""
        if not isinstance(histories, Windows):
            histories = Windows.per_example(histories)
        return self.dynamic(histories)

    def content_tower(self, x):
        """h_c of TF-IDF rows x [N, vocab], dense or sparse (COO: the first
        layer then runs as a sparse product)."""
        fc1 = self.content.fc1
        h = torch.sparse.mm(x, fc1.weight.t()) + fc1.bias if x.is_sparse else fc1(x)
        h = F.dropout(F.relu(h), self.p_content, self.training)
        return self.content.fc3(F.relu(self.content.fc2(h)))

    def alpha(self, ctx, B):
        if self.use_gate:
            return torch.softmax(self.gate.fc2(F.relu(self.gate.fc1(ctx))), dim=-1)
        ref = self.static.item_bias if self.version == 3 else self.head.fc2.weight
        return torch.tensor(FIXED_ALPHA[self.variant], dtype=ref.dtype).expand(B, 3)

    def encode_users(self, users, histories, ctx):
        B = users.shape[0]
        alpha = self.alpha(ctx, B)
        need_e_u = self.use_static or (self.use_content and self.version == 3)
        e_u = self.static.user_emb(users) if need_e_u else None  # [B, D]
        h_d = self.history_state(histories) if self.use_dynamic else None  # [B, D]
        return UserSide(alpha, e_u, h_d)

    def _h_c(self, items, tfidf_rows):
        return self.content_tower(tfidf_rows(items.reshape(-1))).reshape(*items.shape, -1)

    # -- scores ---------------------------------------------------------------
    def score(self, user, cands, tfidf_rows=None):
        """Scores [B, C] of each example's own candidates cands [B, C]."""
        a, e_u, h_d = user.alpha, user.e_u, user.h_d
        B, C = cands.shape
        h_c = self._h_c(cands, tfidf_rows) if self.use_content else None  # [B, C, D]
        if self.version == 3:
            s = self.static.item_bias[cands]
            if self.use_static:
                s = s + a[:, 0:1] * (self.static.item_emb(cands) @ e_u.unsqueeze(-1)).squeeze(-1)
            if h_d is not None:
                s = s + a[:, 1:2] * (self.dynamic.item_emb(cands + 1) @ h_d.unsqueeze(-1)).squeeze(-1)
            if h_c is not None:
                s = s + a[:, 2:3] * (h_c @ self.content.user_proj(e_u).unsqueeze(-1)).squeeze(-1)
            return s
        z = 0
        if self.use_static:
            x = torch.cat([e_u.unsqueeze(1).expand(B, C, -1), self.static.item_emb(cands)], dim=-1)
            h_s = self.static.fc2(F.dropout(F.relu(self.static.fc1(x)), self.p_static, self.training))
            z = a[:, 0, None, None] * h_s
        if h_d is not None:
            z = z + a[:, 1, None, None] * h_d.unsqueeze(1).expand(B, C, -1)
        if h_c is not None:
            z = z + a[:, 2, None, None] * h_c
        h = F.dropout(F.relu(self.head.fc1(z)), self.p_head, self.training)
        return self.head.fc2(h).squeeze(-1)

    def user_vectors(self, user):
        """v3: the alpha-weighted user side [B, K*D] of the one-GEMM scoring."""
        a, parts = user.alpha, []
        if self.use_static:
            parts.append(a[:, 0:1] * user.e_u)
        if self.use_dynamic:
            parts.append(a[:, 1:2] * user.h_d)
        if self.use_content:
            parts.append(a[:, 2:3] * self.content.user_proj(user.e_u))
        return torch.cat(parts, dim=1)

    def item_vectors(self, items, tfidf_rows=None, item_hc=None):
        """v3: the item side [N, K*D] = [e_i ; d_i ; h_c(i)] matching user_vectors
        (item_hc: the items' content-tower outputs when already computed)."""
        parts = []
        if self.use_static:
            parts.append(self.static.item_emb(items))
        if self.use_dynamic:
            parts.append(self.dynamic.item_emb(items + 1))
        if self.use_content:
            parts.append(item_hc if item_hc is not None else self._h_c(items, tfidf_rows))
        return torch.cat(parts, dim=1)

    def score_items(self, user, items, tfidf_rows=None, chunk=None, item_hc=None):
        """Scores [B, N] of every example against the same items [N] (the
        whole catalogue for `softmax`, the shared negatives for
        `sampled_softmax`). v3: one GEMM of user_vectors against
        item_vectors plus the item bias; v1/v2: the head on every
        (example, item) pair, `chunk` items at a time (default: about 2^18
        pairs), each chunk recomputed in the backward pass when gradients
        are on (activation checkpointing), so memory stays bounded.
        item_hc: the items' content-tower outputs [N, D] when already
        computed (serving caches them)."""
        B = user.alpha.shape[0]
        if self.version == 3:
            return self.user_vectors(user) @ self.item_vectors(items, tfidf_rows, item_hc).t() + \
                self.static.item_bias[items]
        chunk = chunk or max(1, (1 << 18) // max(B, 1))
        # the item side once per item, the user side once per example: static.fc1
        # splits into its e_u and e_i columns, so only the rest runs per pair
        u_part = i_part = h_c = None
        if self.use_static:
            D = user.e_u.shape[1]
            w = self.static.fc1.weight
            u_part = F.linear(user.e_u, w[:, :D], self.static.fc1.bias)  # [B, H]
            i_part = F.linear(self.static.item_emb(items), w[:, D:])     # [N, H]
        if self.use_content:
            h_c = item_hc if item_hc is not None else self._h_c(items, tfidf_rows)  # [N, D]

        def block(n, alpha, u_part, i_part, h_d, h_c):
            z = 0
            if u_part is not None:
                h = F.dropout(F.relu(u_part.unsqueeze(1) + i_part.unsqueeze(0)), self.p_static, self.training)
                z = alpha[:, 0, None, None] * self.static.fc2(h)
            if h_d is not None:
                z = z + alpha[:, 1, None, None] * h_d.unsqueeze(1)
            if h_c is not None:
                z = z + alpha[:, 2, None, None] * h_c.unsqueeze(0)
            z = z.expand(B, n, -1)  # dynamic_only: the same z for every item, dropout per pair
            h = F.dropout(F.relu(self.head.fc1(z)), self.p_head, self.training)
            return self.head.fc2(h).squeeze(-1)

        cols = []
        for i in range(0, items.numel(), chunk):
            sl = slice(i, i + chunk)
            args = (items[sl].numel(), user.alpha, u_part, i_part[sl] if i_part is not None else None, user.h_d,
                    h_c[sl] if h_c is not None else None)
            if torch.is_grad_enabled():
                cols.append(checkpoint(block, *args, use_reentrant=False))
            else:
                cols.append(block(*args))
        return torch.cat(cols, dim=1)

    def forward(self, users, cands, histories, ctx, tfidf_rows=None):
        user = self.encode_users(users, histories, ctx)
        return self.score(user, cands, tfidf_rows), user.alpha

    # -- parameters -----------------------------------------------------------
    def init_like_dtrain(self):
        """MODEL.md's initialisation (in PyTorch's random stream, not dtrain's
        Philox draws): embeddings N(0, 0.01^2) with padding row 0, item bias
        0, Linear weights Xavier-uniform and biases 0, gate.fc2 N(0, 0.01^2)
        for v2/v3, the GRU as PyTorch's default, SASRec as MODEL.md 1c."""
        with torch.no_grad():
            for name, mod in self.named_modules():
                if isinstance(mod, nn.Linear):
                    nn.init.xavier_uniform_(mod.weight)
                    if mod.bias is not None:
                        nn.init.zeros_(mod.bias)
                elif isinstance(mod, nn.Embedding):
                    nn.init.normal_(mod.weight, 0.0, 0.01)
            if self.version == 3:
                nn.init.zeros_(self.static.item_bias)
            if self.use_gate and self.version != 1:
                nn.init.normal_(self.gate.fc2.weight, 0.0, 0.01)
            if self.use_dynamic:
                if self.encoder == "sasrec":
                    self.dynamic.reset_parameters()
                else:
                    self.dynamic.gru.reset_parameters()
                self.dynamic.item_emb.weight[0].zero_()
        return self

    def table_names(self):
        """The embedding tables (sparse, row-wise updates) under checkpoint names."""
        names = []
        for n, _ in self.named_parameters():
            if n.endswith("_emb.weight") and not n.endswith("pos_emb.weight"):
                names.append(n[: -len(".weight")])
            elif n == "static.item_bias":
                names.append(n)
        return names

    def checkpoint_params(self):
        """{checkpoint name: tensor}: the tables under their own names (no .weight)."""
        tables = set(self.table_names())
        out = {}
        for n, p in self.named_parameters():
            base = n[: -len(".weight")] if n.endswith(".weight") else n
            out[base if base in tables else n] = p
        return out
