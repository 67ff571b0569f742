"""Serving a dtrain model from Python: the checkpoint (or `dtrain export` file)
alone, no data set.

    import dtrain_torch
    m = dtrain_torch.load("model.h5")              # a Recommender in eval mode
    rec = m.recommend("A0YP6VTU0G541W", k=10)      # like `dtrain recommend --user ... -k 10`
    rec.items, rec.scores, rec.fallback            # item ids, scores, None or "popularity"
    s = m.score(["A0YP6VTU0G541W"], ["B01", "B02"])  # [users, items] model scores

`recommend` ranks every item the user does not have yet, as the next
interaction after the user's whole history at `time` (unix seconds, default
now), exactly as `dtrain recommend` does; a user without history gets the
popularity ranking (train interactions) with fallback = "popularity".
`score` gives the model's raw scores (no exclusion, no fallback).

The module's forward is tensor operations only, so it traces:

    users = torch.tensor([m.user_index["A0YP6VTU0G541W"]]); times = torch.tensor([1700000000])
    ts = torch.jit.trace(m, (users, times))        # forward(users, times) -> scores [B, n_items]
    ts = m.trace()                                 # the same, without the TracerWarnings
    torch.jit.save(ts, "model.pt")                 # load with torch.jit.load, e.g. in TorchServe

forward's scores are what recommend ranks: the user's own items at -inf, a
user without history's row holding the popularity counts. The id maps are
plain attributes (`user_ids`, `user_index`, `item_ids`): a TorchServe
handler keeps them beside the traced module (save_id_maps).
"""
import json
import math
import time as _time
import warnings
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch
import torch.nn as nn

from .checkpoint import load_checkpoint
from .inference import from_dataset, has_inference, read_inference
from .model import UserSide


@dataclass
class Recommendation:
    user: str
    items: List[str] = field(default_factory=list)
    scores: List[float] = field(default_factory=list)
    fallback: Optional[str] = None  # "popularity" for a user without history

    def __iter__(self):
        return iter(zip(self.items, self.scores))


def _history_mode(cfg):
    h = cfg["model"].get("history", "auto")
    return h if h != "auto" else ("chunk" if cfg["model"]["version"] == "v3" else "prefix")


