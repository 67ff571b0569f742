"""The dynamic tower's sequence encoders (MODEL.md 1a and 1c).

Both are modules named `dynamic` in HybridModel, so their parameters carry
the checkpoint names `dynamic.*`. Both map a batch's history windows
(history.Windows) to h_d [B, dim] in one pass per window:

- GRUEncoder (model.encoder = "gru"): 2-layer GRU over dynamic.item_emb,
  the layer-2 state after the example's last item, then dynamic.proj
  (an empty history gives the state 0, so h_d = proj's bias).
- SASRecEncoder (model.encoder = "sasrec"): pre-LN causal self-attention
  blocks over sqrt(d) * item_emb[i + 1] + pos_emb[p], p counted from the
  window's start; h_d = dynamic.ln_final's output at the example's last
  item (0 for an empty history); no projection.

Both also take right-padded windows as tensors (`encode_padded(ids, lens)`:
ids [B, T] of item + 1 with 0 after each window's end, lens [B]): one window
per example, tensor operations only, so the serving module (serving.py)
traces with torch.jit.trace. Both encoders are causal, so the padding after
a window never changes the state at its last item.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-8


def last_state(out, lens):
    """out [B, T, H] at position lens - 1 of each row, zero where lens is 0."""
    if not torch.jit.is_tracing() and out.shape[1] == 0:
        return out.new_zeros(out.shape[0], out.shape[2])
    idx = (lens - 1).clamp(min=0)
    state = out[torch.arange(out.shape[0]), idx]
    return torch.where((lens > 0).unsqueeze(1), state, torch.zeros_like(state))


class GRUEncoder(nn.Module):
    def __init__(self, n_items, dim, hidden, dropout):
        super().__init__()
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.gru = nn.GRU(dim, hidden, num_layers=2, batch_first=True, dropout=dropout)
        self.proj = nn.Linear(hidden, dim)

    def states(self, windows):
        """Layer-2 GRU output at every window position: [S, T, hidden]."""
        ids, lens = windows.padded()
        S, T = ids.shape
        H = self.gru.hidden_size
        out = self.proj.weight.new_zeros(S, T, H)
        nz = lens > 0
        if T > 0 and bool(nz.any()):
            x = self.item_emb(ids[nz])
            packed = nn.utils.rnn.pack_padded_sequence(x, lens[nz], batch_first=True, enforce_sorted=False)
            o, _ = self.gru(packed)
            o, _ = nn.utils.rnn.pad_packed_sequence(o, batch_first=True, total_length=T)
            out = out.index_put((torch.nonzero(nz).squeeze(1),), o)
        return out

    def forward(self, windows):
        return self.proj(windows.gather(self.states(windows)))

    def encode_padded(self, ids, lens):
        """h_d [B, dim] of right-padded windows ids [B, T] (item + 1; 0 = padding)."""
        if not torch.jit.is_tracing() and ids.shape[1] == 0:
            return self.proj(self.proj.weight.new_zeros(ids.shape[0], self.gru.hidden_size))
        out, _ = self.gru(self.item_emb(ids))
        return self.proj(last_state(out, lens))


class CausalSelfAttention(nn.Module):
    """Multi-head attention of a window with itself, position p attending to
    positions <= p. Parameter names and layout as torch.nn.MultiheadAttention
    (in_proj_weight [3d, d] = (q; k; v), in_proj_bias [3d], out_proj)."""

    def __init__(self, dim, heads):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model.dim {dim} is not a multiple of model.sasrec_heads {heads}")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        S, T, D = x.shape
        h, dh = self.heads, D // self.heads
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).split(D, dim=-1)
        q, k, v = (t.reshape(S, T, h, dh).transpose(1, 2) for t in (q, k, v))  # [S, h, T, dh]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = torch.softmax(att.masked_fill(future, float("-inf")), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(S, T, D)
        return self.out_proj(o)


class FFN(nn.Module):
    def __init__(self, dim, dropout):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.p = dropout

    def forward(self, x):
        return self.fc2(F.dropout(F.relu(self.fc1(x)), self.p, self.training))


class SASRecBlock(nn.Module):
    """a = x + Dropout(MHA(LN1(x))); x' = a + Dropout(FFN(LN2(a)))."""

    def __init__(self, dim, heads, dropout):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.ffn = FFN(dim, dropout)
        self.p = dropout

    def forward(self, x):
        a = x + F.dropout(self.attn(self.ln1(x)), self.p, self.training)
        return a + F.dropout(self.ffn(self.ln2(a)), self.p, self.training)


class SASRecEncoder(nn.Module):
    def __init__(self, n_items, dim, history_len, blocks, heads, dropout):
        super().__init__()
        self.dim = dim
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos_emb = nn.Parameter(torch.zeros(2 * history_len, dim))
        self.blocks = nn.ModuleList(SASRecBlock(dim, heads, dropout) for _ in range(blocks))
        self.ln_final = nn.LayerNorm(dim, eps=LN_EPS)
        self.p = dropout
        self.reset_parameters()

    def reset_parameters(self):
        """MODEL.md 1c: Xavier-uniform Linear weights (in_proj as one [3d, d]
        matrix, as PyTorch's MultiheadAttention), zero biases, LayerNorm
        (1, 0), pos_emb and item_emb N(0, 0.01^2), padding row 0."""
        with torch.no_grad():
            nn.init.normal_(self.item_emb.weight, 0.0, 0.01)
            self.item_emb.weight[0].zero_()
            nn.init.normal_(self.pos_emb, 0.0, 0.01)
            for b in self.blocks:
                for lin in (b.attn.out_proj, b.ffn.fc1, b.ffn.fc2):
                    nn.init.xavier_uniform_(lin.weight)
                    nn.init.zeros_(lin.bias)
                nn.init.xavier_uniform_(b.attn.in_proj_weight)
                nn.init.zeros_(b.attn.in_proj_bias)

    def states(self, windows):
        """ln_final's output at every window position: [S, T, dim]."""
        ids, _ = windows.padded()
        return self.padded_states(ids)

    def padded_states(self, ids):
        """ln_final's output at every position of right-padded windows ids [S, T]."""
        S, T = ids.shape
        if not torch.jit.is_tracing():  # (a traced module's window width is fixed and checked when traced)
            if T > self.pos_emb.shape[0]:
                raise ValueError(f"a history window of {T} items is longer than dynamic.pos_emb's "
                                 f"{self.pos_emb.shape[0]} positions (2 * data.history_len)")
            if T == 0:
                return self.pos_emb.new_zeros(S, 0, self.dim)
        # padding (id 0, zero row) sits after each window's items: the causal
        # mask keeps it out of every real position
        x = math.sqrt(self.dim) * self.item_emb(ids) + self.pos_emb[:T]
        x = F.dropout(x, self.p, self.training)
        for b in self.blocks:
            x = b(x)
        return self.ln_final(x)

    def forward(self, windows):
        return windows.gather(self.states(windows))

    def encode_padded(self, ids, lens):
        """h_d [B, dim] of right-padded windows ids [B, T] (item + 1; 0 = padding)."""
        return last_state(self.padded_states(ids), lens)
