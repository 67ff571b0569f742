#!/usr/bin/env python3
"""Loads a dtrain checkpoint into the equivalent PyTorch module and checks that
its scores equal dtrain's for a batch.

    dtrain eval --checkpoint CK --dump batch.jsonl --dump-users 64
    python3 tools/torch_check.py CK batch.jsonl [--dataset data.h5] [--tol 1e-4]

Any model dtrain trains: v1/v2/v3, every variant (dynamic_only included),
both encoders (model.encoder gru | sasrec).

The dump holds what dtrain's model saw (user, pos, history, candidates,
context) and what it produced (scores, alpha), one JSON object per line.
"history" is the example's history window, oldest first, from the window's
start: SASRec numbers its positions from there (pos_emb row 0 = the first
item listed). A line may also carry "window" (the window's items from its
start) and "readout" (how many of them the example has seen) instead; and
"window_start" (the list position of the window's first item), which is
checked against MODEL.md's window rule when present.

The check recomputes the context from the timestamp (MODEL.md section 2
step 6; v1/v2 only), checks each history against the data set's lists and
the window rule of the checkpoint's model.history, recomputes the scores
with PyTorch in eval mode, and fails when any score differs by more than
tol (absolute, or relative to the score's size when larger than 1).
"""
import argparse
import json
import os
import sys

import torch

try:
    import dtrain_torch
    from dtrain_torch import Windows
except ImportError:
    sys.exit("dtrain_torch is not importable: run `pip install ./python` from the repository root, "
             "or set PYTHONPATH=python")


def history_mode(cfg):
    h = cfg["model"].get("history", "auto")
    return h if h != "auto" else ("chunk" if cfg["model"]["version"] == "v3" else "prefix")


def check_windows(examples, data, mode, L):
    """The largest number of examples whose history is not the window MODEL.md
    1a gives for its (user, pos) in the data set's lists."""
    bad = []
    for e in examples:
        u, pos = e["user"], e["pos"]
        lo, hi = dtrain_torch.window_bounds(mode, L, pos, int(data["n_train"][u]))
        items = data["items"][data["ptr"][u]:data["ptr"][u + 1]]
        window = e.get("window", e.get("history"))
        seen = e.get("readout", len(window))
        start = e.get("window_start", lo)
        if start != lo or list(window[:seen]) != items[lo:hi].tolist():
            bad.append(u)
    return bad


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
    rows = dtrain_torch.tfidf_row_fn(dtrain_torch.load_tfidf(dataset)) if model.use_content else None

    examples = [json.loads(line) for line in open(args.dump)]
    if not examples:
        sys.exit("the dump is empty")
    users = torch.tensor([e["user"] for e in examples])
    cands = torch.tensor([e["candidates"] for e in examples])
    if all("window" in e for e in examples):
        win = Windows([e["window"] for e in examples], torch.arange(len(examples)),
                      torch.tensor([e["readout"] for e in examples]))
    else:
        win = Windows.per_example([e["history"] for e in examples])
    ctx = torch.tensor([e["context"] for e in examples], dtype=torch.float32)
    with torch.no_grad():
        scores, alpha = model(users, cands, win, ctx, rows)
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
    bad_windows = []
    if model.use_dynamic and os.path.exists(dataset) and all("pos" in e for e in examples):
        data = dtrain_torch.load_dataset(dataset)
        bad_windows = check_windows(examples, data, history_mode(cfg), data["history_len"])
    print(f"{len(examples)} users x {cands.shape[1]} candidates, v{model.version} {model.variant} "
          f"({model.encoder if model.use_dynamic else 'no dynamic tower'}): max score error {err:.3g}, "
          f"alpha {err_alpha:.3g}, context {err_ctx:.3g} (tolerance {args.tol:g}), "
          f"{len(bad_windows)} histories off the window rule")
    if bad_windows:
        print(f"users whose history is not MODEL.md's window: {bad_windows[:10]}", file=sys.stderr)
    if err > args.tol or err_alpha > args.tol or err_ctx > 1e-5 or bad_windows:
        sys.exit("FAIL: PyTorch and dtrain disagree")


if __name__ == "__main__":
    main()
