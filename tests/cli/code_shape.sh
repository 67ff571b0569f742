#!/usr/bin/env bash
# The architecture rules of docs/DESIGN.md ("Module map") hold for the tree:
# no file in src/ over 600 lines, no function over 120 lines, no module
# including another's internal header, and the model's headers free of
# train, eval, comm and ckpt (tools/code_shape.py).
# args: dtrain-binary source-root shared-data-dir
set -u
src=$2
py=$(command -v python3 || command -v /usr/bin/python3) || { echo "SKIP: no python3"; exit 77; }
"$py" "$src/tools/code_shape.py" --root "$src" || { echo "FAIL: tools/code_shape.py found rule violations (above)" >&2; exit 1; }
