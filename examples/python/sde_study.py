"""Does noise reduce memorization? The flow SDE against its ODE on exact fields.

For two toy sets (moons, 8gaussians; 300 training points, 1000 held out) and scikit-learn's
8x8 digits (the split of examples/digits/: 1500 training images, 297 held out), with the
exact empirical field (which memorizes) and a smoothed field (a Gaussian of std s at every
training point), sample the SDE dx = [v + w grad log p] dt + sqrt(2w) dW with the "sigma"
diffusion w = n (1 - t) over a sweep of norms n (0 = the probability-flow ODE), sde-heun on a
uniform grid with the denoiser jump as its last step, and record per setting: F_mem (copies,
d1/d2 < 1/3, with its bootstrap CI), the mean distance to the nearest held-out point, and the
three energies of the paths (kinetic, drift, control; docs/math.md section 11.5).

    .venv/bin/python examples/python/sde_study.py --out sde-out            # a few minutes
    .venv/bin/python examples/python/sde_study.py --out sde-out --quick    # seconds

Writes OUT/summary.json (every number) and OUT/sde_study.png.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import kinflow

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flow_examples  # noqa: E402  (save_figure, write_atomically)


def nearest_distance(x, ref):
    """Mean over the rows of x of the distance to the nearest row of ref, and its standard error."""
    out = np.empty(x.shape[0])
    for i in range(0, x.shape[0], 256):
        d2 = ((x[i:i + 256, None, :] - ref[None, :, :]) ** 2).sum(-1)
        out[i:i + 256] = np.sqrt(d2.min(1))
    return float(out.mean()), float(out.std(ddof=1) / np.sqrt(out.size))


def toy(name, n_train, n_heldout):
    return kinflow.datasets.make(name, n_train, 1), kinflow.datasets.make(name, n_heldout, 2)


def digits():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "digits"))
    import digits_data  # noqa: E402

    d = digits_data.load()
    return d.train, d.held_out


def run(args):
    sets = [("moons", *toy("moons", 300, 1000), 0.05), ("8gaussians", *toy("8gaussians", 300, 1000), 0.05)]
    if not args.no_digits:
        sets.append(("digits", *digits(), 0.3))
    norms = [0.0, 0.5, 2.0] if args.quick else [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]
    results = []
    for name, train, heldout, s in sets:
        B = args.samples if train.shape[1] == 2 else args.samples // 4
        x0 = np.asarray(kinflow.standard_normal(B, train.shape[1], 7))
        for field_name, field in (("empirical", kinflow.EmpiricalField(train)),
                                  (f"smoothed:{s}", kinflow.smoothed_empirical(train, s))):
            for n in norms:
                t0 = time.time()
                r = kinflow.sample(field, x0, solver="sde-heun", steps=args.steps, diffusion="sigma",
                                   diffusion_norm=n, last_step="mean", noise_seed=3)
                x = np.asarray(r.x)
                m = kinflow.memorization(x, train, bootstrap=1000, seed=0)
                dist, dist_se = nearest_distance(x, heldout)
                row = dict(dataset=name, field=field_name, norm=n, samples=B, f_mem=float(m.fraction),
                           f_mem_ci=[float(c) for c in m.ci], heldout_distance=dist, heldout_distance_se=dist_se,
                           kpe=float(np.mean(r.kpe)), drift_energy=float(np.mean(r.drift_energy)),
                           control_energy=float(np.mean(r.control_energy)), seconds=time.time() - t0)
                results.append(row)
                print(f"{name:10s} {field_name:14s} norm {n:4.2f}: F_mem {row['f_mem']:.3f} "
                      f"[{m.ci[0]:.3f}, {m.ci[1]:.3f}], held-out distance {row['heldout_distance']:.4f}, "
                      f"KPE {row['kpe']:.3f}, drift {row['drift_energy']:.3f}, control {row['control_energy']:.3f}",
                      flush=True)
    return results, sets, norms


def figure(results, sets, norms, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s[0] for s in sets]
    fig, axes = plt.subplots(3, len(names), figsize=(4.4 * len(names), 10), squeeze=False)
    pos = np.arange(len(norms))  # the norms at equal spacing, labelled
    for j, name in enumerate(names):
        for field, style in (("empirical", "-o"), ("smoothed", "--s")):
            rows = [r for r in results if r["dataset"] == name and r["field"].startswith(field)]
            label = rows[0]["field"]
            ax = axes[0][j]
            ax.plot(pos, [r["f_mem"] for r in rows], style, label=label)
            ax.fill_between(pos, [r["f_mem_ci"][0] for r in rows], [r["f_mem_ci"][1] for r in rows], alpha=0.2)
            axes[1][j].errorbar(pos, [r["heldout_distance"] for r in rows],
                                yerr=[2 * r["heldout_distance_se"] for r in rows], fmt=style, capsize=3, label=label)
            for key, color in (("kpe", "C0"), ("drift_energy", "C1"), ("control_energy", "C2")):
                keep = [i for i, r in enumerate(rows) if r[key] > 0]  # log scale: the ODE has no control
                axes[2][j].plot(pos[keep], [rows[i][key] for i in keep], style, color=color,
                                label=f"{key.replace('_', ' ')} ({field})")
        axes[0][j].set_title(name)
        axes[0][j].set_ylabel("F_mem (d1/d2 < 1/3), 95 % CI")
        axes[1][j].set_ylabel("distance to held-out (mean ± 2 SE)")
        axes[2][j].set_ylabel("mean energy")
        axes[2][j].set_yscale("log")
        for i in range(3):
            axes[i][j].set_xticks(pos)
            axes[i][j].set_xticklabels([f"{n:g}" for n in norms])
        axes[2][j].set_xlabel("diffusion norm n (w = n(1 - t); 0 = the ODE)")
        axes[0][j].legend(fontsize=8)
        axes[2][j].legend(fontsize=7)
    fig.suptitle("sde-heun, sigma diffusion, denoiser last step: memorization, fidelity and energies")
    fig.tight_layout()
    flow_examples.save_figure(fig, path, 110)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="sde-out")
    p.add_argument("--samples", type=int, default=2000, help="toy samples (digits: a quarter)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--quick", action="store_true", help="three norms, 400 samples, 40 steps")
    p.add_argument("--no-digits", action="store_true", help="the toy sets only (no scikit-learn)")
    a = p.parse_args()
    if a.quick:
        a.samples, a.steps = 400, 40
    os.makedirs(a.out, exist_ok=True)
    results, sets, norms = run(a)
    figure(results, sets, norms, os.path.join(a.out, "sde_study.png"))
    settings = dict(solver="sde-heun", diffusion="sigma", last_step="mean", steps=a.steps, noise_seed=3,
                    samples=a.samples, norms=norms, kinflow_version=kinflow.__version__)
    flow_examples.write_atomically(os.path.join(a.out, "summary.json"),
                                   lambda f: json.dump(dict(settings=settings, results=results), f, indent=1))


if __name__ == "__main__":
    main()
