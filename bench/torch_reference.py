#!/usr/bin/env python3
"""The PyTorch reference training step dtrain is measured against.

The same model (python/dtrain_torch: every parameter of a dtrain
checkpoint, PyTorch layout), the same loss (BPR + the gate's entropy and
balance terms), the same optimisation (Adam with L2 weight decay on the
dense parameters, lazy Adam with per-row steps on the touched rows of the
embedding tables, global-norm clipping at 1.0), the same global batch, on a
prepared dtrain data set, in eager mode on the CPU with a fixed number of
threads. Written the way a careful PyTorch user would: sparse embedding
gradients, TF-IDF rows as a sparse matrix (torch.sparse.mm), packed GRU
sequences, and for the `chunk` history one GRU pass per chunk.

Batches are built with numpy before the clock starts (dtrain's own
examples/s include its batch building), so the comparison favours PyTorch.

    python3 bench/torch_reference.py --config merged.json --dataset data.h5 --steps 20 --threads 2

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
        m = self.m
        ptr, items = self.d["ptr"], self.d["items"]
        if not chunk:
            hist = [items[ptr[u] + max(0, p - L): ptr[u] + p].tolist() for u, p in zip(ex_u, ex_p)]
            return m.history_state(hist)
        # one GRU pass per chunk, each example reads the state after k items
        lens = torch.tensor([hi - lo for (_, lo, hi) in seqs])
        Tm = max(int(lens.max()), 1)
        padded = torch.zeros(len(seqs), Tm, dtype=torch.long)
        for r, (u, lo, hi) in enumerate(seqs):
            if hi > lo:
                padded[r, : hi - lo] = torch.as_tensor(items[ptr[u] + lo: ptr[u] + hi] + 1)
        x = m.dynamic.item_emb(padded)
        nz = lens > 0
        H = m.dynamic.gru.hidden_size
        out = torch.zeros(len(seqs), Tm, H)
        if nz.any():
            packed = nn.utils.rnn.pack_padded_sequence(x[nz], lens[nz], batch_first=True, enforce_sorted=False)
            o, _ = m.dynamic.gru(packed)
            o, _ = nn.utils.rnn.pad_packed_sequence(o, batch_first=True, total_length=Tm)
            out = out.index_put((torch.nonzero(nz).squeeze(1),), o)
        seq = torch.as_tensor(ex_seq)
        k = torch.as_tensor(ex_k)
        state = torch.where((k > 0).unsqueeze(1), out[seq, (k - 1).clamp(min=0)], torch.zeros(1, H))
        return m.dynamic.proj(state)

    def run(self, batch, chunk, rng):
        m, d, cfg = self.m, self.d, self.cfg
        ex_u, ex_p, seqs, ex_seq, ex_k = batch
        L = cfg["data"]["history_len"]
        n_neg = cfg["train"]["n_neg"]
        B = len(ex_u)
        users = torch.as_tensor(ex_u, dtype=torch.long)
        pos_items = d["items"][d["ptr"][ex_u] + ex_p]
        negs = rng.integers(0, d["n_items"], size=(B, n_neg))
        cands = torch.as_tensor(np.concatenate([pos_items[:, None], negs], axis=1), dtype=torch.long)
        ts = d["ts"][d["ptr"][ex_u] + ex_p]
        ctx = torch.tensor([dtrain_torch.context_features(int(t)) for t in ts[:1]] * B, dtype=torch.float32)
        if m.version == 3:
            ctx = torch.cat([ctx, torch.zeros(B, 2)], dim=1)
        t0 = time.perf_counter()
        m.train()
        alpha = m.alpha(ctx, B)
        e_u = m.static.user_emb(users)
        e_i = m.static.item_emb(cands)
        h_d = self.history(ex_u, ex_p, seqs, ex_seq, ex_k, chunk, L) if m.use_dynamic else None
        h_c = None
        if m.use_content:
            x = torch.index_select(self.tfidf, 0, cands.reshape(-1))
            h1 = torch.sparse.mm(x, m.content.fc1.weight.t()) + m.content.fc1.bias
            h1 = F.dropout(F.relu(h1), m.p_content, True)
            h_c = m.content.fc3(F.relu(m.content.fc2(h1))).reshape(B, cands.shape[1], -1)
        if m.version == 3:
            s = alpha[:, 0:1] * (e_i @ e_u.unsqueeze(-1)).squeeze(-1)
            if h_d is not None:
                s = s + alpha[:, 1:2] * (m.dynamic.item_emb(cands + 1) @ h_d.unsqueeze(-1)).squeeze(-1)
            if h_c is not None:
                s = s + alpha[:, 2:3] * (h_c @ m.content.user_proj(e_u).unsqueeze(-1)).squeeze(-1)
            s = s + m.static.item_bias[cands]
        else:
            xs = torch.cat([e_u.unsqueeze(1).expand(-1, cands.shape[1], -1), e_i], dim=-1)
            h_s = m.static.fc2(F.dropout(F.relu(m.static.fc1(xs)), m.p_static, True))
            z = alpha[:, 0, None, None] * h_s
            if h_d is not None:
                z = z + alpha[:, 1, None, None] * h_d.unsqueeze(1)
            if h_c is not None:
                z = z + alpha[:, 2, None, None] * h_c
            s = m.head.fc2(F.dropout(F.relu(m.head.fc1(z)), m.p_head, True)).squeeze(-1)
        bpr = F.softplus(-(s[:, :1] - s[:, 1:])).mean()
        ent = (alpha * torch.log(alpha + 1e-8)).sum(1).mean()
        bal = ((alpha.mean(0) - 1.0 / 3.0) ** 2).sum()
        loss = bpr + self.le * ent + self.lb * bal
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = json.load(open(args.config))
    if cfg["model"]["history"] == "auto":
        cfg["model"]["history"] = "chunk" if cfg["model"]["version"] == "v3" else "prefix"
    d = load(args.dataset)
    tfidf = dtrain_torch.load_tfidf(args.dataset)
    n_users = len(d["ptr"]) - 1
    model = dtrain_torch.HybridModel(cfg, n_users, d["n_items"], tfidf.shape[1])
    with torch.no_grad():  # MODEL.md's initialisation of the tables (speed does not depend on it)
        for name, p in model.named_parameters():
            if name.endswith("_emb.weight"):
                p.normal_(0.0, 0.01)
        if hasattr(model, "dynamic"):
            model.dynamic.item_emb.weight[0].zero_()
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
