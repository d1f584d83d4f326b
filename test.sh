#!/usr/bin/env bash
# The project's test command (README): build, run every test, then re-run the SIMD tests with the runtime's
# instruction-set switches so the narrower paths (AVX2, SSE/Vector128, scalar) are exercised on this machine.
set -uo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
LOG=$(mktemp)
status=0

dotnet build Workbench.sln -c Release 2>&1 | tail -3
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "build failed"; exit 1; }

run() { # label, env..., -- dotnet test args
  local label=$1; shift
  echo "== $label"
  env "$@" 2>&1 | tee -a "$LOG" | grep -E "^(Passed!|Failed!|  Failed |\s+Error Message)|error" || true
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
}

run "all tests" dotnet test Workbench.sln -c Release --no-build
for sw in DOTNET_EnableAVX512=0 DOTNET_EnableAVX2=0 DOTNET_EnableHWIntrinsic=0; do
  run "SIMD tests with $sw" "$sw" dotnet test tests/Engine.Tests -c Release --no-build --filter Category=Simd
done

passed=$(grep -Eo "Passed: +[0-9]+" "$LOG" | awk '{s+=$2} END {print s+0}')
failed=$(grep -Eo "Failed: +[0-9]+" "$LOG" | awk '{s+=$2} END {print s+0}')
rm -f "$LOG"
[ "$failed" -eq 0 ] || status=1
mkdir -p out && echo "tests: $passed passed, $failed failed" | tee out/test-summary.txt
exit $status
