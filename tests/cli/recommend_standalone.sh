#!/usr/bin/env bash
# Checkpoints that stand alone (issue 14, section 3): a checkpoint carries its
# inference data (/inference), so `recommend` and `users` work from another
# directory with the prepared data set deleted, and give what they gave with
# it; `eval` still needs the data set. A user without history gets the
# popularity ranking (JSON "fallback", a note line in text); unknown ids in
# --users stop with exit 3, or are reported per line and skipped with
# --skip-unknown. `export` writes parameters + inference data only (smaller,
# recommends and evaluates the same, cannot resume), refuses to replace a
# file dtrain did not write unless --force. A checkpoint without /inference
# (an older dtrain's) still recommends with its data set, and says what to
# do without it.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
py=$(command -v /usr/bin/python3 || command -v python3)
work=$(mktemp -d /tmp/dtrain_standalone_XXXXXX)
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
has_h5py=0
"$py" -c "import h5py" 2>/dev/null && has_h5py=1

mkdir -p run data
"$bin" train --config "$src/tests/configs/tiny_v3.json" --set data.output="$work/data/tiny.h5" --set run.dir="$work/run" \
  --epochs 1 --no-final-eval --quiet >/dev/null 2>"$work/train.err" || fail "train: $(tail -3 "$work/train.err")"
ck="$work/run/checkpoints/last.h5"
h5ls -r "$ck" | grep -q "^/inference/users/items " || fail "the checkpoint has no /inference/users/items"

# users: the ids, in order, --limit
"$bin" users --checkpoint "$ck" >users_all.txt || fail "users"
[ "$(wc -l <users_all.txt)" -eq "$(h5ls "$work/data/tiny.h5/users/ids" | sed 's/.*{\([0-9]*\)}.*/\1/')" ] ||
  fail "users lists $(wc -l <users_all.txt) ids, the data set has another count"
LC_ALL=C sort -c users_all.txt || fail "users are not in bytewise order"
"$bin" users --checkpoint "$ck" --limit 3 >users3.txt || fail "users --limit"
[ "$(wc -l <users3.txt)" -eq 3 ] && [ "$(head -3 users_all.txt)" = "$(cat users3.txt)" ] || fail "users --limit 3"
expect_exit 2 "users --limit 0" "$bin" users --checkpoint "$ck" --limit 0

# a user with history and one without (their list is empty: every row after the split boundary)
if [ $has_h5py = 1 ]; then
  read -r with_hist no_hist < <("$py" - "$work/data/tiny.h5" <<'EOF'
import h5py, numpy as np, sys
f = h5py.File(sys.argv[1], "r")
lens = np.diff(f["users/ptr"][()])
ids = [s.decode() for s in f["users/ids"][()]]
print(ids[int(np.argmax(lens))], ids[int(np.nonzero(lens == 0)[0][0])])
EOF
  )
else
  with_hist=$(sed -n 2p users_all.txt)
  no_hist=""
fi
printf '%s\n' "$with_hist" ${no_hist:+"$no_hist"} >users.txt
"$bin" recommend --checkpoint "$ck" --users users.txt -k 7 --time 1500000000 --quiet >with_data.txt ||
  fail "recommend with the data set"
"$bin" recommend --checkpoint "$ck" --users users.txt -k 7 --time 1500000000 --json --quiet >with_data.json ||
  fail "recommend --json with the data set"

# the data set gone, from another directory: the same output
mv "$work/data/tiny.h5" "$work/tiny.h5.away"
mkdir -p "$work/elsewhere"
(cd "$work/elsewhere" && "$bin" recommend --checkpoint ../run/checkpoints/last.h5 --users ../users.txt -k 7 \
  --time 1500000000 --quiet) >no_data.txt 2>no_data.err || fail "recommend without the data set: $(tail -3 no_data.err)"
cmp -s with_data.txt no_data.txt || fail "recommend differs without the data set: $(diff with_data.txt no_data.txt | head)"
(cd "$work/elsewhere" && "$bin" recommend --checkpoint ../run/checkpoints/last.h5 --users ../users.txt -k 7 \
  --time 1500000000 --json --quiet) >no_data.json || fail "recommend --json without the data set"
