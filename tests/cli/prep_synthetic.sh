#!/usr/bin/env bash
# The quickstart's synthetic data set prepares in a few seconds; its Amazon
# JSON form (--synthetic-json) prepares to the same numbers through the real
# readers; a MovieLens-style file loads with configs/data_movielens_100k.json.
# Args: dtrain-binary source-root shared-data-dir
set -euo pipefail
DTRAIN=$1 SRC=$2
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

start=$(date +%s.%N)
"$DTRAIN" prep --set "data.output=$T/s.h5" --summary-json "$T/s.json" || fail "synthetic prep exited $?"
secs=$(echo "$(date +%s.%N) - $start" | bc)
echo "quickstart synthetic prep: $secs s"
(( $(echo "$secs < 20" | bc) )) || fail "quickstart prep took $secs s"
grep -q '"read":	400000' "$T/s.json" || fail "not 400,000 rows"

"$DTRAIN" prep --synthetic-json "$T/json" || fail "--synthetic-json exited $?"
"$DTRAIN" prep --set data.format=amazon --set "data.reviews=$T/json/reviews.json.gz" \
  --set "data.meta=$T/json/meta.json.gz" --set "data.output=$T/a.h5" --summary-json "$T/a.json" || fail "amazon prep exited $?"
diff "$T/s.json" "$T/a.json" || fail "the JSON form prepares to other numbers"

mkdir -p "$T/ml/data/ml-100k"
awk 'BEGIN { srand(3); for (u = 1; u <= 100; u++) for (k = 0; k < 30; k++)
  printf "%d\t%d\t%d\t%d\n", u, 1 + int(rand() * 200), 1 + int(rand() * 5), 874724710 + int(rand() * 1e7) }' \
  >"$T/ml/data/ml-100k/u.data"
(cd "$T/ml" && "$DTRAIN" prep -c "$SRC/configs/data_movielens_100k.json" --summary-json s.json) || fail "movielens prep exited $?"
grep -q '"eval_users_test":	100' "$T/ml/s.json" || fail "leave_one_out should evaluate all 100 users"
echo "ok"
