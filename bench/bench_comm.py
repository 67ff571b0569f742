#!/usr/bin/env python3
"""Data-parallel scaling and communication volume.

Trains the same config with 1 and 2 MPI ranks (one thread each) on a
synthetic data set at the scale of Amazon Electronics, for both table
placements, and prints JSON per run and a summary: examples/s, the speed-up
of 2 ranks over 1 (goal >= 1.8), and the bytes each rank sends per step for
the dense all-reduce and the sparse exchanges next to the lower bound
(its unique touched rows x dim x 4 bytes).

    python3 bench/bench_comm.py --dtrain build/dtrain --steps 100

Two ranks on a 2-core virtual machine feel every burst of the host's
activity (each step waits for the slower rank), so short runs scatter:
100 steps per run and the median of 5 interleaved runs give a stable ratio.
"""
import argparse
import json
import os
import subprocess
import shutil
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = ("user_emb", "item_emb", "item_bias", "dyn_item_emb")


def data_sets():
    """The Electronics-scale generator's sizes: train checks the prepared
    file's recorded config against its own data keys."""
    e = json.load(open(os.path.join(ROOT, "configs", "data_synthetic_electronics.json")))["data"]["synthetic"]
    return [f"data.synthetic.{k}={e[k]}" for k in ("users", "items", "interactions")]


def run(args, data, n, placement, run_dir):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    sets = [f"data.output={data}", f"run.dir={run_dir}", "run.log_every=1", "backend.threads=1", "backend.name=cpu",
            "train.eval_every=0", "ckpt.every=0"] + [f"comm.placement.{t}={placement}" for t in TABLES] + data_sets()
    cmd = ["mpirun", "-np", str(n), "--bind-to", "core", args.dtrain, "train", "--config",
           os.path.join(ROOT, args.config), "--max-steps", str(args.steps + args.warmup), "--no-final-eval", "--quiet"]
    cmd += sum([["--set", s] for s in sets], [])
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    steps = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if '"type":"step"' in l]
    shutil.rmtree(run_dir, ignore_errors=True)  # its last.h5 holds every table (over 1 GB at this scale)
    timed = steps[args.warmup:]
    t = timed[-1]["time_s"] - steps[args.warmup - 1]["time_s"]
    ex = sum(s["examples"] for s in timed)
    avg = lambda k: sum(s[k] for s in timed) / len(timed)  # noqa: E731
    return {"ranks": n, "placement": placement, "examples_per_sec": ex / t, "seconds_per_step": t / len(timed),
            "dense_bytes_per_step_rank0": avg("comm_dense_bytes_per_step"),
            "sparse_bytes_per_step_rank0": avg("comm_sparse_bytes_per_step"),
            "sparse_lower_bound_bytes_per_step_rank0": avg("sparse_lower_bound_bytes_per_step"),
            "peak_rss_mb_rank0": timed[-1]["peak_rss_mb"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtrain", default=os.path.join(ROOT, "build", "dtrain"))
    ap.add_argument("--config", default="configs/hybrid_v3.json")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "prepared", "bench_electronics_1.h5"))
    ap.add_argument("--repeats", type=int, default=5,
                    help="runs of each (ranks, placement), interleaved; the median examples/s is reported "
                         "(a shared machine's speed drifts by tens of percent)")
    args = ap.parse_args()
    if not os.path.exists(args.data):
        subprocess.run([args.dtrain, "prep", "--config", os.path.join(ROOT, "configs", "data_synthetic_electronics.json"),
                        "--set", f"data.output={args.data}", "--quiet"], check=True)
    work = tempfile.mkdtemp(prefix="dtrain_bench_comm_")
    rows = []
    for placement in ("replicated", "sharded"):
        runs = {1: [], 2: []}
        for rep in range(args.repeats):
            for n in (1, 2):
                r = run(args, args.data, n, placement, os.path.join(work, f"{placement}-{n}-{rep}"))
                print(json.dumps(r), flush=True)
                runs[n].append(r)
        for n in (1, 2):
            ordered = sorted(runs[n], key=lambda r: r["examples_per_sec"])
            med = dict(ordered[len(ordered) // 2])
            med["examples_per_sec_runs"] = [round(r["examples_per_sec"]) for r in runs[n]]
            rows.append(med)
    summary = []
    for placement in ("replicated", "sharded"):
        one, two = [r for r in rows if r["placement"] == placement]
        summary.append({"placement": placement, "speedup_2_over_1": two["examples_per_sec"] / one["examples_per_sec"],
                        "dense_bytes_per_step": two["dense_bytes_per_step_rank0"],
                        "sparse_bytes_per_step": two["sparse_bytes_per_step_rank0"],
                        "sparse_lower_bound_bytes_per_step": two["sparse_lower_bound_bytes_per_step_rank0"]})
    print(json.dumps({"summary": summary, "goal_speedup": 1.8, "config": args.config, "data": args.data}))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
