#!/usr/bin/env python3
"""Training throughput of dtrain and of the PyTorch reference, side by side.

Prepares (once) a synthetic data set at the scale of Amazon Electronics
(configs/data_synthetic_electronics.json; --scale shrinks it), then for each
model config runs `dtrain train --max-steps N` and bench/torch_reference.py
on the same data set, config, batch and thread count, and prints one JSON
object per config plus a summary: examples/s, seconds/step, peak RSS, and
the ratio dtrain / PyTorch (goal: >= 3 on the CPU). The sequence encoders
(issue 13): configs/sasrec.json against configs/gru4rec.json (the same
recipe, the encoder alone differs) and hybrid_v3_sasrec.json against
hybrid_v3.json; the summary gives each SASRec config's examples/s over its
GRU twin's (goal: >= 1, chunk training).

    python3 bench/bench_train.py --dtrain build/dtrain --steps 30 --threads 2
"""
import argparse
import json
import os
import subprocess
import sys
import shutil
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_env():
    """The environment for the PyTorch scripts: the repository's python/ package importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def dtrain_run(args, cfg, sets, data, run_dir):
    cmd = ["/usr/bin/time", "-f", "%M", args.dtrain, "train", "--config", cfg, "--set", f"data.output={data}",
           "--set", f"run.dir={run_dir}", "--set", "run.log_every=1", "--set", f"backend.threads={args.threads}",
           "--set", "backend.name=cpu", "--set", "train.eval_every=0", "--max-steps", str(args.steps + args.warmup),
           "--no-final-eval", "--quiet"] + sum([["--set", s] for s in sets], [])
    p = sh(cmd)
    rss_kb = int(p.stderr.strip().splitlines()[-1])
    steps = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if '"type":"step"' in l]
    shutil.rmtree(run_dir, ignore_errors=True)  # its last.h5 holds every table (over 1 GB at this scale)
    timed = steps[args.warmup:]
    t = timed[-1]["time_s"] - steps[args.warmup - 1]["time_s"]
    ex = sum(s["examples"] for s in timed)
    return {"impl": "dtrain", "threads": args.threads, "steps_timed": len(timed), "seconds_per_step": t / len(timed),
            "examples_per_sec": ex / t, "peak_rss_mb": rss_kb / 1024.0, "last_loss": timed[-1]["loss"]}


def sasrec_over_gru(results):
    """dtrain's examples/s of each SASRec config over its GRU twin's (both in this run)."""
    eps = {os.path.basename(r["config"]): r["dtrain"]["examples_per_sec"] for r in results}
    out = {}
    for sas, gru in (("sasrec.json", "gru4rec.json"), ("hybrid_v3_sasrec.json", "hybrid_v3.json")):
        if sas in eps and gru in eps:
            out[sas + " / " + gru] = round(eps[sas] / eps[gru], 2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtrain", default=os.path.join(ROOT, "build", "dtrain"))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of Electronics' users/items/interactions")
    ap.add_argument("--data", help="prepared data set to use (default: prepared here once); it must have been "
                    "prepared from configs/data_synthetic_electronics.json at this --scale")
    ap.add_argument("--configs", nargs="*", default=["configs/hybrid_v3.json", "configs/hybrid_v2.json",
                                                    "configs/gru4rec.json", "configs/sasrec.json",
                                                    "configs/hybrid_v3_sasrec.json"])
    args = ap.parse_args()
    py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    work = tempfile.mkdtemp(prefix="dtrain_bench_train_")
    elec = os.path.join(ROOT, "configs", "data_synthetic_electronics.json")
    data = args.data or os.path.join(ROOT, "data", "prepared", f"bench_electronics_{args.scale:g}.h5")
    # the data set's recorded config must match what train is given, or train
    # would prepare it again from its own config's data keys
    e = json.load(open(elec))["data"]["synthetic"]
    scale_sets = [f"data.synthetic.{k}={max(10, int(e[k] * args.scale))}" for k in ("users", "items", "interactions")]
    if not args.data:
        sh([args.dtrain, "prep", "--config", elec, "--set", f"data.output={data}", "--quiet"] +
           sum([["--set", s] for s in scale_sets], []))
    results = []
    for cfg in args.configs:
        cfg_path = os.path.join(ROOT, cfg)
        merged = os.path.join(work, os.path.basename(cfg))
        with open(merged, "w") as f:
            f.write(sh([args.dtrain, "config", "--config", cfg_path, "--set", f"data.output={data}"]).stdout)
        d = dtrain_run(args, cfg_path, scale_sets, data, os.path.join(work, "run_" + os.path.basename(cfg)))
        t = json.loads(sh([py, os.path.join(ROOT, "bench", "torch_reference.py"), "--config", merged, "--dataset", data,
                           "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)],
                          env=torch_env()).stdout)
        row = {"config": cfg, "dtrain": d, "pytorch": t, "ratio": d["examples_per_sec"] / t["examples_per_sec"]}
        print(json.dumps(row), flush=True)
        results.append(row)
    print(json.dumps({"summary": [{"config": r["config"], "dtrain_examples_per_sec": round(r["dtrain"]["examples_per_sec"]),
                                   "pytorch_examples_per_sec": round(r["pytorch"]["examples_per_sec"]),
                                   "ratio": round(r["ratio"], 2)} for r in results], "goal_ratio": 3.0,
                      "sasrec_over_gru": sasrec_over_gru(results), "data": data, "threads": args.threads}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
