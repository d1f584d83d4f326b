#!/usr/bin/env bash
# Whole-process decode of stories260K beside llama2.c's run.c -Ofast, interleaved as ../shared/tools/refgemv/compare.sh
# does with DECODE=1 (same model, prompt, 512 steps, greedy), for the native binary (bin/workbench, ./install.sh) and
# the JIT build (dotnet src/Cli/bin/Release/net10.0/workbench.dll, ReadyToRun); then decode tokens/s: run.c's own
# "achieved tok/s" (one cold process), the same figure from `generate --json` (one cold process), and the steady state
# of `bench decode` (warm-up run, then the median of --runs). Run from the repository root after ./install.sh and
# `dotnet build src/Cli -c Release` (either one alone: the other's rows are left out):
#   tools/compare-decode.sh [out.jsonl]              # ROUNDS (default 9), STEPS (512), RUNS (bench decode, 20) may be set
set -uo pipefail
REF="${REF:-../shared/tools/refgemv/run_Ofast}"
ROUNDS="${ROUNDS:-9}"; STEPS="${STEPS:-512}"; RUNS="${RUNS:-20}"
OUT="${1:-/tmp/compare-decode-$(date +%Y%m%d-%H%M%S).jsonl}"; : > "$OUT"
NATIVE=bin/workbench; WB="$(ls src/Cli/bin/Release/*/workbench.dll 2>/dev/null | head -1)"
[ -x "$REF" ] || { echo "run.c binary not found: $REF (set REF)" >&2; exit 2; }
[ -x "$NATIVE" ] || [ -n "$WB" ] || { echo "build the CLI first: ./install.sh (bin/workbench) and/or dotnet build src/Cli -c Release" >&2; exit 2; }
[ -x "$NATIVE" ] || echo "no bin/workbench (./install.sh): measuring run.c and the JIT build only" >&2
M=models/stories260K; P="Once upon a time"
now() { date +%s.%N; }
emit() { echo "{\"kind\":\"$1\",\"impl\":\"$2\",\"value\":$3,\"round\":$4,\"load1\":$(cut -d' ' -f1 /proc/loadavg)}" >> "$OUT"; }
ref()    { local t0 t1 tps; t0=$(now); tps=$("$REF" $M/stories260K.bin -z $M/tok512.bin -t 0 -n "$STEPS" -i "$P" 2>&1 >/dev/null | sed -n 's/achieved tok\/s: //p'); t1=$(now)
           emit wall_s llama2c "$(awk "BEGIN{printf \"%.6f\", $t1 - $t0}")" "$1"; [ -n "$tps" ] && emit cold_tok_s llama2c "$tps" "$1"; }
native() { [ -x "$NATIVE" ] || return 0; local t0 t1; t0=$(now); "$NATIVE" generate --model stories260K --prompt "$P" --steps "$STEPS" --temperature 0 >/dev/null; t1=$(now)
           emit wall_s native "$(awk "BEGIN{printf \"%.6f\", $t1 - $t0}")" "$1"; }
jit()    { [ -n "$WB" ] || return 0; local t0 t1; t0=$(now); dotnet "$WB" generate --model stories260K --prompt "$P" --steps "$STEPS" --temperature 0 >/dev/null; t1=$(now)
           emit wall_s jit "$(awk "BEGIN{printf \"%.6f\", $t1 - $t0}")" "$1"; }
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then ref "$r"; native "$r"; jit "$r"; else jit "$r"; native "$r"; ref "$r"; fi
  # the cold decode rate of one native process, as run.c reports its own
  if [ -x "$NATIVE" ]; then
    j=$("$NATIVE" generate --model stories260K --prompt "$P" --steps "$STEPS" --temperature 0 --json | sed -n 's/.*"decode_tokens_per_s": \([0-9.eE+-]*\).*/\1/p')
    emit cold_tok_s native "$j" "$r"
  fi
done
for r in 1 2 3; do
  if [ -x "$NATIVE" ]; then
    j=$("$NATIVE" bench decode --model stories260K --prompt "$P" --steps "$STEPS" --runs "$RUNS" --json | sed -n 's/.*"decode_tokens_per_s": \([0-9.eE+-]*\).*/\1/p')
    emit steady_tok_s native "$j" "$r"
  fi
  if [ -n "$WB" ]; then
    j=$(dotnet "$WB" bench decode --model stories260K --prompt "$P" --steps "$STEPS" --runs "$RUNS" --json | sed -n 's/.*"decode_tokens_per_s": \([0-9.eE+-]*\).*/\1/p')
    emit steady_tok_s jit "$j" "$r"
  fi
done
OUTF="$OUT" python3 - <<'PY'
import json, os, statistics as st
rows = [json.loads(l) for l in open(os.environ["OUTF"])]
def v(kind, impl): return [r["value"] for r in rows if r["kind"] == kind and r["impl"] == impl]
load = [r["load1"] for r in rows]
print(f"stories260K, {len(v('wall_s','llama2c'))} interleaved rounds; load average (1 min) {min(load):.2f}-{max(load):.2f}, median {st.median(load):.2f}")
ref = st.median(v("wall_s", "llama2c"))
print("| whole process | median s | min s | max s | / run.c |\n|---|---|---|---|---|")
for impl, name in [("llama2c", "run.c -Ofast"), ("native", "bin/workbench"), ("jit", "dotnet workbench.dll")]:
    x = v("wall_s", impl)
    if x: print(f"| {name} | {st.median(x):.4f} | {min(x):.4f} | {max(x):.4f} | {st.median(x)/ref:.2f} |")
print("| decode tok/s | median | min | max |\n|---|---|---|---|")
for kind, impl, name in [("cold_tok_s", "llama2c", "run.c (its achieved tok/s, one process)"), ("cold_tok_s", "native", "bin/workbench generate --json (one process)"),
                         ("steady_tok_s", "native", "bin/workbench bench decode (steady state)"), ("steady_tok_s", "jit", "dotnet workbench.dll bench decode (steady state)")]:
    x = v(kind, impl)
    if x: print(f"| {name} | {st.median(x):.0f} | {min(x):.0f} | {max(x):.0f} |")
print(f"raw: {os.environ['OUTF']}")
PY
