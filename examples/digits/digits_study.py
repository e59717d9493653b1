#!/usr/bin/env python3
"""The paper's claims on real images: kinetic path energy, fidelity, sparsity, memorization and
KTS on scikit-learn's 8x8 handwritten digits.

    .venv/bin/python examples/digits/digits_study.py --out DIR [--quick]

(`bash scripts/install-python.sh --torch` makes .venv/ with kinflow, torch, matplotlib and
scikit-learn.)

Data (digits_data.py): the 1797 digits split by a fixed seeded permutation into 1500 training
and 297 held-out images, centered by the training split's per-pixel mean and divided by one
global factor. Fields, each sampled from the same noise with Euler (--steps, default 100), the
energy split into early and late at t = --kpe-tau (default 0.6) for every setting:
  exact                     the exact empirical field of the training split (it memorizes)
  smoothed_<s>              the Gaussian mixture N(y_i, s^2 I) over the training images
  trained                   the committed flow-matching MLP (train_digits_mlp.py, fm_mlp_digits.npz)
  trained_kts_<a0>_<b0>_<tau>  the same with Kinetic Trajectory Shaping (the sweep)
  exact_kts_<a0>_<b0>_<tau>  the exact field with KTS: landing brakes b0 = 0.025 .. 0.052 at
                            tau = 0.4, and the balanced a0 = b0 = 0.01 at tau = 0.6
Measurements per setting, with bootstrap 95% CIs (percentile, resampling the samples; for the
distances to held-out images shifted by the bootstrap's bias estimate):
  (i)   fidelity: a classifier (scikit-learn MLPClassifier, 64 ReLU units) trained on the real
        training digits gives every sample a confidence, the probability of its predicted class;
        Spearman(KPE, confidence) and the mean confidence by KPE decile;
  (ii)  sparsity: the kNN log density (k = 10) of each landing point among the training images in
        data space, in the classifier's feature space and in a 10-component PCA space, and the
        exact log density of the smoothed fields; Spearman with KPE and partial Spearman
        controlling for |x1| and for |x0|;
  (iii) memorization: F_mem (d1/d2 < 1/3 against the training images) and the late KPE of
        memorized against other samples;
  (iv)  distances to the held-out images: Frechet distance in the classifier's feature space (an
        FID analogue) and MMD^2 in data space with fixed bandwidths; over the KTS sweep, the best
        point (lowest Frechet distance) against no KTS.

Writes into DIR, each file under a temporary name renamed into place when complete, summary.json
last (with "complete": true; a previous summary is removed when a run starts):
  data/train.csv, data/held_out.csv   the images of the split as sampled (x_0..x_63, label)
  <setting>/samples.csv               x_0..x_63, kpe, kpe_early, kpe_late, nfe, status, nn_dist,
                                      nn_ratio, memorized, nearest, norm_x0, norm_x1, predicted,
                                      confidence, knn_log_density, knn_log_density_features,
                                      knn_log_density_pca (and log_density for smoothed_<s>)
  figures/digits_*.png                the pictures of docs/digits.md
  summary.json                        every number of the findings table
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover - told to the user
    sys.exit("digits_study.py needs matplotlib: bash scripts/install-python.sh --torch")
try:
    import scipy.linalg
    from sklearn.neural_network import MLPClassifier
except ImportError:  # pragma: no cover
    sys.exit("digits_study.py needs scikit-learn: bash scripts/install-python.sh --torch")

import kinflow

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import digits_data  # noqa: E402
import flow_examples  # noqa: E402
from flow_examples import partial_spearman, write_atomically, write_table  # noqa: E402

MODEL = os.path.join(HERE, "fm_mlp_digits.npz")
KNN_K = 10
PCA_COMPONENTS = 10
# (alpha0, beta0, tau) of KTS on the exact field
EXACT_KTS = [(0.0, b, 0.4) for b in (0.025, 0.04, 0.045, 0.05, 0.052)] + [(0.01, 0.01, 0.6)]
EXACT_KTS_QUICK = [(0.0, 0.05, 0.4), (0.01, 0.01, 0.6)]


# ---------------------------------------------------------------------------------------
# Output


def save_figure(fig, path):
    flow_examples.save_figure(fig, path, dpi=90)


def setting_name(alpha0, beta0, tau, field="trained"):
    return f"{field}_kts_{alpha0:g}_{beta0:g}_{tau:g}"


# ---------------------------------------------------------------------------------------
# Statistics


def percentile_ci(values):
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return [None, None]
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


def bootstrap(stat, n, resamples, rng, point=None):
    """stat(indices) on `resamples` bootstrap resamples of range(n): the 95% percentile CI.

    With `point` (the statistic on all samples) the interval is shifted by the bootstrap's
    estimate of its bias, mean(resampled) - point: for the distances to held-out images, whose
    resamples repeat samples and so read as farther from the data than the samples are."""
    if resamples < 1:
        return [None, None]
    values = np.asarray([stat(rng.integers(0, n, n)) for _ in range(resamples)], dtype=np.float64)
    lo, hi = percentile_ci(values)
    if point is None or lo is None:
        return [lo, hi]
    bias = float(np.mean(values[np.isfinite(values)])) - point
    return [lo - bias, hi - bias]


def decile_index(kpe):
    """0..9 for each sample: its decile of KPE (by rank, ties by order; equal-size groups)."""
    order = np.argsort(kpe, kind="stable")
    dec = np.empty(len(kpe), dtype=np.int64)
    dec[order] = (np.arange(len(kpe)) * 10) // len(kpe)
    return dec


def frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to the rows of a and b."""
    mu = a.mean(axis=0) - b.mean(axis=0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(ca @ cb)
    if np.iscomplexobj(root):
        root = root.real
    return float(mu @ mu + np.trace(ca) + np.trace(cb) - 2 * np.trace(root))


# ---------------------------------------------------------------------------------------
# The study


class Judge:
    """What measures samples independently of the fields: the classifier, its features, PCA,
    the training and held-out images."""

    def __init__(self, digits, seed):
        self.train, self.held_out = digits.train, digits.held_out
        self.clf = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=600, random_state=seed)
        self.clf.fit(digits.train, digits.train_labels)
        self.train_accuracy = float(self.clf.score(digits.train, digits.train_labels))
        self.held_out_accuracy = float(self.clf.score(digits.held_out, digits.held_out_labels))
        mean = digits.train.mean(axis=0)
        _, _, vt = np.linalg.svd(digits.train - mean, full_matrices=False)
        self.pca_mean, self.pca_axes = mean, vt[:PCA_COMPONENTS].T
        self.train_features = self.features(self.train)
        self.held_out_features = self.features(self.held_out)
        self.train_pca = self.pca(self.train)
        d = np.sqrt(np.maximum(0.0, ((self.held_out[:, None, :] - self.held_out[None, :, :]) ** 2).sum(-1)))
        median = float(np.median(d[np.triu_indices(len(self.held_out), 1)]))
        self.mmd_bandwidths = [median * f for f in (0.25, 0.5, 1.0, 2.0, 4.0)]

    def features(self, x):
        """The classifier's hidden layer (ReLU activations)."""
        return np.maximum(0.0, x @ self.clf.coefs_[0] + self.clf.intercepts_[0])

    def pca(self, x):
        return (x - self.pca_mean) @ self.pca_axes

    def mmd2(self, x):
        return float(kinflow.mmd2(x, self.held_out, self.mmd_bandwidths))


