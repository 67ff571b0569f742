#!/usr/bin/env bash
# Serving from Python (issue 14, section 4): `pip install ./python` into a
# virtual environment over Debian's python3 (its torch, h5py and numpy; no
# network: --no-build-isolation --no-deps --no-index), then, with that
# installed package, dtrain_torch.load(F) on a full checkpoint and on its
# export gives the top-k, the fallback and the scores of `dtrain recommend`
# for every user (v3 and v2 with the GRU and with SASRec, v3 dynamic_only
# with either), and torch.jit.trace of the loaded module (plain and
# Recommender.trace) scores as the module does after torch.jit.save/load.
# (Named torch_check_* so tools/setup.sh runs it in stage 1 only.)
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
"$py" -c "import torch, h5py, numpy" 2>/dev/null || { echo "SKIP: python3-torch / python3-h5py / numpy not installed"; exit 77; }
"$py" -c "import importlib.util as u; assert all(u.find_spec(m) for m in ('pip', 'setuptools', 'wheel'))" 2>/dev/null ||
  { echo "SKIP: python3-pip / python3-setuptools / python3-wheel not installed (tools/setup.sh test installs them)"; exit 77; }
work=$(mktemp -d /tmp/dtrain_serving_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
unset PYTHONPATH
export OMP_NUM_THREADS=1

# pip install ./python (a copy: pip builds in the source directory)
cp -r "$src/python" "$work/pysrc"
rm -rf "$work/pysrc/build" "$work/pysrc"/*.egg-info
"$py" -m venv --system-site-packages --without-pip "$work/venv" >venv.log 2>&1 || fail "python3 -m venv: $(tail -3 venv.log)"
vpy="$work/venv/bin/python"
"$vpy" -m pip install --no-build-isolation --no-deps --no-index "$work/pysrc" >pip.log 2>&1 ||
  fail "pip install ./python: $(tail -5 pip.log)"
(cd / && "$vpy" -c "import dtrain_torch, sys; assert dtrain_torch.__file__.startswith(sys.prefix), dtrain_torch.__file__") ||
  fail "the venv does not import the installed dtrain_torch"
(cd / && "$py" -c "import dtrain_torch" 2>/dev/null) && fail "the system python3 imports dtrain_torch: the test would not test the install"

"$bin" prep --config "$src/tests/configs/tiny_v3.json" --set data.output="$work/data.h5" --quiet >/dev/null || fail prep
T=1600000000
check() { # name config sets...
  local name=$1 cfg=$2
  shift 2
  "$bin" train --config "$src/tests/configs/$cfg" --set data.output="$work/data.h5" --set run.dir="$work/$name" \
    --epochs 1 --no-final-eval --quiet "$@" >/dev/null 2>"$name.err" || fail "$name: train: $(tail -3 "$name.err")"
  local ck="$work/$name/checkpoints/last.h5"
  "$bin" export --checkpoint "$ck" -o "$work/$name.h5" --quiet >/dev/null || fail "$name: export"
  "$bin" users --checkpoint "$ck" >"$name.users" || fail "$name: users"
  "$bin" recommend --checkpoint "$ck" --users "$name.users" -k 10 --time $T --json --quiet >"$name.json" ||
    fail "$name: recommend"
  for f in "$ck" "$work/$name.h5"; do
    (cd / && "$vpy" - "$f" "$work/$name.json" $T) <<'EOF' || fail "$name: PyTorch disagrees with dtrain recommend ($f)"
import io, json, sys, torch, dtrain_torch
path, recs, t = sys.argv[1], [json.loads(l) for l in open(sys.argv[2])], int(sys.argv[3])
m = dtrain_torch.load(path)
assert not m.training
tol, worst, fallbacks = 1e-4, 0.0, 0
for r in recs:
    p = m.recommend(r["user"], k=10, time=t)
    c_items, c_scores = [x["item"] for x in r["items"]], [x["score"] for x in r["items"]]
    assert (p.fallback == "popularity") == (r.get("fallback") == "popularity"), (r["user"], p.fallback)
    fallbacks += p.fallback is not None
    assert len(p.items) == len(c_items), (r["user"], p.items, c_items)
    for k, (a, b) in enumerate(zip(c_items, p.items)):  # the same order, up to near-ties swapping
        if a != b:
            assert abs(c_scores[k] - p.scores[k]) <= tol, (r["user"], k, c_items, p.items, c_scores, p.scores)
    worst = max(worst, max(abs(a - b) / max(1.0, abs(a)) for a, b in zip(c_scores, p.scores)))
    if p.fallback is None:
        s = m.score([r["user"]], c_items, time=t)[0].tolist()
        worst = max(worst, max(abs(a - b) / max(1.0, abs(a)) for a, b in zip(c_scores, s)))
assert worst <= tol, worst
assert fallbacks > 0, "no user without history was checked"
# torch.jit.trace of the loaded module: other users and batch sizes, saved and loaded back
users = torch.tensor([len(m.user_ids) - 1, 0, 5, 17]); times = torch.tensor([t, t + 86400 * 3 + 3600, t - 7 * 3600, t])
want = m(users, times)
for traced in (torch.jit.trace(m, m.example_inputs(3)), m.trace()):
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    buf.seek(0)
    again = torch.jit.load(buf)
    assert torch.equal(traced(users, times), want) and torch.equal(again(users, times), want)
print(f"{path}: {len(recs)} users ({fallbacks} without history), max score difference {worst:.2g}")
EOF
  done
}
check v3 tiny_v3.json
check v2 tiny_v2.json
check v3_sasrec tiny_v3.json --set model.encoder=sasrec
check v2_sasrec_user_train tiny_v2.json --set model.encoder=sasrec --set model.history=user_train
check v3_dynamic_only tiny_v3.json --set model.variant=dynamic_only
check v3_dynamic_only_sasrec tiny_v3.json --set model.variant=dynamic_only --set model.encoder=sasrec
echo "torch serving: ok"
