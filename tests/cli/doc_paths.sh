#!/usr/bin/env bash
# Every config file, script and document that README.md, docs/, slurm/ and
# data/README.md name exists: `configs/...json` and `tests/configs/...json`
# mentions (brace lists and globs expanded), the names in README's config
# table (relative to configs/), and paths of scripts, documents and images
# under slurm/, tools/, data/, docs/, bench/, python/ and tests/.
# Args: dtrain-binary source-root shared-data-dir
set -uo pipefail
src=$2
cd "$src" || exit 1
docs=(README.md docs/*.md slurm/* data/README.md)
missing=0 checked=0
check() { # check PATTERN WHERE: every file the pattern expands to exists (a glob must match one)
  local pat=$1 where=$2 p
  [[ $pat =~ ^[A-Za-z0-9_./{},*-]+$ ]] || { echo "FAIL: $where: odd path '$pat'"; missing=$((missing + 1)); return; }
  for p in $(eval "echo $pat"); do
    checked=$((checked + 1))
    if [[ $p == *'*'* ]]; then
      compgen -G "$p" >/dev/null || { echo "FAIL: $where names $pat: nothing matches $p"; missing=$((missing + 1)); }
    elif [ ! -e "$p" ]; then
      echo "FAIL: $where names $p, which does not exist"
      missing=$((missing + 1))
    fi
  done
}
for f in "${docs[@]}"; do
  [ -f "$f" ] || continue
  while IFS= read -r m; do check "$m" "$f"; done < <(grep -oE '(tests/)?configs/[A-Za-z0-9_./{},*-]+\.json' "$f" | sort -u)
  while IFS= read -r m; do check "$m" "$f"; done < <(grep -oE \
    '(^|[^A-Za-z0-9_./-])(slurm|tools|data|docs|bench|python|tests)/[A-Za-z0-9_./-]+\.(sh|sbatch|py|md|png)' "$f" |
    sed -E 's/^[^A-Za-z]//' | grep -v '^tests/configs' | sort -u)
done
# README's table of config files: first cells like `base.json`, `ablation/{v1,v2,v3}_{...}.json`, `data_*.json`
while IFS= read -r m; do check "configs/$m" "README.md's config table"; done < <(
  awk '/^## Configuration/ {c = 1} /^## / && !/Configuration/ {c = 0} c && /^\| `/' README.md |
    grep -oE '^\| `[^|]*\|' | grep -oE '`[^`]+\.json`' | tr -d '`' | sort -u)
[ $checked -ge 10 ] || { echo "FAIL: only $checked paths found: is the pattern broken?"; exit 1; }
[ $missing -eq 0 ] || { echo "FAIL: $missing path(s) missing"; exit 1; }
echo "ok: $checked paths checked"