def measure(name, x0, r, field, judge, a, rng, resamples, mmd_resamples):
    """Per-sample columns and the summary numbers of one setting."""
    x = np.asarray(r.x, dtype=np.float64)
    n = x.shape[0]
    if not np.all(np.isfinite(x)):
        raise RuntimeError(f"{name}: {int(np.sum(~np.isfinite(x).all(axis=1)))} samples are not finite")
    kpe, early, late = (np.asarray(v, dtype=np.float64) for v in (r.kpe, r.kpe_early, r.kpe_late))
    mem = kinflow.memorization(x, judge.train, bootstrap=resamples, seed=a.seed)
    memorized = np.asarray(mem.memorized, dtype=bool)
    proba = judge.clf.predict_proba(x)
    confidence = proba.max(axis=1)
    predicted = judge.clf.classes_[proba.argmax(axis=1)]
    feats = judge.features(x)
    knn = np.asarray(kinflow.knn_log_density(x, judge.train, KNN_K))
    knn_feat = np.asarray(kinflow.knn_log_density(feats, judge.train_features, KNN_K))
    knn_pca = np.asarray(kinflow.knn_log_density(judge.pca(x), judge.train_pca, KNN_K))
    norm_x0, norm_x1 = np.linalg.norm(x0, axis=1), np.linalg.norm(x, axis=1)
    columns = [(f"x_{j}", x[:, j]) for j in range(x.shape[1])]
    columns += [("kpe", kpe), ("kpe_early", early), ("kpe_late", late), ("nfe", np.asarray(r.nfe)),
                ("status", np.asarray(r.status)), ("nn_dist", np.asarray(mem.nn_dist)),
                ("nn_ratio", np.asarray(mem.nn_ratio)), ("memorized", memorized.astype(np.int64)),
                ("nearest", np.asarray(mem.nearest, dtype=np.int64)), ("norm_x0", norm_x0),
                ("norm_x1", norm_x1), ("predicted", np.asarray(predicted, dtype=np.int64)),
                ("confidence", confidence), ("knn_log_density", knn), ("knn_log_density_features", knn_feat),
                ("knn_log_density_pca", knn_pca)]
    log_density = None
    if name.startswith("smoothed_"):  # the exact density of the mixture at t = 1
        log_density = np.asarray(field.log_density(1.0, x), dtype=np.float64)
        columns.append(("log_density", log_density))

    def rho(u, v):
        return {"value": kinflow.spearman(u, v),
                "ci": bootstrap(lambda i: kinflow.spearman(u[i], v[i]), n, resamples, rng)}

    def partial(u, v, w):
        return {"value": partial_spearman(u, v, w),
                "ci": bootstrap(lambda i: partial_spearman(u[i], v[i], w[i]), n, resamples, rng)}

    dec = decile_index(kpe)
    s = {
        "n_samples": n,
        "f_mem": float(mem.fraction), "f_mem_ci": [float(c) for c in mem.ci],
        "nn_dist_median": float(np.median(mem.nn_dist)), "nn_ratio_median": float(np.median(mem.nn_ratio)),
        "kpe_mean": float(np.mean(kpe)), "kpe_early_mean": float(np.mean(early)), "kpe_late_mean": float(np.mean(late)),
        "kpe_late_mean_memorized": float(np.mean(late[memorized])) if memorized.any() else None,
        "kpe_late_mean_other": float(np.mean(late[~memorized])) if (~memorized).any() else None,
        "confidence_mean": float(np.mean(confidence)),
        "spearman_kpe_confidence": kinflow.spearman(kpe, confidence),
        "spearman_kpe_knn_log_density": kinflow.spearman(kpe, knn),
        "confidence_by_kpe_decile": [float(np.mean(confidence[dec == k])) for k in range(10)],
        "knn_log_density_by_kpe_decile": [float(np.mean(knn[dec == k])) for k in range(10)],
        "f_mem_by_kpe_decile": [float(np.mean(memorized[dec == k])) for k in range(10)],
        "nn_dist_by_kpe_decile": [float(np.mean(np.asarray(mem.nn_dist)[dec == k])) for k in range(10)],
        "predicted_class_counts": [int(np.sum(predicted == c)) for c in range(10)],
    }
    if memorized.any() and (~memorized).any():
        s["kpe_late_difference_ci"] = bootstrap(
            lambda i: (np.mean(late[i][memorized[i]]) if memorized[i].any() else np.nan)
            - (np.mean(late[i][~memorized[i]]) if (~memorized[i]).any() else np.nan), n, resamples, rng)
    s["spearman_kpe_confidence_ci"] = rho(kpe, confidence)["ci"]
    s["spearman_kpe_knn_log_density_ci"] = rho(kpe, knn)["ci"]
    if a.full_stats:
        s["spearman_kpe_knn_log_density_features"] = rho(kpe, knn_feat)
        s["spearman_kpe_knn_log_density_pca"] = rho(kpe, knn_pca)
        s["spearman_knn_log_density_norm_x1"] = kinflow.spearman(knn, norm_x1)
        s["spearman_kpe_norm_x0"] = kinflow.spearman(kpe, norm_x0)
        s["spearman_kpe_norm_x1"] = kinflow.spearman(kpe, norm_x1)
        s["partial_kpe_knn_log_density_given_norm_x1"] = partial(kpe, knn, norm_x1)
        s["partial_kpe_knn_log_density_given_norm_x0"] = partial(kpe, knn, norm_x0)
        s["partial_kpe_confidence_given_norm_x1"] = partial(kpe, confidence, norm_x1)
        if log_density is not None:
            s["spearman_kpe_log_density"] = rho(kpe, log_density)
            s["partial_kpe_log_density_given_norm_x1"] = partial(kpe, log_density, norm_x1)
            s["partial_kpe_log_density_given_norm_x0"] = partial(kpe, log_density, norm_x0)
    fd = frechet_distance(feats, judge.held_out_features)
    s["frechet_features_held_out"] = fd
    s["frechet_features_held_out_ci"] = bootstrap(
        lambda i: frechet_distance(feats[i], judge.held_out_features), n, min(resamples, 200), rng, fd)
    s["mmd2_held_out"] = judge.mmd2(x)
    s["mmd2_held_out_ci"] = bootstrap(lambda i: judge.mmd2(x[i]), n, mmd_resamples, rng, s["mmd2_held_out"])
    return columns, s


