#!/usr/bin/env python3
"""The paper's claims on a real image dataset: flow-matching networks that memorize part of
their Fashion-MNIST training set, their kinetic path energy, and KTS against plain controls.

    .venv/bin/python examples/fashion/fashion_study.py --out DIR [--quick]

(`bash scripts/install-deps.sh --datasets` installs Debian's dataset-fashion-mnist;
`bash scripts/install-python.sh --torch` makes .venv/ with kinflow, torch, SciPy and matplotlib.)

Data (fashion_data.py): 14 x 14 images (2 x 2 block means), centered and scaled by the 60 000
training images; generative subsets of n images (--sizes, default 64,256,1024; nested, from a
fixed permutation).

Judge: an MLP classifier (196-256-256-10, ReLU) trained on the 60 000 training images minus
the largest subset, so it never saw an image it scores. Its accuracy on the 10 000 test images
is reported; its second hidden layer gives the features of a Frechet distance against the
10 000 test images (an FID analogue, "FD"), its top probability the fidelity ("confidence").

Models: for each subset size and training seed (--seeds, default 3), a flow-matching MLP (the
digits study's network: [x; sin(w t); cos(w t)], three hidden layers of --hidden SiLU units)
trained with Adam for --train-steps steps, checkpoints at 1/8, 1/4, 1/2 and all of them.

Sampling: --samples noise points per model (the same points for every method of a model),
Euler with --steps steps in float32. Methods:
  baseline                    no shaping
  kts_balanced                KTS alpha0 = beta0 = 0.01, tau = 0.6 (the paper's balanced setting)
  kts_launch                  alpha0 = 0.02 (launch only)
  kts_landing                 beta0 = 0.02 (landing only)
  kts_balanced_tau_<tau>      the balanced setting at tau = 0.2, 0.4, 0.8 (the tau sweep)
  landing_<b>                 more landing brakes beta0 = b at tau = 0.6 (KTS's frontier)
controls, each a one-parameter family through the baseline:
  gain_<eta>                  a constant gain eta on the whole path
  rescale_<c>                 the baseline's samples multiplied by c afterwards
  temperature_<T>             the noise scaled by T (x0 -> T x0)

Measured per sample: F_mem (d1/d2 < 1/3 against the model's training subset), the judge's
confidence and predicted class, the kNN log density among the test images (k = 10, data
space), KPE and its early/late parts (split at --kpe-tau), the norms of x0 and x1; per model
and method: F_mem, FD, mean confidence. Across the models (sizes x seeds): each method's
difference from the baseline with paired t-tests over the models, Holm-corrected over the
methods; each KTS setting against each control at equal F_mem (the control's FD interpolated (match_at)
along its family at the KTS setting's F_mem); KPE and F_mem over the training checkpoints; the
per-step energy profile of copies against other samples; claims (i) and (ii) pooled, within
the judge's predicted class, and with the norm of x1 partialled out.

Writes into DIR, each file under a temporary name renamed into place, summary.json last:
  judge.npz                          the judge's weights (W1, b1, W2, b2, W3, b3)
  models/n<n>_seed<s>_step<k>.npz    the checkpoints (kinflow's .npz MLP format)
  samples/n<n>_seed<s>/<method>.csv  per-sample columns (see above); <method>.npy the samples
  units.csv                          one row per model and method: the numbers the tests use
  figures/fashion_*.png              the pictures of docs/fashion.md
  summary.json                       settings, the judge, every comparison, the timings
"""

import argparse
import concurrent.futures
import csv
import json
import math
import multiprocessing
import os
import sys
import time

import numpy as np

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scipy.linalg
    import scipy.stats
    import torch
except ImportError as e:  # pragma: no cover - told to the user
    sys.exit(f"fashion_study.py needs PyTorch, SciPy and matplotlib ({e}): bash scripts/install-python.sh --torch")

import kinflow

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import fashion_data  # noqa: E402
import flow_examples  # noqa: E402
from fashion_data import DIM  # noqa: E402
from flow_examples import partial_spearman, within_class_spearman, write_atomically, write_table  # noqa: E402

KNN_K = 10
LATE_WINDOW = 0.9  # the "late spike" statistic: the share of KPE spent at t >= 0.9
JUDGE_FLOOR = {"full": 0.85, "quick": 0.70}
COPYING = 0.01  # a model copies when its baseline F_mem is at least this


# ---------------------------------------------------------------------------------------
# Methods


def method_list(quick):
    """(name, family, parameter) for every method; the families' parameters are their knobs."""
    m = [("baseline", "baseline", None),
         ("kts_balanced", "kts", {"alpha0": 0.01, "beta0": 0.01, "tau": 0.6}),
         ("kts_launch", "kts", {"alpha0": 0.02, "beta0": 0.0, "tau": 0.6}),
         ("kts_landing", "landing", {"alpha0": 0.0, "beta0": 0.02, "tau": 0.6})]
    for tau in (() if quick else (0.2, 0.4, 0.8)):
        m.append((f"kts_balanced_tau_{tau:g}", "tau", {"alpha0": 0.01, "beta0": 0.01, "tau": tau}))
    for b in ((0.04,) if quick else (0.01, 0.03, 0.04, 0.05)):
        m.append((f"landing_{b:g}", "landing", {"alpha0": 0.0, "beta0": b, "tau": 0.6}))
    for eta in ((0.98, 0.95) if quick else (1.02, 0.99, 0.98, 0.97, 0.96, 0.94, 0.92)):
        m.append((f"gain_{eta:g}", "gain", eta))
    for c in ((0.98, 0.95) if quick else (1.02, 0.99, 0.98, 0.97, 0.96, 0.94, 0.92)):
        m.append((f"rescale_{c:g}", "rescale", c))
    for temp in ((0.95, 0.9) if quick else (1.1, 1.05, 0.98, 0.95, 0.9, 0.85, 0.8)):
        m.append((f"temperature_{temp:g}", "temperature", temp))
    return m


