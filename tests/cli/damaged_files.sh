#!/usr/bin/env bash
# Damaged files (issue 11 item 7): every dataset dtrain writes carries
# HDF5's Fletcher-32 checksum, so flipped bytes inside a checkpoint's
# parameters (or a prepared data set) are a read error naming the dataset
# (exit 3), never a silently different model; parameters that are not
# finite are refused; recommend --json and eval never print a non-finite
# score. Files without the filter (older dtrain) still read, with the same
# results. Before the fix: flipped bytes loaded silently and recommend
# --json printed -nan (invalid JSON).
# args: dtrain-binary source-root shared-data-dir
set -u
py=$(command -v /usr/bin/python3 || command -v python3)
bin=$1
src=$2
"$py" -c "import h5py, numpy" 2>/dev/null || { echo "SKIP: h5py/numpy are not installed (python3-h5py)"; exit 77; }
work=$(mktemp -d /tmp/dtrain_damaged_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
cfg=$src/tests/configs/tiny_v3.json
"$bin" train --config "$cfg" --set data.output="$work/data.h5" --set run.dir="$work/run" --epochs 2 --no-final-eval \
  --quiet || fail "training"
ckpt=$work/run/checkpoints/last.h5
user=$("$py" -c "import h5py,sys; print(h5py.File(sys.argv[1])['users/ids'][0].decode())" "$work/data.h5") ||
  fail "reading a user id"

# flip FILE DATASET: XOR the lowest byte of 8 values in the middle of the
# dataset's stored bytes (the values stay finite and close: only a checksum
# can tell)
flip() {
  "$py" - "$1" "$2" <<'EOF' || fail "flipping bytes of $2 in $1"
import h5py, sys
path, name = sys.argv[1], sys.argv[2]
with h5py.File(path, "r") as f:
    ds = f[name]
    if ds.chunks:
        info = ds.id.get_chunk_info(0)
        off, size = info.byte_offset, info.size
    else:
        off, size = ds.id.get_offset(), ds.id.get_storage_size()
with open(path, "r+b") as fh:
    for k in range(8):
        p = off + (size // 2 // 4 + k) * 4  # the low byte of a little-endian value
        fh.seek(p)
        b = fh.read(1)
        fh.seek(p)
        fh.write(bytes([b[0] ^ 0x5A]))
EOF
}
# expect RC NAME CMD...
expect() {
  local want=$1 name=$2
  shift 2
  "$@" >"$work/out.txt" 2>"$work/err.txt"
  local rc=$?
  [ $rc -eq "$want" ] || fail "$name: exit $rc, expected $want: $(tail -2 "$work/err.txt")"
}
no_nan() { grep -qi "nan\|inf" "$work/out.txt" && fail "$1 printed a non-finite score: $(head -c 300 "$work/out.txt")"; true; }
eval_args=(--set eval.protocol=both --set eval.full_max_users=50)

# ---- flipped bytes in a checkpoint's parameters ----
cp "$ckpt" "$work/flipped.h5"
flip "$work/flipped.h5" params/static.item_emb
expect 3 "eval of a checkpoint with flipped bytes" "$bin" eval --checkpoint "$work/flipped.h5" "${eval_args[@]}"
grep -q "params/static.item_emb" "$work/err.txt" || fail "the error does not name the dataset: $(cat "$work/err.txt")"
grep -q "checksum" "$work/err.txt" || fail "the error does not say checksum: $(cat "$work/err.txt")"
expect 3 "recommend from a checkpoint with flipped bytes" \
  "$bin" recommend --checkpoint "$work/flipped.h5" --user "$user" --json
no_nan "recommend --json (flipped bytes)"
expect 3 "resume from a checkpoint with flipped bytes" \
  "$bin" train --resume "$work/flipped.h5" --set run.dir="$work/r1" --epochs 3 --no-final-eval
echo "flipped bytes in /params/static.item_emb: exit 3 naming the dataset (eval, recommend, resume)"

# ---- non-finite parameters with valid checksums ----
for what in nan inf; do
  cp "$ckpt" "$work/$what.h5"
  "$py" - "$work/$what.h5" "$what" <<'EOF' || fail "writing $what"
import h5py, numpy, sys
with h5py.File(sys.argv[1], "r+") as f:
    w = f["params/static.item_emb"]
    a = w[...]
    a[3, 1] = numpy.float32(sys.argv[2])
    w[...] = a
EOF
  expect 3 "eval of a checkpoint holding $what" "$bin" eval --checkpoint "$work/$what.h5" "${eval_args[@]}" --json "$work/e.json"
  [ -e "$work/e.json" ] && fail "eval wrote results from a checkpoint holding $what"
  no_nan "eval ($what)"
  expect 3 "recommend --json from a checkpoint holding $what" \
    "$bin" recommend --checkpoint "$work/$what.h5" --user "$user" --json
  no_nan "recommend --json ($what)"
  grep -q "params/static.item_emb holds a non-finite value" "$work/err.txt" || fail "message ($what): $(cat "$work/err.txt")"
done
echo "non-finite parameters: exit 3, no score printed"

# ---- flipped bytes in the prepared data set ----
cp "$work/data.h5" "$work/data_flipped.h5"
flip "$work/data_flipped.h5" users/items
expect 3 "eval on a data set with flipped bytes" \
  "$bin" eval --checkpoint "$ckpt" --set data.output="$work/data_flipped.h5" "${eval_args[@]}"
grep -q "users/items" "$work/err.txt" && grep -q "checksum" "$work/err.txt" ||
  fail "the error does not name /users/items and the checksum: $(cat "$work/err.txt")"
echo "flipped bytes in /users/items: exit 3 naming the dataset"

# ---- files without the filter (as older dtrain wrote them) ----
if command -v h5repack >/dev/null; then
  h5repack -f NONE -l CONTI "$ckpt" "$work/plain.h5" && h5repack -f NONE -l CONTI "$work/data.h5" "$work/plain_data.h5" ||
    fail "h5repack"
  h5dump -p -H "$work/plain.h5" | grep -q FLETCHER32 && fail "h5repack kept the filter"
  expect 0 "eval of files without the checksum filter" "$bin" eval --checkpoint "$work/plain.h5" \
    --set data.output="$work/plain_data.h5" "${eval_args[@]}" --json "$work/plain.json"
  expect 0 "eval of the same files with it" "$bin" eval --checkpoint "$ckpt" "${eval_args[@]}" --json "$work/filtered.json"
  cmp -s "$work/plain.json" "$work/filtered.json" || fail "files without the filter evaluate differently"
  echo "files without the filter: read, same results"
else
  echo "note: h5repack (hdf5-tools) missing: files without the filter not checked"
fi
echo "damaged files: ok"
