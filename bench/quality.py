#!/usr/bin/env python3
"""Quality table (issue 13): trains each model x loss with dtrain on a data set
and reports test sampled NDCG@10 / HR@10, full-ranking NDCG@10, the best
validation NDCG@10, training wall time and examples/s.

  python3 bench/quality.py --dtrain build/dtrain --data quickstart \
      [--models sasrec,gru4rec,...] [--losses bpr,bce,...] [--seeds 1,2] \
      [--epochs N] [--markdown FILE] [--update-readme README.md [--block NAME]]

Prints one JSON object (every run and the table's rows). Runs go to
--work (default /tmp/dtrain_quality); each is `dtrain train --overwrite`
into its own run directory. Models (configs/ in the repository):
  popularity      the test evaluation's popularity baseline (no training)
  v3_static_only  hybrid_v3.json with model.variant = static_only
  gru4rec         gru4rec.json (v3 dynamic_only, GRU encoder, SASRec's recipe)
  sasrec          sasrec.json (v3 dynamic_only, SASRec encoder, SASRec's recipe)
  v3_gru          hybrid_v3.json (v3 full, GRU encoder, v3's recipe)
  v3_sasrec       hybrid_v3_sasrec.json (v3 full, SASRec encoder)
Losses: bpr and bce with train.n_neg = 1, sampled_softmax with
--shared-negatives (default 256), softmax over the catalogue, and `own`:
the config's own train.loss and train.n_neg (with --epochs 0, each
config exactly as shipped: `--losses own` is the recipes' table).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODELS = {
    "v3_static_only": ("hybrid_v3.json", ["model.variant=static_only"]),
    "gru4rec": ("gru4rec.json", []),
    "sasrec": ("sasrec.json", []),
    "v3_gru": ("hybrid_v3.json", []),
    "v3_sasrec": ("hybrid_v3_sasrec.json", []),
}
LOSSES = ["bpr", "bce", "sampled_softmax", "softmax", "own"]

# The data sets: --set lines layered over the model config (the model
# configs carry no data keys of their own beyond base.json's synthetic set).
DATA = {
    "quickstart": [
        "data.format=synthetic",
        "data.output=data/prepared/quickstart.h5",
        "data.synthetic.users=20000",
        "data.synthetic.items=4000",
        "data.synthetic.interactions=400000",
        "data.synthetic.seed=7",
    ],
    "gift_cards": [
        "data.format=amazon",
        "data.reviews=../shared/data/amazon/Gift_Cards_5.json.gz",
        "data.meta=../shared/data/amazon/meta_Gift_Cards.json.gz",
        "data.output=data/prepared/gift_cards.h5",
        "train.batch_size=256",
    ],
}


def loss_sets(loss, shared_negatives):
    if loss == "own":  # the config's own train.loss and train.n_neg
        return []
    if loss == "sampled_softmax":
        return ["train.loss=sampled_softmax", "train.n_neg=%d" % shared_negatives]
    if loss == "softmax":
        return ["train.loss=softmax"]
    return ["train.loss=" + loss, "train.n_neg=1"]


def read_jsonl(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def run_one(args, model, loss, seed):
    cfg, extra = MODELS[model]
    name = "%s-%s-%s-s%d%s" % (args.data, model, loss, seed, args.tag)
    run_dir = os.path.join(args.work, name)
    sets = DATA[args.data] + extra + loss_sets(loss, args.shared_negatives)
    sets += ["run.dir=" + run_dir, "run.seed=%d" % seed, "backend.threads=%d" % args.threads]
    if args.epochs:
        sets.append("train.epochs=%d" % args.epochs)
    sets += args.set
    cmd = [args.dtrain, "train", "--config", os.path.join(ROOT, "configs", cfg), "--overwrite", "--quiet"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.stderr.write("FAILED (%d): %s\n%s\n" % (p.returncode, " ".join(cmd), p.stderr[-2000:]))
        return {"name": name, "model": model, "loss": loss, "seed": seed, "failed": p.returncode}
    with open(os.path.join(run_dir, "eval_test.json")) as f:
        ev = json.load(f)
    epochs = [r for r in read_jsonl(os.path.join(run_dir, "metrics.jsonl")) if r.get("type") == "epoch"]
    train_s = sum(r.get("epoch_time_s", 0) for r in epochs)
    eps = [r["examples_per_sec"] for r in epochs if r.get("examples_per_sec")]
    valid = [r["valid"]["ndcg@10"] for r in epochs if r.get("valid")]
    shown = loss
    if loss == "own":  # the config's own loss, as the table shows it
        with open(os.path.join(run_dir, "config.json")) as f:
            tr = json.load(f)["train"]
        shown = tr["loss"] + ("" if tr["loss"] == "softmax" else " (%d neg.)" % tr["n_neg"])
    res = {
        "name": name, "model": model, "loss": loss, "loss_shown": shown, "seed": seed, "epochs": len(epochs),
        "sampled_ndcg10": ev["sampled"]["ndcg@10"], "sampled_hr10": ev["sampled"]["hr@10"],
        "full_ndcg10": ev.get("full", {}).get("ndcg@10"),
        "valid_ndcg10": max(valid) if valid else None,
        "train_s": train_s, "wall_s": wall,
        "examples_per_s": statistics.median(eps) if eps else None,
        "popularity": {"sampled_ndcg10": ev["popularity"]["sampled"]["ndcg@10"],
                       "sampled_hr10": ev["popularity"]["sampled"]["hr@10"],
                       "full_ndcg10": ev["popularity"].get("full", {}).get("ndcg@10")},
    }
    sys.stderr.write("%-45s valid %.4f  test sampled NDCG@10 %.4f HR@10 %.4f  full NDCG@10 %s  %.0f s\n" % (
        name, res["valid_ndcg10"] or 0, res["sampled_ndcg10"], res["sampled_hr10"],
        "%.4f" % res["full_ndcg10"] if res["full_ndcg10"] is not None else "-", wall))
    return res


def fmt(vals, digits=3):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    if len(vals) == 1:
        return "%.*f" % (digits, vals[0])
    return "%.*f ± %.*f" % (digits, statistics.mean(vals), digits, (max(vals) - min(vals)) / 2)


def table(args, runs):
    ok = [r for r in runs if "failed" not in r]
    lines = ["| model | loss | valid NDCG@10 | test NDCG@10 (sampled) | HR@10 (sampled) | NDCG@10 (full) "
             "| train s | examples/s |", "|---|---|---|---|---|---|---|---|"]
    if ok:
        pop = ok[0]["popularity"]
        lines.append("| popularity | – | – | %.3f | %.3f | %s | – | – |" % (
            pop["sampled_ndcg10"], pop["sampled_hr10"],
            "%.3f" % pop["full_ndcg10"] if pop["full_ndcg10"] is not None else "–"))
    rows = []
    for model in args.models:
        for loss in args.losses:
            rs = [r for r in ok if r["model"] == model and r["loss"] == loss]
            if not rs:
                if any(r["model"] == model and r["loss"] == loss for r in runs):
                    lines.append("| %s | %s | failed | | | | | |" % (model, loss))
                continue
            row = {"model": model, "loss": rs[0]["loss_shown"], "seeds": [r["seed"] for r in rs],
                   "epochs": [r["epochs"] for r in rs]}
            for k in ("valid_ndcg10", "sampled_ndcg10", "sampled_hr10", "full_ndcg10", "train_s", "examples_per_s"):
                row[k] = [r[k] for r in rs]
            rows.append(row)
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                model, row["loss"], fmt(row["valid_ndcg10"]), fmt(row["sampled_ndcg10"]), fmt(row["sampled_hr10"]),
                fmt(row["full_ndcg10"]), fmt(row["train_s"], 1), fmt(row["examples_per_s"], 0)))
    return rows, "\n".join(lines) + "\n"


def update_readme(path, data, text):
    begin, end = "<!-- quality:%s:begin -->" % data, "<!-- quality:%s:end -->" % data
    with open(path) as f:
        s = f.read()
    if begin not in s or end not in s:
        sys.exit("quality.py: %s has no %s ... %s block" % (path, begin, end))
    a, b = s.index(begin) + len(begin), s.index(end)
    s = s[:a] + "\n" + text + s[b:]
    with open(path + ".tmp", "w") as f:
        f.write(s)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtrain", default=os.path.join(ROOT, "build", "dtrain"))
    ap.add_argument("--data", choices=sorted(DATA), default="quickstart")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--losses", default=",".join(LOSSES[:4]))
    ap.add_argument("--seeds", default="1")
    ap.add_argument("--epochs", type=int, default=0, help="train.epochs for every run (0: each config's own)")
    ap.add_argument("--shared-negatives", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/dtrain_quality")
    ap.add_argument("--set", action="append", default=[], help="one more --set for every run (a recipe variant)")
    ap.add_argument("--tag", default="", help="appended to the run names (a recipe variant)")
    ap.add_argument("--markdown", help="write the table here")
    ap.add_argument("--update-readme", help="replace the <!-- quality:BLOCK:begin/end --> block of this file")
    ap.add_argument("--block", help="the block's name (default: --data)")
    args = ap.parse_args()
    args.models = [m for m in args.models.split(",") if m]
    args.losses = [l for l in args.losses.split(",") if l]
    for m in args.models:
        if m not in MODELS:
            sys.exit("quality.py: unknown model '%s' (one of %s)" % (m, ", ".join(MODELS)))
    for l in args.losses:
        if l not in LOSSES:
            sys.exit("quality.py: unknown loss '%s' (one of %s)" % (l, ", ".join(LOSSES)))
    if args.data == "gift_cards" and not os.path.exists(os.path.join(ROOT, "..", "shared", "data", "amazon")):
        sys.exit("quality.py: ../shared/data/amazon is not there (the Gift Cards sample)")
    os.makedirs(args.work, exist_ok=True)
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for model in args.models:
            for loss in args.losses:
                runs.append(run_one(args, model, loss, seed))
    rows, md = table(args, runs)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(md)
    if args.update_readme:
        update_readme(args.update_readme, args.block or args.data, md)
    sys.stderr.write(md)
    json.dump({"data": args.data, "epochs": args.epochs, "runs": runs, "rows": rows}, sys.stdout, indent=1)
    print()
    return 1 if any("failed" in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