cmp -s with_data.json no_data.json || fail "recommend --json differs without the data set"
[ "$(grep -c "^$with_hist	" no_data.txt)" -eq 7 ] || fail "recommend printed no 7 items for $with_hist"
(cd "$work/elsewhere" && "$bin" users --checkpoint ../run/checkpoints/last.h5 --limit 3) >users3b.txt ||
  fail "users without the data set"
cmp -s users3.txt users3b.txt || fail "users differs without the data set"
expect_exit 3 "eval without the data set" "$bin" eval --checkpoint "$ck"
grep -q "tiny.h5" err.txt || fail "eval without the data set does not name it: $(cat err.txt)"

# the popularity fallback: JSON field, text note, the train counts in order
if [ -n "$no_hist" ]; then
  grep -q "^# user $no_hist has no history" no_data.txt || fail "no note line for $no_hist: $(cat no_data.txt)"
  [ "$(grep -c "^$no_hist	" no_data.txt)" -eq 7 ] || fail "the fallback did not list 7 items"
  "$py" - no_data.json "$no_hist" "$with_hist" "$work/tiny.h5.away" <<'EOF' || fail "the popularity fallback"
import json, sys, h5py, numpy as np
recs = {r["user"]: r for r in map(json.loads, open(sys.argv[1]))}
fb, model = recs[sys.argv[2]], recs[sys.argv[3]]
assert fb.get("fallback") == "popularity", fb
assert "fallback" not in model, model
f = h5py.File(sys.argv[4], "r")
ptr, items, n_train = f["users/ptr"][()], f["users/items"][()], f["users/n_train"][()]
ids = [s.decode() for s in f["items/ids"][()]]
count = np.zeros(len(ids), np.int64)
for u in range(len(n_train)):
    np.add.at(count, items[ptr[u]:ptr[u] + n_train[u]], 1)
order = sorted(range(len(ids)), key=lambda i: (-count[i], i))[:7]
assert [x["item"] for x in fb["items"]] == [ids[i] for i in order], (fb["items"], [ids[i] for i in order])
assert [x["score"] for x in fb["items"]] == [float(count[i]) for i in order]
EOF
else
  echo "note: no h5py: the fallback user was not checked"
fi

# unknown users: exit 3 naming the line; --skip-unknown reports each and goes on
printf '%s\nno-such-user\n%s\nnor-this-one\n' "$with_hist" "$with_hist" >mixed.txt
expect_exit 3 "an unknown user in --users" "$bin" recommend --checkpoint "$ck" --users mixed.txt -k 2
grep -q "mixed.txt line 2.*unknown user 'no-such-user'" err.txt || fail "the unknown user's line: $(cat err.txt)"
expect_exit 0 "--skip-unknown" "$bin" recommend --checkpoint "$ck" --users mixed.txt -k 2 --skip-unknown
[ "$(grep -c "^$with_hist	" out.txt)" -eq 4 ] || fail "--skip-unknown: the known users' lines are missing"
grep -q "line 2: unknown user 'no-such-user'.*skipped" err.txt && grep -q "line 4: unknown user 'nor-this-one'" err.txt ||
  fail "--skip-unknown does not report each unknown line: $(cat err.txt)"
grep -q "2 of 4 ids" err.txt || fail "--skip-unknown: no count"
printf 'no-such-user\n' >unknown.txt
expect_exit 3 "--skip-unknown with no known user" "$bin" recommend --checkpoint "$ck" --users unknown.txt --skip-unknown
expect_exit 3 "--user unknown" "$bin" recommend --checkpoint "$ck" --user no-such-user
grep -q "dtrain users" err.txt || fail "the unknown-user message does not point at dtrain users"

