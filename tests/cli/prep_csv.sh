#!/usr/bin/env bash
# Bringing one's own data as CSV: the example files (--synthetic-csv), the
# README's three commands from CSV to recommendations, an item file feeding
# the content tower, quoted fields and ISO-8601 times, other delimiters, the
# default output named after the input, the config errors that name both
# keys, and the bad lines that must fail with FILE:LINE (a NUL inside an id,
# an INT64_MIN timestamp).
# Args: dtrain-binary source-root shared-data-dir
set -uo pipefail
DTRAIN=$1 SRC=$2
T=$(mktemp -d /tmp/dtrain_prep_csv_XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*"; exit 1; }
# expect CODE PATTERN ARGS...: runs dtrain, checks the exit code and that its output matches
expect() {
  local code=$1 pat=$2
  shift 2
  "$DTRAIN" "$@" >"$T/stdout" 2>"$T/stderr"
  local rc=$?
  [[ $rc == "$code" ]] || { cat "$T/stderr"; fail "dtrain $* exited $rc, expected $code"; }
  [[ -z $pat ]] || grep -qE -- "$pat" "$T/stderr" "$T/stdout" || { cat "$T/stderr"; fail "dtrain $*: no '$pat'"; }
}

# the example files: 1,000 interaction rows and an item file with quoted text
expect 0 "wrote data/example/interactions.csv and data/example/items.csv" prep --synthetic-csv data/example
[ "$(wc -l <data/example/interactions.csv)" -eq 1001 ] || fail "interactions.csv is not a header and 1,000 rows"
head -1 data/example/interactions.csv | grep -qx "user,item,timestamp,rating" || fail "interactions header"
sed -n 2p data/example/interactions.csv | grep -qE '^[A-Z0-9]+,[A-Z0-9]+,[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z,[1-5]$' ||
  fail "interaction row: $(sed -n 2p data/example/interactions.csv)"
head -1 data/example/items.csv | grep -qx "item,text,category,brand" || fail "items header"
grep -q '""' data/example/items.csv || fail "the item text should need RFC 4180 quoting"
expect 3 "interactions.csv exists.*--force" prep --synthetic-csv data/example
expect 0 "" prep --synthetic-csv data/example --force

# the README's three commands (the example file, then train, then recommend)
expect 0 "" train --config "$SRC/configs/data_csv_example.json" --epochs 2 --set backend.name=cpu
[ -f data/prepared/interactions.h5 ] || fail "the prepared set is not data/prepared/interactions.h5 (named after the input)"
[ -f data/prepared/synthetic.h5 ] && fail "a CSV config wrote the synthetic set's file"
grep -qE "item text: vocabulary [1-9][0-9]* terms" "$T/stderr" || fail "the item file did not feed TF-IDF"
grep -q "content tower is left out" "$T/stderr" && fail "the content tower was dropped"
user=$(sed -n 2p data/example/interactions.csv | cut -d, -f1)
expect 0 "" recommend --checkpoint runs/csv_example/checkpoints/best.h5 --user "$user" -k 10
[ "$(grep -c . "$T/stdout")" -eq 10 ] || fail "recommend printed $(grep -c . "$T/stdout") lines, not 10"

# prep's summary goes through the logger (stderr, timestamped; --quiet hides it)
expect 0 "\[info\] rows: 1,000 read" prep --config "$SRC/configs/data_csv_example.json" --force
grep -q "rows:" "$T/stdout" && fail "the summary went to stdout"
expect 0 "" prep --config "$SRC/configs/data_csv_example.json" --quiet
[ -s "$T/stderr" ] && fail "--quiet still logged: $(cat "$T/stderr")"

# quoting, line breaks in a field, ISO-8601 times with offsets and dates, ; and | delimiters
{
  echo 'user;item;when'
  for u in 1 2 3 4 5 6; do for i in 1 2 3 4 5 6; do
    echo "\"u$u\";\"it;$i\";2024-03-0${i}T1$u:00:00+01:00"
  done; done
  printf '"u7";"it\n7";2024-03-01\n'
} >semi.csv
expect 0 "6 users, 6 items" prep --set data.format=delimited --set data.reviews=semi.csv --set data.columns=user,item,timestamp \
  --set data.delimiter=semicolon --set data.kcore=5
[ -f data/prepared/semi.h5 ] || fail "no data/prepared/semi.h5"
tr ';' '|' <semi.csv >pipe.txt
expect 0 "6 users, 6 items" prep --set data.format=delimited --set data.reviews=pipe.txt --set data.columns=user,item,timestamp \
  --set data.kcore=5 --set data.output=pipe.h5
expect 2 "data.delimiter.*one character" prep --set data.format=delimited --set data.reviews=semi.csv --set data.delimiter=ab

# config keys that contradict each other: both named, exit 2
expect 2 "'data.reviews'.*'data.format' is \"synthetic\"" prep --set data.reviews=semi.csv
expect 2 "'data.items'.*'data.format' is \"synthetic\"" train --set data.items=data/example/items.csv
expect 2 "'data.meta'.*data.items" prep --set data.format=delimited --set data.reviews=semi.csv --set data.meta=m.json
expect 2 "'data.items'.*data.meta" prep --set data.format=amazon --set data.reviews=r.json --set data.items=i.csv
expect 2 "'data.reviews'.*synthetic" config --check --set data.reviews=semi.csv

# bad lines that used to pass: a NUL inside an id (JSON, raw and escaped), INT64_MIN (both formats)
good='{"reviewerID": "U%d", "asin": "I%d", "overall": 5.0, "unixReviewTime": %d}\n'
for u in 0 1 2 3 4 5; do for i in 0 1 2 3 4 5; do printf "$good" $u $i $((1000 + u * 7 + i)); done; done >r.json
{ cat r.json; printf '{"reviewerID": "AZ5C'; printf '\0'; printf '65G10R6W6", "asin": "I1", "overall": 5.0, "unixReviewTime": 9}\n'; } >nul.json
expect 3 "nul.json:37: a NUL byte" prep --set data.format=amazon --set data.reviews=nul.json
{ cat r.json; printf '{"reviewerID": "AZ5C\\u000065G10R6W6", "asin": "I1", "overall": 5.0, "unixReviewTime": 9}\n'; } >esc.json
expect 3 "esc.json:37: a NUL character" prep --set data.format=amazon --set data.reviews=esc.json
{ cat r.json; printf '{"reviewerID": "U1", "asin": "I1", "overall": 5.0, "unixReviewTime": -9223372036854775808}\n'; } >min.json
expect 3 "min.json:37: field \"unixReviewTime\"" prep --set data.format=amazon --set data.reviews=min.json
{ echo 'user,item,timestamp'; for u in 0 1 2 3 4 5; do for i in 0 1 2 3 4 5; do echo "u$u,i$i,$((1000 + u + i))"; done; done
  echo 'u1,i2,-9223372036854775808'; } >min.csv
expect 3 "min.csv:38: field 3 \(timestamp\) \"-9223372036854775808\" is out of range" \
  prep --set data.format=delimited --set data.reviews=min.csv
{ head -5 min.csv; printf 'AZ5C'; printf '\0'; printf '65G10R6W6,i1,1000\n'; } >nulid.csv
expect 3 "nulid.csv:6: a NUL byte" prep --set data.format=delimited --set data.reviews=nulid.csv

"$DTRAIN" prep --help | grep -q -- "--synthetic-csv" || fail "prep --help lacks --synthetic-csv"
echo "ok"