class Recommender(nn.Module):
    """A HybridModel with its checkpoint's inference data, scoring whole catalogues."""

    def __init__(self, model, inference, cfg):
        super().__init__()
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        inf = inference
        self.cfg = cfg
        self.user_ids = list(inf["user_ids"])
        self.item_ids = list(inf["item_ids"])
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.item_index = {it: i for i, it in enumerate(self.item_ids)}
        self.n_items = len(self.item_ids)
        emb = model.static.user_emb
        if model.n_items != self.n_items or (emb is not None and emb.num_embeddings != len(self.user_ids)):
            raise ValueError(f"the inference data ({len(self.user_ids)} users, {self.n_items} items) does not match "
                             f"the parameters ({emb.num_embeddings if emb is not None else '?'} users, "
                             f"{model.n_items} items)")
        self.mode = inf["history_mode"]
        self.L = int(inf["history_len"])
        ptr = np.asarray(inf["user_ptr"], dtype=np.int64)
        # one padding entry at the end, so a gather past an empty list stays in range
        items = np.concatenate([np.asarray(inf["user_items"], dtype=np.int32), np.zeros(1, np.int32)])
        self.register_buffer("user_ptr", torch.as_tensor(ptr))
        self.register_buffer("user_items", torch.as_tensor(items))
        self.register_buffer("user_n_train", torch.as_tensor(np.asarray(inf["user_n_train"], dtype=np.int64)))
        self.register_buffer("user_last_ts", torch.as_tensor(np.asarray(inf["user_last_ts"], dtype=np.int64)))
        self.register_buffer("popularity", torch.as_tensor(np.asarray(inf["item_popularity"]), dtype=torch.float32))
        lens = ptr[1:] - ptr[:-1]
        longest = int(lens.max()) if len(lens) else 0
        self.window = max(1, min(longest, self.L if self.mode in ("prefix", "user_train") else 2 * self.L - 1))
        self.register_buffer("all_items", torch.arange(self.n_items))
        with torch.no_grad():
            item_hc = None
            if model.use_content:
                if inf.get("tfidf") is None:
                    raise ValueError("the model has a content tower but the inference data has no TF-IDF rows")
                item_hc = model.content_tower(inf["tfidf"])
            self.register_buffer("item_hc", item_hc)
            self.register_buffer("item_mat", model.item_vectors(self.all_items, item_hc=item_hc)
                                 if model.version == 3 else None)

    # -- tensors in, tensors out (traceable) ----------------------------------
    def _windows(self, users):
        """Each user's recommend-time history window as right-padded ids [B, W]
        (item + 1, 0 = padding) and lengths, by the window rule of MODEL.md 1a
        at the position after the whole list."""
        start = self.user_ptr[users]
        pos = self.user_ptr[users + 1] - start
        if self.mode == "prefix":
            lo, hi = (pos - self.L).clamp(min=0), pos
        elif self.mode == "user_train":
            n_train = self.user_n_train[users]
            lo, hi = (n_train - self.L).clamp(min=0), n_train
        else:
            lo, hi = (self.L * torch.div(pos, self.L, rounding_mode="floor") - self.L).clamp(min=0), pos
        lens = hi - lo
        offs = torch.arange(self.window)
        idx = (start + lo).unsqueeze(1) + offs.unsqueeze(0)
        valid = offs.unsqueeze(0) < lens.unsqueeze(1)
        idx = torch.where(valid, idx, torch.full_like(idx, self.user_items.numel() - 1))
        ids = self.user_items[idx].long() + 1
        return torch.where(valid, ids, torch.zeros_like(ids)), lens, pos

    def _context(self, times, pos, last):
        """MODEL.md section 2 step 6 in float64 (then float32, as dtrain), plus
        v3's user statistics: history length and days since the last item."""
        day = torch.div(times, 86400, rounding_mode="floor")
        hour = (times - day * 86400).double() / 3600.0
        dow = torch.remainder(day + 3, 7).double()
        two_pi = 2.0 * math.pi
        c = [torch.sin(two_pi * hour / 24.0), torch.cos(two_pi * hour / 24.0), torch.sin(two_pi * dow / 7.0),
             torch.cos(two_pi * dow / 7.0), (dow >= 5).double()]
        if self.model.version == 3:
            n_hist = pos.clamp(max=self.L).double()
            gap = ((times - last).double() / 86400.0).clamp(min=0.0, max=365.0)
            gap = torch.where(pos > 0, gap, torch.zeros_like(gap))
            c += [torch.log1p(n_hist) / math.log1p(self.L), torch.log1p(gap) / math.log(366.0)]
        return torch.stack(c, dim=1).float()

    def model_scores(self, users, times):
        """The model's scores [B, n_items] of users [B] at times [B] (int64 unix seconds)."""
        m = self.model
        ids, lens, pos = self._windows(users)
        ctx = self._context(times, pos, self.user_last_ts[users])
        alpha = m.alpha(ctx, users.shape[0])
        e_u = m.static.user_emb(users) if m.static.user_emb is not None else None
        h_d = m.dynamic.encode_padded(ids, lens) if m.use_dynamic else None
        user = UserSide(alpha, e_u, h_d)
        if m.version == 3:
            return m.user_vectors(user) @ self.item_mat.t() + m.static.item_bias
        return m.score_items(user, self.all_items, chunk=4096, item_hc=self.item_hc)

    def forward(self, users, times):
        """What recommend ranks [B, n_items]: the model's scores with each
        user's own items at -inf; a user without history gets the popularity
        counts instead."""
        with torch.no_grad():
            s = self.model_scores(users, times)
            start, end = self.user_ptr[users], self.user_ptr[users + 1]
            lens = end - start
            rows = torch.repeat_interleave(torch.arange(users.shape[0]), lens)
            first = torch.repeat_interleave(start - (torch.cumsum(lens, 0) - lens), lens)
            cols = self.user_items[first + torch.arange(rows.shape[0])].long()
            s = s.index_put((rows, cols), torch.zeros_like(rows, dtype=s.dtype) - float("inf"))
            empty = (lens == 0).unsqueeze(1)
            return torch.where(empty, self.popularity.unsqueeze(0).expand_as(s), s)

    # -- ids in, ids out ---------------------------------------------------------
    def _user(self, user_id):
        key = user_id if isinstance(user_id, str) else str(user_id)
        if key not in self.user_index:
            raise KeyError(f"unknown user {key!r}: not among the {len(self.user_ids)} users of the checkpoint "
                           f"(Recommender.user_ids lists them)")
        return self.user_index[key]

    def _item(self, item_id):
        key = item_id if isinstance(item_id, str) else str(item_id)
        if key not in self.item_index:
            raise KeyError(f"unknown item {key!r}: not among the {self.n_items} items of the checkpoint")
        return self.item_index[key]

    @staticmethod
    def _times(time, n):
        t = int(_time.time()) if time is None else int(time)
        return torch.full((n,), t, dtype=torch.int64)

    def recommend(self, user_id, k=10, time=None):
        """The top k items the user does not have yet (a Recommendation)."""
        u = self._user(user_id)
        s = self.forward(torch.tensor([u]), self._times(time, 1))[0]
        order = torch.sort(s, descending=True, stable=True).indices  # equal scores: lower item index first
        order = order[torch.isfinite(s[order])][:k]
        fallback = "popularity" if int(self.user_ptr[u + 1] - self.user_ptr[u]) == 0 else None
        return Recommendation(self.user_ids[u], [self.item_ids[i] for i in order.tolist()],
                              [float(v) for v in s[order].tolist()], fallback)

    def score(self, user_ids, item_ids, time=None):
        """The model's scores [len(user_ids), len(item_ids)] (no exclusion, no fallback)."""
        users = torch.tensor([self._user(u) for u in user_ids], dtype=torch.int64)
        items = torch.tensor([self._item(i) for i in item_ids], dtype=torch.int64)
        with torch.no_grad():
            return self.model_scores(users, self._times(time, len(users)))[:, items]

    def trace(self, example_inputs=None):
        """torch.jit.trace of this module (forward(users, times)), without the
        TracerWarnings: they concern sizes the model fixes (the window width,
        the embedding and attention sizes), which are constants of the
        traced graph; batch size, users and times stay inputs."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return torch.jit.trace(self, example_inputs or self.example_inputs())

    def example_inputs(self, n=2, time=1_700_000_000):
        """(users, times) for torch.jit.trace."""
        return torch.arange(min(n, len(self.user_ids)), dtype=torch.int64), self._times(time, min(n, len(self.user_ids)))

    def save_id_maps(self, path):
        """The id maps as JSON ({"users": [...], "items": [...]}), for a handler serving the traced module."""
        with open(path, "w") as f:
            json.dump({"users": self.user_ids, "items": self.item_ids}, f)


def load(path, dataset=None):
    """A Recommender (eval mode) from a dtrain checkpoint or export. A
    checkpoint written before checkpoints carried inference data needs its
    prepared data set (`dataset`, default the config's data.output)."""
    model, cfg = load_checkpoint(path)
    if has_inference(path):
        inf = read_inference(path)
    else:
        dataset = dataset or cfg.get("data", {}).get("output")
        if not dataset:
            read_inference(path)  # raises with what to do
        inf = from_dataset(dataset, _history_mode(cfg))
    return Recommender(model, inf, cfg).eval()
