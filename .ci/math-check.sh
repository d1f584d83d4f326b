#!/usr/bin/env bash
# Opens notebook HTML pages in headless Chromium, offline, with Chromium's network log on, and fails unless their
# formulas typeset with the KaTeX the page carries and nothing was fetched (.ci/math-check.py says what is judged).
# Keeps a PNG of the first page's typeset formulas in out/ci-artifacts/. Installs Chromium only when missing.
#   usage: .ci/math-check.sh [PAGE.html...]   (default: the runner's reports, out/notebooks/*.html)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
art=out/ci-artifacts
mkdir -p "$art"
t0=$(date +%s)
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "math-check: installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
  shopt -s nullglob; pages=(out/notebooks/*.html); shopt -u nullglob
fi
if [ ${#pages[@]} -eq 0 ]; then echo "math-check: FAILED: no page to check (run .ci/notebooks.sh first)" >&2; exit 1; fi

chrome=$(command -v chromium || command -v chromium-browser)
# No name resolves: a page that needed the network could not typeset here, and the log would show it trying.
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --no-first-run --disable-default-apps --host-resolver-rules="MAP * ~NOTFOUND"
       --virtual-time-budget=10000)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
failed=0
shot=""
for page in "${pages[@]}"; do
  name=$(basename "$page" .html)
  url="file://$(realpath "$page")"
  "$chrome" "${flags[@]}" --user-data-dir="$work/profile" --log-net-log="$work/$name.netlog.json" \
    --dump-dom "$url" > "$work/$name.dom.html" 2>/dev/null
  /usr/bin/python3 .ci/math-check.py "$page" "$work/$name.dom.html" "$work/$name.netlog.json" || failed=1
  # The screenshot: the first page with formulas, from its top (its first formulas are in the opening cells).
  if [ -z "$shot" ] && grep -q 'class="katex"' "$work/$name.dom.html"; then
    shot="$art/math-$(basename "$(dirname "$(realpath "$page")")")-$name.png"   # e.g. math-notebooks-01-redundancy.png
    "$chrome" "${flags[@]}" --user-data-dir="$work/profile" --window-size=1100,900 --hide-scrollbars \
      --screenshot="$repo/$shot" "$url" >/dev/null 2>&1
  fi
done
echo "math-check: ${#pages[@]} pages in $(( $(date +%s) - t0 )) s${shot:+, screenshot $shot ($(stat -c %s "$shot") bytes)}"
if [ "$failed" -ne 0 ]; then echo "math-check: FAILED" >&2; exit 1; fi
echo "math-check: ok"
