#!/usr/bin/env bash
# Gate weights are reported for the towers a model has, and only those
# (issue 14, section 5): a data set without item text has no content tower,
# an ablation drops towers. The log, metrics.jsonl (step and epoch lines),
# the evaluation's text and JSON (eval_test.json, `eval --json`) agree: JSON
# alpha arrays are [static, dynamic, content] with null for an absent tower,
# text names the present ones; the run report leaves the absent ones out.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
py=$(command -v /usr/bin/python3 || command -v python3)
work=$(mktemp -d /tmp/dtrain_alpha_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# check_run DIR TOWERS: TOWERS is a string of s/d/c for the present towers
check_run() {
  local dir=$1 towers=$2
  "$py" - "$dir" "$towers" <<'EOF' || fail "$dir: the alpha arrays do not follow the towers '$towers'"
import json, sys
d, towers = sys.argv[1], sys.argv[2]
want = [t in towers for t in "sdc"]
def check(arr, where):
    assert isinstance(arr, list) and len(arr) == 3, (where, arr)
    for k in range(3):
        if want[k]:
            assert isinstance(arr[k], (int, float)) and 0 <= arr[k] <= 1, (where, k, arr)
        else:
            assert arr[k] is None, (where, k, arr)
lines = [json.loads(l) for l in open(d + "/metrics.jsonl")]
for l in lines:
    if l["type"] in ("step", "epoch", "test"):
        check(l["alpha_mean"], l["type"])
ev = json.load(open(d + "/eval_test.json"))
check(ev["alpha_mean"], "eval_test.json")
for b in ev["buckets"]:
    if b["users"] > 0:
        check(b["alpha"], "bucket " + b["name"])
EOF
}
names() { # the tower names of s/d/c letters, as the text reports them
  local out="" t
  for t in s d c; do
    case $1 in *$t*) ;; *) continue ;; esac
    case $t in s) n=static ;; d) n=dynamic ;; c) n=content ;; esac
    out="${out:+$out, }$n"
  done
  echo "$out"
}

# a data set without item text: no TF-IDF vocabulary, so no content tower
"$bin" prep --synthetic-csv "$work/example" --quiet >/dev/null || fail "prep --synthetic-csv"
"$bin" train --config "$src/configs/data_csv_example.json" --set data.reviews="$work/example/interactions.csv" \
  --set data.items= --set data.output="$work/notext.h5" --set run.dir="$work/notext" --set backend.name=cpu \
  --epochs 2 >notext.out 2>notext.err || fail "train without item text: $(tail -3 notext.err)"
grep -q "content tower is left out" notext.err || fail "the data set has a vocabulary after all"
grep -qE "epoch 2: .*alpha static [0-9.]+, dynamic [0-9.]+, [0-9]+ examples/s" notext.err ||
  fail "the epoch log line: $(grep 'epoch 2:' notext.err)"
grep -q "alpha.*content" notext.err && fail "the log reports a content weight: $(grep -m1 'alpha.*content' notext.err)"
grep -qE "mean alpha: static [0-9.]+, dynamic [0-9.]+$" notext.out || fail "eval text: $(grep 'mean alpha' notext.out)"
grep -q "alpha (static, dynamic)$" notext.out || fail "the bucket table's header: $(grep 'cold start' -A1 notext.out)"
check_run "$work/notext" sd
"$bin" eval --checkpoint "$work/notext/checkpoints/best.h5" --json ev.json --quiet >ev.out || fail "eval --json"
"$py" -c "import json, sys; a = json.load(open('ev.json'))['alpha_mean']; assert a[2] is None and a[0] > 0, a" ||
  fail "eval --json alpha_mean: $(grep -A4 alpha_mean ev.json)"
grep -q "content" ev.out && fail "eval's text names the content tower"
"$bin" report "$work/notext" -o notext.html --quiet || fail "report"
grep -q "alpha static" notext.html || fail "the report has no static alpha"
grep -q "alpha content" notext.html && fail "the report shows a content alpha"

# ablations: static_only (fixed alpha 1), no_dynamic; and the full model with all three
cfg="$src/tests/configs/tiny_v3.json"
run() { # name towers sets...
  local name=$1 towers=$2
  shift 2
  "$bin" train --config "$cfg" --set data.output="$work/tiny.h5" --set run.dir="$work/$name" --epochs 1 "$@" \
    >"$name.out" 2>"$name.err" || fail "$name: $(tail -3 "$name.err")"
  check_run "$work/$name" "$towers"
  local want # "static, content" -> "static [0-9.]+, content [0-9.]+"
  want=$(names "$towers" | sed -E 's/([a-z]+)/\1 [0-9.]+/g')
  grep -qE "mean alpha: $want$" "$name.out" || fail "$name: eval text $(grep 'mean alpha' "$name.out")"
}
run full sdc
run static_only s --set model.variant=static_only
run no_dynamic sc --set model.variant=no_dynamic
"$py" -c "import json; a = json.load(open('$work/static_only/eval_test.json'))['alpha_mean']; assert a == [1.0, None, None], a" ||
  fail "static_only's alpha is not [1, null, null]"
echo "alpha towers: ok"
