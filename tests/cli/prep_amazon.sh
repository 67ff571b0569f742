#!/usr/bin/env bash
# dtrain prep on the real Amazon Gift Cards data (reviews + metadata): the
# exact summary lines of the issue, the JSON summary, "is current" on a
# second run, --force. Skipped (77) when the shared data folder is absent.
# Args: dtrain-binary source-root shared-data-dir
set -euo pipefail
DTRAIN=$1 SRC=$2 DATA=$3
R=$DATA/amazon/Gift_Cards_5.json.gz M=$DATA/amazon/meta_Gift_Cards.json.gz
if [[ ! -f $R || ! -f $M ]]; then echo "SKIP: $R or $M is absent"; exit 77; fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# the summary is logged (stderr), so both streams are read
run() { "$DTRAIN" prep -c "$SRC/configs/data_amazon_gift_cards.json" --set "data.reviews=$R" --set "data.meta=$M" \
  --set "data.output=$T/gc.h5" "$@" 2>&1; }

out=$(run --summary-json "$T/summary.json") || fail "prep exited $?"
echo "$out"
for want in "2,972 read, 2,965 after dedup" "453 users, 147 items, 2,941 interactions" \
  "train 2,058, valid 232, test 161 (209 and 281 dropped)" "vocabulary 846 terms" "TF-IDF nnz 5,723"; do
  grep -qF "$want" <<<"$out" || fail "output lacks '$want'"
done
for kv in '"read":	2972' '"after_dedup":	2965' '"n_users":	453' '"n_items":	147' '"n_interactions":	2941' \
  '"train":	2058' '"valid":	232' '"test":	161' '"dropped_valid":	209' '"dropped_test":	281' \
  '"eval_users_valid":	102' '"eval_users_test":	74' '"vocab_size":	846' '"tfidf_nnz":	5723'; do
  grep -qF "$kv" "$T/summary.json" || fail "summary JSON lacks $kv"
done
# the summary, config and checksums are recorded in the file
if command -v h5dump >/dev/null; then
  h5dump -a summary "$T/gc.h5" | grep -q '"tfidf_nnz":' || fail "no summary attribute"
  h5dump -a sources "$T/gc.h5" | grep -q 'crc32' || fail "no sources attribute"
  h5dump -a prep_config "$T/gc.h5" | grep -q 'data.meta' || fail "no prep_config attribute"
fi
out=$(run) || fail "second prep exited $?"
grep -q "is current" <<<"$out" || fail "second run did not find the file current"
grep -qF "TF-IDF nnz 5,723" <<<"$out" || fail "second run lacks the summary"
out=$(run --force) || fail "prep --force exited $?"
grep -q "\] wrote" <<<"$out" || fail "--force did not prepare again"
# another data.* value makes it stale
out=$(run --set data.min_rating=4) || fail "min_rating=4 exited $?"
grep -q "data.min_rating was 0 when it was prepared, now 4" <<<"$out" || fail "no reason given for re-preparing"
echo "ok"
