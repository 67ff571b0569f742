#!/usr/bin/env bash
# Regenerates README.md's config key table from the schema
# (`dtrain config --schema`), between the BEGIN/END CONFIG KEYS markers.
#   bash tools/update_readme_keys.sh [path/to/dtrain]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-$root/build/dtrain}
table=$("$bin" config --schema)
py=$(command -v /usr/bin/python3 || command -v python3)
"$py" - "$root/README.md" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
text = open(path).read()
begin, end = "<!-- BEGIN CONFIG KEYS -->", "<!-- END CONFIG KEYS -->"
a, b = text.index(begin) + len(begin), text.index(end)
open(path, "w").write(text[:a] + "\n" + table.rstrip("\n") + "\n" + text[b:])
PY
