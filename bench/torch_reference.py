#!/usr/bin/env python3
"""The PyTorch reference training step dtrain is measured against.

The same model (python/dtrain_torch: every parameter of a dtrain
checkpoint, PyTorch layout; model.encoder gru or sasrec), the same loss
(train.loss: bpr, bce, sampled_softmax or softmax, + the gate's entropy and
balance terms), the same optimisation (Adam with L2 weight decay on the
dense parameters, lazy Adam with per-row steps on the touched rows of the
embedding tables, global-norm clipping at 1.0), the same global batch, on a
prepared dtrain data set, in eager mode on the CPU with a fixed number of
threads. Written the way a careful PyTorch user would: sparse embedding
gradients, TF-IDF rows as a sparse matrix (torch.sparse.mm), packed GRU
sequences, and for the `chunk` history one encoder pass per chunk (the GRU
or SASRec's causal attention over the chunk's window, every position read
from that one pass).

Batches are built with numpy before the clock starts (dtrain's own
examples/s include its batch building), so the comparison favours PyTorch.

    python3 bench/torch_reference.py --config merged.json --dataset data.h5 --steps 20 --threads 2
    python3 bench/torch_reference.py --config merged.json --dataset data.h5 \
        --set model.encoder=sasrec --set model.variant=dynamic_only --set train.loss=bce

(--set applies dotted config keys on top of the merged config, for keys a
given dtrain build does not know yet.)

prints one JSON object: examples_per_sec, seconds_per_step, peak_rss_mb, ...
"""
import argparse
import json
import os
import resource
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import dtrain_torch
except ImportError:
    sys.exit("dtrain_torch is not importable: run `pip install ./python` from the repository root, "
             "or set PYTHONPATH=python")


def load(dataset):
    with h5py.File(dataset, "r") as f:
        d = {k: f["users"][k][()] for k in ("ptr", "items", "ts", "n_train")}
        d["n_items"] = len(f["items/ids"])
    return d


