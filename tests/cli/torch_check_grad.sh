#!/usr/bin/env bash
# PyTorch gradient parity of one training step (issue 13): `dtrain train
# --dump-step` writes a step's global batch, loss parts and gradients (dropout
# off, nothing updated) with the parameters it started from, and
# tools/torch_grad_check.py recomputes them with python/dtrain_torch in
# float64, printing and asserting every tensor's error, for each train.loss x
# {v3 full, v2 full} with the gru encoder, and v3 x {full, dynamic_only}
# with the sasrec encoder (v3 dynamic_only with the gru too). Each dump is taken after 3 steps of
# training (--resume), so the parameters are not the symmetric initial ones.
# Skips (77) without torch/h5py. (Named torch_check_*: the sanitizer stage
# leaves these out.)
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
py=$(command -v /usr/bin/python3 || command -v python3)
"$py" -c "import torch, h5py" 2>/dev/null || { echo "SKIP: python3-torch / python3-h5py not installed"; exit 77; }
export PYTHONPATH="$src/python${PYTHONPATH:+:$PYTHONPATH}"
work=$(mktemp -d /tmp/dtrain_torch_grad_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
for d in v3 v2; do
  "$bin" prep --config "$src/tests/configs/tiny_$d.json" --set data.output="$work/data_$d.h5" --quiet >/dev/null ||
    fail "prep $d"
done
check() { # name config loss [checker options --] [sets...]
  local name=$1 cfg=$2 loss=$3 data
  shift 3
  local opts=()
  if [ "${1:-}" = "--opts" ]; then opts=($2); shift 2; fi
  data="$work/data_${cfg:5:2}.h5"
  local common=(--config "$src/tests/configs/$cfg" --set data.output="$data" --set run.dir="$work/$name"
                --set train.loss="$loss" --set train.n_neg=4 --quiet "$@")
  "$bin" train "${common[@]}" --max-steps 3 --no-final-eval >/dev/null 2>&1 || fail "$name: 3 training steps"
  "$bin" train "${common[@]}" --resume "$work/$name/checkpoints/last.h5" --dump-step "$work/$name.h5" >/dev/null 2>&1 ||
    fail "$name: train --dump-step"
  echo "== $name: train.loss = $loss"
  "$py" "$src/tools/torch_grad_check.py" "$work/$name.h5" --dataset "$data" "${opts[@]}" ||
    fail "$name: PyTorch disagrees (train.loss = $loss)"
}
for loss in bpr bce sampled_softmax softmax; do
  check "v3_full_gru_$loss" tiny_v3.json "$loss"
  opts=""
  # v2 x sampled_softmax: head.fc2.bias's exact gradient is 0 (a softmax is
  # shift-invariant) and only float32 rounding of two cancelling sums of
  # ~0.8 (the positives' column and the shared negatives') is left; dtrain's
  # blocked sums leave about 11x PyTorch's own float32 error there
  [ "$loss" = sampled_softmax ] && opts="--noise-factor 30"
  check "v2_full_gru_$loss" tiny_v2.json "$loss" --opts "$opts"
  check "v3_full_sasrec_$loss" tiny_v3.json "$loss" --set model.encoder=sasrec --set model.sasrec_heads=2
  check "v3_dynamic_only_sasrec_$loss" tiny_v3.json "$loss" --set model.encoder=sasrec --set model.variant=dynamic_only
  check "v3_dynamic_only_gru_$loss" tiny_v3.json "$loss" --set model.variant=dynamic_only
done
echo "torch gradient check: ok"
