#!/usr/bin/env bash
# A checkpoint loads into the equivalent PyTorch module (python/dtrain_torch)
# and its scores equal dtrain's for a batch to 1e-4, for both fusion designs,
# several variants and history modes, both sequence encoders (gru, sasrec)
# and the dynamic_only variant.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
py=$(command -v /usr/bin/python3 || command -v python3)
"$py" -c "import torch, h5py" 2>/dev/null || { echo "SKIP: python3-torch / python3-h5py not installed"; exit 77; }
export PYTHONPATH="$src/python${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d /tmp/dtrain_torch_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
"$bin" prep --config "$src/tests/configs/tiny_v3.json" --set data.output="$work/data.h5" --quiet >/dev/null || fail prep
run() { # name config sets...
  local name=$1 cfg=$2
  shift 2
  "$bin" train --config "$src/tests/configs/$cfg" --set data.output="$work/data.h5" --set run.dir="$work/$name" \
    --set train.epochs=1 --no-final-eval --quiet "$@" || fail "$name: train"
  "$bin" eval --checkpoint "$work/$name/checkpoints/last.h5" --set eval.protocol=sampled --dump "$work/$name.jsonl" \
    --dump-users 48 --quiet >/dev/null || fail "$name: eval --dump"
  "$py" "$src/tools/torch_check.py" "$work/$name/checkpoints/last.h5" "$work/$name.jsonl" --tol 1e-4 2>/dev/null ||
    fail "$name: PyTorch disagrees"
}
run v3_full tiny_v3.json
run v3_static_only tiny_v3.json --set model.variant=static_only
run v3_no_content tiny_v3.json --set model.variant=no_content
run v2_full tiny_v2.json
run v2_user_train tiny_v2.json --set model.history=user_train
run v1_no_attention tiny_v2.json --set model.version=v1 --set model.variant=no_attention --set model.lambda_ent=0 --set model.lambda_bal=0
run v2_no_dynamic tiny_v2.json --set model.variant=no_dynamic
# the SASRec encoder (MODEL.md 1c) and the dynamic_only variant: v3 x {gru,
# sasrec} x {full, dynamic_only}, every history mode, 1 and 2 heads, v1/v2
run v3_sasrec tiny_v3.json --set model.encoder=sasrec
run v3_sasrec_dynamic_only tiny_v3.json --set model.encoder=sasrec --set model.variant=dynamic_only
run v3_sasrec_prefix tiny_v3.json --set model.encoder=sasrec --set model.history=prefix --set model.sasrec_heads=4
run v3_gru_dynamic_only tiny_v3.json --set model.variant=dynamic_only
run v2_sasrec tiny_v2.json --set model.encoder=sasrec --set model.sasrec_heads=2
run v2_sasrec_user_train_dynamic_only tiny_v2.json --set model.encoder=sasrec --set model.history=user_train \
  --set model.variant=dynamic_only --set model.sasrec_blocks=1
run v1_sasrec_no_content tiny_v2.json --set model.version=v1 --set model.encoder=sasrec --set model.variant=no_content \
  --set model.lambda_ent=0 --set model.lambda_bal=0
echo "torch check: ok"