def make_batches(d, cfg, steps, rng):
    """`steps` global batches of `batch_size` interactions: (users, pos) lists and chunk structure."""
    B, L = cfg["train"]["batch_size"], cfg["data"]["history_len"]
    chunk = cfg["model"]["history"] in ("chunk", "auto") and cfg["model"]["version"] == "v3" or cfg["model"]["history"] == "chunk"
    ptr, n_train = d["ptr"], d["n_train"]
    users_with_train = np.nonzero(n_train > 0)[0]
    batches = []
    for _ in range(steps):
        ex_u, ex_p, seqs, ex_seq, ex_k = [], [], [], [], []
        while len(ex_u) < B:
            u = int(rng.choice(users_with_train))
            ntr = int(n_train[u])
            if chunk:
                c = int(rng.integers(0, (ntr + L - 1) // L))
                s0, end = c * L, min(c * L + L, ntr)
                if len(ex_u) + (end - s0) > B:
                    break
                w = max(0, s0 - L)
                seqs.append((u, w, end - 1))
                for p in range(s0, end):
                    ex_u.append(u)
                    ex_p.append(p)
                    ex_seq.append(len(seqs) - 1)
                    ex_k.append(p - w)
            else:
                p = int(rng.integers(0, ntr))
                ex_u.append(u)
                ex_p.append(p)
        batches.append((np.array(ex_u), np.array(ex_p), seqs, np.array(ex_seq), np.array(ex_k)))
    return batches, chunk


class Step:
    def __init__(self, model, cfg, d, tfidf):
        self.m, self.cfg, self.d, self.tfidf = model, cfg, d, tfidf
        o = cfg["optim"]
        lr = cfg["train"]["lr"]
        self.sparse_lr = o["sparse_lr"] if o["sparse_lr"] is not None else lr
        self.sparse_wd = o["sparse_weight_decay"] if o["sparse_weight_decay"] is not None else o["weight_decay"]
        self.tables = [p for n, p in model.named_parameters() if n.endswith("_emb.weight") or n.endswith("item_bias")]
        table_ids = {id(p) for p in self.tables}
        self.dense = [p for p in model.parameters() if id(p) not in table_ids]
        self.opt = torch.optim.Adam(self.dense, lr=lr, betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                    weight_decay=o["weight_decay"])
        self.state = {id(p): (torch.zeros_like(p), torch.zeros_like(p), torch.zeros(p.shape[0])) for p in self.tables}
        self.b1, self.b2, self.eps = o["beta1"], o["beta2"], o["eps"]
        self.le, self.lb = cfg["model"]["lambda_ent"], cfg["model"]["lambda_bal"]

    def history(self, ex_u, ex_p, seqs, ex_seq, ex_k, chunk, L):
        """h_d of the batch: with `chunk` one encoder pass per chunk window
        (items [w, end-1)), each example reading the state after k items."""
        ptr, items = self.d["ptr"], self.d["items"]
        if not chunk:
            hist = [items[ptr[u] + max(0, p - L): ptr[u] + p].tolist() for u, p in zip(ex_u, ex_p)]
            return self.m.history_state(hist)
        win = dtrain_torch.Windows([items[ptr[u] + lo: ptr[u] + hi].tolist() for (u, lo, hi) in seqs],
                                   torch.as_tensor(ex_seq, dtype=torch.long), torch.as_tensor(ex_k, dtype=torch.long))
        return self.m.dynamic(win)

    def run(self, batch, chunk, rng):
        m, d, cfg = self.m, self.d, self.cfg
        ex_u, ex_p, seqs, ex_seq, ex_k = batch
        L = cfg["data"]["history_len"]
        n_neg = cfg["train"]["n_neg"]
        loss_kind = cfg["train"].get("loss", "bpr")
        B = len(ex_u)
        users = torch.as_tensor(ex_u, dtype=torch.long)
        pos_items = d["items"][d["ptr"][ex_u] + ex_p]
        shared = None
        if loss_kind in ("bpr", "bce"):
            negs = rng.integers(0, d["n_items"], size=(B, n_neg))
            cands = torch.as_tensor(np.concatenate([pos_items[:, None], negs], axis=1), dtype=torch.long)
        else:
            cands = torch.as_tensor(pos_items[:, None], dtype=torch.long)
            if loss_kind == "sampled_softmax":
                shared = torch.as_tensor(rng.integers(0, d["n_items"], size=n_neg), dtype=torch.long)
        ts = d["ts"][d["ptr"][ex_u] + ex_p]
        ctx = torch.tensor([dtrain_torch.context_features(int(t)) for t in ts[:1]] * B, dtype=torch.float32)
        if m.version == 3:
            ctx = torch.cat([ctx, torch.zeros(B, 2)], dim=1)
        t0 = time.perf_counter()
        m.train()
        alpha = m.alpha(ctx, B)
        e_u = m.static.user_emb(users) if m.use_static or m.use_content else None
        h_d = self.history(ex_u, ex_p, seqs, ex_seq, ex_k, chunk, L) if m.use_dynamic else None
        user = dtrain_torch.model.UserSide(alpha, e_u, h_d)
        tfidf = self.tfidf

        def tfidf_rows(ids):  # sparse rows: the content tower's first layer runs as a sparse product
            return torch.index_select(tfidf, 0, ids)

        s = m.score(user, cands, tfidf_rows)
        if loss_kind == "bpr":
            rank = dtrain_torch.losses.bpr(s[:, 0], s[:, 1:])
        elif loss_kind == "bce":
            rank = dtrain_torch.losses.bce(s[:, 0], s[:, 1:])
        elif loss_kind == "sampled_softmax":
            rank = dtrain_torch.losses.sampled_softmax(s[:, 0], m.score_items(user, shared, tfidf_rows))
        else:
            rank = dtrain_torch.losses.softmax(m.score_items(user, torch.arange(d["n_items"]), tfidf_rows), cands[:, 0])
        ent = dtrain_torch.losses.entropy(alpha)
        bal = dtrain_torch.losses.balance(alpha)
        loss = rank + self.le * ent + self.lb * bal
        self.opt.zero_grad(set_to_none=True)
        for p in self.tables:
            p.grad = None
        loss.backward()
        nn.utils.clip_grad_norm_(list(m.parameters()), cfg["optim"]["clip_norm"])
        self.opt.step()
        with torch.no_grad():  # lazy Adam with per-row steps on the touched rows
            for p in self.tables:
                if p.grad is None:
                    continue
                g = p.grad.coalesce() if p.grad.is_sparse else p.grad.to_sparse().coalesce()
                rows = g.indices()[0]
                gv = g.values() + self.sparse_wd * p[rows]
                mm, vv, step = self.state[id(p)]
                step[rows] += 1
                mm[rows] = self.b1 * mm[rows] + (1 - self.b1) * gv
                vv[rows] = self.b2 * vv[rows] + (1 - self.b2) * gv * gv
                t = step[rows].reshape(-1, *([1] * (gv.dim() - 1)))
                bc1, bc2 = 1 - self.b1 ** t, 1 - self.b2 ** t
                p[rows] -= self.sparse_lr / bc1 * mm[rows] / ((vv[rows] / bc2).sqrt() + self.eps)
        return time.perf_counter() - t0, B, float(loss)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="merged dtrain config (dtrain config --print)")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a dotted config key over the merged config (value parsed as JSON, else a string)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = json.load(open(args.config))
    for kv in args.set:
        key, _, value = kv.partition("=")
        *path, leaf = key.split(".")
        node = cfg
        for k in path:
            node = node.setdefault(k, {})
        try:
            node[leaf] = json.loads(value)
        except json.JSONDecodeError:
            node[leaf] = value
    if cfg["model"]["history"] == "auto":
        cfg["model"]["history"] = "chunk" if cfg["model"]["version"] == "v3" else "prefix"
    d = load(args.dataset)
    tfidf = dtrain_torch.load_tfidf(args.dataset)
    n_users = len(d["ptr"]) - 1
    model = dtrain_torch.HybridModel(cfg, n_users, d["n_items"], tfidf.shape[1])
    model.init_like_dtrain()  # MODEL.md's initialisation (speed does not depend on it)
    for name in ("static", "dynamic"):  # sparse gradients for the tables, as a careful user would
        mod = getattr(model, name, None)
        for emb in ("user_emb", "item_emb"):
            if mod is not None and hasattr(mod, emb):
                getattr(mod, emb).sparse = True
    step = Step(model, cfg, d, tfidf)
    rng = np.random.default_rng(0)
    batches, chunk = make_batches(d, cfg, args.steps + args.warmup, rng)
    times, examples = [], 0
    for i, b in enumerate(batches):
        dt, n, loss = step.run(b, chunk, rng)
        if i >= args.warmup:
            times.append(dt)
            examples += n
    total = sum(times)
    out = {
        "impl": "pytorch-eager",
        "torch": torch.__version__,
        "threads": args.threads,
        "model": f"{cfg['model']['version']} {cfg['model']['variant']}",
        "encoder": cfg["model"].get("encoder", "gru"),
        "loss": cfg["train"].get("loss", "bpr"),
        "history": cfg["model"]["history"],
        "batch": cfg["train"]["batch_size"],
        "steps_timed": len(times),
        "seconds_per_step": total / max(len(times), 1),
        "examples_per_sec": examples / total if total > 0 else 0.0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "last_loss": loss,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
