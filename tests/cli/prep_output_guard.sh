#!/usr/bin/env bash
# data.output is replaced only when it is a data set dtrain wrote (its
# format attributes) and it is stale or --force is given (issue 11, item 1).
# Anything else there (an input file, a config, a directory, another HDF5
# file, a damaged one, a checkpoint-like file) stops prep and train with
# exit 3 naming the file, and is left exactly as it was. The prepared file
# is written to a temporary file and renamed: a failed preparation leaves
# the previous data set intact and no temporary file behind.
# args: dtrain-binary source-root shared-data-dir
set -uo pipefail
bin=$1
src=$2
py=$(command -v /usr/bin/python3 || command -v python3)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cfg=(--config "$src/tests/configs/tiny_v3.json" --quiet)

# refused OUTPUT WHAT [extra args...]: prep and train both exit 3 naming
# OUTPUT, which keeps its bytes (or, for a directory, its contents)
refused() {
  local out=$1 what=$2; shift 2
  local before
  before=$( (cd "$(dirname "$out")" && find "$(basename "$out")" -type f -print0 | sort -z | xargs -0 md5sum) 2>/dev/null; stat -c '%F' "$out")
  for cmd in "prep" "prep --force" "train --epochs 1"; do
    # shellcheck disable=SC2086
    "$bin" $cmd "${cfg[@]}" --set data.output="$out" --set run.dir="$T/run" "$@" >"$T/stdout" 2>"$T/stderr"
    local rc=$?
    [ $rc -eq 3 ] || fail "$cmd over $what exited $rc, expected 3: $(tail -3 "$T/stderr")"
    grep -qF "$out" "$T/stderr" || fail "$cmd over $what: the message does not name $out: $(tail -3 "$T/stderr")"
    grep -q "not a dtrain prepared data set" "$T/stderr" || fail "$cmd over $what: message: $(tail -3 "$T/stderr")"
    local after
    after=$( (cd "$(dirname "$out")" && find "$(basename "$out")" -type f -print0 | sort -z | xargs -0 md5sum) 2>/dev/null; stat -c '%F' "$out")
    [ "$before" = "$after" ] || fail "$cmd changed $what ($out)"
  done
  ls "$(dirname "$out")" | grep -q '\.tmp\.' && fail "a temporary file was left beside $out"
  return 0
}

# the input file itself, as the output of its own preparation
printf '{"reviewerID": "U%d", "asin": "I%d", "overall": 5.0, "unixReviewTime": %d}\n' \
  $(for u in 0 1 2 3 4 5; do for i in 0 1 2 3 4 5; do echo $u $i $((1000 + u * 7 + i)); done; done) >"$T/reviews.json"
cp "$T/reviews.json" "$T/reviews.orig"
"$bin" prep --set data.format=amazon --set data.reviews="$T/reviews.json" --set data.output="$T/reviews.json" \
  >"$T/stdout" 2>"$T/stderr"
rc=$?
[ $rc -eq 3 ] || fail "prep over its own input exited $rc, expected 3"
cmp -s "$T/reviews.json" "$T/reviews.orig" || fail "prep overwrote its own input file"
grep -qF "$T/reviews.json" "$T/stderr" || fail "the message does not name the input file: $(cat "$T/stderr")"

cp "$src/tests/configs/tiny_v3.json" "$T/config.json"
refused "$T/config.json" "a config file"
: >"$T/empty.h5"
refused "$T/empty.h5" "an empty file"
mkdir -p "$T/dir.h5/inside"
echo keep >"$T/dir.h5/inside/file.txt"
refused "$T/dir.h5" "a directory"
"$py" - "$T" <<'EOF' || fail "writing HDF5 files with h5py"
import h5py, numpy as np, sys
d = sys.argv[1]
with h5py.File(d + "/other.h5", "w") as f:        # someone else's HDF5 file
    f["x"] = np.arange(10)
with h5py.File(d + "/ckptlike.h5", "w") as f:     # dtrain-ish attributes, not a data set's
    f.attrs["format_version"] = 1
    f.attrs["config"] = "{}"
    f["params/w"] = np.zeros(3, dtype=np.float32)
EOF
refused "$T/other.h5" "another program's HDF5 file"
refused "$T/ckptlike.h5" "an HDF5 file with a format_version but no preparation record"
head -c 3000 "$T/other.h5" >"$T/cut.h5"
refused "$T/cut.h5" "a truncated HDF5 file"
ln -s "$T/nowhere.h5" "$T/dangling.h5"
"$bin" prep "${cfg[@]}" --set data.output="$T/dangling.h5" >"$T/stdout" 2>"$T/stderr"
rc=$?
[ $rc -eq 3 ] || fail "prep over a dangling symbolic link exited $rc, expected 3"
[ -L "$T/dangling.h5" ] || fail "prep replaced a dangling symbolic link"
if [ "$(id -u)" != 0 ]; then
  cp "$T/config.json" "$T/locked.h5"
  chmod 000 "$T/locked.h5"
  refused "$T/locked.h5" "an unreadable file"
fi

# dtrain's own data set: prepared, kept while current, replaced when stale
# or forced (a new file renamed into place, no temporary left)
out="$T/data.h5"
"$bin" prep "${cfg[@]}" --set data.output="$out" >/dev/null 2>"$T/stderr" || fail "prep: $(tail -3 "$T/stderr")"
ino=$(stat -c %i "$out")
"$bin" prep --config "$src/tests/configs/tiny_v3.json" --set data.output="$out" >"$T/stdout" 2>&1 || fail "prep of a current file"
grep -q "is current" "$T/stdout" || fail "a current data set was not kept"
[ "$(stat -c %i "$out")" = "$ino" ] || fail "a current data set was rewritten"
"$bin" prep "${cfg[@]}" --set data.output="$out" --force >/dev/null 2>"$T/stderr" || fail "prep --force: $(tail -3 "$T/stderr")"
[ "$(stat -c %i "$out")" != "$ino" ] || fail "prep --force did not write a new file"
"$bin" prep "${cfg[@]}" --set data.output="$out" --set data.kcore=3 >/dev/null 2>"$T/stderr" ||
  fail "prep over a stale data set: $(tail -3 "$T/stderr")"
"$py" -c "import h5py, json, sys; assert json.loads(h5py.File(sys.argv[1]).attrs['prep_config'])['data.kcore'] == 3" "$out" ||
  fail "the stale data set was not replaced"
# a preparation that fails (bad input) leaves the previous data set as it was
sum=$(md5sum <"$out")
echo '{"reviewerID": "U1", "asin": "I1", "overall": "five", "unixReviewTime": 1}' >"$T/bad.json"
"$bin" prep --set data.format=amazon --set data.reviews="$T/bad.json" --set data.output="$out" >/dev/null 2>&1
[ $? -eq 3 ] || fail "prep of bad input must exit 3"
[ "$(md5sum <"$out")" = "$sum" ] || fail "a failed preparation changed the previous data set"
# train prepares on demand over a stale data set of its own
"$bin" train "${cfg[@]}" --set data.output="$out" --set run.dir="$T/run2" --set train.max_steps=2 --no-final-eval \
  >/dev/null 2>"$T/stderr" || fail "train over a stale data set: $(tail -3 "$T/stderr")"
ls "$T" | grep -q '\.tmp\.' && fail "a temporary file was left in $T"
echo "prep output guard: ok"
