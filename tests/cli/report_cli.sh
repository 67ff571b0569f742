#!/usr/bin/env bash
# dtrain report from the command line: one run and several (another
# variant, a run stopped before its test evaluation), the default and -o
# paths, CSV, the files it refuses to replace, bad and half-written lines
# of metrics.jsonl, and the usage errors. (tests/cli/report_browser.sh
# loads the report in Chromium.)
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
work=$(mktemp -d /tmp/dtrain_report_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_exit() { # code description command...
  local want=$1 what=$2
  shift 2
  "$@" >"$work/out.txt" 2>"$work/err.txt"
  local got=$?
  [ $got -eq "$want" ] || fail "$what: exit $got, expected $want; stderr: $(tail -3 "$work/err.txt")"
}
# svg ID FILE: the <svg> element with that id
svg() { sed -n "/<svg [^>]*id=\"$1\"/,/<\/svg>/p" "$2"; }

cfg=(--config "$src/tests/configs/tiny_v3.json" --set data.output="$work/data.h5" --epochs 2)
"$bin" train "${cfg[@]}" --set run.dir=a --set run.name=a >train.log 2>&1 || fail "train a: $(tail -3 train.log)"
"$bin" train "${cfg[@]}" --set run.dir=b --set run.name=b --set model.variant=no_content >train.log 2>&1 ||
  fail "train b: $(tail -3 train.log)"
"$bin" train "${cfg[@]}" --set run.dir=c --set run.name=c --max-steps 5 --no-final-eval >train.log 2>&1 ||
  fail "train c: $(tail -3 train.log)"
[ -f c/eval_test.json ] && fail "run c should have no test evaluation"

# one run: RUN_DIR/report.html by default
expect_exit 0 "report a" "$bin" report a
grep -qx "report: a/report.html" out.txt || fail "report a printed: $(cat out.txt)"
grep -q '<meta name="generator" content="dtrain report' a/report.html || fail "no generator tag"
grep -qi '<script' a/report.html && fail "the report has a script"
grep -Eq '(src|href)="(https?:)?//' a/report.html && fail "the report links outside itself"
for id in chart-loss chart-bpr chart-neg-entropy chart-balance chart-valid-ndcg10 chart-valid-hr10 chart-alpha-0 \
  chart-examples-per-sec chart-phases-0 chart-comm-0 table-runs table-phases table-test table-buckets-0 \
  table-config-diff; do
  grep -q "id=\"$id\"" a/report.html || fail "a/report.html lacks #$id"
done
[ "$(svg chart-valid-ndcg10 a/report.html | grep -o '<circle' | wc -l)" -eq 2 ] || fail "two epochs should be two points"

# several runs, other variant, one stopped early
expect_exit 0 "report a b c" "$bin" report a b c -o cmp.html
grep -qx "report: cmp.html" out.txt || fail "report -o printed: $(cat out.txt)"
svg chart-alpha-0 cmp.html | grep -q '>content</text>' || fail "run a's alpha chart lacks the content tower"
svg chart-alpha-1 cmp.html | grep -q '>dynamic</text>' || fail "run b's alpha chart lacks the dynamic tower"
svg chart-alpha-1 cmp.html | grep -q '>content</text>' && fail "run b (no_content) shows a content tower"
[ "$(svg chart-loss cmp.html | grep -c 'class="series"')" -eq 3 ] || fail "the loss chart should compare 3 runs"
grep -q 'in progress or stopped' cmp.html || fail "run c is not reported as unfinished"
grep -q 'table-buckets-2' cmp.html && fail "run c has no test evaluation, yet a bucket table"
sed -n '/id="table-config-diff"/,/<\/table>/p' cmp.html | grep -q '>model.variant<' ||
  fail "the config diff lacks model.variant"
sed -n '/id="table-config-diff"/,/<\/table>/p' cmp.html | grep -q '>model.dim<' &&
  fail "the config diff lists a key all runs share"
expect_exit 0 "report a b c again" "$bin" report a b c -o cmp.html # its own report: replaced

# CSV: stdout by default, one row per step and epoch line
expect_exit 0 "report --csv" "$bin" report a b --csv
head -1 out.txt | grep -q '^run,dir,type,epoch,step,loss,' || fail "CSV header: $(head -1 out.txt)"
want=$(($(grep -c '"type":"step"\|"type":"epoch"' a/metrics.jsonl) + $(grep -c '"type":"step"\|"type":"epoch"' b/metrics.jsonl)))
[ "$(($(wc -l <out.txt) - 1))" -eq "$want" ] || fail "CSV rows: $(($(wc -l <out.txt) - 1)), expected $want"
grep -q '^b,b,epoch,2,' out.txt || fail "CSV lacks run b's epoch 2"
head -1 out.txt >header.txt
expect_exit 0 "report --csv -o" "$bin" report a --csv -o a.csv
grep -qx "report: a.csv" out.txt || fail "report --csv -o printed: $(cat out.txt)"
cmp -s <(head -1 a.csv) header.txt || fail "CSV file header differs"
expect_exit 3 "CSV over an HTML report" "$bin" report a --csv -o cmp.html

# files dtrain did not write
printf 'my notes\n' >notes.html
expect_exit 3 "-o onto a user's file" "$bin" report a -o notes.html
grep -q -- "--force" err.txt || fail "the refusal does not name --force: $(cat err.txt)"
[ "$(cat notes.html)" = "my notes" ] || fail "notes.html was changed"
expect_exit 0 "--force" "$bin" report a -o notes.html --force
grep -q 'dtrain report' notes.html || fail "--force did not write the report"
mkdir adir
expect_exit 3 "-o onto a directory" "$bin" report a -o adir

# bad and half-written lines: skipped, named FILE:LINE, the report still written
mkdir d
cp a/config.json a/eval_test.json d/
{ sed -n 1,2p a/metrics.jsonl; echo '{"type":"step","step": oops}'; sed -n '3,$p' a/metrics.jsonl; printf '{"type":"step","ste'; } \
  >d/metrics.jsonl
expect_exit 0 "report with bad lines" "$bin" report d
grep -q "d/metrics.jsonl:3: invalid JSON; line skipped" err.txt || fail "bad line not named: $(cat err.txt)"
grep -q "d/metrics.jsonl:3: invalid JSON" d/report.html || fail "the report does not note the bad line"
grep -q "last line is incomplete" d/report.html || fail "the report does not note the half-written line"
# a run that has only started: config.json alone
mkdir e
cp a/config.json e/
expect_exit 0 "report of a run with no metrics yet" "$bin" report e
grep -q 'class="chart no-data"' e/report.html || fail "an empty run should draw empty charts"

# usage and data errors
expect_exit 2 "no run directory" "$bin" report
expect_exit 2 "unknown option" "$bin" report a --bogus
expect_exit 3 "missing directory" "$bin" report nowhere
grep -q "nowhere" err.txt || fail "the missing directory is not named"
mkdir empty
expect_exit 3 "directory without run files" "$bin" report empty
expect_exit 0 "help" "$bin" report --help
grep -q -- "--csv" out.txt || fail "report --help lacks --csv"
"$bin" --help | grep -q "report" || fail "dtrain --help lacks report"
echo "ok"
