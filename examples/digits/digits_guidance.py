#!/usr/bin/env python3
"""Classifier-free guidance of a trained class-conditional network on scikit-learn's digits.

    .venv/bin/python examples/digits/digits_guidance.py [--out DIR] [--samples N]

The network is examples/digits/fm_cmlp_digits.npz (train_digits_mlp.py --conditional: the
study's MLP with a one-hot class code and a null class, label dropout 0.2, trained on the 1500
training digits of digits_data.py). Every sample gets a class (the same number of each digit)
and is sampled with RK4 (30 steps) guided by v_u + w (v_c - v_u), for w in 0 .. 6 over the
whole path, and at w = 3 also within the window t in [0.2, 0.8] and with KTS
(alpha0 = beta0 = 0.01).

Per setting: the class match (the label of the nearest training digit equals the sample's
class, with its Wilson 95 % interval; this 1-nearest-neighbour judge is right on the held-out
digits as often as its own accuracy line says), F_mem (copies: d1/d2 < 1/3, bootstrap 95 % CI),
the distance to the nearest held-out digit of the sample's class (mean +- standard error), the
mean KPE and its guidance part 1/2 int w^2 |v_c - v_u|^2, and the AUC with which the guidance
part and the total KPE tell the copies from the others (Hanley-McNeil standard errors).

Writes OUT/summary.json; prints one line per setting.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import kinflow

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import digits_data  # noqa: E402
import flow_examples  # noqa: E402
from guidance_study import auc, class_heldout_distance, wilson  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="digits-guidance-out")
    p.add_argument("--samples", type=int, default=1000, help="samples (a multiple of 10 is split evenly)")
    p.add_argument("--steps", type=int, default=30)
    a = p.parse_args(argv)
    if a.samples < 10 or a.steps < 1:
        p.error("--samples: expected at least 10; --steps: at least 1")
    digits = digits_data.load()
    train, labels = digits.train, digits.train_labels
    heldout, heldout_labels = digits.held_out, digits.held_out_labels
    field = kinflow.load_mlp(os.path.join(HERE, "fm_cmlp_digits.npz"))
    if field.classes != 10:
        sys.exit("fm_cmlp_digits.npz is not the 10-class network of train_digits_mlp.py --conditional")

    # The judge's own accuracy: the nearest training digit's label, for the held-out digits.
    nearest = ((heldout[:, None, :] - train[None, :, :]) ** 2).sum(-1).argmin(1)
    judge = float(np.mean(labels[nearest] == heldout_labels))
    print(f"1-NN judge on the {len(heldout)} held-out digits: accuracy {judge:.3f}")

    classes = np.arange(a.samples) % 10
    x0 = np.asarray(kinflow.standard_normal(a.samples, digits_data.DIM, 7))
    settings = [("whole path", w, None, None) for w in (0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)]
    settings += [("window [0.2, 0.8]", 3.0, (0.2, 0.8), None),
                 ("whole path + KTS", 3.0, None, kinflow.KTS(alpha0=0.01, beta0=0.01))]
    results = []
    for variant, w, window, kts in settings:
        t0 = time.time()
        r = kinflow.sample(field, x0, solver="rk4", steps=a.steps, classes=classes, cfg=w, cfg_window=window,
                           kts=kts)
        x = np.asarray(r.x)
        m = kinflow.memorization(x, train, bootstrap=1000, seed=0)
        memorized = np.asarray(m.memorized, dtype=bool)
        nn = ((x[:, None, :] - train[None, :, :]) ** 2).sum(-1).argmin(1)
        match = wilson(int(np.sum(labels[nn] == classes)), len(classes))
        dist, dist_se = class_heldout_distance(x, classes, heldout, heldout_labels)
        a_g, a_g_se = auc(np.asarray(r.kpe_guidance), memorized)
        a_k, a_k_se = auc(np.asarray(r.kpe), memorized)
        row = dict(variant=variant, w=w, class_match=match[0], class_match_ci=list(match[1:]),
                   f_mem=float(m.fraction), f_mem_ci=[float(c) for c in m.ci], heldout_distance=dist,
                   heldout_distance_se=dist_se, kpe=float(np.mean(r.kpe)), kpe_guidance=float(np.mean(r.kpe_guidance)),
                   auc_guidance=a_g, auc_guidance_se=a_g_se, auc_kpe=a_k, auc_kpe_se=a_k_se,
                   seconds=time.time() - t0)
        results.append(row)
        print(f"{variant:18s} w {w:3.1f}: class match {match[0]:.3f} [{match[1]:.3f}, {match[2]:.3f}], F_mem "
              f"{row['f_mem']:.3f} [{m.ci[0]:.3f}, {m.ci[1]:.3f}], held-out distance {dist:.3f} +- {dist_se:.3f}, "
              f"KPE {row['kpe']:.1f} (guidance {row['kpe_guidance']:.1f}), AUC guidance {a_g:.3f} +- {a_g_se:.3f}, "
              f"AUC KPE {a_k:.3f} +- {a_k_se:.3f} ({row['seconds']:.1f} s)", flush=True)
    os.makedirs(a.out, exist_ok=True)
    summary = dict(settings=dict(samples=a.samples, steps=a.steps, solver="rk4", judge_accuracy=judge,
                                 kinflow_version=kinflow.__version__), results=results)
    flow_examples.write_atomically(os.path.join(a.out, "summary.json"), lambda f: json.dump(summary, f, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