def shaping(family, param):
    """The KTS object a method samples with (None: no shaping)."""
    if family in ("kts", "landing", "tau"):
        return kinflow.KTS(alpha0=param["alpha0"], beta0=param["beta0"], tau=param["tau"])
    if family == "gain":  # eta on the whole path: a constant launch (eta > 1) or landing form (eta < 1)
        if param >= 1:
            return kinflow.KTS(alpha0=param - 1, tau=1.0, early="constant")
        return kinflow.KTS(beta0=1 - param, tau=0.0, late="constant")
    return None


CONTROLS = ("gain", "rescale", "temperature")


def family_knob(family, param):
    """Where a control method sits on its family's axis (1 = the baseline)."""
    return 1.0 if family == "baseline" else float(param)


# ---------------------------------------------------------------------------------------
# The judge


class Judge:
    """An MLP classifier 196-256-256-10 (ReLU) trained with PyTorch; evaluated in NumPy float64
    from its weights, which judge.npz keeps."""

    def __init__(self, x, y, epochs, seed):
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(DIM, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                                  torch.nn.ReLU(), torch.nn.Linear(256, 10))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
        batches = epochs * (len(x) // 256)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=batches, pct_start=0.1)
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=gen)
            for k in range(len(x) // 256):
                idx = perm[k * 256:(k + 1) * 256]
                loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        layers = [net[0], net[2], net[4]]
        self.weights = {}
        for i, layer in enumerate(layers, 1):
            self.weights[f"W{i}"] = layer.weight.detach().double().numpy().T.copy()
            self.weights[f"b{i}"] = layer.bias.detach().double().numpy().copy()

    def features(self, x):
        w = self.weights
        h = np.maximum(0.0, np.asarray(x, dtype=np.float64) @ w["W1"] + w["b1"])
        return np.maximum(0.0, h @ w["W2"] + w["b2"])

    def proba(self, x, features=None):
        """Class probabilities of the rows of x (or of the rows whose features are given)."""
        z = (self.features(x) if features is None else features) @ self.weights["W3"] + self.weights["b3"]
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


class Reference:
    """The test images' judge features: their mean and covariance, for the Frechet distance."""

    def __init__(self, features):
        self.mean = features.mean(axis=0)
        self.cov = np.cov(features, rowvar=False)

    def frechet(self, features):
        mu = features.mean(axis=0) - self.mean
        cov = np.cov(features, rowvar=False)
        root = scipy.linalg.sqrtm(cov @ self.cov)
        if np.iscomplexobj(root):
            root = root.real
        return float(mu @ mu + np.trace(cov) + np.trace(self.cov) - 2 * np.trace(root))


# ---------------------------------------------------------------------------------------
# Statistics


def holm(pvalues):
    """Holm's step-down adjustment of a list of p-values (NaN stays NaN)."""
    p = np.asarray(pvalues, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(p))
    out = np.full(p.shape, np.nan)
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        out[i] = running
    return out.tolist()


def paired_test(differences):
    """Mean, standard deviation and the two-sided one-sample t-test p-value of paired
    differences (NaN p with fewer than two, or when all are equal)."""
    d = np.asarray([v for v in differences if np.isfinite(v)], dtype=np.float64)
    if d.size < 2:
        return {"mean": float(d.mean()) if d.size else None, "sd": None, "p": float("nan"), "units": int(d.size)}
    sd = float(d.std(ddof=1))
    p = float(scipy.stats.ttest_1samp(d, 0.0).pvalue) if sd > 0 else float("nan")
    return {"mean": float(d.mean()), "sd": sd, "p": p, "units": int(d.size)}


def match_at(curve, target, origin=1.0):
    """A control family's FD where its F_mem equals target: curve is [(knob, f_mem, fd)] with
    the baseline at knob = origin; the segments between neighbouring knobs whose F_mem spans
    target are interpolated linearly, and the one nearest the baseline counts (on a flat
    segment, its end nearer the baseline). NaN when no segment reaches target."""
    pts = sorted(curve)
    best = None
    for (ka, fa, da), (kb, fb, db) in zip(pts, pts[1:]):
        if not min(fa, fb) <= target <= max(fa, fb):
            continue
        if fa == fb:
            fd = da if abs(ka - origin) <= abs(kb - origin) else db
        else:
            fd = da + (target - fa) / (fb - fa) * (db - da)
        dist = min(abs(ka - origin), abs(kb - origin))
        if best is None or dist < best[0]:
            best = (dist, fd)
    return float("nan") if best is None else float(best[1])


# ---------------------------------------------------------------------------------------
# Output


def finite_or_null(value):
    """value with every non-finite float replaced by None: summary.json is strict JSON."""
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def save_npy(path, array):
    write_atomically(path, lambda f: np.save(f, array), mode="wb")


# ---------------------------------------------------------------------------------------
# One model


def train_steps_for(n, a):
    """Adam steps of a model trained on n images: `--train-steps`, or with `--train-epochs E`
    as many as E passes over the n images take (at least 8)."""
    if a.train_epochs is None:
        return a.train_steps
    return max(8, math.ceil(a.train_epochs * n / a.batch))


def train_model(train_x, n, seed, a, out_dir):
    """Trains one flow-matching MLP on train_x; returns [(step, npz path, train loss)] for its
    checkpoints."""
    total = train_steps_for(n, a)
    torch.manual_seed(1000 + seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    model = flow_examples.FlowMLP(dim=DIM, hidden=a.hidden, depth=3, activation="silu")
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=total, pct_start=0.05)
    data = torch.from_numpy(train_x.astype(np.float32))
    marks = sorted({max(1, total * k // 8) for k in (1, 2, 4, 8)})
    checkpoints, recent, done = [], [], 0
    for mark in marks:
        model.train()
        flow_examples.train(model, data, mark - done, a.batch, opt, sched, gen,
                            lambda _, loss: recent.append(loss))
        done = mark
        path = os.path.join(out_dir, "models", f"n{n}_seed{seed}_step{mark}.npz")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        flow_examples.export_npz(model, path)
        checkpoints.append((mark, path, float(np.mean(recent[-200:]))))
    return checkpoints


def measure(x1, x0, result, train_x, judge, reference, test_x):
    """Per-sample columns and the model-level numbers of one method's samples."""
    x1 = np.asarray(x1, dtype=np.float64)
    if not np.all(np.isfinite(x1)):
        raise RuntimeError(f"{int(np.sum(~np.isfinite(x1).all(axis=1)))} samples are not finite")
    mem = kinflow.memorization(x1, train_x, bootstrap=0)
    memorized = np.asarray(mem.memorized, dtype=bool)
    feats = judge.features(x1)
    proba = judge.proba(x1, feats)
    confidence, predicted = proba.max(axis=1), proba.argmax(axis=1)
    knn = np.asarray(kinflow.knn_log_density(x1, test_x, KNN_K), dtype=np.float64)
    nan = np.full(len(x1), np.nan)
    kpe = [nan if result is None else np.asarray(getattr(result, k), dtype=np.float64)
           for k in ("kpe", "kpe_early", "kpe_late")]
    columns = [("kpe", kpe[0]), ("kpe_early", kpe[1]), ("kpe_late", kpe[2]),
               ("norm_x0", np.linalg.norm(x0, axis=1)), ("norm_x1", np.linalg.norm(x1, axis=1)),
               ("nn_dist", np.asarray(mem.nn_dist)), ("nn_ratio", np.asarray(mem.nn_ratio)),
               ("memorized", memorized.astype(np.int64)), ("nearest", np.asarray(mem.nearest, dtype=np.int64)),
               ("predicted", predicted.astype(np.int64)), ("confidence", confidence), ("knn_log_density", knn)]
    unit = {"f_mem": float(memorized.mean()), "fd": reference.frechet(feats),
            "confidence": float(confidence.mean()), "kpe": float(np.mean(kpe[0])),
            "kpe_early": float(np.mean(kpe[1])), "kpe_late": float(np.mean(kpe[2])),
            "norm_x1": float(np.mean(columns[4][1]))}
    return columns, unit


def claims(cols):
    """Claims (i) and (ii) on one baseline's samples: pooled, within the predicted class, and
    with |x1| partialled out."""
    kpe, conf, dens = cols["kpe"], cols["confidence"], cols["knn_log_density"]
    cls, norm = cols["predicted"], cols["norm_x1"]
    return {"kpe_confidence": kinflow.spearman(kpe, conf),
            "kpe_confidence_within_class": within_class_spearman(kpe, conf, cls),
            "kpe_confidence_given_norm_x1": partial_spearman(kpe, conf, norm),
            "kpe_density": kinflow.spearman(kpe, dens),
            "kpe_density_within_class": within_class_spearman(kpe, dens, cls),
            "kpe_density_given_norm_x1": partial_spearman(kpe, dens, norm),
            "kpe_norm_x1": kinflow.spearman(kpe, norm)}


def train_task(train_x, n, seed, a, threads):
    """train_model() with `threads` PyTorch threads; returns (checkpoints, seconds)."""
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    checkpoints = train_model(train_x, n, seed, a, a.out)
    return checkpoints, time.perf_counter() - t0


def train_all(data, sizes, a, log):
    """Trains the model of every (n, seed), `a.jobs` at a time in their own processes (each
    with `a.threads // a.jobs` PyTorch threads, at least one); in this process with
    `a.threads` threads when `a.jobs` is 1. Returns {(n, seed): (checkpoints, seconds)}."""
    tasks = [(n, seed) for n in sizes for seed in range(a.seeds)]
    if a.jobs == 1:
        return {(n, seed): train_task(data.subset(n)[0], n, seed, a, a.threads) for n, seed in tasks}
    threads = max(1, a.threads // a.jobs)
    tasks.sort(key=lambda task: -train_steps_for(task[0], a))  # the longest first: the pool ends together
    context = multiprocessing.get_context("spawn")  # no fork of a process that already runs PyTorch threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=a.jobs, mp_context=context) as pool:
        futures = {pool.submit(train_task, data.subset(n)[0], n, seed, a, threads): (n, seed) for n, seed in tasks}
        trained = {}
        for future in concurrent.futures.as_completed(futures):
            n, seed = futures[future]
            trained[(n, seed)] = future.result()
            log(f"n = {n:5d} seed {seed}: trained in {trained[(n, seed)][1]:.0f} s ({len(trained)} of {len(tasks)})")
    return trained


def run_model(n, seed, data, judge, reference, methods, a, log, trained):
    """Samples every method from the last checkpoint of the model of (n, seed) (`trained`:
    its checkpoints and training seconds, from train_all) and the baseline from every
    checkpoint. Returns (unit rows, checkpoint rows, claims, profile, training seconds)."""
    train_x, _ = data.subset(n)
    t0 = time.perf_counter()
    checkpoints, train_seconds = trained
    x0 = np.asarray(kinflow.standard_normal(a.samples, DIM, 5000 + seed), dtype=np.float32)
    folder = os.path.join(a.out, "samples", f"n{n}_seed{seed}")

    def solve(path, x_start, kts, profile=None):
        field = kinflow.load_mlp(path, dtype="float32")
        return kinflow.sample(field, x_start, solver="euler", steps=a.steps, kts=kts, tau=a.kpe_tau, profile=profile)

    ckpt_rows = []
    for step, path, loss in checkpoints[:-1]:
        r = solve(path, x0, None)
        _, u = measure(r.x, x0, r, train_x, judge, reference, data.test)
        ckpt_rows.append({"n": n, "seed": seed, "step": step, "loss": loss, **u})
    final = checkpoints[-1][1]
    rows, kept, plain = [], {}, None
    for name, family, param in methods:
        start = x0
        if family == "temperature":
            start = (param * x0).astype(np.float32)
        if family == "rescale":
            # in float32 like every solve, so that the saved samples are the ones measured
            r, x1 = None, (param * plain).astype(np.float32).astype(np.float64)
        else:
            r = solve(final, start, shaping(family, param), "per_sample" if family == "baseline" else None)
            x1 = np.asarray(r.x, dtype=np.float64)
        if family == "baseline":
            plain, profile = x1, np.asarray(r.kpe_profile, dtype=np.float64)
        columns, u = measure(x1, start, r, train_x, judge, reference, data.test)
        write_table(os.path.join(folder, f"{name}.csv"), columns)
        save_npy(os.path.join(folder, f"{name}.npy"), x1.astype(np.float32))
        rows.append({"n": n, "seed": seed, "method": name, "family": family,
                     "knob": family_knob(family, param) if family in CONTROLS + ("baseline",) else float("nan"), **u})
        if family == "baseline":
            kept = dict(columns)
            ckpt_rows.append({"n": n, "seed": seed, "step": checkpoints[-1][0], "loss": checkpoints[-1][2], **u})
    memorized = kept["memorized"].astype(bool)
    steps_t = np.arange(a.steps) / a.steps  # each Euler step's left end
    late = steps_t >= LATE_WINDOW - 1e-12
    share = profile[:, late].sum(axis=1) / np.maximum(profile.sum(axis=1), 1e-300)
    prof = {"n": n, "seed": seed, "mean": profile.mean(axis=0).tolist(),
            "mean_memorized": profile[memorized].mean(axis=0).tolist() if memorized.any() else None,
            "mean_other": profile[~memorized].mean(axis=0).tolist() if (~memorized).any() else None,
            "late_share_memorized": float(share[memorized].mean()) if memorized.any() else None,
            "late_share_other": float(share[~memorized].mean()) if (~memorized).any() else None}
    c = {"n": n, "seed": seed, **claims(kept)}
    log(f"n = {n:5d} seed {seed}: trained {train_seconds:.0f} s; baseline F_mem {rows[0]['f_mem']:.3f} "
        f"FD {rows[0]['fd']:.2f} KPE {rows[0]['kpe']:.1f}; balanced KTS F_mem {rows[1]['f_mem']:.3f} "
        f"FD {rows[1]['fd']:.2f} ({time.perf_counter() - t0:.0f} s)")
    return rows, ckpt_rows, c, prof, train_seconds


# ---------------------------------------------------------------------------------------
# Across models


def compare(rows, methods):
    """Each method against the baseline, and each KTS setting against each control at equal
    F_mem, over the models; Holm over the methods of each comparison and measure. F_mem and
    the matches at equal F_mem count only the models that copy (baseline F_mem >= COPYING):
    where no sample is a copy, F_mem says nothing and every method matches the baseline."""
    units = sorted({(r["n"], r["seed"]) for r in rows})
    at = {(r["n"], r["seed"], r["method"]): r for r in rows}
    copying = [u for u in units if at[u + ("baseline",)]["f_mem"] >= COPYING]
    vs_baseline = {}
    for metric in ("f_mem", "fd", "confidence"):
        over = copying if metric == "f_mem" else units
        names = [m for m, _, _ in methods if m != "baseline"]
        tests = [paired_test([at[u + (m,)][metric] - at[u + ("baseline",)][metric] for u in over]) for m in names]
        for name, t, p in zip(names, tests, holm([t["p"] for t in tests])):
            t["p_holm"] = p
            t["per_size"] = {str(n): float(np.mean([at[(n, s, name)][metric] - at[(n, s, "baseline")][metric]
                                                    for (nn, s) in units if nn == n]))
                             for n in sorted({u[0] for u in units})}
            vs_baseline.setdefault(name, {})[metric] = t
    matched = {}
    shaped = [m for m, f, _ in methods if f in ("kts", "landing", "tau")]
    for control in CONTROLS:
        members = ["baseline"] + [m for m, f, _ in methods if f == control]
        tests, names = [], []
        for name in shaped:
            diffs = []
            for u in copying:
                curve = [(at[u + (m,)]["knob"], at[u + (m,)]["f_mem"], at[u + (m,)]["fd"]) for m in members]
                diffs.append(at[u + (name,)]["fd"] - match_at(curve, at[u + (name,)]["f_mem"]))
            tests.append(paired_test(diffs))
            names.append(name)
        for name, t, p in zip(names, tests, holm([t["p"] for t in tests])):
            t["p_holm"] = p
            matched.setdefault(name, {})[control] = t
    return {"units": [list(u) for u in units], "copying_units": [list(u) for u in copying], "copying_floor": COPYING,
            "vs_baseline": vs_baseline, "kts_minus_control_fd_at_equal_f_mem": matched}


def read_units(path):
    """units.csv back as the rows compare() takes."""
    with open(path) as f:
        out = []
        for r in csv.DictReader(f):
            row = {k: float(v) for k, v in r.items() if k not in ("n", "seed", "method", "family")}
            row.update(n=int(r["n"]), seed=int(r["seed"]), method=r["method"], family=r["family"])
            out.append(row)
    return out


def mean_ci(values):
    """Mean and a t-based 95 % interval over the models."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "ci": [None, None], "units": 0}
    if v.size < 2:
        return {"mean": float(v.mean()), "ci": [None, None], "units": 1}
    half = float(scipy.stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return {"mean": float(v.mean()), "ci": [float(v.mean()) - half, float(v.mean()) + half], "units": int(v.size)}


# ---------------------------------------------------------------------------------------
# Pictures


def figure_tradeoff(rows, methods, sizes, path):
    """F_mem against FD per subset size, each family's curve (means over seeds)."""
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.4 * len(sizes), 3.9), squeeze=False)
    styles = {"gain": ("tab:blue", "o-", "constant gain η"), "rescale": ("tab:green", "s-", "rescale x₁"),
              "temperature": ("tab:purple", "^-", "noise temperature"),
              "landing": ("tab:red", "D-", "KTS landing β0 (τ 0.6)"), "tau": ("tab:orange", "v-", "KTS balanced, τ sweep")}
    for ax, n in zip(axes[0], sizes):
        def point(m):
            sel = [r for r in rows if r["n"] == n and r["method"] == m]
            return float(np.mean([r["fd"] for r in sel])), float(np.mean([r["f_mem"] for r in sel]))

        base = point("baseline")
        for family, (color, style, label) in styles.items():
            members = [(m, prm) for m, f, prm in methods if f == family]
            if not members:
                continue
            # each family along its knob, through its member at the baseline's value
            if family == "landing":
                keyed = [(0.0, base)] + [(prm["beta0"], point(m)) for m, prm in members]
            elif family == "tau":
                keyed = [(0.6, point("kts_balanced"))] + [(prm["tau"], point(m)) for m, prm in members]
            else:
                keyed = [(1.0, base)] + [(float(prm), point(m)) for m, prm in members]
            pts = [p for _, p in sorted(keyed, key=lambda kp: kp[0])]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, ms=3.5, lw=1, label=label)
        ax.plot(*base, "k*", ms=11, label="baseline")
        for m, mark in (("kts_balanced", "P"), ("kts_launch", "X")):
            ax.plot(*point(m), mark, color="tab:orange" if m == "kts_balanced" else "tab:brown", ms=9,
                    label={"kts_balanced": "KTS balanced", "kts_launch": "KTS launch only"}[m])
        top = max(r["f_mem"] for r in rows if r["n"] == n)
        ax.set_ylim(-0.005 if top < 0.05 else None, 0.05 if top < 0.05 else None)
        ax.set_title(f"n = {n} training images" + (" (no copies)" if top == 0 else ""), fontsize=9)
        ax.set_xlabel("FD to the test images (judge features)", fontsize=8)
        ax.set_ylabel("F_mem", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6.5)
    fig.tight_layout()
    flow_examples.save_figure(fig, path, dpi=90)


def figure_checkpoints(ckpt_rows, sizes, path):
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for n, color in zip(sizes, ("tab:red", "tab:orange", "tab:blue", "tab:green")):
        steps = sorted({r["step"] for r in ckpt_rows if r["n"] == n})
        for ax, key in zip(axes, ("kpe", "kpe_late", "f_mem")):
            per_step = [[r[key] for r in ckpt_rows if r["n"] == n and r["step"] == s] for s in steps]
            ax.errorbar(steps, [np.mean(v) for v in per_step], yerr=[np.std(v) for v in per_step], fmt="o-",
                        color=color, ms=3, lw=1, capsize=2, label=f"n = {n}")
    marks = sorted({r["step"] for r in ckpt_rows})
    for ax, label in zip(axes, ("mean KPE", "mean late KPE (t ≥ τ)", "F_mem")):
        ax.set_xscale("log")
        ax.set_xticks(marks, [str(m) for m in marks])
        ax.minorticks_off()
        ax.set_xlabel("training steps", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    fig.suptitle("Baseline sampler over training checkpoints (mean ± sd over seeds)", fontsize=9)
    fig.tight_layout()
    flow_examples.save_figure(fig, path, dpi=90)


def figure_profiles(profiles, sizes, steps, path):
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.2), squeeze=False)
    t = (np.arange(steps) + 0.5) / steps
    for ax, n in zip(axes[0], sizes):
        for key, color, label in (("mean_memorized", "tab:red", "copies"), ("mean_other", "tab:blue", "other samples")):
            curves = [np.asarray(p[key]) * steps for p in profiles if p["n"] == n and p[key] is not None]
            if curves:
                ax.plot(t, np.mean(curves, axis=0), color=color, lw=1.2, label=f"{label}")
        ax.set_yscale("log")
        ax.set_title(f"n = {n}", fontsize=9)
        ax.set_xlabel("t", fontsize=8)
        ax.set_ylabel("½‖v‖² per unit time (mean)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    flow_examples.save_figure(fig, path, dpi=90)


def figure_samples(out, data, n, seed, names, path, count=12):
    folder = os.path.join(out, "samples", f"n{n}_seed{seed}")
    fig, axes = plt.subplots(len(names), 1, figsize=(0.75 * count, 0.95 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        x = np.load(os.path.join(folder, f"{name}.npy"))[:count]
        img = np.clip(data.to_pixels(x).reshape(-1, 14, 14), 0, 1)
        ax.imshow(np.concatenate(list(img), axis=1), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(f"The same noise through each sampler (n = {n}, seed {seed})", fontsize=9)
    fig.tight_layout()
    flow_examples.save_figure(fig, path, dpi=90)


# ---------------------------------------------------------------------------------------
# The tables of docs/fashion.md


def fmt_ci(m, digits=3):
    if m["mean"] is None:
        return "-"
    if m["ci"][0] is None:
        return f"{m['mean']:.{digits}f}"
    return f"{m['mean']:.{digits}f} [{m['ci'][0]:.{digits}f}, {m['ci'][1]:.{digits}f}]"


def report(record):
    """The study's tables as text: what docs/fashion.md quotes."""
    lines = []
    st, j = record["settings"], record["judge"]
    lines.append(f"judge: test accuracy {j['test_accuracy']:.4f} (floor {j['floor']}); FD of {st['samples']} real "
                 f"unseen images {j['real_images_fd']:.2f}, their mean confidence {j['real_images_confidence']:.3f}")
    lines.append(f"models: sizes {st['sizes']}, {st['seeds']} seeds, "
                 + (f"{st['train_epochs']} epochs" if st.get("train_epochs") else f"{st['train_steps']} Adam steps")
                 + f" (peak learning rate {st['lr']:g}), hidden "
                 f"{st['hidden']}; {st['samples']} samples, Euler {st['steps']} steps, {st['dtype']}")
    lines.append("")
    lines.append("per size, mean over seeds [t 95% CI]:")
    lines.append(f"  {'n':>5s} {'method':24s} {'F_mem':26s} {'FD':26s} {'confidence':10s} {'KPE':>7s} {'late KPE':>8s}")
    for n, methods in record["per_size"].items():
        for m, v in methods.items():
            kpe = "" if v["kpe"]["mean"] is None else f"{v['kpe']['mean']:7.1f}"
            late = "" if v["kpe_late"]["mean"] is None else f"{v['kpe_late']['mean']:8.1f}"
            lines.append(f"  {n:>5s} {m:24s} {fmt_ci(v['f_mem']):26s} {fmt_ci(v['fd'], 2):26s} "
                         f"{v['confidence']['mean']:10.3f} {kpe:>7s} {late:>8s}")
    lines.append("")
    comp = record["comparisons"]
    copying = comp.get("copying_units", comp["units"])
    lines.append(f"against the baseline, paired over the models (mean difference, Holm-adjusted p; FD and confidence "
                 f"over all {len(comp['units'])}, F_mem over the {len(copying)} that copy, baseline F_mem >= "
                 f"{comp.get('copying_floor', 0)}: {', '.join(f'n={n} seed {s}' for n, s in copying)}):")
    lines.append(f"  {'method':24s} {'dF_mem':>9s} {'p_Holm':>8s} {'dFD':>8s} {'p_Holm':>8s} {'dconf':>8s} {'p_Holm':>8s}")

    def p(t):
        return "-" if t["p_holm"] is None or not np.isfinite(t["p_holm"]) else f"{t['p_holm']:.3g}"

    def num(t, spec):
        return "-" if t["mean"] is None else format(t["mean"], spec)

    for m, t in comp["vs_baseline"].items():
        lines.append(f"  {m:24s} {num(t['f_mem'], '+9.4f'):>9s} {p(t['f_mem']):>8s} {num(t['fd'], '+8.3f'):>8s} "
                     f"{p(t['fd']):>8s} {num(t['confidence'], '+8.4f'):>8s} {p(t['confidence']):>8s}")
    lines.append("")
    lines.append("KTS minus control, FD at the KTS setting's F_mem (negative: KTS better; the copying models where the "
                 "control's curve reaches that F_mem):")
    for m, controls in comp["kts_minus_control_fd_at_equal_f_mem"].items():
        cells = []
        for c, t in controls.items():
            mean = "-" if t["mean"] is None else f"{t['mean']:+.3f}"
            cells.append(f"{c} {mean} (p_Holm {p(t)}, {t['units']} models)")
        lines.append(f"  {m:24s} " + "; ".join(cells))
    lines.append("")
    lines.append("claims on the baseline's samples, mean over models [t 95% CI] (all sizes, then per size):")
    for k, v in record["claims"].items():
        per = "  ".join(f"n={n}: {v[n]['mean']:+.3f}" for n in v if n != "all" and v[n]["mean"] is not None)
        lines.append(f"  {k:32s} {fmt_ci(v['all'])}   {per}")
    lines.append("")
    lines.append(f"share of KPE spent at t >= {st['late_window']}, copies against other samples:")
    for n, v in record["late_energy_share"].items():
        lines.append(f"  n = {n:>5s}: copies {fmt_ci(v['memorized'])}  other {fmt_ci(v['other'])}")
    lines.append("")
    lines.append("baseline over training checkpoints, mean over seeds (step: F_mem, KPE, late KPE):")
    for n in st["sizes"]:
        steps = sorted({c["step"] for c in record["checkpoints"] if c["n"] == n})
        cells = []
        for s in steps:
            sel = [c for c in record["checkpoints"] if c["n"] == n and c["step"] == s]
            cells.append(f"{s}: {np.mean([c['f_mem'] for c in sel]):.3f}, {np.mean([c['kpe'] for c in sel]):.1f}, "
                         f"{np.mean([c['kpe_late'] for c in sel]):.1f}")
        lines.append(f"  n = {n:5d}  " + "; ".join(cells))
    wall = record.get("train_wall_seconds", sum(record["train_seconds"]))
    lines.append(f"seconds: {record['seconds']:.0f} (training {wall:.0f}, "
                 f"{record['settings'].get('jobs', 1)} model(s) at a time)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--report", action="store_true",
                   help="recompute the comparisons of an earlier run in DIR from its units.csv, write them into "
                        "its summary.json, redraw its trade-off and checkpoint figures and print the tables "
                        "(what docs/fashion.md quotes)")
    p.add_argument("--quick", action="store_true",
                   help="a short run (about a minute): sizes 64,256, 2 seeds, short training, 128 samples, "
                        "10 Euler steps, fewer methods")
    p.add_argument("--sizes", default=None, help="training subset sizes (default 64,256,1024; --quick 64,256)")
    p.add_argument("--seeds", type=int, default=None, help="training seeds per size (default 3; --quick 2)")
    p.add_argument("--train-steps", type=int, default=None, help="Adam steps per model (default 6000; --quick 120)")
    p.add_argument("--train-epochs", type=int, default=None,
                   help="instead of --train-steps: as many Adam steps as this many passes over each model's n "
                        "images take (n = 256, batch 128: 2 steps per epoch), so that every size sees its "
                        "images equally often")
    p.add_argument("--hidden", type=int, default=512, help="hidden units per layer (default 512)")
    p.add_argument("--batch", type=int, default=128, help="training batch (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--samples", type=int, default=None, help="samples per model and method (default 1000; --quick 128)")
    p.add_argument("--steps", type=int, default=None, help="Euler steps (default 100; --quick 10)")
    p.add_argument("--kpe-tau", type=float, default=0.6, help="the early/late split of the energy (default 0.6)")
    p.add_argument("--judge-epochs", type=int, default=None, help="judge training epochs (default 8; --quick 1)")
    p.add_argument("--threads", type=int, default=2, help="PyTorch threads (default 2)")
    p.add_argument("--jobs", type=int, default=1,
                   help="models trained at once, each in its own process with threads/jobs PyTorch threads "
                        "(default 1; 2 on two cores trains about twice as fast, with other rounding)")
    p.add_argument("--data", default=None, help="the Fashion-MNIST folder (default Debian's)")
    a = p.parse_args(argv)
    if a.report:  # the comparisons recomputed from units.csv, written back, then the tables
        path = os.path.join(a.out, "summary.json")
        try:
            with open(path) as f:
                record = json.load(f)
            methods = [(m["name"], m["family"], m["parameter"]) for m in record["settings"]["methods"]]
            record["comparisons"] = compare(read_units(os.path.join(a.out, "units.csv")), methods)
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"fashion_study.py --report: no complete run in {a.out!r} ({e})")
        write_atomically(path, lambda f: json.dump(finite_or_null(record), f, indent=1, allow_nan=False))
        figure_tradeoff(read_units(os.path.join(a.out, "units.csv")), methods, record["settings"]["sizes"],
                        os.path.join(a.out, "figures", "fashion_tradeoff.png"))
        figure_checkpoints(record["checkpoints"], record["settings"]["sizes"],
                           os.path.join(a.out, "figures", "fashion_checkpoints.png"))
        print(report(record))
        return 0
    quick = a.quick
    try:
        sizes = sorted({int(s) for s in (a.sizes or ("64,256" if quick else "64,256,1024")).split(",") if s.strip()})
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {a.sizes!r}")
    if not sizes or any(not 2 <= s <= 30000 for s in sizes):
        p.error(f"--sizes: expected sizes in [2, 30000], got {a.sizes!r}")
    a.seeds = a.seeds if a.seeds is not None else (2 if quick else 3)
    if a.train_steps is not None and a.train_epochs is not None:
        p.error("--train-epochs: expected either --train-steps or --train-epochs, not both")
    if a.train_epochs is not None and a.train_epochs < 1:
        p.error(f"--train-epochs: expected an integer >= 1, got {a.train_epochs}")
    a.train_steps = a.train_steps if a.train_steps is not None else (120 if quick else 6000)
    a.samples = a.samples if a.samples is not None else (128 if quick else 1000)
    a.steps = a.steps if a.steps is not None else (10 if quick else 100)
    a.judge_epochs = a.judge_epochs if a.judge_epochs is not None else (1 if quick else 8)
    for name, lo in (("seeds", 1), ("train_steps", 8), ("samples", 20), ("steps", 1), ("judge_epochs", 1),
                     ("hidden", 1), ("batch", 1), ("threads", 1), ("jobs", 1)):
        if getattr(a, name) < lo:
            p.error(f"--{name.replace('_', '-')}: expected an integer >= {lo}, got {getattr(a, name)}")
    if not (a.lr > 0 and math.isfinite(a.lr)):
        p.error(f"--lr: expected a finite number > 0, got {a.lr}")
    if not 0 <= a.kpe_tau <= 1:
        p.error(f"--kpe-tau: expected a number in [0, 1], got {a.kpe_tau:g}")

    started = time.perf_counter()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    summary_path = os.path.join(a.out, "summary.json")
    if os.path.exists(summary_path):
        os.remove(summary_path)  # a stale summary never sits beside this run's files

    def log(text):
        print(f"[{time.perf_counter() - started:6.0f} s] {text}", flush=True)

    try:
        data = fashion_data.load(a.data)
    except FileNotFoundError as e:
        sys.exit(f"fashion_study.py: {e}")
    judge_x, judge_y = data.judge_split(max(sizes))
    if quick:
        judge_x, judge_y = judge_x[:12000], judge_y[:12000]
    judge = Judge(judge_x, judge_y, a.judge_epochs, seed=7)
    write_atomically(os.path.join(a.out, "judge.npz"), lambda f: np.savez(f, **judge.weights), mode="wb")
    accuracy = float(np.mean(judge.proba(data.test).argmax(axis=1) == data.test_labels))
    floor = JUDGE_FLOOR["quick" if quick else "full"]
    log(f"judge: accuracy {accuracy:.4f} on the 10 000 test images (trained on {len(judge_x)} images)")
    if accuracy < floor:
        sys.exit(f"fashion_study.py: the judge's test accuracy {accuracy:.4f} is below its floor {floor}")
    test_features = judge.features(data.test)
    reference = Reference(test_features)
    rng = np.random.default_rng(99)
    real = judge.features(judge_x[rng.choice(len(judge_x), a.samples, replace=False)])
    real_fd = reference.frechet(real)  # real unseen images at the same sample size: FD's floor

    methods = method_list(quick)
    rows, ckpt_rows, claim_rows, profiles, train_seconds = [], [], [], [], []
    train_started = time.perf_counter()
    trained = train_all(data, sizes, a, log)
    train_wall = time.perf_counter() - train_started
    torch.set_num_threads(a.threads)
    for n in sizes:
        for seed in range(a.seeds):
            r, c, cl, pr, ts = run_model(n, seed, data, judge, reference, methods, a, log, trained[(n, seed)])
            rows += r
            ckpt_rows += c
            claim_rows.append(cl)
            profiles.append(pr)
            train_seconds.append(ts)

    unit_keys = ["n", "seed", "method", "family", "knob", "f_mem", "fd", "confidence", "kpe", "kpe_early",
                 "kpe_late", "norm_x1"]
    write_table(os.path.join(a.out, "units.csv"), [(k, [r[k] for r in rows]) for k in unit_keys])
    comparisons = compare(rows, methods)
    per_size = {}
    for n in sizes:
        per_size[str(n)] = {m: {k: mean_ci([r[k] for r in rows if r["n"] == n and r["method"] == m])
                                for k in ("f_mem", "fd", "confidence", "kpe", "kpe_late")}
                            for m, _, _ in methods}
    claim_summary = {k: {"all": mean_ci([c[k] for c in claim_rows]),
                         **{str(n): mean_ci([c[k] for c in claim_rows if c["n"] == n]) for n in sizes}}
                     for k in claim_rows[0] if k not in ("n", "seed")}
    late = {str(n): {"memorized": mean_ci([p["late_share_memorized"] for p in profiles if p["n"] == n]),
                     "other": mean_ci([p["late_share_other"] for p in profiles if p["n"] == n])} for n in sizes}

    fig_dir = os.path.join(a.out, "figures")
    figure_tradeoff(rows, methods, sizes, os.path.join(fig_dir, "fashion_tradeoff.png"))
    figure_checkpoints(ckpt_rows, sizes, os.path.join(fig_dir, "fashion_checkpoints.png"))
    figure_profiles(profiles, sizes, a.steps, os.path.join(fig_dir, "fashion_energy_profile.png"))
    shown = ["baseline", "kts_balanced", "kts_landing", "gain_0.98" if any(m == "gain_0.98" for m, _, _ in methods)
             else "baseline", "rescale_0.98", "temperature_0.9"]
    figure_samples(a.out, data, sizes[len(sizes) // 2], 0, list(dict.fromkeys(shown)),
                   os.path.join(fig_dir, "fashion_samples.png"))

    record = {
        "settings": {"sizes": sizes, "seeds": a.seeds, "train_steps": a.train_steps if a.train_epochs is None else None,
                     "train_epochs": a.train_epochs,
                     "train_steps_per_size": {str(n): train_steps_for(n, a) for n in sizes}, "hidden": a.hidden,
                     "batch": a.batch, "lr": a.lr, "threads": a.threads, "jobs": a.jobs,
                     "samples": a.samples, "steps": a.steps, "solver": "euler",
                     "dtype": "float32", "kpe_tau": a.kpe_tau, "judge_epochs": a.judge_epochs, "quick": quick,
                     "resolution": "14x14 (2x2 block means)", "split_seed": fashion_data.SPLIT_SEED,
                     "scale": data.scale, "knn_k": KNN_K, "late_window": LATE_WINDOW, "memorization_ratio": 1 / 3,
                     "methods": [{"name": m, "family": f, "parameter": prm} for m, f, prm in methods]},
        "judge": {"architecture": "MLP 196-256-256-10 ReLU", "train_images": int(len(judge_x)),
                  "test_accuracy": accuracy, "floor": floor, "epochs": a.judge_epochs,
                  "real_images_fd": real_fd, "real_images_confidence": float(judge.proba(judge_x[:a.samples]).max(axis=1).mean())},
        "per_size": per_size,
        "comparisons": comparisons,
        "claims": claim_summary,
        "claims_per_model": claim_rows,
        "late_energy_share": late,
        "profiles": profiles,
        "checkpoints": ckpt_rows,
        "train_seconds": train_seconds,
        "train_wall_seconds": train_wall,
        "seconds": time.perf_counter() - started,
        "complete": True,
    }
    write_atomically(summary_path, lambda f: json.dump(finite_or_null(record), f, indent=1, allow_nan=False))
    print(report(record))
    log(f"wrote {summary_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
