"""Does classifier-free guidance raise memorization, and does the energy it spends say which
samples it pushes onto training points? The exact class-conditional field of labelled toy sets,
and a trained class-conditional network.

For 8gaussians (8 classes) and moons (2 classes), N training points with their natural labels
and as many held out, sample the exact class-conditional field (kinflow.EmpiricalField with
labels) guided by classifier-free guidance, ``v_u + w (v_c - v_u)``, for a sweep of scales w,
and the same for the trained network of examples/models/fm_cmlp_8gaussians.npz (64 labelled
points of 8gaussians, label dropout; examples/models/train_conditional_mlp.py), whose held-out
points are drawn from the same recipe,
three ways: over the whole path, only inside the window t in [0.2, 0.8] (w = 1 outside), and
over the whole path with KTS (alpha0 = beta0 = 0.01). Every sample's class is drawn uniformly;
the solver is RK4 on a uniform grid with the Euler last step (the field is singular at t = 1).

Per setting: F_mem (copies: d1/d2 < 1/3, bootstrap 95 % CI), the class match (the label of the
nearest training point equals the sample's class; Wilson 95 % interval), the distance to the
nearest held-out point of the sample's class (mean +- standard error), the mean KPE and its
guidance part ``1/2 int w^2 |v_c - v_u|^2``, and how well the guidance part tells the memorized
samples from the others (the AUC, with its Hanley-McNeil standard error) -- against the same
AUC of the total KPE, the plain control.

    .venv/bin/python examples/python/guidance_study.py --out guidance-out           # about a minute
    .venv/bin/python examples/python/guidance_study.py --out guidance-out --quick   # seconds

Writes OUT/summary.json (every number) and OUT/guidance_study.png.
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

import kinflow

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flow_examples  # noqa: E402  (save_figure, write_atomically)


def wilson(hits, n, z=1.96):
    """The fraction hits / n and its Wilson score interval."""
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, centre - half, centre + half


def auc(score, positive):
    """Mann-Whitney AUC of score for the positive samples, and its Hanley-McNeil standard
    error (NaN when one group is empty)."""
    pos, neg = score[positive], score[~positive]
    n1, n0 = pos.size, neg.size
    if n1 == 0 or n0 == 0:
        return float("nan"), float("nan")
    ranks = np.empty(score.size)
    order = np.argsort(score, kind="mergesort")
    ranks[order] = np.arange(1, score.size + 1)
    # average ranks of ties
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    a = (ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    return float(a), float(se)


def class_heldout_distance(x, classes, heldout, heldout_labels):
    """Mean and standard error over the samples of the distance to the nearest held-out point
    of the sample's class."""
    out = np.empty(x.shape[0])
    for c in np.unique(classes):
        rows = classes == c
        ref = heldout[heldout_labels == c]
        d2 = ((x[rows][:, None, :] - ref[None, :, :]) ** 2).sum(-1)
        out[rows] = np.sqrt(d2.min(1))
    return float(out.mean()), float(out.std(ddof=1) / np.sqrt(out.size))


MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models")


def trained_model_case(n_heldout):
    """The trained class-conditional network, its 64 training points with their classes,
    and n_heldout points drawn from the recipe of train_conditional_mlp.py (component k of
    8gaussians: centre 4 (cos 2 pi k/8, sin 2 pi k/8), std 0.5, all divided by 1.414)."""
    field = kinflow.load_mlp(os.path.join(MODELS, "fm_cmlp_8gaussians.npz"))
    train = np.loadtxt(os.path.join(MODELS, "fm_cmlp_8gaussians_train.csv"), delimiter=",", skiprows=1)
    labels = np.loadtxt(os.path.join(MODELS, "fm_cmlp_8gaussians_labels.txt"), dtype=np.int64)
    rng = np.random.default_rng(2)
    k = rng.integers(0, 8, size=n_heldout)
    centres = 4.0 * np.stack([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)], 1)
    heldout = (centres + 0.5 * rng.normal(size=(n_heldout, 2))) / 1.414
    return "8gaussians, trained network", field, train, labels, heldout, k, field.classes


def cases(args):
    """(name, field, training points, their labels, held-out points, their labels, classes)."""
    for name in ("8gaussians", "moons"):
        train, labels = kinflow.datasets.make(name, args.train, 1, labels=True)
        heldout, heldout_labels = kinflow.datasets.make(name, args.train, 2, labels=True)
        field = kinflow.EmpiricalField(train, labels=labels)
        yield name, field, train, labels, heldout, heldout_labels, kinflow.datasets.classes(name)
    yield trained_model_case(args.train)


