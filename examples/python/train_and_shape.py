#!/usr/bin/env python3
"""Train a flow-matching MLP with PyTorch, sample it through kinflow with and without KTS,
plot trajectories coloured by their kinetic path energy, and report memorization.

    .venv/bin/python examples/python/train_and_shape.py --out DIR [--quick]

(`bash scripts/install-python.sh --torch` makes .venv/ with kinflow, torch and matplotlib.)

1. A finite training set: --n-train points of a toy 2-D dataset (kinflow.datasets).
2. A small MLP v(t, x) trained on the linear path x_t = (1 - t) x0 + t x1, regressing the
   conditional target x1 - x0 (PyTorch, CPU, float32).
3. kinflow.sample with the network as the field (any callable f(t, X) -> [B, d] is one; this
   one returns a torch tensor), Euler with --steps steps, per-sample KPE split at tau:
     - "trained"      the network as trained;
     - "trained_kts"  the same with Kinetic Trajectory Shaping (--alpha0, --beta0, --tau);
     - "exact"        the exact empirical field of the same training set, for reference
                      (it memorizes: every sample lands on a training point).
4. For each: F_mem (nearest training point 3x closer than the second, with a bootstrap CI),
   mean KPE (early / late), sliced W2 to fresh held-out data of the true distribution.

Writes into DIR (each file under a temporary name, renamed into place when complete,
summary.json last):
  trajectories_by_kpe.png  trajectories over the training points, coloured by KPE
  samples_<setting>.csv    x_0, x_1, kpe, kpe_early, kpe_late, memorized per sample
  summary.json             the numbers above, the settings and the training loss
"""

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - told to the user
    sys.exit("train_and_shape.py needs PyTorch: bash scripts/install-python.sh --torch")
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:  # pragma: no cover
    sys.exit("train_and_shape.py needs matplotlib: bash scripts/install-python.sh --torch")

import kinflow

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flow_examples  # noqa: E402


class TorchField:
    """The network as a kinflow field: called with t (a float) and X ([B, d], float32)."""

    def __init__(self, net):
        self.net = net

    def __call__(self, t, X):
        x = torch.from_numpy(X)  # shares X's memory; no copy
        with torch.no_grad():
            return self.net(torch.full((x.shape[0],), t, dtype=x.dtype), x)


