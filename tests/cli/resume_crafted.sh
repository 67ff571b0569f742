#!/usr/bin/env bash
# A checkpoint is data, not instructions (issue 11 item 4): `train --resume`
# with a crafted checkpoint whose stored config names data.output and
# run.dir elsewhere never writes there. Resume writes into the run directory
# the user names (--set run.dir), by default the checkpoint's own (the
# folder above checkpoints/), and only reads the data set its stored config
# names. Before the fix: the stored data.output (a stale dtrain data set,
# here "victim.h5") was prepared over, and the stored run.dir was created
# and written.
# args: dtrain-binary source-root shared-data-dir
set -u
py=$(command -v /usr/bin/python3 || command -v python3)
bin=$1
src=$2
"$py" -c "import h5py" 2>/dev/null || { echo "SKIP: h5py is not installed (python3-h5py)"; exit 77; }
work=$(mktemp -d /tmp/dtrain_crafted_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
cfg=$src/tests/configs/tiny_v3.json
"$bin" train --config "$cfg" --set data.output="$work/data.h5" --set run.dir="$work/run" --epochs 2 --no-final-eval \
  --quiet || fail "training the checkpoint"
# victim.h5: a data set dtrain wrote, for another config: "stale", so a
# training that takes it for its own would prepare it again
"$bin" prep --config "$cfg" --set data.output="$work/victim.h5" --set data.synthetic.seed=11 --quiet >/dev/null ||
  fail "prep of victim.h5"
victim_sum=$(md5sum <"$work/victim.h5")

# craft CKPT KEY=VALUE...: copy of the run's last.h5 whose stored config has these values
craft() {
  local out=$1
  shift
  mkdir -p "$(dirname "$out")"
  cp "$work/run/checkpoints/last.h5" "$out"
  "$py" - "$out" "$@" <<'EOF' || fail "crafting $out"
import h5py, json, numpy, sys
f = h5py.File(sys.argv[1], "r+")
c = json.loads(f.attrs["config"])
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    sec, key = k.split(".", 1)
    c[sec][key] = v
# as dtrain writes it: a fixed-length ASCII string (the space: dtrain before
# issue 11 dropped the last character of a NULL-padded string)
f.attrs["config"] = numpy.bytes_((json.dumps(c) + " ").encode())
f.close()
EOF
}

# 1. stored data.output = victim.h5, stored run.dir = elsewhere
craft "$work/crafted/checkpoints/last.h5" data.output="$work/victim.h5" run.dir="$work/elsewhere"
"$bin" train --resume "$work/crafted/checkpoints/last.h5" --epochs 3 --no-final-eval --quiet 2>"$work/err.txt"
rc=$?
[ "$(md5sum <"$work/victim.h5")" = "$victim_sum" ] || fail "the file the checkpoint named as data.output was overwritten"
[ -e "$work/elsewhere" ] && fail "the run directory the checkpoint named was created: $(ls -R "$work/elsewhere")"
[ $rc -eq 3 ] || fail "resume reading another data set: exit $rc, expected 3 (the data-set check): $(tail -2 "$work/err.txt")"
echo "crafted data.output/run.dir: victim.h5 untouched, no run directory elsewhere (exit $rc)"

# 2. stored data.output in a directory that does not exist: nothing is created
craft "$work/crafted2/checkpoints/last.h5" data.output="$work/nowhere/made.h5" run.dir="$work/elsewhere"
"$bin" train --resume "$work/crafted2/checkpoints/last.h5" --epochs 3 --no-final-eval --quiet 2>"$work/err.txt"
rc=$?
[ $rc -eq 3 ] || fail "resume from a checkpoint naming a missing data set: exit $rc, expected 3"
grep -q "does not create files where a checkpoint says" "$work/err.txt" || fail "message: $(cat "$work/err.txt")"
[ -e "$work/nowhere" ] || [ -e "$work/elsewhere" ] && fail "resume created what the checkpoint named"

# 3. stored run.dir elsewhere, the real data set: the run goes on in the
#    checkpoint's own run directory
craft "$work/crafted3/checkpoints/last.h5" run.dir="$work/elsewhere"
"$bin" train --resume "$work/crafted3/checkpoints/last.h5" --epochs 3 --no-final-eval --quiet 2>"$work/err.txt" ||
  fail "resume with the real data set: $(tail -3 "$work/err.txt")"
[ -e "$work/elsewhere" ] && fail "the run directory the checkpoint named was created"
[ -f "$work/crafted3/checkpoints/epoch-0003.h5" ] || fail "the resumed run did not write into the checkpoint's own run directory"
grep -q '"type":"epoch","epoch":3' "$work/crafted3/metrics.jsonl" || fail "no epoch 3 line in the checkpoint's own metrics.jsonl"
grep -q "$work/crafted3" "$work/crafted3/config.json" || fail "config.json does not record the run directory used"

# 4. --set run.dir names it; --set data.output names a data set to read
"$bin" train --resume "$work/crafted3/checkpoints/last.h5" --set run.dir="$work/mine" --set data.output="$work/data.h5" \
  --epochs 4 --no-final-eval --quiet 2>"$work/err.txt" || fail "resume into --set run.dir: $(tail -3 "$work/err.txt")"
[ -f "$work/mine/checkpoints/epoch-0004.h5" ] || fail "--set run.dir was not where the run wrote"
[ -e "$work/elsewhere" ] && fail "the run directory the checkpoint named was created"

# 5. a checkpoint outside a checkpoints/ folder: the run directory must be named
cp "$work/run/checkpoints/last.h5" "$work/loose.h5"
"$bin" train --resume "$work/loose.h5" --epochs 3 --no-final-eval --quiet 2>"$work/err.txt"
rc=$?
[ $rc -eq 2 ] && grep -q -- "--set run.dir=DIR" "$work/err.txt" || fail "a loose checkpoint: exit $rc: $(cat "$work/err.txt")"
echo "resume from crafted checkpoints: ok"
