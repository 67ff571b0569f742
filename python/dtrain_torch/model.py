"""dtrain's model in PyTorch (MODEL.md section 1), for checking and benchmarking.

`HybridModel` has exactly the parameters of a dtrain checkpoint, under the
same names and shapes (PyTorch layout), so `load_checkpoint` copies them in
with no transposes. `forward` scores candidates the way dtrain does:

    scores, alpha = model(users, cands, histories, ctx, tfidf_rows)

users [B] long, cands [B, C] long, histories: list of B lists of item
indices (oldest first; the GRU reads item + 1, row 0 being padding), ctx
[B, 5] (v1/v2) or [B, 7] (v3), tfidf_rows: a callable mapping a LongTensor
of item indices to their dense TF-IDF rows [N, vocab] (or a sparse matrix).

Used by tools/torch_check.py (scores of a checkpoint equal dtrain's) and
bench/torch_reference.py (the PyTorch training step dtrain is measured
against).
"""
import json

import torch
import torch.nn as nn
import torch.nn.functional as F


def load_tfidf(dataset_h5):
    """The prepared data set's TF-IDF matrix as a torch sparse (COO) tensor."""
    import h5py

    with h5py.File(dataset_h5, "r") as f:
        indptr = torch.as_tensor(f["tfidf/indptr"][()], dtype=torch.int64)
        indices = torch.as_tensor(f["tfidf/indices"][()], dtype=torch.int64)
        data = torch.as_tensor(f["tfidf/data"][()], dtype=torch.float32)
        vocab = len(f["tfidf/vocab"])
    n_items = indptr.numel() - 1
    rows = torch.repeat_interleave(torch.arange(n_items), indptr[1:] - indptr[:-1])
    return torch.sparse_coo_tensor(torch.stack([rows, indices]), data, size=(n_items, vocab)).coalesce()


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


class Dynamic(nn.Module):
    def __init__(self, n_items, dim, hidden, dropout):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.gru = nn.GRU(dim, hidden, num_layers=2, batch_first=True, dropout=dropout)
        self.proj = nn.Linear(hidden, dim)


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


