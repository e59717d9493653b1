#!/usr/bin/env python3
"""KTS's soft landing against plain controls on the committed trained network.

    .venv/bin/python examples/python/kts_controls.py [--samples 2000] [--json FILE]

The network is examples/models/fm_mlp_8gaussians.npz (trained on the 32 points of
fm_mlp_8gaussians_train.csv); every setting samples the same 2000 noise points with Euler, 100
steps, in float32. Settings:

- no shaping;
- KTS landing brakes (beta0 at tau = 0.4, as in docs/findings.md's table);
- a constant gain eta on the whole path (KTS with tau = 0 and a constant landing form, so
  eta(t) = 1 - beta0 everywhere): the control that slows every step alike;
- a post-hoc rescale of the unshaped samples, x1 -> c x1.

Reported per setting: F_mem (copies, d1/d2 < 1/3 against the training points, with a
bootstrap 95 % CI of 1000 resamples), the sliced W2 to 5000 held-out points of 8gaussians
(256 projections, seed 1) and the mean KPE. About ten seconds on 2 cores.
"""

import argparse
import json
import os
import sys

import numpy as np

import kinflow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "examples", "models")
BRAKES = (0.025, 0.0375, 0.05)
GAINS = (0.98, 0.96, 0.94, 0.92, 0.90, 0.88)
RESCALES = (0.98, 0.96, 0.94, 0.92)


def metrics(x, train, held):
    m = kinflow.memorization(x, train, bootstrap=1000, seed=0)
    return {"F_mem": float(m.fraction), "F_mem_ci": [float(m.ci[0]), float(m.ci[1])],
            "sliced_w2": float(kinflow.sliced_wasserstein2(x, held, projections=256, seed=1))}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=2000, help="samples per setting (default 2000)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    a = p.parse_args()
    if a.samples < 10:
        p.error(f"--samples: expected at least 10, got {a.samples}")
    mlp = kinflow.load_mlp(os.path.join(MODELS, "fm_mlp_8gaussians.npz"), dtype=np.float32)
    train = np.loadtxt(os.path.join(MODELS, "fm_mlp_8gaussians_train.csv"), delimiter=",", skiprows=1)
    held = np.asarray(kinflow.datasets.make("8gaussians", 5000, 0))
    x0 = np.asarray(kinflow.standard_normal(a.samples, 2, 1), dtype=np.float32)

    rows = []

    def solve(kind, value, kts):
        r = kinflow.sample(mlp, x0, solver="euler", steps=100, kts=kts)
        x = np.asarray(r.x, dtype=np.float64)
        rows.append({"kind": kind, "value": value, "kpe": float(np.mean(r.kpe)), **metrics(x, train, held)})
        return x

    plain = solve("none", None, None)
    for b in BRAKES:
        solve("landing brake beta0 (tau 0.4)", b, kinflow.KTS(beta0=b, tau=0.4))
    for eta in GAINS:
        solve("constant gain eta", eta, kinflow.KTS(beta0=1 - eta, tau=0.0, late="constant"))
    for c in RESCALES:
        rows.append({"kind": "rescale x1 by c", "value": c, "kpe": None, **metrics(c * plain, train, held)})

    print(f"kts_controls.py: trained 8gaussians MLP, {a.samples} samples, Euler 100 steps")
    print(f"  {'setting':34s} {'F_mem [95% CI]':24s} sliced W2  mean KPE")
    for r in rows:
        name = r["kind"] if r["value"] is None else f"{r['kind']} {r['value']:g}"
        kpe = "" if r["kpe"] is None else f"{r['kpe']:.3f}"
        print(f"  {name:34s} {r['F_mem']:.3f} [{r['F_mem_ci'][0]:.3f}, {r['F_mem_ci'][1]:.3f}]    "
              f"{r['sliced_w2']:.4f}     {kpe}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"samples": a.samples, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
