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
# The tree stays formatted with .clang-format (issue 12): checked with
# clang-format 14 (Debian 12's, installed by tools/setup.sh test); another
# major version formats some constructs differently, so it only notes that.
cf=$(command -v clang-format || true)
if [ -z "$cf" ]; then
  echo "note: clang-format not installed: formatting not checked"
elif ! "$cf" --version | grep -q "version 14\."; then
  echo "note: $("$cf" --version | head -1) is not clang-format 14: formatting not checked"
else
  cd "$src" || exit 1
  files=$(git ls-files '*.c' '*.h' '*.cu' '*.cuh' 2>/dev/null || find src include kernels tests bench tools -name '*.[ch]' -o -name '*.cu' -o -name '*.cuh')
  # shellcheck disable=SC2086
  out=$("$cf" --dry-run --Werror $files 2>&1) || {
    echo "$out" | grep "error:" | head -20 >&2
    echo "FAIL: files not formatted with .clang-format (run: git ls-files '*.c' '*.h' '*.cu' '*.cuh' | xargs clang-format -i)" >&2
    exit 1
  }
  echo "formatting: $(echo "$files" | wc -l) files as .clang-format says"
fi
