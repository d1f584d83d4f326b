#!/usr/bin/env python3
"""Compares the outputs of two executions of one notebook; exit 1 if any number other than a timing differs.

What counts as a timing (masked before comparing), and nothing else:
  * a number directly followed by a time or speed unit: ns, us, µs, ms, s, sec, min, tokens/s, tok/s, it/s,
    GB/s, MB/s, GFLOP/s (e.g. "12.3 ms", "4,512 tokens/s", "(0.8 s)");
  * a number directly after "elapsed", "took", "in" + unit is covered above; "elapsed: 12.3" is masked too;
  * in chart JSON (plotly), the data arrays of a trace whose name, or whose chart's axis titles, mention a unit
    above or the words "speed", "latency", "throughput", "time" (charts of speeds are timings throughout);
  * things that are not results but differ by construction: the local feed's package version 0.1.0-dev.<unix seconds>,
    GUIDs (plotly div ids), temporary folder names.
Everything else - importances, losses, KL, token ids, generated text, table values - must be identical.
Only cell outputs are compared (execution counts and metadata are not results).
"""
import json, re, sys

UNIT = r"(?:ns|us|µs|ms|s|sec|min|tokens/s|tok/s|it/s|GB/s|MB/s|GFLOP/s)"
NUM = r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?"
TIMING = re.compile(rf"{NUM}(?=\s*{UNIT}(?![A-Za-z/]))")
ELAPSED = re.compile(rf"(elapsed|took)(\W{{0,3}}){NUM}", re.I)
VOLATILE = [
    (re.compile(r"0\.1\.0-dev\.\d+"), "0.1.0-dev.N"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "GUID"),
    (re.compile(r"[0-9a-f]{32}"), "HEX32"),
    (re.compile(r"/tmp/[^\s\"'<>]+"), "/tmp/X"),
]
SPEED_WORDS = re.compile(r"speed|latency|throughput|\btime\b|tokens/s|tok/s|GB/s|MB/s|\bms\b|\bus\b|µs", re.I)


def mask_chart_json(text):
    """Masks data arrays of plotly traces that plot timings (see the module doc)."""
    def mask_trace(m):
        trace = m.group(0)
        return re.sub(NUM, "T", trace) if SPEED_WORDS.search(trace) else trace
    # A plotly trace is a {...} holding "type" and x/y arrays; traces do not nest braces deeply, so a flat match is enough.
    return re.sub(r"\{[^{}]*\"(?:x|y|z)\"\s*:\s*\[[^\]]*\][^{}]*\}", mask_trace, text)


def normalise(text, chart_is_timing):
    for rx, rep in VOLATILE:
        text = rx.sub(rep, text)
    if chart_is_timing:
        text = mask_chart_json(text)
    text = TIMING.sub("T", text)
    text = ELAPSED.sub(lambda m: m.group(1) + m.group(2) + "T", text)
    return text


def outputs(path):
    nb = json.load(open(path, encoding="utf-8"))
    result = []
    for i, cell in enumerate(nb["cells"], 1):
        for out in cell.get("outputs", []):
            parts = []
            if "text" in out:
                parts.append("".join(out["text"]) if isinstance(out["text"], list) else out["text"])
            for mime, data in sorted(out.get("data", {}).items()):
                parts.append(mime + ": " + ("".join(data) if isinstance(data, list) else json.dumps(data, sort_keys=True)))
            if "ename" in out:
                parts.append(out["ename"] + ": " + out.get("evalue", ""))
            result.append((i, "\n".join(parts)))
    return result


def main(a, b):
    oa, ob = outputs(a), outputs(b)
    if len(oa) != len(ob):
        print(f"notebook-diff: {a} has {len(oa)} outputs, {b} has {len(ob)}")
        return 1
    bad = 0
    for (cell, x), (_, y) in zip(oa, ob):
        timing_chart = bool(SPEED_WORDS.search(x))
        nx, ny = normalise(x, timing_chart), normalise(y, timing_chart)
        if nx != ny:
            bad += 1
            k = next(i for i, (p, q) in enumerate(zip(nx + "\0", ny + "\0")) if p != q)
            print(f"notebook-diff: cell {cell} differs at char {k}:\n  run 1: ...{nx[max(0, k - 80):k + 80]!r}\n  run 2: ...{ny[max(0, k - 80):k + 80]!r}")
    print(f"notebook-diff: {len(oa)} outputs compared, {bad} differ (timings masked)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
