#!/usr/bin/env bash
# Outputs named on the command line never replace a file dtrain did not
# write (issue 11, the gaps after item 1): eval --json, eval --dump and prep
# --summary-json onto an existing file that is not the same kind of dtrain
# output stop with exit 3 naming it and --force, before any work, and leave
# it as it was; the same kind written earlier is replaced; --force replaces
# anything (not a directory). Before the fix: each overwrote the file.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
work=$(mktemp -d /tmp/dtrain_outguard_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
cfg=$src/tests/configs/tiny_v3.json
"$bin" train --config "$cfg" --set data.output="$work/data.h5" --set run.dir="$work/run" --epochs 1 --no-final-eval \
  --quiet || fail "training"
ckpt=$work/run/checkpoints/last.h5
ev=(eval --checkpoint "$ckpt" --set eval.protocol=sampled --quiet)
pr=(prep --config "$cfg" --set data.output="$work/data.h5" --quiet)

# guard NAME OPTION CMD...: CMD OPTION FILE refuses a foreign file, replaces
# its own output, and --force replaces the foreign one
guard() {
  local name=$1 opt=$2
  shift 2
  local f=$work/$name
  echo '{"my": "precious data"}' >"$f"
  local sum
  sum=$(md5sum <"$f")
  "$@" "$opt" "$f" >/dev/null 2>"$work/err.txt"
  local rc=$?
  [ $rc -eq 3 ] || fail "$opt onto a foreign file: exit $rc, expected 3: $(tail -2 "$work/err.txt")"
  grep -qF "$f" "$work/err.txt" && grep -q -- "--force" "$work/err.txt" ||
    fail "$opt: the refusal does not name the file and --force: $(cat "$work/err.txt")"
  [ "$(md5sum <"$f")" = "$sum" ] || fail "$opt changed the foreign file"
  "$@" "$opt" "$f" --force >/dev/null 2>"$work/err.txt" || fail "$opt --force: $(tail -2 "$work/err.txt")"
  [ "$(md5sum <"$f")" != "$sum" ] || fail "$opt --force did not write"
  "$@" "$opt" "$f" >/dev/null 2>"$work/err.txt" || fail "$opt onto its own earlier output: $(tail -2 "$work/err.txt")"
  mkdir -p "$work/adir"
  "$@" "$opt" "$work/adir" --force >/dev/null 2>"$work/err.txt"
  [ $? -eq 3 ] || fail "$opt onto a directory (even with --force) should be exit 3"
  echo "$opt: a foreign file refused (exit 3) and kept, its own output replaced, --force replaces"
}
guard eval.json --json "$bin" "${ev[@]}"
guard dump.jsonl --dump "$bin" "${ev[@]}"
guard summary.json --summary-json "$bin" "${pr[@]}"
echo "output guard: ok"
