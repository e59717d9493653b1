#!/usr/bin/env python3
"""PyTorch peer of kinflow's sampling benchmark.

The empirical flow-matching field of a training set, sampled with Euler and Kinetic
Trajectory Shaping (KTS), with the kinetic path energy (KPE) accumulated by the left-Riemann
rule, written the way a PyTorch user writes it (and the way the paper's reference script
does): a softmax over the whole training set at every step, a Python loop over the steps.

    python3 bench/pytorch_sampler.py --dir <dir> [--steps 100] [--scalar float]
                                     [--threads 0] [--reps 5] [--label text]
                                     [--build name] [--also name=<dir2>]...

reads <dir>/train.csv and <dir>/noise.csv (one point per row, written by
`bench_sampling --compare <dir>`), samples them `--reps` times, and compares with
<dir>/kinflow_samples.csv, <dir>/kinflow_energy.csv and <dir>/kinflow_time.txt. Prints one
line "RESULT key=value ..." with both median times, their ratio and the largest differences
between the two results. Each `--also name=<dir2>` compares the same PyTorch run with the
kinflow results in <dir2> too (another build of kinflow on the same inputs), one more
RESULT line each, `build=name`. Exits with status 3 (and a message) when PyTorch is not
installed.
"""

import argparse
import math
import os
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", required=True, help="directory with the CSV files")
    p.add_argument("--steps", type=int, default=100, help="uniform Euler steps")
    p.add_argument("--scalar", choices=["float", "double"], default="float")
    p.add_argument("--threads", type=int, default=0, help="0: all hardware threads")
    p.add_argument("--reps", type=int, default=5, help="timed runs (the median is reported)")
    p.add_argument("--alpha0", type=float, default=0.01)
    p.add_argument("--beta0", type=float, default=0.01)
    p.add_argument("--tau", type=float, default=0.6)
    p.add_argument("--k", type=float, default=3.0)
    p.add_argument("--label", default="", help="name of the configuration in the output")
    p.add_argument("--build", default="default", help="name of the kinflow build of --dir")
    p.add_argument("--also", action="append", default=[], metavar="NAME=DIR",
                   help="kinflow results of another build on the same inputs")
    return p.parse_args()


def kts_gain(t, alpha0, beta0, tau, k):
    """eta(t): linear launch before tau, exponential landing after (the paper's defaults)."""
    if t < tau:
        return 1.0 + alpha0 * (1.0 - t / tau)
    u = (t - tau) / (1.0 - tau) if tau < 1.0 else 0.0
    return 1.0 - beta0 * (math.exp(k * u) - 1.0)


def empirical_velocity(torch, x, t, y, eps):
    """v(x, t) = (m - x) / (1 - t), m = softmax(-|x - t y_i|^2 / (2 (1 - t)^2)) @ y."""
    sigma = max(1.0 - t, eps)
    d2 = torch.cdist(x, t * y).pow(2)                     # B x N squared distances
    w = torch.softmax(-d2 / (2.0 * sigma * sigma), dim=1)  # posterior over training points
    return (w @ y - x) / sigma


def sample(torch, x0, y, steps, gain, tau, eps):
    """Euler with KTS; returns x(1) and the energies (total, early, late), left Riemann."""
    x = x0.clone()
    dt = 1.0 / steps
    split = math.floor(tau * steps)
    early = torch.zeros(x.shape[0], dtype=x.dtype)
    late = torch.zeros(x.shape[0], dtype=x.dtype)
    for i in range(steps):
        t = i / steps
        v = gain(t) * empirical_velocity(torch, x, t, y, eps)
        e = 0.5 * dt * (v * v).sum(dim=1)
        if i < split:
            early += e
        else:
            late += e
        x = x + dt * v
    return x, early + late, early, late


def main():
    args = parse_args()
    try:
        import numpy as np
        import torch
    except ImportError as err:
        print(f"pytorch_sampler.py: skipped, PyTorch is not installed ({err}); "
              "on Debian: bash scripts/install-deps.sh --torch", file=sys.stderr)
        return 3

    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    dtype = torch.float32 if args.scalar == "float" else torch.float64
    eps = 1e-3 if args.scalar == "float" else 1e-6  # kinflow's default clamp of 1 - t

    def load(name, ndmin=2):
        return np.loadtxt(os.path.join(args.dir, name), delimiter=",", ndmin=ndmin)

    y = torch.from_numpy(load("train.csv")).to(dtype)
    x0 = torch.from_numpy(load("noise.csv")).to(dtype)

    def gain(t):
        return kts_gain(t, args.alpha0, args.beta0, args.tau, args.k)

    seconds = []
    with torch.no_grad():
        sample(torch, x0, y, min(args.steps, 2), gain, args.tau, eps)  # warm-up, untimed
        for _ in range(max(args.reps, 1)):
            start = time.perf_counter()
            x, total, early, late = sample(torch, x0, y, args.steps, gain, args.tau, eps)
            seconds.append(time.perf_counter() - start)
    torch_time = statistics.median(seconds)

    blas = "unknown"
    try:  # which BLAS the process loaded (Debian's alternatives decide it)
        with open("/proc/self/maps") as f:
            maps = f.read()
        blas = next((n for n in ("openblas", "mkl", "blis", "atlas") if n in maps), "reference")
    except OSError:
        pass

    x = x.to(torch.float64)
    energies = torch.stack([total, early, late], dim=1).to(torch.float64)
    scale = y.abs().max().item()

    def report(build, kdir):
        def kload(name):
            return np.loadtxt(os.path.join(kdir, name), delimiter=",", ndmin=2)
        kx = torch.from_numpy(kload("kinflow_samples.csv")).to(torch.float64)
        ke = torch.from_numpy(kload("kinflow_energy.csv")).to(torch.float64)
        with open(os.path.join(kdir, "kinflow_time.txt")) as f:
            kinflow_time = float(f.read().split()[0])
        sample_diff = (x - kx).abs().amax(dim=1)                   # per sample, max over coordinates
        energy_diff = (energies - ke).abs() / ke.abs().clamp(min=1.0)  # relative (absolute below 1)
        # Samples whose result differs by more than 1e-3 of the data scale: those that a
        # rounding difference sent to another training point (or not yet), not merely
        # rounded differently.
        far = int((sample_diff > 1e-3 * scale).sum().item())
        print("RESULT " + " ".join([
            f"label={args.label or 'run'}",
            f"build={build}",
            f"scalar={args.scalar}",
            f"B={x0.shape[0]}", f"N={y.shape[0]}", f"d={y.shape[1]}", f"steps={args.steps}",
            f"threads={threads}", f"blas={blas}", f"torch={torch.__version__}",
            f"kinflow_s={kinflow_time:.6g}",
            f"torch_s={torch_time:.6g}",
            f"speedup={torch_time / kinflow_time:.4g}",
            f"max_sample_diff={sample_diff.max().item():.3g}",
            f"median_sample_diff={sample_diff.median().item():.3g}",
            f"samples_off={far}",
            f"max_energy_reldiff={energy_diff.max().item():.3g}",
            f"median_energy_reldiff={energy_diff[:, 0].median().item():.3g}",
        ]), flush=True)

    report(args.build, args.dir)
    for item in args.also:
        name, sep, kdir = item.partition("=")
        if not sep or not name or not kdir:
            print(f"pytorch_sampler.py: --also expects NAME=DIR, got '{item}'", file=sys.stderr)
            return 2
        report(name, kdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
