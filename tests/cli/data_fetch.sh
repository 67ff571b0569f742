#!/usr/bin/env bash
# data/fetch.sh without the internet: its argument handling, --dry-run,
# that it refuses to replace files that are there, and (with curl or wget)
# a full fetch from a local file:// mirror: Amazon files checked as gzip,
# MovieLens unpacked from its zip, a broken download replacing nothing.
# The fetched MovieLens 1M ratings.dat then prepares with
# configs/data_movielens_1m.json ('::' read as ':' with skipped fields).
# Args: dtrain-binary source-root shared-data-dir
set -uo pipefail
DTRAIN=$1 SRC=$2
F=$SRC/data/fetch.sh
T=$(mktemp -d /tmp/dtrain_fetch_XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect() { # CODE PATTERN ARGS...
  local code=$1 pat=$2
  shift 2
  "$@" >"$T/out" 2>&1
  local rc=$?
  [[ $rc == "$code" ]] || { cat "$T/out"; fail "$* exited $rc, expected $code"; }
  [[ -z $pat ]] || grep -qE -- "$pat" "$T/out" || { cat "$T/out"; fail "$*: no '$pat'"; }
}

expect 0 "^amazon-Gift_Cards$" "$F" list
grep -qx "movielens-100k" "$T/out" && grep -qx "movielens-1m" "$T/out" || fail "list lacks MovieLens"
expect 2 "usage|downloads a public data set" "$F"
expect 2 "unknown data set 'imagenet'" "$F" imagenet
expect 2 "unknown Amazon category 'gift_cards'" "$F" amazon-gift_cards
expect 2 "one data set at a time" "$F" movielens-100k movielens-1m
expect 2 "unknown option '--bogus'" "$F" movielens-100k --bogus
expect 2 "--dir needs" "$F" movielens-100k --dir
expect 0 "categoryFilesSmall/Electronics_5.json.gz -> $T/d/amazon/Electronics_5.json.gz" \
  "$F" amazon-Electronics --dry-run --dir "$T/d"
grep -q "metaFiles2/meta_Electronics.json.gz -> $T/d/amazon/meta_Electronics.json.gz" "$T/out" || fail "dry run lacks the metadata"
[ -e "$T/d" ] && fail "--dry-run created files"
expect 0 "ml-1m.zip -> $T/d/ml-1m" "$F" movielens-1m --dry-run --dir "$T/d"

# files that are there are not replaced, before anything is downloaded
mkdir -p "$T/d/ml-100k" "$T/d/amazon"
echo mine >"$T/d/ml-100k/u.data"
expect 3 "$T/d/ml-100k is already there.*--force" "$F" movielens-100k --dir "$T/d"
echo mine >"$T/d/amazon/meta_Books.json.gz"
expect 3 "meta_Books.json.gz is already there" "$F" amazon-Books --dir "$T/d"
[ "$(cat "$T/d/ml-100k/u.data")" = mine ] && [ "$(cat "$T/d/amazon/meta_Books.json.gz")" = mine ] || fail "a file was changed"

if ! command -v curl >/dev/null && ! command -v wget >/dev/null; then
  echo "ok (no curl or wget: the fetch from a local mirror was not tried)"
  exit 0
fi
if ! command -v curl >/dev/null; then
  echo "ok (wget cannot read file:// addresses: the fetch from a local mirror was not tried)"
  exit 0
fi
# a local mirror
m=$T/mirror
mkdir -p "$m/categoryFilesSmall" "$m/metaFiles2"
printf '{"reviewerID": "U1", "asin": "I1", "overall": 5.0, "unixReviewTime": 1}\n' | gzip >"$m/categoryFilesSmall/Gift_Cards_5.json.gz"
printf '{"asin": "I1", "title": "card"}\n' | gzip >"$m/metaFiles2/meta_Gift_Cards.json.gz"
echo "<html>not found</html>" >"$m/categoryFilesSmall/Books_5.json.gz"
printf 'x' | gzip >"$m/metaFiles2/meta_Books.json.gz"
export DTRAIN_AMAZON_BASE="file://$m"
expect 0 "wrote $T/d/amazon/meta_Gift_Cards.json.gz" "$F" amazon-Gift_Cards --dir "$T/d"
cmp -s "$m/categoryFilesSmall/Gift_Cards_5.json.gz" "$T/d/amazon/Gift_Cards_5.json.gz" || fail "reviews differ from the mirror"
expect 3 "already there" "$F" amazon-Gift_Cards --dir "$T/d"
expect 0 "" "$F" amazon-Gift_Cards --dir "$T/d" --force
expect 4 "not a valid gzip file" "$F" amazon-Books --dir "$T/d" --force
[ -e "$T/d/amazon/Books_5.json.gz" ] && fail "a broken download was moved into place"
expect 4 "could not download" env DTRAIN_AMAZON_BASE="file://$T/nowhere" "$F" amazon-Software --dir "$T/d"

if ! command -v unzip >/dev/null || ! command -v python3 >/dev/null; then
  echo "ok (no unzip or python3: MovieLens from a local mirror was not tried)"
  exit 0
fi
python3 - "$m/ml-1m.zip" <<'PY'
import random, sys, zipfile
random.seed(3)
rows = "".join(f"{u}::{random.randint(1, 80)}::{random.randint(1, 5)}::{978300000 + random.randint(0, 10**7)}\n"
               for u in range(1, 61) for _ in range(25))
with zipfile.ZipFile(sys.argv[1], "w") as z:
    z.writestr("ml-1m/ratings.dat", rows)
    z.writestr("ml-1m/README", "test archive\n")
PY
export DTRAIN_MOVIELENS_BASE="file://$m"
expect 0 "wrote $T/d/ml-1m" "$F" movielens-1m --dir "$T/d"
[ -f "$T/d/ml-1m/ratings.dat" ] || fail "ml-1m/ratings.dat was not unpacked"
(cd "$T" && mkdir -p work && ln -s "$T/d" work/data && cd work &&
  "$DTRAIN" prep -c "$SRC/configs/data_movielens_1m.json" --summary-json s.json >prep.out 2>&1) ||
  fail "prep of ratings.dat: $(tail -3 "$T/work/prep.out")"
grep -q '"read":	1500' "$T/work/s.json" || fail "ratings.dat: not 1,500 rows read: $(cat "$T/work/s.json")"
grep -q '"eval_users_test":	60' "$T/work/s.json" || fail "leave_one_out should evaluate all 60 users"
echo "ok"