def run_setting(name, field, kts, x0, judge, a, rng, resamples, mmd_resamples, summary, keep):
    start = time.perf_counter()
    r = kinflow.sample(field, x0, solver="euler", steps=a.steps, kts=kts, tau=a.kpe_tau)
    sample_seconds = time.perf_counter() - start
    columns, s = measure(name, x0, r, field, judge, a, rng, resamples, mmd_resamples)
    s["sample_seconds"] = sample_seconds
    s["kts"] = None if kts is None else {"alpha0": kts.alpha0, "beta0": kts.beta0, "tau": kts.tau}
    write_table(os.path.join(a.out, name, "samples.csv"), columns)
    summary[name] = s
    if keep is not None:
        keep[name] = dict(columns)
    print(f"{name:28s} F_mem {s['f_mem']:.3f}  rho(KPE, conf) {s['spearman_kpe_confidence']:+.3f}  "
          f"rho(KPE, kNN dens) {s['spearman_kpe_knn_log_density']:+.3f}  FD {s['frechet_features_held_out']:.3f}  "
          f"MMD2 {s['mmd2_held_out']:.5f}  KPE {s['kpe_mean']:.2f}  ({time.perf_counter() - start:.1f} s)",
          flush=True)


# ---------------------------------------------------------------------------------------
# Pictures


