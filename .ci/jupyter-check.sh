#!/usr/bin/env bash
# Runs ONE notebook under real Jupyter with the .NET Interactive kernel, exports it to HTML, opens that HTML in
# headless Chromium and fails unless the Plotly chart actually drew (SVG trace paths in the DOM) and its formulas
# typeset offline (.ci/math-check.sh). Keeps PNG screenshots in out/ci-artifacts/. Idempotent; meant for root on a
# fresh Debian 12 machine.
#   usage: .ci/jupyter-check.sh [notebook]   (default notebooks/01-redundancy.ipynb)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
notebook=${1:-notebooks/01-redundancy.ipynb}
name=$(basename "$notebook" .ipynb)
art=out/ci-artifacts
mkdir -p "$art"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
t0=$(date +%s)

# 1. Debian's Jupyter and Chromium (only when missing: apt is slow and the script must be re-runnable).
need=()
for pkg in python3-nbconvert python3-nbclient jupyter-client python3-jupyter-core python3-ipykernel jupyter-nbconvert chromium; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "jupyter-check: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
t1=$(date +%s)

# 2. The .NET Interactive kernel, pinned by the local tool manifest, registered with Jupyter.
dotnet tool restore >/dev/null
export PATH="$PATH:$HOME/.dotnet/tools"   # the kernel dies at start-up without the tools folder on PATH
kernels=$(/usr/bin/python3 -m jupyter kernelspec list 2>/dev/null || true)
if ! grep -q '\.net-csharp' <<<"$kernels"; then
  # The kernelspec launches "dotnet interactive jupyter"; with a local manifest that resolves from the repo folder.
  dotnet interactive jupyter install
fi
t2=$(date +%s)

# 3. A fresh pack of the extension in artifacts/feed (the notebook floats on 0.1.0-dev.*), and the nbconvert template
#    "workbench": the lab export with the runner's KaTeX inlined instead of MathJax and require.js from URLs.
dotnet run --project src/Runner -c Release -- --pack-only
templates="$repo/out/nbconvert-templates"
dotnet run --project src/Runner -c Release --no-build -- --nbconvert-template "$templates"
t3=$(date +%s)

# 4. Execute under Jupyter (the kernel's working directory is the notebook's folder), then export to HTML.
executed="$repo/$art/$name.executed.ipynb"
/usr/bin/python3 -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=600 \
  --ExecutePreprocessor.kernel_name=.net-csharp --output "$executed" "$notebook"
/usr/bin/python3 -m jupyter nbconvert --to html --TemplateExporter.extra_template_basedirs="$templates" --template workbench \
  --output "$repo/$art/$name.html" "$executed"
t4=$(date +%s)

# 5. Open the HTML in headless Chromium: the chart must have drawn (plotly's main-svg with trace paths that have data).
chrome=$(command -v chromium || command -v chromium-browser)
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update
       --disable-sync --no-first-run --virtual-time-budget=10000)
profile=$(mktemp -d); trap 'rm -rf "$profile"' EXIT
"$chrome" "${flags[@]}" --user-data-dir="$profile" --dump-dom "file://$repo/$art/$name.html" > "$art/$name.dom.html" 2>/dev/null
"$chrome" "${flags[@]}" --user-data-dir="$profile" --window-size=1200,1600 --screenshot="$repo/$art/$name.png" \
  "file://$repo/$art/$name.html" >/dev/null 2>&1
t5=$(date +%s)

svgs=$(grep -o 'class="main-svg"' "$art/$name.dom.html" | wc -l)
# Each line trace is a <path class="js-line" d="M..."> inside a <g class="trace scatter ..."> group.
traces=$(grep -oE '<path class="js-line" d="M[0-9.,LM -]{20,}' "$art/$name.dom.html" | wc -l)
echo "jupyter-check: $name: main-svg=$svgs, drawn line traces=$traces, screenshot $art/$name.png ($(stat -c %s "$art/$name.png") bytes)"
echo "jupyter-check: timings: apt $((t1-t0)) s, kernel tool $((t2-t1)) s, pack $((t3-t2)) s, nbconvert $((t4-t3)) s, chromium $((t5-t4)) s"
if [ "$svgs" -lt 1 ] || [ "$traces" -lt 1 ]; then
  echo "jupyter-check: FAILED: the Plotly chart did not draw in $art/$name.html" >&2
  exit 1
fi
# 6. Its formulas typeset with the inlined KaTeX, offline, and the page fetched nothing (.ci/math-check.sh).
.ci/math-check.sh "$art/$name.html"
echo "jupyter-check: ok"
