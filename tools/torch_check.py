#!/usr/bin/env python3
"""Loads a dtrain checkpoint into the equivalent PyTorch module and checks that
its scores equal dtrain's for a batch.

    dtrain eval --checkpoint CK --dump batch.jsonl --dump-users 64
    python3 tools/torch_check.py CK batch.jsonl [--dataset data.h5] [--tol 1e-4]

The dump holds what dtrain's model saw (user, history, candidates, context)
and what it produced (scores, alpha). The check recomputes the context from
the timestamp (MODEL.md section 2 step 6) and the scores with PyTorch in
eval mode, and fails when any score differs by more than tol (absolute, or
relative to the score's size when larger than 1).
"""
import argparse
import json
import os
import sys

import torch

try:
    import dtrain_torch
except ImportError:
    sys.exit("dtrain_torch is not importable: run `pip install ./python` from the repository root, "
             "or set PYTHONPATH=python")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("dump")
    ap.add_argument("--dataset", help="prepared data set (default: the checkpoint config's data.output)")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    torch.set_num_threads(1)
    model, cfg = dtrain_torch.load_checkpoint(args.checkpoint)
    model.eval()
    dataset = args.dataset or cfg["data"]["output"]
    tfidf = dtrain_torch.load_tfidf(dataset) if model.use_content else None

    def rows(items):
        return torch.index_select(tfidf, 0, items).to_dense()

    examples = [json.loads(line) for line in open(args.dump)]
    if not examples:
        sys.exit("the dump is empty")
    users = torch.tensor([e["user"] for e in examples])
    cands = torch.tensor([e["candidates"] for e in examples])
    hist = [e["history"] for e in examples]
    ctx = torch.tensor([e["context"] for e in examples], dtype=torch.float32)
    with torch.no_grad():
        scores, alpha = model(users, cands, hist, ctx, rows)
    want = torch.tensor([e["scores"] for e in examples], dtype=torch.float32)
    want_alpha = torch.tensor([e["alpha"] for e in examples], dtype=torch.float32)
    err = ((scores - want).abs() / want.abs().clamp(min=1.0)).max().item()
    err_alpha = (alpha - want_alpha).abs().max().item()
    # the context is recomputed from the timestamp only for v1/v2 (v3 also
    # needs the previous timestamp, which the dump does not carry)
    err_ctx = 0.0
    if model.version != 3:
        for e in examples:
            c = dtrain_torch.context_features(e["ts"])
            err_ctx = max(err_ctx, max(abs(a - b) for a, b in zip(c, e["context"])))
    print(f"{len(examples)} users x {cands.shape[1]} candidates, v{model.version} {model.variant}: "
          f"max score error {err:.3g}, alpha {err_alpha:.3g}, context {err_ctx:.3g} (tolerance {args.tol:g})")
    if err > args.tol or err_alpha > args.tol or err_ctx > 1e-5:
        sys.exit("FAIL: PyTorch and dtrain disagree")


if __name__ == "__main__":
    main()