class HybridModel(nn.Module):
    """The thesis model (version 1/2) or dtrain's score-level mixture (3)."""

    def __init__(self, cfg, n_users, n_items, vocab):
        super().__init__()
        m = cfg["model"]
        self.version = int(m["version"][1])
        self.variant = m["variant"]
        only_static = self.variant == "static_only"
        self.use_dynamic = not only_static and self.variant != "no_dynamic"
        self.use_content = not only_static and self.variant != "no_content" and vocab > 0
        self.use_gate = not only_static and self.variant != "no_attention"
        d = m["dim"]
        self.p_static, self.p_content, self.p_head = m["dropout_static"], m["dropout_content"], m["dropout_head"]
        self.static = Static(n_users, n_items, d, m["static_hidden"], self.version != 3, self.version == 3)
        if self.use_dynamic:
            self.dynamic = Dynamic(n_items, d, m["gru_hidden"], m["dropout_gru"])
        if self.use_content:
            self.content = Content(vocab, m["content_hidden1"], m["content_hidden2"], d, self.version == 3)
        if self.use_gate:
            self.gate = Gate(7 if self.version == 3 else 5, m["gate_hidden"])
        if self.version != 3:
            self.head = Head(d, m["head_hidden"])

    # -- towers ---------------------------------------------------------------
    def history_state(self, histories):
        """Last layer-2 GRU state of each history (zero when empty) -> proj."""
        B = len(histories)
        H = self.dynamic.gru.hidden_size
        out = torch.zeros(B, H)
        idx = [i for i, h in enumerate(histories) if len(h) > 0]
        if idx:
            lengths = torch.tensor([len(histories[i]) for i in idx])
            L = int(lengths.max())
            padded = torch.zeros(len(idx), L, dtype=torch.long)
            for r, i in enumerate(idx):
                padded[r, : len(histories[i])] = torch.tensor(histories[i]) + 1
            x = self.dynamic.item_emb(padded)
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            _, h_n = self.dynamic.gru(packed)
            out[torch.tensor(idx)] = h_n[-1]
        return self.dynamic.proj(out)

    def content_tower(self, x):
        h = F.dropout(F.relu(self.content.fc1(x)), self.p_content, self.training)
        return self.content.fc3(F.relu(self.content.fc2(h)))

    def alpha(self, ctx, B):
        if self.use_gate:
            return torch.softmax(self.gate.fc2(F.relu(self.gate.fc1(ctx))), dim=-1)
        a = torch.tensor([1.0, 0.0, 0.0]) if self.variant == "static_only" else torch.full((3,), 1.0 / 3.0)
        return a.expand(B, 3)

    def forward(self, users, cands, histories, ctx, tfidf_rows):
        B, C = cands.shape
        alpha = self.alpha(ctx, B)
        e_u = self.static.user_emb(users)                       # [B, D]
        e_i = self.static.item_emb(cands)                       # [B, C, D]
        h_d = self.history_state(histories) if self.use_dynamic else None  # [B, D]
        h_c = None
        if self.use_content:
            h_c = self.content_tower(tfidf_rows(cands.reshape(-1))).reshape(B, C, -1)
        if self.version == 3:
            s = alpha[:, 0:1] * (e_i @ e_u.unsqueeze(-1)).squeeze(-1)
            if h_d is not None:
                d_i = self.dynamic.item_emb(cands + 1)
                s = s + alpha[:, 1:2] * (d_i @ h_d.unsqueeze(-1)).squeeze(-1)
            if h_c is not None:
                up = self.content.user_proj(e_u)
                s = s + alpha[:, 2:3] * (h_c @ up.unsqueeze(-1)).squeeze(-1)
            return s + self.static.item_bias[cands], alpha
        x = torch.cat([e_u.unsqueeze(1).expand(B, C, -1), e_i], dim=-1)
        h_s = self.static.fc2(F.dropout(F.relu(self.static.fc1(x)), self.p_static, self.training))
        z = alpha[:, 0, None, None] * h_s
        if h_d is not None:
            z = z + alpha[:, 1, None, None] * h_d.unsqueeze(1)
        if h_c is not None:
            z = z + alpha[:, 2, None, None] * h_c
        h = F.dropout(F.relu(self.head.fc1(z)), self.p_head, self.training)
        return self.head.fc2(h).squeeze(-1), alpha


def load_checkpoint(path):
    """A HybridModel with a dtrain checkpoint's parameters, and its config."""
    import h5py

    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["config"])
        params = {name: torch.as_tensor(f["params"][name][()]) for name in f["params"]}
    n_users = params["static.user_emb"].shape[0]
    n_items = params["static.item_emb"].shape[0]
    vocab = params["content.fc1.weight"].shape[1] if "content.fc1.weight" in params else 0
    model = HybridModel(cfg, n_users, n_items, vocab)
    # MODEL.md names the tables themselves; nn.Embedding calls them .weight
    for table in ("static.user_emb", "static.item_emb", "dynamic.item_emb"):
        if table in params:
            params[table + ".weight"] = params.pop(table)
    missing, unexpected = model.load_state_dict(params, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint and module disagree: missing {missing}, unexpected {unexpected}")
    return model, cfg


def context_features(ts, user_ts_prev=None, n_hist=None, history_len=50):
    """MODEL.md section 2 step 6 (+ v3's user statistics when n_hist is given)."""
    import math

    day = ts // 86400
    hour = (ts - day * 86400) / 3600.0
    dow = (day + 3) % 7
    c = [math.sin(2 * math.pi * hour / 24), math.cos(2 * math.pi * hour / 24), math.sin(2 * math.pi * dow / 7),
         math.cos(2 * math.pi * dow / 7), 1.0 if dow >= 5 else 0.0]
    if n_hist is not None:
        gap = 0.0 if user_ts_prev is None else min(max((ts - user_ts_prev) / 86400.0, 0.0), 365.0)
        c += [math.log1p(min(n_hist, history_len)) / math.log1p(history_len), math.log1p(gap) / math.log(366.0)]
    return c
