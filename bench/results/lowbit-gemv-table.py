import json, subprocess, datetime, os, sys
W = ["dotnet", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "Cli", "bin", "Release", "net10.0", "workbench.dll"), "bench", "gemv"]
shapes = [(6912,2560),(2560,6912),(4096,4096),(11008,4096),(4096,11008)]
formats = ["f32","int8","i2s","tl1","tl2"]
ref = {  # LOWBIT.md best reference (any kernel) per shape, (1 thread, 2 threads); I2_S best and TL2
 (6912,2560): {"best": (199,114), "i2s": (199,114), "tl2": (308,181), "f32": (3468,1918)},
 (2560,6912): {"best": (225,131), "i2s": (225,131), "tl2": (319,206), "f32": (3646,1937)},
 (4096,4096): {"best": (192,115), "i2s": (192,115), "tl2": (294,184), "f32": (3452,1819)},
 (11008,4096): {"best": (516,270), "i2s": (516,270), "tl2": (772,415), "f32": (8693,4832)},
 (4096,11008): {"best": (771,410), "i2s": (783,414), "tl2": (771,410), "f32": (9220,5008)},
}
bw = {1: 27.0, 2: 55.0}  # LOWBIT.md's machine (Zen 5); the floor here comes from each run's own bandwidth probe
here = os.path.dirname(os.path.abspath(__file__))
runs = sys.argv[1] if len(sys.argv) > 1 else "301"
passes = int(sys.argv[2]) if len(sys.argv) > 2 else 2
# This VM's speed drifts over seconds (other tenants): the whole sweep runs `passes` times and each cell keeps its
# lowest median. The floor uses the highest read bandwidth the CLI measured for that thread count in the session.
best = {}
load0 = os.getloadavg()
for p in range(passes):
  for (r,c) in shapes:
    for t in (1,2):
      for f in formats:
        out = subprocess.run(W + ["--format", f, "--rows", str(r), "--cols", str(c), "--threads", str(t), "--runs", runs if f != "f32" else "41", "--json"], capture_output=True, text=True)
        j = json.loads(out.stdout)
        key = (r, c, t, f)
        j["medians"] = best.get(key, {}).get("medians", []) + [j["median_us"]]
        if key not in best or j["median_us"] < best[key]["median_us"]: best[key] = j
        else: best[key]["medians"] = j["medians"]
        print(p, key, j["median_us"], j["bandwidth_gbps"], flush=True)
bw_here = {t: max(j["bandwidth_gbps"] for (r, c, tt, f), j in best.items() if tt == t) for t in (1, 2)}
rows_out = []
for (r,c) in shapes:
  for t in (1,2):
    res = {f: best[(r, c, t, f)] for f in formats}
    for f in formats:
      j = res[f]
      floor = j["weight_bytes"] / (bw[t] * 1e3)
      floor_here = j["weight_bytes"] / (bw_here[t] * 1e3)
      refk = ref[(r,c)].get(f)
      rows_out.append(dict(shape=f"{r}x{c}", threads=t, format=f, median=j["median_us"], min=j["min_us"], gbps=j["weight_gbps"],
        vs_f32=j["median_us"]/res["f32"]["median_us"], vs_ref=(j["median_us"]/refk[t-1]) if refk else None,
        vs_best=j["median_us"]/ref[(r,c)]["best"][t-1], vs_floor=j["median_us"]/floor, vs_floor_here=j["median_us"]/floor_here,
        spread=max(j["medians"]) / min(j["medians"]), isa=j["isa"]))
load1 = os.getloadavg()
now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
cpu = [l.split(":")[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
md = [f"# Low-bit GEMV, cold weights (measured {now})", "",
 f"Machine: {cpu}, 2 cores, 48 MB L3 (this VM; LOWBIT.md's reference numbers are from an AMD EPYC Zen 5). Load average at start {load0[0]:.2f} / end {load1[0]:.2f} "
 "(nothing else running).", "",
 f"Sweep: `python3 bench/results/lowbit-gemv-table.py {runs} {passes}`; command per cell: `dotnet src/Cli/bin/Release/net10.0/workbench.dll bench gemv --format F --rows M --cols K --threads T --runs " + runs + " --json` "
 "(f32: --runs 41); pool of weight copies >= 160 MB, one copy per call round robin, activation quantization inside the timed call, warm-up >= 0.6 s. "
 "This file is written by bench/results/lowbit-gemv-table.py.", "",
 "Columns: median and min microseconds; weight GB/s = packed bytes / median; x f32 = median / fp32 median of the same shape and threads in the same sweep; "
 "x ref = median / LOWBIT.md's kernel of the same format (I2_S best of its two variants, TL2, llama.cpp F32); "
 "x best = median / the best reference kernel of any format for that shape and thread count; "
 "x floor LOWBIT = median / (packed bytes / 27 GB/s on 1 thread, 55 GB/s on 2), LOWBIT.md's bandwidth; "
 f"x floor here = median / (packed bytes / this machine's read bandwidth: the highest the CLI measured after any cell, eight streams per thread with prefetch: {bw_here[1]:.1f} GB/s on 1 thread, {bw_here[2]:.1f} on 2); "
 f"spread = highest / lowest median of the cell over the {passes} passes (the lowest is shown).", "",
 "| shape | T | format | median us | min us | GB/s | x f32 | x ref | x best | x floor LOWBIT | x floor here | spread |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
for o in rows_out:
  md.append(f"| {o['shape']} | {o['threads']} | {o['format']} | {o['median']:.0f} | {o['min']:.0f} | {o['gbps']:.1f} | {o['vs_f32']:.3f} | "
            + (f"{o['vs_ref']:.2f}" if o['vs_ref'] else "-") + f" | {o['vs_best']:.2f} | {o['vs_floor']:.2f} | {o['vs_floor_here']:.2f} | {o['spread']:.2f} |")
open(os.path.join(here, "lowbit-gemv.md"), "w").write("\n".join(md) + "\n")
print("\n".join(md))
