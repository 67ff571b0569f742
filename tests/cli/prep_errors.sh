#!/usr/bin/env bash
# dtrain prep on bad input: exit codes (2 usage/config, 3 data) and messages
# naming the file and line; data.on_error=skip counts and goes on.
# Args: dtrain-binary source-root shared-data-dir
set -uo pipefail
DTRAIN=$1
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# expect CODE PATTERN ARGS...: runs prep, checks the exit code and that stderr matches
expect() {
  local code=$1 pat=$2; shift 2
  "$DTRAIN" prep --set "data.output=$T/out.h5" "$@" >"$T/stdout" 2>"$T/stderr"
  local rc=$?
  [[ $rc == "$code" ]] || { cat "$T/stderr"; fail "prep $* exited $rc, expected $code"; }
  [[ -z $pat ]] || grep -qE -- "$pat" "$T/stderr" "$T/stdout" || { cat "$T/stderr"; fail "prep $*: no '$pat'"; }
}
good='{"reviewerID": "U%d", "asin": "I%d", "overall": 5.0, "unixReviewTime": %d}\n'
for u in 0 1 2 3 4 5; do for i in 0 1 2 3 4 5; do printf "$good" $u $i $((1000 + u * 7 + i)); done; done >"$T/r.json"
cp "$T/r.json" "$T/bad.json"
echo '{"reviewerID": "U1", "asin": "I1", "overall": "five", "unixReviewTime": 1}' >>"$T/bad.json"
A=(--set data.format=amazon)

expect 0 "" "${A[@]}" --set "data.reviews=$T/r.json"
expect 3 "bad.json:37: field \"overall\" must be a number" "${A[@]}" --set "data.reviews=$T/bad.json"
expect 0 "1 malformed line" "${A[@]}" --set "data.reviews=$T/bad.json" --set data.on_error=skip
grep -q "(1 malformed line(s) skipped)" "$T/stderr" || fail "skip count not in the summary"
: >"$T/empty.json"
expect 3 "empty.json: no valid reviews.*empty" "${A[@]}" --set "data.reviews=$T/empty.json"
expect 3 "cannot open $T/nope.json" "${A[@]}" --set "data.reviews=$T/nope.json"
gzip -c "$T/r.json" >"$T/full.json.gz"
head -c $(($(stat -c %s "$T/full.json.gz") - 20)) "$T/full.json.gz" >"$T/cut.json.gz"
expect 3 "cut.json.gz:[0-9]+: the gzip stream is truncated" "${A[@]}" --set "data.reviews=$T/cut.json.gz"
expect 0 "" "${A[@]}" --set "data.reviews=$T/cut.json.gz" --set data.on_error=skip --set data.kcore=1
expect 2 "data.reviews must name" "${A[@]}"
expect 2 "unknown column \"time\"" --set data.format=delimited --set "data.reviews=$T/r.json" --set data.columns=user,item,time
printf 'u1,i1,100\nu2,i2\n' >"$T/d.csv"
expect 3 "d.csv:2: expected 3 comma-separated fields" --set data.format=delimited --set "data.reviews=$T/d.csv"
expect 2 "unknown option" --frobnicate
expect 2 "unknown config key 'data.colums'.*data.columns" --set data.colums=x
expect 3 "no interactions are left after the 100-core" "${A[@]}" --set "data.reviews=$T/r.json" --set data.kcore=100
"$DTRAIN" prep --help | grep -q -- "--summary-json" || fail "--help lacks --summary-json"
echo "ok"
