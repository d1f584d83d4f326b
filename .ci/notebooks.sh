#!/usr/bin/env bash
# Executes every notebook headlessly through the CLI verb (in-process kernel, no Jupyter needed):
# packs Workbench.Engine + Workbench.Interactive into artifacts/feed with a fresh version, runs the notebooks,
# writes out/notebooks/<name>.ipynb and .html. Fails (non-zero) on any cell error, naming notebook and cell.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
start=$(date +%s)
dotnet build src/Cli -c Release --nologo -v quiet
dotnet run --project src/Cli -c Release --no-build -- notebooks --out out/notebooks
echo "notebooks.sh: done in $(( $(date +%s) - start )) s; outputs in out/notebooks/"
