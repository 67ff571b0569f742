#!/usr/bin/env bash
# The run report in a real browser: Debian's Chromium, headless, loads a
# report of three runs (v3, v3 without the content tower, a run stopped
# before its test evaluation) from a file:// URL; tests/cli/lib/report_browser.py
# checks the DOM for every chart and table, that the console showed no
# errors and that nothing was fetched, and saves a screenshot in the build
# directory (tests/report_browser.png). Skips (77) where Chromium or python3
# is missing or cannot start.
# args: dtrain-binary source-root shared-data-dir
set -u
bin=$1
src=$2
shot_dir=$PWD
py=$(command -v /usr/bin/python3 || command -v python3) || { echo "SKIP: python3 is not installed"; exit 77; }
if ! command -v chromium >/dev/null 2>&1; then
  echo "SKIP: chromium is not installed (apt-get install chromium; tools/setup.sh test installs it)"
  exit 77
fi
work=$(mktemp -d /tmp/dtrain_report_browser_XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

cfg=(--config "$src/tests/configs/tiny_v3.json" --set data.output="$work/data.h5" --epochs 3)
"$bin" train "${cfg[@]}" --set run.dir=v3 --set run.name=v3 >train.log 2>&1 || fail "train v3: $(tail -3 train.log)"
"$bin" train "${cfg[@]}" --set run.dir=v3-no_content --set run.name=v3-no_content --set model.variant=no_content \
  >train.log 2>&1 || fail "train no_content: $(tail -3 train.log)"
"$bin" train "${cfg[@]}" --set run.dir=stopped --set run.name=stopped --max-steps 20 --no-final-eval >train.log 2>&1 ||
  fail "train stopped: $(tail -3 train.log)"
"$bin" report v3 v3-no_content stopped -o report.html >report.out 2>&1 || fail "report: $(cat report.out)"

"$py" "$src/tests/cli/lib/report_browser.py" report.html --runs 3 --screenshot "$shot_dir/report_browser.png"
