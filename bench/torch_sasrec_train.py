#!/usr/bin/env python3
"""An independent PyTorch trainer for MODEL.md's models, by default SASRec
(v3 dynamic_only with the sasrec encoder: SASRec with an item bias), as a
quality reference for dtrain on a prepared data set.

Training (the recipe of the issue's configs/sasrec.json): `chunk` history
(the data set's /train_chunks, shuffled each epoch and packed into batches
of whole chunks, at most --batch examples; one encoder pass per chunk),
--n-neg uniform negatives per positive redrawn up to 10 times while the
user has them in train, train.loss --loss (default bce), Adam (lr 1e-3,
betas 0.9/0.999, eps 1e-8) on the dense parameters and, with --optim
lazy_adam (default, dtrain's), lazy Adam on the touched rows of the
embedding tables (--optim adam: dense Adam on everything, SASRec's own
implementation), --weight-decay as torch.optim.Adam's L2 (default 0,
SASRec's), lr schedule --schedule (constant, SASRec's; cosine over --epochs
per epoch, dtrain's), gradient clipping to --clip (0: none, SASRec's).

Evaluation: MODEL.md section 3's sampled protocol: each user's first valid
(test) interaction against 99 distinct negatives drawn uniformly from the
items the user never interacted with in any split, history = the chunk
window rule; rank = 1 + #{negatives scoring >= the positive}; NDCG@10 and
HR@10, with the popularity baseline (train counts) on the same candidates.
The negatives are drawn with numpy (keyed by seed and user), not dtrain's
Philox stream, so the candidate sets differ from dtrain's: compare means,
not single users.

    python3 bench/torch_sasrec_train.py --dataset data/prepared/gift_cards.h5 --epochs 20

prints one JSON line per evaluated epoch and a summary line (best epoch by
valid NDCG@10 and its test metrics).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

try:
    import dtrain_torch as dt
except ImportError:
    sys.exit("dtrain_torch is not importable: run `pip install ./python` from the repository root, "
             "or set PYTHONPATH=python")


def model_config(args, L):
    return {"data": {"history_len": L},
            "model": {"version": args.version, "variant": args.variant, "encoder": args.encoder, "history": "chunk",
                      "dim": args.dim, "gru_hidden": 2 * args.dim, "sasrec_blocks": args.blocks,
                      "sasrec_heads": args.heads, "static_hidden": 128, "content_hidden1": 512, "content_hidden2": 256,
                      "gate_hidden": 64, "head_hidden": 32, "dropout_static": 0.1, "dropout_gru": args.dropout,
                      "dropout_content": 0.2, "dropout_head": 0.1,
                      "lambda_ent": 0.05 if args.version != "v1" else 0.0,
                      "lambda_bal": 0.01 if args.version != "v1" else 0.0}}


class Data:
    def __init__(self, path):
        d = dt.load_dataset(path)
        self.__dict__.update(d)
        self.L = d["history_len"]
        self.lists = [d["items"][d["ptr"][u]:d["ptr"][u + 1]] for u in range(d["n_users"])]
        self.ts_lists = [d["ts"][d["ptr"][u]:d["ptr"][u + 1]] for u in range(d["n_users"])]
        self.train_sets = [set(self.lists[u][: d["n_train"][u]].tolist()) for u in range(d["n_users"])]
        self.pop = np.bincount(np.concatenate([self.lists[u][: d["n_train"][u]] for u in range(d["n_users"])]),
                               minlength=d["n_items"]).astype(np.float64)

    def context(self, users, positions, v3):
        """MODEL.md 2.6 (+ v3's user statistics) of (user, pos) examples."""
        out = []
        for u, p in zip(users, positions):
            ts = self.ts_lists[u]
            c = dt.context_features(int(ts[p]), int(ts[p - 1]) if p > 0 else None, min(p, self.L) if v3 else None,
                                    self.L) if v3 else dt.context_features(int(ts[p]))
            out.append(c)
        return torch.tensor(out, dtype=torch.float32)


def epoch_batches(data, batch, rng):
    """Whole chunks, shuffled, packed into batches of at most `batch` examples."""
    ch = data.chunks
    order = rng.permutation(len(ch["user"]))
    units, n = [], 0
    for k in order:
        c = int(ch["count"][k])
        if n + c > batch and units:
            yield units
            units, n = [], 0
        units.append((int(ch["user"][k]), int(ch["start"][k]), c))
        n += c
    if units:
        yield units


def negatives(data, users, n_neg, rng, tries=10):
    out = rng.integers(0, data.n_items, size=(len(users), n_neg))
    for e, u in enumerate(users):
        s = data.train_sets[u]
        for j in range(n_neg):
            k = 1
            while out[e, j] in s and k < tries:
                out[e, j] = rng.integers(0, data.n_items)
                k += 1
    return out


def make_batch(data, model, units, args, rng):
    win, users, pos = dt.chunk_windows(lambda u: data.lists[u], units, data.L)
    u_np, p_np = users.numpy(), pos.numpy()
    positives = np.array([data.lists[u][p] for u, p in zip(u_np, p_np)])
    shared = None
    if args.loss in ("bpr", "bce"):
        cands = np.concatenate([positives[:, None], negatives(data, u_np, args.n_neg, rng)], axis=1)
    else:
        cands = positives[:, None]
        if args.loss == "sampled_softmax":
            shared = torch.as_tensor(rng.integers(0, data.n_items, size=args.n_neg), dtype=torch.long)
    ctx = data.context(u_np, p_np, model.version == 3) if model.use_gate else torch.zeros(len(u_np), 1)
    return dt.Batch(users, torch.as_tensor(cands, dtype=torch.long), win if model.use_dynamic else None, ctx, shared)


class LazyAdam:
    """Adam on the touched rows of a table only, each row with its own step count."""

    def __init__(self, params, lr, betas, eps, wd):
        self.params, self.lr, (self.b1, self.b2), self.eps, self.wd = params, lr, betas, eps, wd
        self.state = {id(p): (torch.zeros_like(p), torch.zeros_like(p), torch.zeros(p.shape[0])) for p in params}

    @torch.no_grad()
    def step(self, scale=1.0):
        for p in self.params:
            if p.grad is None:
                continue
            g = p.grad.coalesce() if p.grad.is_sparse else p.grad.to_sparse().coalesce()
            rows = g.indices()[0]
            gv = g.values() * scale + self.wd * p[rows]
            m, v, step = self.state[id(p)]
            step[rows] += 1
            m[rows] = self.b1 * m[rows] + (1 - self.b1) * gv
            v[rows] = self.b2 * v[rows] + (1 - self.b2) * gv * gv
            t = step[rows].reshape(-1, *([1] * (gv.dim() - 1)))
            p[rows] -= self.lr / (1 - self.b1 ** t) * m[rows] / ((v[rows] / (1 - self.b2 ** t)).sqrt() + self.eps)


def grad_norm(params):
    total = 0.0
    for p in params:
        if p.grad is not None:
            g = p.grad.coalesce().values() if p.grad.is_sparse else p.grad
            total += float((g.double() ** 2).sum())
    return math.sqrt(total)


def eval_candidates(data, split, n_neg, seed):
    """(users, held-out positions, candidates [n, 1 + n_neg]) of MODEL.md 3's sampled protocol."""
    users, pos, cands = [], [], []
    all_items = np.arange(data.n_items)
    for u in range(data.n_users):
        n = len(data.lists[u])
        p = int(data.n_train[u]) if split == "valid" else int(data.n_train[u] + data.n_valid[u])
        if data.n_train[u] == 0 or p >= n or (split == "valid" and data.n_valid[u] == 0):
            continue
        pool = np.setdiff1d(all_items, data.lists[u])
        rng = np.random.default_rng([seed, u, 0 if split == "valid" else 1])
        neg = rng.choice(pool, size=min(n_neg, len(pool)), replace=False)
        if len(neg) < n_neg:  # fewer than n_neg unseen items: pad with the positive's own id, never ahead of it
            neg = np.concatenate([neg, np.full(n_neg - len(neg), -1)])
        users.append(u)
        pos.append(p)
        cands.append(np.concatenate([[data.lists[u][p]], neg]))
    return np.array(users), np.array(pos), np.array(cands)


@torch.no_grad()
def evaluate(model, data, ev, rows=None, chunk=512):
    users, pos, cands = ev
    model.eval()
    ndcg = hr = pndcg = phr = 0.0
    for i in range(0, len(users), chunk):
        u, p, c = users[i:i + chunk], pos[i:i + chunk], cands[i:i + chunk]
        valid = c >= 0
        ct = torch.as_tensor(np.where(valid, c, 0), dtype=torch.long)
        win = dt.example_windows(lambda x: data.lists[x], u, p, "chunk", data.L)
        ctx = data.context(u, p, model.version == 3) if model.use_gate else torch.zeros(len(u), 1)
        s, _ = model(torch.as_tensor(u, dtype=torch.long), ct, win, ctx, rows)
        s = s.double().numpy()
        for scores, name in ((s, "model"), (data.pop[np.where(valid, c, 0)], "pop")):
            scores = np.where(valid, scores, -np.inf)
            rank = 1 + (scores[:, 1:] >= scores[:, :1]).sum(axis=1)
            nd = np.where(rank <= 10, 1.0 / np.log2(rank + 1), 0.0).sum()
            h = float((rank <= 10).sum())
            if name == "model":
                ndcg, hr = ndcg + nd, hr + h
            else:
                pndcg, phr = pndcg + nd, phr + h
    n = max(len(users), 1)
    return {"users": int(len(users)), "ndcg10": ndcg / n, "hr10": hr / n, "pop_ndcg10": pndcg / n, "pop_hr10": phr / n}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="prepared dtrain data set (dtrain prep)")
    ap.add_argument("--version", default="v3")
    ap.add_argument("--variant", default="dynamic_only")
    ap.add_argument("--encoder", default="sasrec", choices=("sasrec", "gru"))
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--dropout", type=float, default=0.1, help="model.dropout_gru (the dynamic tower's)")
    ap.add_argument("--loss", default="bce", choices=dt.LOSSES)
    ap.add_argument("--n-neg", type=int, default=1, help="negatives per positive (sampled_softmax: shared per batch)")
    ap.add_argument("--batch", type=int, default=2048, help="examples per batch (whole chunks)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--sparse-lr", type=float, default=None, help="lazy Adam's lr on the tables (default --lr)")
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--optim", default="lazy_adam", choices=("lazy_adam", "adam"))
    ap.add_argument("--schedule", default="constant", choices=("constant", "cosine"))
    ap.add_argument("--clip", type=float, default=0.0, help="global gradient norm (0: no clipping)")
    ap.add_argument("--eval-every", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    data = Data(args.dataset)
    cfg = model_config(args, data.L)
    vocab = 0
    rows = None
    if args.variant not in ("dynamic_only", "static_only", "no_content"):
        tfidf = dt.load_tfidf(args.dataset)
        vocab, rows = tfidf.shape[1], dt.tfidf_row_fn(tfidf)
    model = dt.HybridModel(cfg, data.n_users, data.n_items, vocab).init_like_dtrain()
    tables = [p for n, p in model.named_parameters()
              if n in ("static.item_bias",) or (n.endswith("_emb.weight") and "pos_emb" not in n)]
    ids = {id(p) for p in tables}
    if args.optim == "lazy_adam":
        for mod in model.modules():
            if isinstance(mod, nn.Embedding):
                mod.sparse = True
        dense = [p for p in model.parameters() if id(p) not in ids]
        sparse_opt = LazyAdam(tables, args.sparse_lr or args.lr, (0.9, 0.999), 1e-8, args.weight_decay)
    else:
        dense, sparse_opt = list(model.parameters()), None
    opt = torch.optim.Adam(dense, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    lam_ent, lam_bal = cfg["model"]["lambda_ent"], cfg["model"]["lambda_bal"]
    ev_valid = eval_candidates(data, "valid", 99, args.seed)
    ev_test = eval_candidates(data, "test", 99, args.seed)
    best = None
    t_train = 0.0
    for epoch in range(args.epochs):
        f = 0.5 * (1 + math.cos(math.pi * epoch / args.epochs)) if args.schedule == "cosine" else 1.0
        for g in opt.param_groups:
            g["lr"] = args.lr * f
        if sparse_opt:
            sparse_opt.lr = (args.sparse_lr or args.lr) * f
        model.train()
        t0 = time.perf_counter()
        loss_sum, n_ex = 0.0, 0
        for units in epoch_batches(data, args.batch, rng):
            b = make_batch(data, model, units, args, rng)
            out = dt.batch_loss(model, b, args.loss, lam_ent, lam_bal, rows)
            opt.zero_grad(set_to_none=True)
            for p in tables:
                p.grad = None
            out["total"].backward()
            scale = 1.0
            if args.clip > 0:
                norm = grad_norm(model.parameters())
                scale = min(1.0, args.clip / (norm + 1e-6))
                if scale < 1.0:
                    for p in dense:
                        if p.grad is not None:
                            p.grad.mul_(scale)
            opt.step()
            if sparse_opt:
                sparse_opt.step(scale)
            loss_sum += float(out["total"]) * b.users.numel()
            n_ex += b.users.numel()
        dt_epoch = time.perf_counter() - t0
        t_train += dt_epoch
        row = {"epoch": epoch + 1, "loss": loss_sum / max(n_ex, 1), "train_s": round(dt_epoch, 2),
               "examples_per_sec": round(n_ex / dt_epoch, 1)}
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            row["valid"] = evaluate(model, data, ev_valid, rows)
            row["test"] = evaluate(model, data, ev_test, rows)
            if best is None or row["valid"]["ndcg10"] > best["valid"]["ndcg10"]:
                best = row
        print(json.dumps(row), flush=True)
    summary = {"summary": True, "dataset": os.path.basename(args.dataset), "split": data.split,
               "model": f"{args.version} {args.variant} {args.encoder}", "loss": args.loss, "n_neg": args.n_neg,
               "optim": args.optim, "schedule": args.schedule, "lr": args.lr, "batch": args.batch,
               "dropout": args.dropout, "epochs": args.epochs, "seed": args.seed, "threads": args.threads,
               "train_s": round(t_train, 1), "best_epoch": best["epoch"] if best else None,
               "best_valid": best["valid"] if best else None, "test_at_best": best["test"] if best else None}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