def run(args):
    scales = [0.0, 1.0, 3.0, 6.0] if args.quick else [0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0]
    variants = [("whole path", None, None), ("window [0.2, 0.8]", (0.2, 0.8), None),
                ("whole path + KTS", None, kinflow.KTS(alpha0=0.01, beta0=0.01))]
    results = []
    for name, field, train, labels, heldout, heldout_labels, K in cases(args):
        rng = np.random.default_rng(5)
        classes = rng.integers(0, K, size=args.samples)
        x0 = np.asarray(kinflow.standard_normal(args.samples, 2, 7))
        for variant, window, kts in variants:
            for w in scales:
                t0 = time.time()
                r = kinflow.sample(field, x0, solver="rk4", steps=args.steps, last_step="euler", classes=classes,
                                   cfg=w, cfg_window=window, kts=kts)
                x = np.asarray(r.x)
                m = kinflow.memorization(x, train, bootstrap=1000, seed=0)
                memorized = np.asarray(m.memorized, dtype=bool)
                nearest = ((x[:, None, :] - train[None, :, :]) ** 2).sum(-1).argmin(1)
                match = wilson(int(np.sum(labels[nearest] == classes)), len(classes))
                dist, dist_se = class_heldout_distance(x, classes, heldout, heldout_labels)
                a_g, a_g_se = auc(np.asarray(r.kpe_guidance), memorized)
                a_k, a_k_se = auc(np.asarray(r.kpe), memorized)
                row = dict(dataset=name, variant=variant, w=w, f_mem=float(m.fraction),
                           f_mem_ci=[float(c) for c in m.ci], class_match=match[0], class_match_ci=list(match[1:]),
                           heldout_distance=dist, heldout_distance_se=dist_se, kpe=float(np.mean(r.kpe)),
                           kpe_guidance=float(np.mean(r.kpe_guidance)), kpe_cross=float(np.mean(r.kpe_cross)),
                           kpe_unconditional=float(np.mean(r.kpe_unconditional)), auc_guidance=a_g,
                           auc_guidance_se=a_g_se, auc_kpe=a_k, auc_kpe_se=a_k_se, seconds=time.time() - t0)
                results.append(row)
                print(f"{name:27s} {variant:18s} w {w:3.1f}: F_mem {row['f_mem']:.3f} [{m.ci[0]:.3f}, {m.ci[1]:.3f}]"
                      f", class match {match[0]:.3f}, held-out distance {dist:.4f} +- {dist_se:.4f}, KPE "
                      f"{row['kpe']:.3f} (guidance {row['kpe_guidance']:.3f}), AUC guidance {a_g:.3f} +- "
                      f"{a_g_se:.3f}, AUC KPE {a_k:.3f} +- {a_k_se:.3f}", flush=True)
    return results, scales, [v[0] for v in variants]


def figure(results, scales, variants, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["dataset"] for r in results))
    fig, axes = plt.subplots(4, len(names), figsize=(4.6 * len(names), 12.5), squeeze=False)
    for j, name in enumerate(names):
        for variant, style in zip(variants, ("-o", "--s", ":^")):
            rows = [r for r in results if r["dataset"] == name and r["variant"] == variant]
            w = [r["w"] for r in rows]
            axes[0][j].plot(w, [r["f_mem"] for r in rows], style, label=variant)
            axes[0][j].fill_between(w, [r["f_mem_ci"][0] for r in rows], [r["f_mem_ci"][1] for r in rows], alpha=0.15)
            axes[1][j].errorbar(w, [r["heldout_distance"] for r in rows],
                                yerr=[2 * r["heldout_distance_se"] for r in rows], fmt=style, capsize=3, label=variant)
            axes[2][j].plot(w, [r["kpe"] for r in rows], style, label=f"KPE, {variant}")
            axes[2][j].plot(w, [r["kpe_guidance"] for r in rows], style, alpha=0.5, label=f"guidance part, {variant}")
            axes[3][j].errorbar(w, [r["auc_guidance"] for r in rows], yerr=[2 * r["auc_guidance_se"] for r in rows],
                                fmt=style, capsize=3, label=f"guidance part, {variant}")
            axes[3][j].errorbar(w, [r["auc_kpe"] for r in rows], yerr=[2 * r["auc_kpe_se"] for r in rows],
                                fmt=style, capsize=3, alpha=0.5, label=f"total KPE, {variant}")
        axes[0][j].set_title(name)
        axes[0][j].set_ylabel("F_mem (d1/d2 < 1/3), 95 % CI")
        axes[1][j].set_ylabel("distance to held-out of the class (± 2 SE)")
        axes[2][j].set_ylabel("mean energy")
        axes[2][j].set_yscale("log")
        axes[3][j].set_ylabel("AUC for 'memorized' (± 2 SE)")
        axes[3][j].axhline(0.5, color="grey", lw=0.8)
        axes[3][j].set_xlabel("guidance scale w")
        for i in range(4):
            axes[i][j].legend(fontsize=6)
    fig.suptitle("Classifier-free guidance on the exact class-conditional field and a trained network (RK4)")
    fig.tight_layout()
    flow_examples.save_figure(fig, path, 110)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="guidance-out")
    p.add_argument("--train", type=int, default=2000, help="training points (and as many held out)")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--quick", action="store_true", help="four scales, 400 samples, 500 training points")
    a = p.parse_args()
    if a.quick:
        a.samples, a.train = 400, 500
    os.makedirs(a.out, exist_ok=True)
    results, scales, variants = run(a)
    figure(results, scales, variants, os.path.join(a.out, "guidance_study.png"))
    settings = dict(solver="rk4", last_step="euler", steps=a.steps, train=a.train, samples=a.samples, scales=scales,
                    variants=variants, kinflow_version=kinflow.__version__)
    flow_examples.write_atomically(os.path.join(a.out, "summary.json"),
                                   lambda f: json.dump(dict(settings=settings, results=results), f, indent=1))


if __name__ == "__main__":
    main()
