#!/usr/bin/env bash
# bitident_check.sh: do two dtrain binaries compute the same bits?
#
#   bash tools/bitident_check.sh OLD_BINARY NEW_BINARY [WORK_DIR] [CASE...]
#
# Runs the same short trainings with both binaries (each prepares its own
# copy of the data set) and compares, for every case:
#   - every metrics.jsonl line (step, epoch and test lines) except the
#     fields that measure time or memory (time_s, time_ms, examples_per_sec,
#     epoch_time_s, peak_rss_mb): loss, bpr, neg_entropy, balance,
#     alpha_mean, grad_norm, lr, valid/test metrics, communication bytes...
#     must be equal as numbers (cJSON prints doubles so they read back
#     exactly, so equal numbers are equal bits);
#   - every dataset of the final checkpoint (parameters, Adam moments, table
#     optimizer state) and of the prepared data set, bit for bit;
#   - eval_test.json;
#   - for the one-rank v1/v2/v3 cases, `dtrain eval --checkpoint` (JSON) and
#     `dtrain recommend` for a few users (text).
# Prints one line per case and "bitident: all N cases identical" at the end;
# exits 1 on the first difference (naming the file, line and field).
#
# Cases (default: all): v3 v2 v1 v3_adagrad v2_no_attention v3_static_only
# mpi2_v3_sharded mpi2_v3_shm mpi2_v2_allreduce (the mpi2_* ones run two
# ranks with mpirun and are skipped, with a line, when the binaries have no
# MPI). Needs /usr/bin/python3 with h5py and numpy.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,25p' "$0" >&2
  exit 2
fi
old=$(realpath "$1")
new=$(realpath "$2")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${3:-$(mktemp -d /tmp/dtrain_bitident_XXXXXX)}
shift $(($# >= 3 ? 3 : 2))
mkdir -p "$work"
work=$(realpath "$work")
py=/usr/bin/python3
all_cases=(v3 v2 v1 v3_adagrad v2_no_attention v3_static_only mpi2_v3_sharded mpi2_v3_shm mpi2_v2_allreduce)
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("${all_cases[@]}")
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# case_args NAME: prints "ranks config steps" then the --set overrides, one per line
case_args() {
  local v3=$root/tests/configs/tiny_v3.json v2=$root/tests/configs/tiny_v2.json
  local sharded=(comm.placement.user_emb=sharded comm.placement.item_emb=sharded comm.placement.item_bias=sharded
    comm.placement.dyn_item_emb=sharded)
  case $1 in
    v3) printf '%s\n' 1 "$v3" 100 ;;
    v2) printf '%s\n' 1 "$v2" 100 ;;
    v1) printf '%s\n' 1 "$v2" 100 model.version=v1 model.lambda_ent=0 model.lambda_bal=0 ;;
    v3_adagrad) printf '%s\n' 1 "$v3" 40 optim.sparse=rowwise_adagrad ;;
    v2_no_attention) printf '%s\n' 1 "$v2" 30 model.variant=no_attention ;;
    v3_static_only) printf '%s\n' 1 "$v3" 30 model.variant=static_only ;;
    mpi2_v3_sharded) printf '%s\n' 2 "$v3" 60 comm.dense_update=sharded "${sharded[@]}" ;;
    mpi2_v3_shm) printf '%s\n' 2 "$v3" 60 comm.dense_update=shared_memory ;;
    mpi2_v2_allreduce) printf '%s\n' 2 "$v2" 60 comm.dense_update=allreduce comm.placement.user_emb=sharded ;;
    *) echo "bitident: unknown case $1 (known: ${all_cases[*]})" >&2; exit 2 ;;
  esac
}

has_mpi() { ! "$1" --version | grep -q "mpi    not compiled"; }

