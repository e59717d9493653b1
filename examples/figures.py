#!/usr/bin/env python3
"""Reproduces the paper's toy findings (docs/findings.md) with kinflow's programs and plots them.

Runs kinflow-sample, kinflow-shootout and kinflow-trained (built by scripts/run-example.sh),
writes their CSV and JSON under OUT, and draws five figures with matplotlib:

  fig_a_trajectories.png  trajectories coloured by KPE over the training data
  fig_b_kpe_density.png   KPE against the log density at the landing point (Spearman rho)
  fig_c_goldilocks.png    F_mem, distance to held-out data and mean KPE against alpha0, beta0, tau
  fig_d_shootout.png      error against NFE for every integrator
  fig_e_trained.png       the trained 8gaussians MLP: samples coloured by KPE next to the exact
                          empirical field, and the Goldilocks sweep (F_mem and sliced W2 to
                          held-out data over alpha0 x beta0, for each tau)
  figures.json            the numbers behind the figures

Usage: python3 examples/figures.py --bin BUILD_DIR/examples [--out DIR] [--quick]
"""

import argparse
import csv
import json
import os
import subprocess
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))
from flow_examples import partial_spearman, spearman, within_class_spearman  # noqa: E402


def run_sample(binary, out, *args):
    cmd = [binary, "--quiet", "--out", out, *[str(a) for a in args]]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(out, "samples.csv")) as f:
        rows = list(csv.DictReader(f))
    return summary, rows


