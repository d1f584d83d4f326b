#!/usr/bin/env bash
# Reproducibility: executes one notebook twice (default 00-smoke, the cheapest; pass another name to check it)
# into two folders and fails if any output number other than a timing differs (.ci/notebook-diff.py states the rule).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
name=${1:-00-smoke}
out=out/notebook-repro
rm -rf "$out" && mkdir -p "$out"
dotnet build src/Cli -c Release --nologo -v quiet
for run in 1 2; do
  dotnet run --project src/Cli -c Release --no-build -- notebooks --only "$name" --out "$out/run$run"
done
python3 .ci/notebook-diff.py "$out/run1/$name.ipynb" "$out/run2/$name.ipynb"