def train(Y, iters, batch, seed, log_every):
    torch.manual_seed(seed)
    # v(t, x) = MLP([x; sin(w t); cos(w t)]), SiLU, w = pi (1, 2, 4, 8)
    net = flow_examples.FlowMLP(dim=2, hidden=64, depth=3)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iters)
    data = torch.from_numpy(np.asarray(Y, dtype=np.float32))
    losses = []

    def report(it, loss):
        losses.append(loss)
        if log_every and it % log_every == 0:
            print(f"  iteration {it:5d}/{iters}: loss {np.mean(losses[-log_every:]):.4f}", flush=True)

    flow_examples.train(net, data, iters, batch, opt, sched, report=report)
    return net, float(np.mean(losses[-max(1, iters // 10):]))


def save_samples(path, r, memorized):
    x = np.asarray(r.x)

    def write(f):
        w = csv.writer(f)
        w.writerow(["x_0", "x_1", "kpe", "kpe_early", "kpe_late", "memorized"])
        for i in range(x.shape[0]):
            w.writerow([repr(float(x[i, 0])), repr(float(x[i, 1])), repr(float(r.kpe[i])),
                        repr(float(r.kpe_early[i])), repr(float(r.kpe_late[i])), int(memorized[i])])

    flow_examples.write_atomically(path, write)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory (created)")
    p.add_argument("--quick", action="store_true", help="a short run (about 20 s): fewer iterations and samples")
    p.add_argument("--dataset", default="8gaussians", choices=list(kinflow.datasets.names))
    p.add_argument("--n-train", type=int, default=64, help="training points (default 64)")
    p.add_argument("--iters", type=int, default=None, help="training iterations (default 3000; --quick 400)")
    p.add_argument("--samples", type=int, default=None, help="samples per setting (default 2000; --quick 400)")
    p.add_argument("--steps", type=int, default=100, help="Euler steps (default 100)")
    p.add_argument("--alpha0", type=float, default=0.0, help="KTS launch boost (default 0)")
    p.add_argument("--beta0", type=float, default=0.025, help="KTS landing brake (default 0.025)")
    p.add_argument("--tau", type=float, default=0.4, help="KTS switch time (default 0.4)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    for name in ("n_train", "steps"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected an integer >= 1, got {getattr(a, name)}")
    iters = a.iters if a.iters is not None else (400 if a.quick else 3000)
    samples = a.samples if a.samples is not None else (400 if a.quick else 2000)
    if iters < 1 or samples < 2:
        p.error("--iters: expected >= 1; --samples: expected >= 2")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    os.makedirs(a.out, exist_ok=True)
    summary_path = os.path.join(a.out, "summary.json")
    if os.path.exists(summary_path):
        os.remove(summary_path)  # a stale summary never sits beside this run's files

    Y = np.asarray(kinflow.datasets.make(a.dataset, a.n_train, a.seed))
    held_out = np.asarray(kinflow.datasets.make(a.dataset, 2000, a.seed + 1000))
    print(f"training a flow-matching MLP on {a.n_train} points of {a.dataset} ({iters} iterations)")
    start = time.perf_counter()
    net, loss = train(Y, iters, 256, a.seed, max(1, iters // 5))
    train_seconds = time.perf_counter() - start

    x0 = np.asarray(kinflow.standard_normal(samples, 2, a.seed + 1), dtype=np.float32)
    kts = kinflow.KTS(alpha0=a.alpha0, beta0=a.beta0, tau=a.tau)
    fields = {
        "trained": (TorchField(net), None),
        "trained_kts": (TorchField(net), kts),
        "exact": (kinflow.EmpiricalField(Y.astype(np.float32)), None),
    }
    results, summary = {}, {}
    for name, (field, shaping) in fields.items():
        start = time.perf_counter()
        # tau: the energy split, the same for every setting (KTS's own tau otherwise)
        r = kinflow.sample(field, x0, solver="euler", steps=a.steps, kts=shaping, tau=a.tau,
                           trajectories=True)
        seconds = time.perf_counter() - start
        x = np.asarray(r.x, dtype=np.float64)
        m = kinflow.memorization(x, Y, bootstrap=1000, seed=a.seed)
        late = np.asarray(r.kpe_late)
        mem = np.asarray(m.memorized, dtype=bool)
        results[name] = r
        summary[name] = {
            "f_mem": m.fraction, "f_mem_ci": list(m.ci),
            "kpe_mean": float(np.mean(r.kpe)), "kpe_early_mean": float(np.mean(r.kpe_early)),
            "kpe_late_mean": float(np.mean(late)),
            "kpe_late_mean_memorized": float(np.mean(late[mem])) if mem.any() else None,
            "kpe_late_mean_other": float(np.mean(late[~mem])) if (~mem).any() else None,
            "sliced_w2_held_out": kinflow.sliced_wasserstein2(x, held_out, seed=a.seed),
            "n_samples": samples, "sample_seconds": seconds,
        }
        save_samples(os.path.join(a.out, f"samples_{name}.csv"), r, mem)
        print(f"{name:12s} F_mem {m.fraction:.3f} [{m.ci[0]:.3f}, {m.ci[1]:.3f}]  "
              f"mean KPE {summary[name]['kpe_mean']:.3f} (late {summary[name]['kpe_late_mean']:.3f})  "
              f"sliced W2 to held-out {summary[name]['sliced_w2_held_out']:.4f}  ({seconds:.2f} s)")

    # Trajectories coloured by KPE, one panel per setting, over the training points.
    shown = min(150, samples)
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.8), sharex=True, sharey=True, constrained_layout=True)
    kpe_all = np.concatenate([np.asarray(results[n].kpe)[:shown] for n in fields])
    norm = matplotlib.colors.Normalize(vmin=float(np.quantile(kpe_all, 0.02)),
                                       vmax=float(np.quantile(kpe_all, 0.98)))
    cmap = plt.get_cmap("viridis")
    titles = {"trained": "trained MLP", "trained_kts": f"trained MLP + KTS (β0 = {a.beta0:g}, τ = {a.tau:g})",
              "exact": "exact empirical field"}
    for ax, name in zip(axes, fields):
        traj = np.asarray(results[name].trajectory, dtype=np.float64)  # [steps + 1, B, 2]
        kpe = np.asarray(results[name].kpe)
        for i in range(shown):
            ax.plot(traj[:, i, 0], traj[:, i, 1], color=cmap(norm(kpe[i])), lw=0.6, alpha=0.8)
        ax.scatter(traj[-1, :shown, 0], traj[-1, :shown, 1], s=5, c="black", label="samples", zorder=3)
        ax.scatter(Y[:, 0], Y[:, 1], s=16, c="red", marker="x", label="training points", zorder=4)
        ax.set_title(f"{titles[name]}\nF_mem = {summary[name]['f_mem']:.2f}")
        ax.set_aspect("equal")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, label="KPE  ½∫‖v‖²dt",
                 shrink=0.8)
    png = os.path.join(a.out, "trajectories_by_kpe.png")
    flow_examples.save_figure(fig, png, dpi=100)

    record = {
        "settings": {"dataset": a.dataset, "n_train": a.n_train, "iters": iters, "samples": samples,
                     "steps": a.steps, "solver": "euler", "kpe_tau": a.tau,
                     "kts": {"alpha0": a.alpha0, "beta0": a.beta0, "tau": a.tau}, "seed": a.seed,
                     "quick": a.quick},
        "training": {"final_loss": loss, "seconds": train_seconds},
        "results": summary,
        "complete": True,
    }
    flow_examples.write_atomically(summary_path, lambda f: json.dump(record, f, indent=2))
    print(f"wrote {png} and {summary_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