# export: no optimizer state, smaller, the same recommendations; eval with the data set back
mv "$work/tiny.h5.away" "$work/data/tiny.h5"
"$bin" export --checkpoint "$ck" -o model.h5 >export.out || fail "export"
grep -q "wrote model.h5" export.out || fail "export said: $(cat export.out)"
h5ls model.h5 | grep -q "^optim" && fail "the export has /optim"
h5ls -r model.h5 | grep -q "^/inference/tfidf/data " || fail "the export lacks the TF-IDF rows"
size_ck=$(stat -c %s "$ck") size_ex=$(stat -c %s model.h5)
[ $((size_ex * 10)) -lt $((size_ck * 6)) ] || fail "the export ($size_ex bytes) is not well below the checkpoint ($size_ck)"
mv "$work/data/tiny.h5" "$work/tiny.h5.away"
(cd "$work/elsewhere" && "$bin" recommend --checkpoint ../model.h5 --users ../users.txt -k 7 --time 1500000000 \
  --quiet) >export_rec.txt || fail "recommend from the export"
cmp -s with_data.txt export_rec.txt || fail "the export recommends differently"
mv "$work/tiny.h5.away" "$work/data/tiny.h5"
"$bin" eval --checkpoint model.h5 --json ev_export.json --quiet >/dev/null || fail "eval of the export"
"$bin" eval --checkpoint "$ck" --json ev_ck.json --quiet >/dev/null || fail "eval of the checkpoint"
cmp -s ev_export.json ev_ck.json || fail "the export evaluates differently"
expect_exit 3 "resume from an export" "$bin" train --config "$src/tests/configs/tiny_v3.json" \
  --set data.output="$work/data/tiny.h5" --set run.dir="$work/run2" --resume model.h5
grep -q "is an export.*resume from a checkpoint" err.txt || fail "resume from an export: $(cat err.txt)"
# the destination: a file dtrain did not write is refused (and kept), unless --force
echo "precious" >notes.h5
expect_exit 3 "export onto another file" "$bin" export --checkpoint "$ck" -o notes.h5
grep -q "not a checkpoint or export dtrain wrote.*--force" err.txt || fail "export refusal: $(cat err.txt)"
[ "$(cat notes.h5)" = precious ] || fail "the refused file was changed"
expect_exit 0 "export --force" "$bin" export --checkpoint "$ck" -o notes.h5 --force
expect_exit 0 "export onto its own export" "$bin" export --checkpoint "$ck" -o model.h5
expect_exit 2 "export onto the checkpoint" "$bin" export --checkpoint "$ck" -o "$ck"
expect_exit 3 "export onto a directory" "$bin" export --checkpoint "$ck" -o "$work/elsewhere"
expect_exit 2 "export without -o" "$bin" export --checkpoint "$ck"
ls "$work"/*.tmp.* 2>/dev/null && fail "export left a temporary file"

# a checkpoint without /inference (as an older dtrain wrote): recommends with its data set, and says what to do without
if [ $has_h5py = 1 ]; then
  cp "$ck" old.h5
  "$py" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); del f['inference']" old.h5 || fail "making an old checkpoint"
  "$bin" recommend --checkpoint old.h5 --users users.txt -k 7 --time 1500000000 >old_rec.txt 2>old_rec.err ||
    fail "recommend from an old checkpoint with its data set: $(tail -3 old_rec.err)"
  grep -q "no inference data.*reading the prepared data set" old_rec.err || fail "no note on the old checkpoint"
  cmp -s with_data.txt old_rec.txt || fail "an old checkpoint recommends differently"
  "$bin" export --checkpoint old.h5 -o old_export.h5 --quiet >/dev/null || fail "export of an old checkpoint"
  mv "$work/data/tiny.h5" "$work/tiny.h5.away"
  (cd "$work/elsewhere" && "$bin" recommend --checkpoint ../old_export.h5 --users ../users.txt -k 7 --time 1500000000 \
    --quiet) >old_export_rec.txt || fail "recommend from an old checkpoint's export"
  cmp -s with_data.txt old_export_rec.txt || fail "an old checkpoint's export recommends differently"
  expect_exit 3 "an old checkpoint without its data set" "$bin" recommend --checkpoint old.h5 --users users.txt
  grep -q "carries no inference data.*tiny.h5.*not there" err.txt || fail "old checkpoint message: $(cat err.txt)"
  expect_exit 3 "users of an old checkpoint without its data set" "$bin" users --checkpoint old.h5
else
  echo "note: no h5py: the old-checkpoint cases were not run"
fi
echo "recommend standalone: ok"
