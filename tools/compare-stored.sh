#!/usr/bin/env bash
# The stored-type GEMV kernels beside llama.cpp's, interleaved in one run on this machine, the way
# ../shared/tools/refgemv/compare.sh pairs the low-bit ones (cold weights, each call on another copy of the weights).
# Pairs (reference kernel : project format): f16 : f16 (llama.cpp F16 vec_dot), q8_0 : q8_0 (llama.cpp Q8_0, which
# quantizes the activations to Q8_0 inside the timed call, as ours does: both take int8 dots per 32-weight block).
# Run from the repository root after `dotnet build src/Cli -c Release`:
#   tools/compare-stored.sh [out.jsonl]        # ROUNDS, RUNS, THREADS, SHAPES, PAIRS may be set
# Each timed command holds the shared machine's bench lock (BENCH_LOCK, default /tmp/bench.lock; empty: none) alone.
set -uo pipefail
REF="${REFGEMV:-../shared/tools/refgemv/refgemv}"
ROUNDS="${ROUNDS:-2}"; RUNS="${RUNS:-21}"; THREADS="${THREADS:-1 2}"
SHAPES="${SHAPES:-6912x2560 2560x6912 4096x4096 11008x4096 4096x11008}"
PAIRS="${PAIRS:-f16:f16 q8_0:q8_0}"
LOCK="${BENCH_LOCK-/tmp/bench.lock}"
timed() { if [ -n "$LOCK" ]; then flock -x "$LOCK" "$@"; else "$@"; fi; }
OUT="${1:-/tmp/compare-stored-$(date +%Y%m%d-%H%M%S).jsonl}"
export GOMP_SPINCOUNT="${GOMP_SPINCOUNT:-20000}"
WB="$(ls src/Cli/bin/Release/*/workbench.dll 2>/dev/null | head -1)"
[ -n "$WB" ] || { echo "build the CLI first: dotnet build src/Cli -c Release" >&2; exit 2; }
[ -x "$REF" ] || { echo "reference kernels not found at $REF (set REFGEMV)" >&2; exit 2; }
emit() { local l="$1"; [ -n "$l" ] && echo "${l%\}},\"round\":$2,\"load1\":$(cut -d' ' -f1 /proc/loadavg)}" >> "$OUT"; }
for r in $(seq 1 "$ROUNDS"); do
  for s in $SHAPES; do
    M=${s%x*}; K=${s#*x}
    for T in $THREADS; do
      for p in $PAIRS; do
        rk=${p%%:*}; pf=${p#*:}
        ref() { emit "$(timed "$REF" --kernel "$rk" --rows "$M" --cols "$K" --threads "$T" --runs "$RUNS" --json | tail -1)" "$r"; }
        proj() { local j; j=$(timed dotnet "$WB" bench gemv --format "$pf" --rows "$M" --cols "$K" --threads "$T" --runs "$RUNS" --json | tr -d '\n ')
                 emit "$(echo "$j" | sed 's/^{/{"impl":"project","kernel":"'"$pf"'",/')" "$r"; }
        # alternate who goes first, so neither side always runs on the warmer (or busier) machine
        if [ $((r % 2)) -eq 1 ]; then ref; proj; else proj; ref; fi
      done
    done
  done
done
OUTF="$OUT" PAIRS="$PAIRS" python3 - <<'PY'
import json, os, statistics as st
rows = [json.loads(l) for l in open(os.environ["OUTF"])]
pairs = {p.split(":")[1]: p.split(":")[0] for p in os.environ["PAIRS"].split()}
g = {}
for r in rows:
    if "median_us" in r: g.setdefault((r["impl"] == "project", r["kernel"], r["rows"], r["cols"], r["threads"]), []).append((r["median_us"], r["min_us"]))
print("| shape | T | project | reference | project us | reference us | ratio (medians) | ratio (minima) |\n|---|---|---|---|---|---|---|---|")
for (isp, k, m, c, t), v in sorted(g.items(), key=lambda x: (x[0][2], x[0][3], x[0][4], x[0][1])):
    if not isp or k not in pairs: continue
    q = g.get((False, pairs[k], m, c, t))
    if not q: continue
    pm, qm = st.median(a for a, _ in v), st.median(a for a, _ in q)
    pn, qn = min(b for _, b in v), min(b for _, b in q)
    print(f"| {m}x{c} | {t} | {k} | {pairs[k]} | {pm:.1f} | {qm:.1f} | {pm/qm:.2f} | {pn/qn:.2f} |")
loads = [r["load1"] for r in rows if "load1" in r]
if loads: print(f"load average (1 min) during the run: {min(loads):.2f} .. {max(loads):.2f}, median {st.median(loads):.2f}")
print(f"raw: {os.environ['OUTF']}")
PY
