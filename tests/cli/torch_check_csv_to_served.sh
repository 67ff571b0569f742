#!/usr/bin/env bash
# From CSV to a served model, as a new user types it: the shell blocks of
# README's "Train on your own data", run line by line exactly as written
# (from a directory laid out like the repository: build/dtrain, configs/,
# python/), with two substitutions: ./build/dtrain is the binary under test,
# and `pip install` gets --no-build-isolation --no-deps --no-index, which the
# README gives for Debian's python3 offline. Then checks what they printed:
# ten recommendations from dtrain, and the same ten from the served model.
# (Named torch_check_* so tools/setup.sh runs it in stage 1 only.)
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
"$py" -c "import torch, h5py, numpy" 2>/dev/null || { echo "SKIP: python3-torch / python3-h5py / numpy not installed"; exit 77; }
"$py" -c "import importlib.util as u; assert all(u.find_spec(m) for m in ('pip', 'setuptools', 'wheel', 'ensurepip'))" \
  2>/dev/null || { echo "SKIP: python3-pip / python3-setuptools / python3-wheel / python3-venv not installed"; exit 77; }
work=$(mktemp -d /tmp/dtrain_csv_served_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
unset PYTHONPATH
export OMP_NUM_THREADS=1

mkdir -p build
ln -s "$bin" build/dtrain
ln -s "$src/configs" configs
cp -r "$src/python" python
rm -rf python/build python/*.egg-info

# the commands: every line of the sh blocks in the section
"$py" - "$src/README.md" >commands.sh <<'EOF' || fail "README has no commands under 'Train on your own data'"
import re, sys
text = open(sys.argv[1]).read()
section = text.split("## Train on your own data", 1)[1].split("\n## ", 1)[0]
lines = [l for block in re.findall(r"```sh\n(.*?)```", section, re.S) for l in block.splitlines() if l.strip()]
assert len(lines) >= 6, lines
print("\n".join(lines))
EOF
grep -q "dtrain export" commands.sh && grep -q "dtrain_torch.load" commands.sh || fail "the README lacks the serving step"
sed -i 's|pip install |pip install --no-build-isolation --no-deps --no-index |; s|^python3 |'"$py"' |' commands.sh
n=0
while IFS= read -r line; do
  n=$((n + 1))
  bash -c "set -e; $line" >"out$n.txt" 2>"err$n.txt" || fail "command $n failed: $line
$(tail -5 "err$n.txt")"
done <commands.sh
[ "$n" -ge 6 ] || fail "only $n commands"

# what they printed: dtrain's top 10 (command 3) and the served model's (the
# last); both score at "now", a few seconds apart, so their agreement is
# checked at one fixed moment
user=$(grep -o -- "--user [^ ]*" commands.sh | head -1 | cut -d' ' -f2)
[ "$(grep -c "^$user	" out3.txt)" -eq 10 ] || fail "recommend printed: $(cat out3.txt)"
grep -q "Recommendation(user='$user', items=\[" "out$n.txt" || fail "the served model printed: $(cat "out$n.txt")"
T=1700000000
"$bin" recommend --checkpoint runs/csv_example/model.h5 --user "$user" -k 10 --time $T --quiet | cut -f3 >dtrain_items.txt ||
  fail "recommend --time"
.venv/bin/python - runs/csv_example/model.h5 "$user" $T dtrain_items.txt <<'EOF' || fail "the served model disagrees with dtrain recommend"
import sys, dtrain_torch
rec = dtrain_torch.load(sys.argv[1]).recommend(sys.argv[2], k=10, time=int(sys.argv[3]))
want = open(sys.argv[4]).read().split()
assert rec.items == want, (rec.items, want)
EOF
[ -f runs/csv_example/model.h5 ] || fail "no runs/csv_example/model.h5"
echo "CSV to served model: ok ($n commands)"
