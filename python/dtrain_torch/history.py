"""History windows: what the dynamic tower reads (MODEL.md section 1a, 1c).

A batch's histories are a list of windows (item sequences, oldest first,
position 0 at the window's start) and, per example, which window it reads
and how far:

    Windows(seqs, ex_seq, readout)
      seqs     list of S lists of item indices (not shifted: the encoders
               read dynamic.item_emb[item + 1]); window position p = index p
      ex_seq   LongTensor [B]: the window of example e
      readout  LongTensor [B]: how many of that window's items example e
               has seen; its state is the encoder's output at window
               position readout - 1 (readout 0: an empty history)

With `prefix`, `user_train` and in evaluation every example owns its window
(`Windows.per_example`). With `chunk` training the examples of one chunk
share one window (`chunk_windows`): one encoder pass gives them all their
states, which equals running each example's own window [w, t) separately
because both the GRU and SASRec's attention are causal.
"""
from dataclasses import dataclass
from typing import List

import torch


def window_bounds(mode, L, pos, n_train):
    """The history window [lo, hi) of position `pos` of a user's list
    (MODEL.md 1a), as dtrain's dt_history_window computes it."""
    if mode == "prefix":
        return max(0, pos - L), pos
    if mode == "user_train":
        return max(0, n_train - L), n_train
    if mode == "chunk":
        return max(0, L * (pos // L) - L), pos
    raise ValueError(f"unknown history mode {mode!r} (prefix | user_train | chunk)")


@dataclass
class Windows:
    seqs: List[List[int]]
    ex_seq: torch.Tensor
    readout: torch.Tensor

    @classmethod
    def per_example(cls, histories):
        """Each example reads the whole of its own window (a list of item lists)."""
        seqs = [list(map(int, h)) for h in histories]
        return cls(seqs, torch.arange(len(seqs), dtype=torch.long),
                   torch.tensor([len(h) for h in seqs], dtype=torch.long))

    @property
    def n(self):
        return int(self.ex_seq.numel())

    def check(self, max_len=None):
        """Raises ValueError when an example reads past its window, or a window
        is longer than max_len (SASRec's 2L positions)."""
        if self.ex_seq.numel() != self.readout.numel():
            raise ValueError("ex_seq and readout differ in length")
        for e in range(self.n):
            s, k = int(self.ex_seq[e]), int(self.readout[e])
            if not 0 <= s < len(self.seqs) or not 0 <= k <= len(self.seqs[s]):
                raise ValueError(f"example {e} reads {k} items of window {s}, which is out of range")
        if max_len is not None:
            for s, seq in enumerate(self.seqs):
                if len(seq) > max_len:
                    raise ValueError(f"window {s} has {len(seq)} items, more than the {max_len} positions")

    def padded(self, shift=1):
        """[S, T] LongTensor of item + shift, right-padded with 0, and the lengths [S]."""
        lens = torch.tensor([len(s) for s in self.seqs], dtype=torch.long)
        T = int(lens.max()) if lens.numel() else 0
        ids = torch.zeros(len(self.seqs), max(T, 1), dtype=torch.long)
        for r, seq in enumerate(self.seqs):
            if seq:
                ids[r, : len(seq)] = torch.as_tensor(seq, dtype=torch.long) + shift
        return ids[:, :T], lens

    def gather(self, out):
        """Each example's state from per-position outputs out [S, T, H]:
        out[ex_seq, readout - 1], zero where readout is 0."""
        H = out.shape[-1]
        if out.shape[1] == 0:
            return out.new_zeros(self.n, H)
        k = self.readout
        state = out[self.ex_seq, (k - 1).clamp(min=0)]
        return torch.where((k > 0).unsqueeze(1), state, state.new_zeros(1, H))


def chunk_windows(user_items, units, L):
    """Windows for `chunk` training: one per unit (user, start, count) of
    whole-chunk positions. user_items(u) gives user u's list (array-like).
    The unit's window is items [w, end - 1) with w = max(0, L*floor(start/L) - L);
    position p reads p - w of them. Returns (Windows, users [B], positions [B])."""
    seqs, ex_seq, readout, users, pos = [], [], [], [], []
    for u, start, count in units:
        w, _ = window_bounds("chunk", L, start, 0)
        end = start + count
        items = user_items(u)
        seqs.append([int(x) for x in items[w:end - 1]])
        for p in range(start, end):
            ex_seq.append(len(seqs) - 1)
            readout.append(p - w)
            users.append(u)
            pos.append(p)
    win = Windows(seqs, torch.tensor(ex_seq, dtype=torch.long), torch.tensor(readout, dtype=torch.long))
    return win, torch.tensor(users, dtype=torch.long), torch.tensor(pos, dtype=torch.long)


def example_windows(user_items, users, positions, mode, L, n_train=None):
    """Windows where each example (user, pos) owns its window under `mode`."""
    hist = []
    for e, (u, p) in enumerate(zip(users, positions)):
        lo, hi = window_bounds(mode, L, int(p), int(n_train[e]) if n_train is not None else 0)
        hist.append(user_items(int(u))[lo:hi])
    return Windows.per_example(hist)
