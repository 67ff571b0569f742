#!/usr/bin/env bash
# Unit tests of the PyTorch package python/dtrain_torch (tests/python): the
# SASRec encoder against nn.MultiheadAttention, chunk windows against
# per-example windows, the losses and their gradients (gradcheck, float64),
# the gradient dump check (tools/torch_grad_check.py) and tools/torch_check.py;
# and the serving module (tests/python/test_serving.py).
# (Named torch_check_* so that tools/setup.sh runs it in stage 1 only, like
# the other PyTorch test: it does not run the binary.)
# args: dtrain-binary source-root shared-data-dir (only the source root is used)
set -u
src=$2
py=$(command -v /usr/bin/python3 || command -v python3)
"$py" -c "import torch, h5py, numpy" 2>/dev/null || { echo "SKIP: python3-torch / python3-h5py / numpy not installed"; exit 77; }
export PYTHONPATH="$src/python${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=1
cd "$src" || exit 1
exec "$py" -m unittest -v tests/python/test_dtrain_torch.py tests/python/test_serving.py