def read_csv_points(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def save_figure(fig, out, name, title=None):
    """Writes the figure to out/name (with a title above its panels) and closes it."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=110)
    plt.close(fig)


def figure_a(binary, out, n_train, samples):
    """Trajectories coloured by KPE, over the training points (empirical field, 8gaussians)."""
    d = os.path.join(out, "a_trajectories")
    summary, rows = run_sample(binary, d, "--dataset", "8gaussians", "--n-train", n_train, "--samples",
                               samples, "--steps", 100, "--trajectories", 150)
    paths = read_csv_points(os.path.join(d, "trajectories.csv"))
    kpe = [float(r["kpe"]) for r in rows]
    by_sample = {}
    for p in paths:
        by_sample.setdefault(int(p["sample"]), []).append((float(p["x_0"]), float(p["x_1"])))
    train = read_csv_points(os.path.join(d, "train.csv"))
    fig, ax = plt.subplots(figsize=(6.4, 6))
    ax.scatter([float(r["x_0"]) for r in train], [float(r["x_1"]) for r in train], s=6, c="0.55",
               label="training points", zorder=0)
    lo, hi = min(kpe), max(kpe)
    cmap = plt.get_cmap("plasma")
    for i, pts in sorted(by_sample.items()):
        c = cmap((kpe[i] - lo) / (hi - lo + 1e-300))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=c, lw=0.7, alpha=0.8)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(lo, hi))
    fig.colorbar(sm, ax=ax, label="kinetic path energy")
    ax.scatter([float(r["x_0"]) for r in rows[:150]], [float(r["x_1"]) for r in rows[:150]], s=10,
               c=[kpe[i] for i in range(min(150, len(rows)))], cmap=cmap, vmin=lo, vmax=hi, zorder=3,
               edgecolors="k", linewidths=0.3)
    ax.set_title("Empirical field, 8gaussians: paths coloured by KPE\n(grey: training points)")
    ax.set_aspect("equal")
    save_figure(fig, out, "fig_a_trajectories.png")
    return {"kpe_mean": summary["kpe"]["mean"], "f_mem": summary["memorization"]["f_mem"]}


# F_mem of samples that copy nothing, in 2-D: for a point drawn from the data's own density, the
# training points near it form a locally homogeneous Poisson process, in which (d1/d2)^2 is
# uniform on [0, 1]; so P(d1/d2 < 1/3) = 1/9 (in d dimensions, 3^-d).
CHANCE_F_MEM = 1 / 9


def toy_class(dataset, x, y):
    """The class of each landing point, as the dataset's recipe labels its points
    (kinflow/data/toy2d*.hpp, default options): 8gaussians, the nearest of the 8 modes (its
    angular sector); moons, the nearer of the two noiseless arcs."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if dataset == "8gaussians":
        return np.round(np.arctan2(y, x) / (np.pi / 4)).astype(int) % 8
    if dataset == "moons":
        s = np.linspace(0, np.pi, 2001)
        arcs = [(2 * np.cos(s) - 1, 2 * np.sin(s) - 0.2), (2 * (1 - np.cos(s)) - 1, 2 * (0.5 - np.sin(s)) - 0.2)]
        dist = [np.min((x[:, None] - ax[None, :]) ** 2 + (y[:, None] - ay[None, :]) ** 2, axis=1) for ax, ay in arcs]
        return (dist[1] < dist[0]).astype(int)
    raise ValueError(f"toy_class: no classes for {dataset!r}")


def figure_b(binary, out, n_train, samples):
    """KPE against the log density at the landing point, exact (mixture) and kNN (empirical);
    pooled, within each class of the landing point, and with the landing norm held fixed."""
    cases = [
        ("gmm", "8gaussians", ["--field", "gmm"], "exact mixture field, exact log p"),
        ("smoothed", "moons", ["--field", "smoothed:0.05"], "smoothed field (s = 0.05), exact log p"),
        ("empirical", "moons", ["--field", "empirical"], "empirical field, kNN log density"),
    ]
    fig, axes = plt.subplots(1, len(cases), figsize=(15, 4.9))
    result = {}
    for ax, (name, dataset, extra, title) in zip(axes, cases):
        d = os.path.join(out, "b_" + name)
        summary, rows = run_sample(binary, d, "--dataset", dataset, "--n-train", n_train, "--samples", samples,
                                   "--solver", "rk4", "--steps", 50, *extra)
        kpe = [float(r["kpe"]) for r in rows]
        ld = [float(r["log_density"]) for r in rows]
        x, y = [float(r["x_0"]) for r in rows], [float(r["x_1"]) for r in rows]
        norm = np.hypot(x, y)
        rho = summary["log_density"]["spearman_with_kpe"]
        within = within_class_spearman(kpe, ld, toy_class(dataset, x, y))
        given_norm = partial_spearman(kpe, ld, norm)
        ax.scatter(ld, kpe, s=3, alpha=0.4)
        ax.set_xlabel("log density at the landing point")
        ax.set_ylabel("KPE")
        ax.set_title(f"{dataset}: {title}\nSpearman rho = {rho:+.3f}; within class {within:+.3f}; "
                     f"|x1| fixed {given_norm:+.3f}", fontsize=9)
        result[name] = {"dataset": dataset, "spearman": rho, "spearman_within_class": within,
                        "spearman_given_norm": given_norm, "spearman_kpe_norm": spearman(kpe, norm),
                        "kpe_mean": summary["kpe"]["mean"]}
    save_figure(fig, out, "fig_b_kpe_density.png")
    return result


def figure_c(binary, out, n_train, samples, quick):
    """The Goldilocks sweep: memorization, distance to held-out data and KPE under KTS."""
    alphas = [0, 0.01, 0.02, 0.05] if quick else [0, 0.005, 0.01, 0.02, 0.05, 0.1]
    betas = [0, 0.01, 0.03, 0.05] if quick else [0, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05]
    taus = [0.2, 0.6, 0.8] if quick else [0.2, 0.4, 0.6, 0.8]
    fields = [("empirical", ["--field", "empirical"]), ("smoothed:0.05", ["--field", "smoothed:0.05"])]
    sweeps = [("alpha0", alphas, lambda v: ["--alpha0", v]),
              ("beta0", betas, lambda v: ["--beta0", v]),
              ("tau", taus, lambda v: ["--alpha0", 0.01, "--beta0", 0.01, "--tau", v])]
    metrics = [("F_mem", lambda s: s["memorization"]["f_mem"]),
               ("distance to held-out", lambda s: s["heldout"]["nn_dist_mean"]),
               ("mean KPE", lambda s: s["kpe"]["mean"])]
    data = {}
    for fname, fargs in fields:
        for pname, values, make in sweeps:
            for v in values:
                d = os.path.join(out, "c_sweep", f"{fname.replace(':', '_')}_{pname}_{v}")
                summary, _ = run_sample(binary, d, "--dataset", "8gaussians", "--n-train", n_train, "--samples",
                                        samples, "--steps", 100, *fargs, *make(v))
                data.setdefault(fname, {}).setdefault(pname, []).append(
                    {"value": v, **{m: f(summary) for m, f in metrics}})
    fig, axes = plt.subplots(len(metrics), len(sweeps), figsize=(13, 9.5))
    for row, (mname, _) in enumerate(metrics):
        for col, (pname, _, _) in enumerate(sweeps):
            ax = axes[row][col]
            for fname, _ in fields:
                pts = data[fname][pname]
                ax.plot([p["value"] for p in pts], [p[mname] for p in pts], "o-", label=fname)
            if mname == "F_mem":
                ax.axhline(CHANCE_F_MEM, ls=":", color="gray", label="chance: true samples (1/9)")
            ax.set_xlabel(pname + (" (alpha0 = beta0 = 0.01)" if pname == "tau" else ""))
            ax.set_ylabel(mname)
            if row == 0 and col == 0:
                ax.legend()
    save_figure(fig, out, "fig_c_goldilocks.png",
                "Goldilocks sweep on 8gaussians (Euler, 100 steps): KTS launch alpha0, landing beta0, switch tau")
    return data


def figure_d(shootout, out, samples):
    """Error against NFE for every fixed-grid method on two grids, on the exact mixture field."""
    path = os.path.join(out, "shootout.csv")
    subprocess.run([shootout, "--samples", str(samples), "--out", path], check=True, stdout=subprocess.DEVNULL)
    rows = [r for r in read_csv_points(path) if r["field"] == "mixture"]
    grids = ["uniform", "cosine"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    methods = []
    for r in rows:
        if r["method"] not in methods:
            methods.append(r["method"])
    colors = {m: plt.cm.tab20(i % 20) for i, m in enumerate(methods)}
    for g, (ax_x, ax_e) in zip(grids, axes):
        for m in methods:
            pts = [r for r in rows if r["method"] == m and r["grid"] in (g, "adaptive")]
            if not pts:
                continue
            nfe = [float(p["nfe"]) for p in pts]
            style = "o-" if m in ("euler", "midpoint", "heun", "ralston", "rk3", "rk4", "dopri5") else "s--"
            ax_x.loglog(nfe, [max(float(p["state_rms_error"]), 1e-16) for p in pts], style, label=m, ms=3,
                        color=colors[m])
            ax_e.loglog(nfe, [max(float(p["kpe_mean_error"]), 1e-16) for p in pts], style, label=m, ms=3,
                        color=colors[m])
        ax_x.set_title(f"sample error (RMS over samples), {g} grid")
        ax_e.set_title(f"KPE error (mean over samples), {g} grid")
    for ax in axes.flat:
        ax.set_xlabel("NFE per sample")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7, ncol=2)
    save_figure(fig, out, "fig_d_shootout.png",
                "Runge-Kutta (solid) and multistep (dashed) on the exact 8gaussians mixture field")
    return rows


def figure_e(trained, out, quick):
    """The trained model: samples and energies, and the KTS sweep on it (kinflow-trained)."""
    d = os.path.join(out, "e_trained")
    subprocess.run([trained, "--out", d, *(["--quick"] if quick else [])], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(d, "summary.json")) as f:
        summary = json.load(f)
    sweep = read_csv_points(os.path.join(d, "sweep.csv"))
    train = read_csv_points(os.path.join(d, "train.csv"))
    runs = [("trained MLP, no KTS", "samples_model.csv")]
    best = summary.get("best_model_setting")
    if best:
        runs.append((f"trained MLP, KTS a0={best['alpha0']:g} b0={best['beta0']:g} tau={best['tau']:g}",
                     "samples_model_best.csv"))
    runs.append(("exact empirical field, no KTS", "samples_empirical.csv"))
    taus = sorted({float(r["tau"]) for r in sweep})
    alphas = sorted({float(r["alpha0"]) for r in sweep})
    betas = sorted({float(r["beta0"]) for r in sweep})
    ncol = max(len(runs), len(taus))
    fig, axes = plt.subplots(3, ncol, figsize=(4.3 * ncol, 12.5), squeeze=False)
    for col, (title, fname) in enumerate(runs):
        rows = read_csv_points(os.path.join(d, fname))
        ax = axes[0][col]
        # Training points under the samples, as rings: the exact field's samples sit on them.
        ax.scatter([float(r["x_0"]) for r in train], [float(r["x_1"]) for r in train], s=40, marker="o",
                   facecolors="none", edgecolors="red", linewidths=0.8, label="training set", zorder=1)
        sc = ax.scatter([float(r["x_0"]) for r in rows], [float(r["x_1"]) for r in rows],
                        c=[float(r["kpe"]) for r in rows], s=4, cmap="viridis", zorder=2)
        mem = sum(int(r["memorized"]) for r in rows) / len(rows)
        ax.set_title(f"{title}\nF_mem {mem:.3f}", fontsize=9)
        ax.set_aspect("equal")
        fig.colorbar(sc, ax=ax, label="KPE")
        if col == 0:
            ax.legend(loc="lower left", fontsize=8)
    for col in range(len(runs), ncol):
        axes[0][col].axis("off")
    for col, tau in enumerate(taus):
        for row, (metric, label) in enumerate([("f_mem", "F_mem"), ("sliced_w2", "sliced W2 to held-out")]):
            ax = axes[row + 1][col]
            grid = [[next(float(r[metric]) for r in sweep if r["field"] == "model" and float(r["tau"]) == tau
                          and float(r["alpha0"]) == a and float(r["beta0"]) == b) for b in betas] for a in alphas]
            im = ax.imshow(grid, origin="lower", aspect="auto", cmap="magma_r")
            for i, line in enumerate(grid):
                for j, v in enumerate(line):
                    ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=7, color="white"
                            if v > (min(map(min, grid)) + max(map(max, grid))) / 2 else "black")
            ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas], fontsize=7)
            ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas], fontsize=7)
            ax.set_xlabel("beta0 (soft landing)")
            ax.set_ylabel("alpha0 (launch boost)")
            chance = f" (chance {CHANCE_F_MEM:.3f})" if metric == "f_mem" else ""
            ax.set_title(f"trained MLP: {label}{chance}, tau = {tau:g}", fontsize=9)
            fig.colorbar(im, ax=ax)
    for col in range(len(taus), ncol):
        axes[1][col].axis("off")
        axes[2][col].axis("off")
    save_figure(fig, out, "fig_e_trained.png",
                f"Trained flow-matching MLP on {summary['settings']['n_train']} points of 8gaussians "
                f"(Euler, {summary['settings']['steps']} steps)")
    return {"summary": summary, "sweep": sweep}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", required=True,
                   help="directory holding kinflow-sample, kinflow-shootout and kinflow-trained")
    p.add_argument("--out", default="kinflow-figures", help="output directory (default kinflow-figures)")
    p.add_argument("--quick", action="store_true", help="smaller runs and sweeps")
    a = p.parse_args()
    sample = os.path.join(a.bin, "kinflow-sample")
    shootout = os.path.join(a.bin, "kinflow-shootout")
    trained = os.path.join(a.bin, "kinflow-trained")
    for b in (sample, shootout, trained):
        if not os.access(b, os.X_OK):
            sys.exit(f"figures.py: --bin: no executable {b} (build the examples first)")
    os.makedirs(a.out, exist_ok=True)
    n_train, samples = (200, 600) if a.quick else (300, 2000)
    numbers = {
        "a": figure_a(sample, a.out, n_train, samples),
        "b": figure_b(sample, a.out, n_train, samples),
        "c": figure_c(sample, a.out, n_train, samples, a.quick),
        "d": figure_d(shootout, a.out, 128 if a.quick else 512),
        "e": figure_e(trained, a.out, a.quick),
    }
    with open(os.path.join(a.out, "figures.json"), "w") as f:
        json.dump(numbers, f, indent=1)
    print(f"figures.py: wrote fig_a..fig_e PNGs and figures.json to {a.out}")


if __name__ == "__main__":
    main()
