#!/usr/bin/env bash
# README.md's config key table is the schema's (tools/update_readme_keys.sh
# regenerates it): the README stays true when keys change.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
want=$("$bin" config --schema) || { echo "FAIL: dtrain config --schema"; exit 1; }
have=$(sed -n '/<!-- BEGIN CONFIG KEYS -->/,/<!-- END CONFIG KEYS -->/p' "$src/README.md" | sed '1d;$d')
if [ "$want" != "$have" ]; then
  echo "FAIL: README.md's key table differs from 'dtrain config --schema'; run tools/update_readme_keys.sh" >&2
  diff <(echo "$want") <(echo "$have") | head -10 >&2
  exit 1
fi
echo "README key table: $(echo "$want" | wc -l) lines, in step with the schema"