def montage(images, digits, cols):
    """A grid of 8x8 images (rows of data space) in pixels, one pixel of white between them."""
    rows = max(1, math.ceil(len(images) / cols))
    out = np.full((rows * 9 + 1, cols * 9 + 1), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[1 + r * 9:1 + r * 9 + 8, 1 + c * 9:1 + c * 9 + 8] = np.clip(digits.to_pixels(img).reshape(8, 8), 0, 16)
    return out


def show(ax, grid, title):
    cmap = plt.get_cmap("gray_r").copy()
    cmap.set_bad("white")
    ax.imshow(grid, cmap=cmap, vmin=0, vmax=16, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def samples_of(cols):
    return np.stack([cols[f"x_{j}"] for j in range(digits_data.DIM)], axis=1)


def figure_deciles(kept, digits, names, path, per_row=12):
    fig, axes = plt.subplots(3, len(names), figsize=(3.6 * len(names), 4.4), squeeze=False)
    for c, name in enumerate(names):
        cols = kept[name]
        x, kpe = samples_of(cols), cols["kpe"]
        dec = decile_index(kpe)
        for r, (k, label) in enumerate(((0, "lowest"), (4, "middle"), (9, "highest"))):
            idx = np.flatnonzero(dec == k)[:per_row]
            show(axes[r, c], montage(x[idx], digits, per_row // 2),
                 f"{name}: {label} KPE decile\n(KPE {kpe[dec == k].min():.1f}-{kpe[dec == k].max():.1f})")
    fig.tight_layout()
    save_figure(fig, path)


def figure_memorized(kept, digits, names, path, per_row=10):
    fig, axes = plt.subplots(len(names), 1, figsize=(0.55 * per_row + 1, 1.7 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        cols = kept[name]
        x, mem, near = samples_of(cols), cols["memorized"].astype(bool), cols["nearest"].astype(np.int64)
        idx = np.flatnonzero(mem)[:per_row]
        if idx.size == 0:  # nothing memorized: the samples nearest their training image instead
            idx = np.argsort(cols["nn_ratio"])[:per_row]
            what = "no sample memorized; the closest to a training image"
        else:
            what = f"{int(mem.sum())} of {len(mem)} memorized"
        pairs = [x[i] for i in idx] + [digits.train[near[i]] for i in idx]
        show(axes[r, 0], montage(pairs, digits, len(idx)), f"{name}: {what}\n(top: sample, bottom: nearest training image)")
    fig.tight_layout()
    save_figure(fig, path)


def figure_scatter(kept, summary, names, path):
    fig, axes = plt.subplots(2, len(names), figsize=(3.4 * len(names), 6.4), squeeze=False)
    for c, name in enumerate(names):
        cols = kept[name]
        kpe = cols["kpe"]
        dec = decile_index(kpe)
        centres = [float(np.mean(kpe[dec == k])) for k in range(10)]
        for r, (key, label, rho_key) in enumerate((("confidence", "classifier confidence", "spearman_kpe_confidence"),
                                                    ("knn_log_density", "kNN log density (data space)",
                                                     "spearman_kpe_knn_log_density"))):
            ax = axes[r, c]
            ax.scatter(kpe, cols[key], s=3, alpha=0.35, color="tab:blue", rasterized=True)
            ax.plot(centres, [float(np.mean(cols[key][dec == k])) for k in range(10)], "o-", color="tab:red",
                    ms=3, label="mean by KPE decile")
            ax.set_title(f"{name}: Spearman ρ = {summary[name][rho_key]:+.2f}", fontsize=9)
            ax.set_xlabel("KPE  ½∫‖v‖²dt", fontsize=8)
            ax.set_ylabel(label, fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0, c].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def figure_goldilocks(summary, alphas, betas, taus, path):
    names = [("trained" if a0 == 0 and b0 == 0 else setting_name(a0, b0, tau))
             for a0 in alphas for b0 in betas for tau in taus]
    f_mem = {summary[n]["f_mem"] for n in names}
    # A map of one value says nothing: when F_mem is the same at every setting (the trained
    # network copies nothing), the median d1/d2 shows how near the samples come to copying.
    first = (("f_mem", "F_mem") if len(f_mem) > 1 else
             ("nn_ratio_median", f"median d1/d2 (F_mem = {f_mem.pop():.3f} at every setting)"))
    keys = (first, ("frechet_features_held_out", "Fréchet distance to held-out (features)"),
            ("mmd2_held_out", "MMD² to held-out (data space)"))
    fig, axes = plt.subplots(len(keys), len(alphas), figsize=(3.3 * len(alphas) + 0.8, 2.9 * len(keys)),
                             squeeze=False, constrained_layout=True)
    for r, (key, label) in enumerate(keys):
        values = np.full((len(alphas), len(betas), len(taus)), np.nan)
        for i, a0 in enumerate(alphas):
            for j, b0 in enumerate(betas):
                for k, tau in enumerate(taus):
                    name = "trained" if a0 == 0 and b0 == 0 else setting_name(a0, b0, tau)
                    values[i, j, k] = summary[name][key]
        lo, hi = np.nanmin(values), np.nanmax(values)
        if not hi > lo:  # one value everywhere (e.g. no sample memorized): a neutral scale around it
            lo, hi = lo - 0.5, hi + 0.5
        for i, a0 in enumerate(alphas):
            ax = axes[r, i]
            im = ax.imshow(values[i], cmap="viridis", vmin=lo, vmax=hi, aspect="auto", origin="lower")
            for j in range(len(betas)):
                for k in range(len(taus)):
                    v = values[i, j, k]
                    text = {"f_mem": f"{v:.3f}", "nn_ratio_median": f"{v:.3f}",
                            "mmd2_held_out": f"{v * 1e3:.1f}e-3"}.get(key, f"{v:.2f}")
                    ax.text(k, j, text, ha="center", va="center",
                            fontsize=7, color="white" if v < (lo + hi) / 2 else "black")
            ax.set_xticks(range(len(taus)), [f"{t:g}" for t in taus], fontsize=7)
            ax.set_yticks(range(len(betas)), [f"{b:g}" for b in betas], fontsize=7)
            ax.set_xlabel("τ", fontsize=8)
            ax.set_ylabel("β0", fontsize=8)
            ax.set_title(f"{label}\nα0 = {a0:g}", fontsize=8)
        fig.colorbar(im, ax=axes[r, :], shrink=0.85)
    save_figure(fig, path)


def figure_exact_kts(summary, names, path):
    """F_mem against the Frechet distance for the exact field under KTS, with the trained model."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    def label(n):
        k = summary[n]["kts"]
        return f"α0 {k['alpha0']:g}, β0 {k['beta0']:g}, τ {k['tau']:g}"

    pts = [("exact", "no KTS")] + [(n, label(n)) for n in names]
    pts.sort(key=lambda p: summary[p[0]]["frechet_features_held_out"])
    xs = [summary[n]["frechet_features_held_out"] for n, _ in pts]
    ys = [summary[n]["f_mem"] for n, _ in pts]
    ax.plot(xs, ys, "o-", color="tab:blue", lw=0.8)
    for i, ((n, text), x, y) in enumerate(zip(pts, xs, ys)):  # staggered: the first points sit together
        ax.annotate(text, (x, y), fontsize=7, xytext=(6, -10 - 9 * i if y > 0.95 else 4), textcoords="offset points",
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5"})
    t = summary["trained"]
    ax.plot([t["frechet_features_held_out"]], [t["f_mem"]], "s", color="tab:red")
    ax.annotate("trained, no KTS", (t["frechet_features_held_out"], t["f_mem"]), fontsize=7, xytext=(4, 3),
                textcoords="offset points")
    ax.set_xlabel("Fréchet distance to held-out (classifier features)", fontsize=8)
    ax.set_ylabel("F_mem", fontsize=8)
    ax.set_ylim(-0.05, 1.08)
    ax.set_title("KTS on the exact empirical field (2000 samples)", fontsize=9)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------------------------------


def parse_list(p, option, text, lo, hi, lo_open=False):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        p.error(f"{option}: expected comma-separated numbers, got {text!r}")
    for v in values:
        if not (math.isfinite(v) and (v > lo if lo_open else v >= lo) and v <= hi):
            p.error(f"{option}: expected numbers in {'(' if lo_open else '['}{lo:g}, {hi:g}], got {v:g}")
    if not values:
        p.error(f"{option}: expected at least one number")
    return sorted(set(values))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--quick", action="store_true",
                   help="a short run (under a minute): 300 samples, one smoothed field, three sweep points, "
                        "two KTS points on the exact field")
    p.add_argument("--samples", type=int, default=None, help="samples per setting (default 2000; --quick 300)")
    p.add_argument("--steps", type=int, default=100, help="Euler steps (default 100)")
    p.add_argument("--kpe-tau", type=float, default=0.6, help="where the energy is split into early/late (default 0.6)")
    p.add_argument("--smoothed", default=None, help="s of the smoothed fields (default 0.1,0.3,0.6; --quick 0.3)")
    p.add_argument("--alpha0", default=None, help="KTS sweep: launch strengths (default 0,0.02,0.1,0.3; --quick 0,0.02)")
    p.add_argument("--beta0", default=None, help="KTS sweep: landing strengths (default 0,0.01,0.025,0.05; --quick 0,0.025)")
    p.add_argument("--tau", default=None, help="KTS sweep: switch times (default 0.4,0.6,0.8; --quick 0.6)")
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples (default 1000; --quick 100)")
    p.add_argument("--model", default=MODEL, help="the trained MLP (.npz; default the committed fm_mlp_digits.npz)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.steps < 1:
        p.error(f"--steps: expected an integer >= 1, got {a.steps}")
    if not (0 <= a.kpe_tau <= 1):
        p.error(f"--kpe-tau: expected a number in [0, 1], got {a.kpe_tau:g}")
    samples = a.samples if a.samples is not None else (300 if a.quick else 2000)
    if samples < 20:
        p.error(f"--samples: expected an integer >= 20 (ten KPE deciles of two samples), got {samples}")
    resamples = a.bootstrap if a.bootstrap is not None else (100 if a.quick else 1000)
    if resamples < 0:
        p.error(f"--bootstrap: expected an integer >= 0, got {resamples}")
    smoothed = parse_list(p, "--smoothed", a.smoothed or ("0.3" if a.quick else "0.1,0.3,0.6"), 0, 100, lo_open=True)
    alphas = parse_list(p, "--alpha0", a.alpha0 or ("0,0.02" if a.quick else "0,0.02,0.1,0.3"), 0, 10)
    betas = parse_list(p, "--beta0", a.beta0 or ("0,0.025" if a.quick else "0,0.01,0.025,0.05"), 0, 1 / (math.e ** 3 - 1))
    taus = parse_list(p, "--tau", a.tau or ("0.6" if a.quick else "0.4,0.6,0.8"), 0, 1)
    if not os.path.isfile(a.model):
        p.error(f"--model: no such file {a.model!r} (train it with examples/digits/train_digits_mlp.py)")
    a.full_stats = True

    started = time.perf_counter()
    os.makedirs(a.out, exist_ok=True)
    summary_path = os.path.join(a.out, "summary.json")
    if os.path.exists(summary_path):
        os.remove(summary_path)  # a stale summary never sits beside this run's files

    digits = digits_data.load()
    model_info = None
    info_path = os.path.splitext(a.model)[0] + ".json"
    if os.path.isfile(info_path):
        with open(info_path) as f:
            model_info = json.load(f)
        if model_info.get("data_fingerprint") != digits.fingerprint():
            sys.exit(f"digits_study.py: --model {a.model} was trained on other data than this split "
                     f"(fingerprint in {info_path} differs); retrain it with train_digits_mlp.py")
    for split, x, y in (("train", digits.train, digits.train_labels), ("held_out", digits.held_out, digits.held_out_labels)):
        write_table(os.path.join(a.out, "data", f"{split}.csv"),
                    [(f"x_{j}", x[:, j]) for j in range(digits_data.DIM)] + [("label", y)])
    judge = Judge(digits, a.seed)
    print(f"classifier: accuracy {judge.train_accuracy:.3f} on the training digits, "
          f"{judge.held_out_accuracy:.3f} held out", flush=True)

    rng = np.random.default_rng(a.seed + 17)
    x0 = np.asarray(kinflow.standard_normal(samples, digits_data.DIM, a.seed + 1))
    mlp = kinflow.load_mlp(a.model)
    summary, kept = {}, {}
    main_mmd = max(20, resamples // 10)
    run_setting("exact", kinflow.EmpiricalField(digits.train), None, x0, judge, a, rng, resamples, main_mmd, summary, kept)
    for s in smoothed:
        run_setting(f"smoothed_{s:g}", kinflow.smoothed_empirical(digits.train, s), None, x0, judge, a, rng,
                    resamples, main_mmd, summary, kept)
    run_setting("trained", mlp, None, x0, judge, a, rng, resamples, main_mmd, summary, kept)
    # The sweep: the headline numbers with smaller bootstraps (its MMD without a CI).
    a.full_stats = False
    sweep = []
    for a0 in alphas:
        for b0 in betas:
            for tau in taus:
                if a0 == 0 and b0 == 0:
                    continue  # the gain is 1: the trained setting itself
                name = setting_name(a0, b0, tau)
                run_setting(name, mlp, kinflow.KTS(alpha0=a0, beta0=b0, tau=tau), x0, judge, a, rng,
                            min(resamples, 200), 0, summary, None)
                sweep.append(name)
    # KTS on the exact field too, a model that memorizes everything: strong landing brakes (weaker
    # ones leave every sample a copy in 64 dimensions) and the balanced point.
    exact_line = []
    for a0, b0, tau in (EXACT_KTS_QUICK if a.quick else EXACT_KTS):
        name = setting_name(a0, b0, tau, "exact")
        run_setting(name, kinflow.EmpiricalField(digits.train), kinflow.KTS(alpha0=a0, beta0=b0, tau=tau), x0,
                    judge, a, rng, min(resamples, 200), 0, summary, None)
        exact_line.append(name)
    best = min(sweep, key=lambda n: summary[n]["frechet_features_held_out"]) if sweep else None
    if best is not None:  # the best point gets the CI the sweep skipped
        r_best = np.random.default_rng(a.seed + 29)
        xb = np.loadtxt(os.path.join(a.out, best, "samples.csv"), delimiter=",", skiprows=1,
                        usecols=range(digits_data.DIM), ndmin=2)
        summary[best]["mmd2_held_out_ci"] = bootstrap(lambda i: judge.mmd2(xb[i]), len(xb), main_mmd, r_best,
                                                      summary[best]["mmd2_held_out"])
        # Paired: both settings start from the same noise, so one resample of rows serves both.
        xt = np.loadtxt(os.path.join(a.out, "trained", "samples.csv"), delimiter=",", skiprows=1,
                        usecols=range(digits_data.DIM), ndmin=2)
        fb, ft = judge.features(xb), judge.features(xt)
        fd_diff = summary[best]["frechet_features_held_out"] - summary["trained"]["frechet_features_held_out"]
        mmd_diff = summary[best]["mmd2_held_out"] - summary["trained"]["mmd2_held_out"]
        paired_fd = bootstrap(lambda i: frechet_distance(fb[i], judge.held_out_features)
                              - frechet_distance(ft[i], judge.held_out_features), len(xb), min(resamples, 200), r_best,
                              fd_diff)
        paired_mmd = bootstrap(lambda i: judge.mmd2(xb[i]) - judge.mmd2(xt[i]), len(xb), main_mmd, r_best, mmd_diff)

    held_nn = kinflow.memorization(digits.held_out, digits.train, bootstrap=0)
    reference = {
        "held_out_images": {"nn_dist_median": float(np.median(held_nn.nn_dist)),
                            "nn_ratio_median": float(np.median(held_nn.nn_ratio)), "f_mem": float(held_nn.fraction)},
        "train_images": {"frechet_features_held_out": frechet_distance(judge.train_features, judge.held_out_features),
                         "mmd2_held_out": judge.mmd2(digits.train),
                         "confidence_mean": float(np.mean(judge.clf.predict_proba(digits.train).max(axis=1)))},
        "classifier": {"kind": "MLPClassifier(64 ReLU units)", "train_accuracy": judge.train_accuracy,
                       "held_out_accuracy": judge.held_out_accuracy,
                       "held_out_confidence_mean": float(np.mean(judge.clf.predict_proba(digits.held_out).max(axis=1)))},
        "mmd_bandwidths": judge.mmd_bandwidths,
    }

    fig_dir = os.path.join(a.out, "figures")
    shown = ["trained", f"smoothed_{0.3 if 0.3 in smoothed else smoothed[0]:g}", "exact"]
    figure_deciles(kept, digits, shown, os.path.join(fig_dir, "digits_kpe_deciles.png"))
    mem_names = ["trained"] + [f"smoothed_{s:g}" for s in smoothed]
    figure_memorized(kept, digits, mem_names, os.path.join(fig_dir, "digits_memorized.png"))
    figure_scatter(kept, summary, shown, os.path.join(fig_dir, "digits_kpe_confidence_density.png"))
    if sweep:
        figure_goldilocks(summary, alphas, betas, taus, os.path.join(fig_dir, "digits_goldilocks.png"))
    if exact_line:
        figure_exact_kts(summary, exact_line, os.path.join(fig_dir, "digits_exact_kts.png"))

    record = {
        "settings": {"samples": samples, "steps": a.steps, "solver": "euler", "kpe_tau": a.kpe_tau,
                     "smoothed": smoothed, "sweep": {"alpha0": alphas, "beta0": betas, "tau": taus},
                     "exact_kts": exact_line,
                     "bootstrap": resamples, "bootstrap_sweep": min(resamples, 200), "bootstrap_mmd": main_mmd,
                     "knn_k": KNN_K, "pca_components": PCA_COMPONENTS, "memorization_ratio": 1 / 3,
                     "n_train": int(digits.train.shape[0]), "n_held_out": int(digits.held_out.shape[0]),
                     "split_seed": digits_data.SPLIT_SEED, "scale": digits.scale, "seed": a.seed, "quick": a.quick,
                     "model": os.path.basename(a.model),
                     "model_training": None if model_info is None else model_info.get("training", {}).get("seconds")},
        "reference": reference,
        "results": summary,
        "best_kts": None if best is None else {
            "setting": best, "criterion": "lowest frechet_features_held_out over the sweep",
            "f_mem": summary[best]["f_mem"], "f_mem_trained": summary["trained"]["f_mem"],
            "frechet": summary[best]["frechet_features_held_out"],
            "frechet_trained": summary["trained"]["frechet_features_held_out"],
            "mmd2": summary[best]["mmd2_held_out"], "mmd2_trained": summary["trained"]["mmd2_held_out"],
            "frechet_difference_ci": paired_fd, "mmd2_difference_ci": paired_mmd,
            "difference": "best minus trained, paired bootstrap over the shared noise"},
        "seconds": time.perf_counter() - started,
        "complete": True,
    }
    write_atomically(summary_path, lambda f: json.dump(record, f, indent=2))
    print(f"wrote {summary_path} ({record['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
