#!/usr/bin/env python3
"""Fits the rational erf behind Ops.Gelu (src/Engine/Tensors/Ops.cs) and prints its fp32 constants.

erf(z) / z ~ P(u) / Q(u), u = z^2, z in [0, 4], minimax in the absolute error of erf: linearised least squares
(Loeb's reweighting by the last Q) with Lawson's weight updates, in 40-digit mpmath. The coefficients are then folded
for v = z sqrt 2 (GELU's argument): erf(v / sqrt 2) ~ c P'(c^2) / Q'(c^2), c = v clamped to +-4 sqrt 2, rounded to
fp32, and the fp32 evaluation is checked against mpmath's erf. Needs mpmath (pip install mpmath, or Debian's python3-mpmath); not part
of the build or the tests. Takes about a minute:
    python3 tools/gelu-erf-fit.py            # degrees 6 and 4, as used
"""
import struct
import sys

import mpmath as mp

mp.mp.dps = 40
NP, NQ = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (6, 4)
Z, N = mp.mpf(4), 1500
zs = [Z * (1 - mp.cos(mp.pi * (i + 0.5) / (2 * N))) for i in range(N)]  # clustered towards both ends
g = [mp.erf(z) / z for z in zs]
us = [z * z for z in zs]
w, qprev, best = [mp.mpf(1)] * N, [mp.mpf(1)] * N, None
for _ in range(60):
    a, b = mp.matrix(N, NP + 1 + NQ), mp.matrix(N, 1)
    for i in range(N):
        s = mp.sqrt(w[i]) * zs[i] / qprev[i]
        for j in range(NP + 1):
            a[i, j] = s * us[i] ** j
        for j in range(1, NQ + 1):
            a[i, NP + j] = -s * g[i] * us[i] ** j
        b[i] = s * g[i]
    c = mp.lu_solve(a.T * a, a.T * b)
    p = lambda u: sum(c[j] * u ** j for j in range(NP + 1))
    q = lambda u: 1 + sum(c[NP + j] * u ** j for j in range(1, NQ + 1))
    err = [zs[i] * (p(us[i]) / q(us[i]) - g[i]) for i in range(N)]
    worst = max(abs(e) for e in err)
    if best is None or worst < best[0]:
        best = (worst, [c[j] for j in range(NP + 1 + NQ)])
    qprev = [q(u) for u in us]
    w = [w[i] * (abs(err[i]) + mp.mpf(10) ** -30) for i in range(N)]
    total = sum(w)
    w = [x / total * N for x in w]

worst, c = best
f32 = lambda x: struct.unpack('f', struct.pack('f', float(x)))[0]
P = [f32(c[j] / mp.sqrt(2) / 2 ** j) for j in range(NP + 1)]
Q = [1.0] + [f32(c[NP + j] / 2 ** j) for j in range(1, NQ + 1)]
print(f"max |erf error| in exact arithmetic: {mp.nstr(worst, 3)}")
print("R0..: " + ", ".join(repr(x) + "f" for x in P))
print("S1..: " + ", ".join(repr(x) + "f" for x in Q[1:]))
clamp = f32(4 * mp.sqrt(2))


def erf32(v):  # fp32 evaluation as Ops.Gelu does it (each step rounded once)
    cl = f32(min(max(v, -clamp), clamp))
    u = f32(cl * cl)
    pp = P[-1]
    for j in range(NP - 1, -1, -1):
        pp = f32(pp * u + P[j])
    qq = Q[-1]
    for j in range(NQ - 1, -1, -1):
        qq = f32(qq * u + Q[j])
    return f32(f32(cl * pp) / qq)


e32 = max(abs(erf32(i / 2000) - float(mp.erf(i / 2000 / mp.sqrt(2)))) for i in range(-20000, 20001))
print(f"max |erf error| evaluated in fp32 on [-10, 10]: {e32:.3g}")
