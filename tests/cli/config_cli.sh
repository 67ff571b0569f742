#!/usr/bin/env bash
# The binary's help, version, config printing and exit codes.
# args: dtrain-binary source-root shared-data-dir
set -u
# Debian's python3 (h5py, numpy, torch come from Debian packages)
py=$(command -v /usr/bin/python3 || command -v python3)
bin=$1
src=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" --help | grep -q "commands:" || fail "--help"
for cmd in train prep eval recommend users export config report; do
  "$bin" $cmd --help >/dev/null || fail "$cmd --help exits non-zero"
  "$bin" $cmd --help | grep -q "usage: dtrain $cmd" || fail "$cmd --help has no usage line"
done
"$bin" --version | grep -q "^dtrain " || fail "--version"
"$bin" --version | grep -q "git " || fail "--version lacks the git hash"
"$bin" --version | grep -q "mpi " || fail "--version lacks the MPI line"

out=$("$bin" config --print --config "$src/configs/hybrid_v2.json" --set train.lr=0.01) || fail "config --print"
echo "$out" | "$py" -c 'import json,sys; c=json.load(sys.stdin); assert c["train"]["lr"]==0.01 and c["model"]["version"]=="v2", c' \
  || fail "config --print output"

err=$("$bin" config --print --set train.lrr=1 2>&1 >/dev/null)
rc=$?
[ $rc -eq 2 ] || fail "misspelt key exits $rc, not 2"
echo "$err" | grep -q "did you mean 'train.lr'" || fail "no suggestion: $err"

"$bin" config --check --set model.version=v9 >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad enum value must exit 2"
"$bin" nosuchcommand >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown command must exit 2"
"$bin" config --bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "unknown option must exit 2"
"$bin" config --schema | grep -q '`train.lr`' || fail "--schema lacks train.lr"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# --config given twice: layered in order, as "extends" does (later wins)
printf '{"train": {"lr": 0.5, "epochs": 7}}\n' >"$T/a.json"
printf '{"train": {"lr": 0.25}, "model": {"version": "v3"}}\n' >"$T/b.json"
out=$("$bin" config --print --config "$T/a.json" --config "$T/b.json" --set train.batch_size=64) || fail "config --print with two --config"
echo "$out" | "$py" -c 'import json,sys; c=json.load(sys.stdin); t=c["train"]
assert (t["lr"], t["epochs"], t["batch_size"], c["model"]["version"]) == (0.25, 7, 64, "v3"), c' ||
  fail "two --config files are not layered (a.json then b.json)"
out=$("$bin" config --print --config "$T/b.json" --config "$T/a.json") || fail "config --print with two --config, reversed"
echo "$out" | "$py" -c 'import json,sys; c=json.load(sys.stdin)
assert (c["train"]["lr"], c["model"]["version"]) == (0.5, "v3"), c' || fail "two --config files, reversed: the later must win"
"$bin" config --help | grep -q -- "--config FILE.*repeatable" || fail "--help does not say --config is repeatable"

# a key given twice in one object: exit 2 naming the key and both lines
printf '{\n  "train": {\n    "lr": 0.1,\n    "lr": 0.2\n  }\n}\n' >"$T/dup.json"
err=$("$bin" config --check --config "$T/dup.json" 2>&1 >/dev/null)
rc=$?
[ $rc -eq 2 ] || fail "a duplicate key exits $rc, not 2"
echo "$err" | grep -q "dup.json: key 'train.lr' appears twice in one object (lines 3 and 4)" || fail "duplicate key message: $err"
echo "config CLI: ok"
