#!/usr/bin/env python3
"""compare.sh's table again from its raw file, with each cell's distance from the memory-bandwidth floor.

  python3 tools/compare-floor.py /tmp/refgemv-....jsonl [more.jsonl ...]

The floor of a cell is the time to read its weights once at the machine's read bandwidth, measured in the same run by
refgemv's membw probe (compare.sh's first lines): weight bytes / bandwidth. Of the probe's 1- and 8-stream medians
for the cell's thread count, the higher is taken (the stricter floor). The weight bytes are the project's own
(`bench gemv --json` reports them: packed codes plus scales); the reference reads the same matrix in its own layout,
so its x floor uses the same bytes. x floor = median time / floor; 1.00 is reading the weights at the probe's speed.
"""
import json, statistics as st, sys

TARGET = {"i2s": 0.8, "tl2": 0.8, "tl1": 0.9, "int8": 0.9, "f32": 1.0, "f16": 1.0, "q8_0": 0.9}
PAIRS = {"i2s": "i2s", "tl2": "tl2", "tl1": "tq2_0", "int8": "q8_0", "f32": "f32", "f16": "f16", "q8_0": "q8_0"}
TERNARY = {"i2s", "tl2", "tl1"}
FLOOR_LIMIT = 1.15

rows = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.strip()]
bw = {}
for r in rows:
    if r.get("kind") == "membw":
        bw[r["threads"]] = max(bw.get(r["threads"], 0.0), r["median_gbps"])
proj, ref, wbytes = {}, {}, {}
for r in rows:
    if "median_us" not in r:
        continue
    key = (r["rows"], r["cols"], r["threads"])
    if r.get("impl") == "project":
        proj.setdefault(key + (r["kernel"],), []).append(r["median_us"])
        if "weight_bytes" in r:
            wbytes[(r["rows"], r["cols"], r["kernel"])] = r["weight_bytes"]
    else:
        ref.setdefault(key + (r["kernel"],), []).append(r["median_us"])
loads = [r["load1"] for r in rows if "load1" in r]
print(f"load average (1 min) over the run: {min(loads):.2f}-{max(loads):.2f}; read bandwidth (best probe median): "
      + (", ".join(f"{t} thread(s) {g:.1f} GB/s" for t, g in sorted(bw.items())) or "no membw probe in the file (no floor)"))
print("| shape | T | project | reference | project us | reference us | ratio | target | project x floor | reference x floor |")
print("|---|---|---|---|---|---|---|---|---|---|")
misses = []
for (m, c, t, k), v in sorted(proj.items(), key=lambda x: (x[0][0], x[0][1], x[0][2], x[0][3])):
    rk = PAIRS.get(k)
    q = ref.get((m, c, t, rk))
    if not q:
        continue
    pv, rv = st.median(v), st.median(q)
    ratio = pv / rv
    target = TARGET.get(k)
    floor_us = wbytes[(m, c, k)] / (bw[t] * 1e3) if (m, c, k) in wbytes and t in bw else None
    xf = f"{pv / floor_us:.2f}" if floor_us else ""
    xr = f"{rv / floor_us:.2f}" if floor_us else ""
    mark = ""
    if target is not None and ratio > target:
        mark = " (miss)"
        misses.append(f"{m}x{c} {t}T {k} ratio {ratio:.2f} > {target}")
    if k in TERNARY and floor_us and pv / floor_us > FLOOR_LIMIT:
        misses.append(f"{m}x{c} {t}T {k} x floor {pv / floor_us:.2f} > {FLOOR_LIMIT}")
    print(f"| {m}x{c} | {t} | {k} | {rk} | {pv:.1f} | {rv:.1f} | {ratio:.2f}{mark} | {target} | {xf} | {xr} |")
d = [r for r in rows if r.get("kind") == "decode"]
if d:
    a, b = st.median(x["llama2c_wall_s"] for x in d), st.median(x["project_wall_s"] for x in d)
    print(f"stories260K 512 steps, whole process: llama2.c {a:.3f} s, project {b:.3f} s ({b / a:.2f}x)")
print("cells off target: " + ("none" if not misses else "; ".join(misses)))