# run_case NAME WHICH(old|new) BINARY
run_case() {
  local name=$1 which=$2 bin=$3 dir=$work/$1/$2
  mapfile -t a < <(case_args "$name")
  local ranks=${a[0]} config=${a[1]} steps=${a[2]}
  local sets=(--set run.dir="$dir/run" --set data.output="$dir/data.h5" --set run.log_every=1 --set backend.threads=1
    --set train.epochs=10)
  for kv in "${a[@]:3}"; do sets+=(--set "$kv"); done
  rm -rf "$dir"
  mkdir -p "$dir"
  local launch=()
  [ "$ranks" -gt 1 ] && launch=(mpirun -np "$ranks")
  (cd "$dir" && "${launch[@]}" "$bin" train --config "$config" "${sets[@]}" --max-steps "$steps" --quiet \
    >"$dir/train.out" 2>"$dir/train.err") || {
    echo "bitident: $name ($which) failed; see $dir/train.err" >&2
    tail -5 "$dir/train.err" >&2
    exit 1
  }
  [ "$ranks" -gt 1 ] && return 0
  (cd "$dir" && "$bin" eval --checkpoint "$dir/run/checkpoints/last.h5" --json "$dir/eval.json" --quiet \
    >"$dir/eval.out" 2>"$dir/eval.err") || { echo "bitident: eval of $name ($which) failed" >&2; exit 1; }
  "$py" -c 'import h5py, sys; print("\n".join(x.decode() for x in h5py.File(sys.argv[1], "r")["users/ids"][:4]))' \
    "$dir/data.h5" >"$dir/users.txt"
  (cd "$dir" && "$bin" recommend --checkpoint "$dir/run/checkpoints/last.h5" --users "$dir/users.txt" -k 10 \
    --time 1500000000 --quiet >"$dir/recommend.out" 2>"$dir/recommend.err") ||
    { echo "bitident: recommend of $name ($which) failed" >&2; exit 1; }
}

compare_case() {
  "$py" - "$work/$1/old" "$work/$1/new" "$1" <<'EOF'
import json, sys, os
import h5py, numpy as np
a, b, name = sys.argv[1:4]
TIMING = {"time_s", "time_ms", "examples_per_sec", "epoch_time_s", "peak_rss_mb"}
def fail(msg):
    print(f"bitident: {name}: DIFFERENT: {msg}")
    sys.exit(1)
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k not in TIMING}
    if isinstance(o, list):
        return [strip(v) for v in o]
    return o
la = [strip(json.loads(l)) for l in open(a + "/run/metrics.jsonl")]
lb = [strip(json.loads(l)) for l in open(b + "/run/metrics.jsonl")]
if len(la) != len(lb):
    fail(f"metrics.jsonl has {len(la)} lines vs {len(lb)}")
steps = 0
for i, (x, y) in enumerate(zip(la, lb), 1):
    if x != y:
        keys = sorted(k for k in set(x) | set(y) if x.get(k) != y.get(k))
        fail(f"metrics.jsonl line {i} ({x.get('type')}): {', '.join(f'{k}: {x.get(k)!r} vs {y.get(k)!r}' for k in keys)}")
    steps += x.get("type") == "step"
def datasets(f):
    out = {}
    f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out
ca, cb = (datasets(h5py.File(d + "/run/checkpoints/last.h5", "r")) for d in (a, b))
if sorted(ca) != sorted(cb):
    fail(f"checkpoint datasets differ: {sorted(set(ca) ^ set(cb))}")
for k in ca:
    if ca[k].dtype != cb[k].dtype or ca[k].shape != cb[k].shape or ca[k].tobytes() != cb[k].tobytes():
        fail(f"checkpoint dataset {k} differs")
da, db = (datasets(h5py.File(d + "/data.h5", "r")) for d in (a, b))
if sorted(da) != sorted(db):
    fail(f"prepared data sets differ in their datasets: {sorted(set(da) ^ set(db))}")
for k in da:
    if da[k].dtype != db[k].dtype or da[k].shape != db[k].shape or da[k].tobytes() != db[k].tobytes():
        fail(f"prepared data set: dataset {k} differs")
checked = [f"{len(la)} metrics lines ({steps} steps)", f"{len(ca)} checkpoint datasets",
           f"{len(da)} prepared-data datasets"]
for f in ("run/eval_test.json", "eval.json", "recommend.out"):
    pa, pb = os.path.join(a, f), os.path.join(b, f)
    if not os.path.exists(pa) and not os.path.exists(pb):
        continue
    if open(pa, "rb").read() != open(pb, "rb").read():
        fail(f"{f} differs")
    checked.append(f)
print(f"bitident: {name}: identical ({', '.join(checked)})")
EOF
}

n=0
for c in "${cases[@]}"; do
  mapfile -t a < <(case_args "$c")
  if [ "${a[0]}" -gt 1 ] && ! { command -v mpirun >/dev/null && has_mpi "$old" && has_mpi "$new"; }; then
    echo "bitident: $c: skipped (needs mpirun and binaries with MPI)"
    continue
  fi
  run_case "$c" old "$old"
  run_case "$c" new "$new"
  compare_case "$c"
  n=$((n + 1))
done
echo "bitident: all $n cases identical (work dir $work)"
