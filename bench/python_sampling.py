#!/usr/bin/env python3
"""kinflow.sample from Python against the PyTorch code people would write instead.

    .venv/bin/python bench/python_sampling.py [--threads 2] [--reps 5] [--quick]

Two comparisons, each measured in this run (medians of --reps timed runs after a warm-up):

1. **The exact empirical field** (kinflow.EmpiricalField) sampled with Euler, KTS
   (alpha0 = beta0 = 0.01, tau = 0.6) and left-Riemann KPE, against bench/pytorch_sampler.py
   (the softmax over the training set at every step, a Python loop over the steps) on the same
   inputs and thread count, in a subprocess of the same interpreter:
     - d = 2 double, N = 1024, B = 4096, 100 steps
     - d = 1024 float, N = 1024, B = 1024, 20 steps
   The samples and energies of both are compared (pytorch_sampler.py prints the differences).
2. **A PyTorch model as the field**: the committed TorchScript MLP
   (examples/models/fm_mlp_8gaussians.pt), B = 4096, Euler with 100 steps in float32, through
   kinflow.sample (the model wrapped as a callable f(t, X) -> tensor, per-sample KPE) against
   a plain PyTorch Euler loop on the same model that accumulates the same KPE, run in turn
   (3 x --reps pairs). The overhead is kinflow's median time over the loop's, minus 1; also
   printed: the time kinflow.sample spends outside the model (its own share, which the
   model's run-to-run noise does not blur). The final states are compared.
3. **kinflow.torch_field(module)**: a torch.nn.Module MLP for d = 784 ([x, t] -> 1024 ->
   1024 -> 784, SiLU, float32), B = 256, Euler with 100 steps, x0 a tensor (results as
   tensors), against the plain PyTorch Euler loop with the same KPE under inference mode, in
   turn (3 x --reps pairs). The overhead is the ratio of the medians minus 1.

4. **Classifier-free guidance on the exact class-conditional field**: kinflow.sample(field,
   x0, classes=C, cfg=3) on EmpiricalField(Y, labels=L) against the same algorithm in
   PyTorch (at every step two softmaxes over the training set: one over all points for v_u,
   one over the sample's class for v_c, by masking the others), Euler with the guided
   velocity and the left-Riemann KPE; N = 10^4 points in 10 classes, double, 50 steps:
   d = 2 with B = 1024, and d = 64 with B = 256. Both in this process, in turn.

Prints the build (kinflow.build_info, torch and its BLAS) and one "RESULT" line per case.
--quick: smaller sizes and fewer repetitions (a smoke run; its figures are not the ones to
report).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import kinflow

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def median_time(fn, reps):
    fn()  # warm-up, untimed
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def empirical_case(label, d, N, B, steps, scalar, threads, reps):
    dtype = np.float32 if scalar == "float" else np.float64
    Y = np.asarray(kinflow.standard_normal(N, d, 11), dtype=np.float64)
    x0 = np.asarray(kinflow.standard_normal(B, d, 12), dtype=np.float64)
    with tempfile.TemporaryDirectory(prefix="kinflow-pybench-") as tmp:
        np.savetxt(os.path.join(tmp, "train.csv"), Y, delimiter=",", fmt="%.17g")
        np.savetxt(os.path.join(tmp, "noise.csv"), x0, delimiter=",", fmt="%.17g")
        field = kinflow.EmpiricalField(Y.astype(dtype), threads=threads)
        kts = kinflow.KTS(alpha0=0.01, beta0=0.01, tau=0.6, k=3.0)
        xs = x0.astype(dtype)
        seconds, r = median_time(
            lambda: kinflow.sample(field, xs, solver="euler", steps=steps, kts=kts, kpe="left"), reps)
        np.savetxt(os.path.join(tmp, "kinflow_samples.csv"), np.asarray(r.x, dtype=np.float64),
                   delimiter=",", fmt="%.17g")
        np.savetxt(os.path.join(tmp, "kinflow_energy.csv"),
                   np.stack([r.kpe, r.kpe_early, r.kpe_late], 1).astype(np.float64), delimiter=",", fmt="%.17g")
        with open(os.path.join(tmp, "kinflow_time.txt"), "w") as f:
            f.write(f"{seconds}\n")
        p = subprocess.run([sys.executable, os.path.join(HERE, "pytorch_sampler.py"), "--dir", tmp,
                            "--steps", str(steps), "--scalar", scalar, "--threads", str(threads),
                            "--reps", str(reps), "--label", label, "--build", "python"],
                           capture_output=True, text=True)
    if p.returncode == 3:
        print(f"RESULT label={label} skipped: PyTorch is not installed")
        return None
    if p.returncode != 0:
        sys.exit(f"python_sampling.py: pytorch_sampler.py failed:\n{p.stderr}")
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("RESULT "))
    print(line, flush=True)
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def interleaved(plain_loop, through_kinflow, reps):
    """Runs the two in turn (a model's own time varies from run to run on a shared machine),
    after two warm-ups of each (TorchScript optimizes a model on its first runs). Returns the
    loop's and kinflow's times per repetition and the last outputs of each."""
    for _ in range(2):
        plain_loop()
        through_kinflow()
    t_loops, t_kins = [], []
    for _ in range(reps):
        start = time.perf_counter()
        loop_out = plain_loop()
        t_loops.append(time.perf_counter() - start)
        start = time.perf_counter()
        kin_out = through_kinflow()
        t_kins.append(time.perf_counter() - start)
    return t_loops, t_kins, loop_out, kin_out


def model_case(B, steps, threads, reps):
    import torch

    torch.set_num_threads(threads)
    model = torch.jit.load(os.path.join(ROOT, "examples", "models", "fm_mlp_8gaussians.pt"))
    model.eval()
    x0 = np.asarray(kinflow.standard_normal(B, 2, 5), dtype=np.float32)

    inside = [0.0]  # seconds spent in the model during one kinflow.sample

    def field(t, X):
        start = time.perf_counter()
        x = torch.from_numpy(X)
        with torch.no_grad():
            v = model(torch.full((x.shape[0],), t, dtype=torch.float32), x)
        inside[0] += time.perf_counter() - start
        return v

    def plain_loop():
        """What a PyTorch user writes: Euler, KPE = 1/2 sum h |v|^2 over the stages."""
        with torch.no_grad():
            x = torch.from_numpy(x0.copy())
            kpe = torch.zeros(B, dtype=torch.float32)
            h = 1.0 / steps
            for i in range(steps):
                v = model(torch.full((B,), i * h, dtype=torch.float32), x)
                kpe += 0.5 * h * (v * v).sum(dim=1)
                x = x + h * v
            return x.numpy(), kpe.numpy()

    def through_kinflow():
        inside[0] = 0.0
        return kinflow.sample(field, x0, solver="euler", steps=steps)

    insides = []  # seconds in the model during each timed kinflow.sample

    def timed_kinflow():
        r = through_kinflow()
        insides.append(inside[0])
        return r

    t_loops, t_kins, (x_loop, kpe_loop), r = interleaved(plain_loop, timed_kinflow, reps)
    outside = [t - i for t, i in zip(t_kins, insides[2:])]  # (the first two are the warm-ups)
    t_loop, t_kin = statistics.median(t_loops), statistics.median(t_kins)
    x_kin = np.asarray(r.x)
    diff = float(np.max(np.abs(x_kin - x_loop)))
    ediff = float(np.max(np.abs(np.asarray(r.kpe) - kpe_loop) / np.maximum(np.abs(kpe_loop), 1.0)))
    print("RESULT " + " ".join([
        "label=torch_model_field", "scalar=float", f"B={B}", f"steps={steps}", f"threads={threads}",
        f"kinflow_s={t_kin:.6g}", f"torch_loop_s={t_loop:.6g}", f"overhead={t_kin / t_loop - 1:+.3f}",
        f"kinflow_outside_model_s={statistics.median(outside):.3g}",
        f"outside_share={statistics.median(outside) / t_kin:.3f}",
        f"max_sample_diff={diff:.3g}", f"max_energy_reldiff={ediff:.3g}"]), flush=True)
    return t_kin / t_loop - 1


def module_case(d, width, B, steps, threads, reps):
    """kinflow.torch_field(module) against the plain PyTorch Euler loop on the same module."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class MLP(torch.nn.Module):
        """v(t, x): [x, t] -> width -> width -> d, SiLU (the form of a flow-matching MLP)."""

        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(d + 1, width), torch.nn.SiLU(),
                                           torch.nn.Linear(width, width), torch.nn.SiLU(),
                                           torch.nn.Linear(width, d))

        def forward(self, t, x):
            return self.net(torch.cat([x, t[:, None]], dim=1))

    model = MLP().eval()
    x0 = torch.from_numpy(np.asarray(kinflow.standard_normal(B, d, 6), dtype=np.float32))
    field = kinflow.torch_field(model)

    def plain_loop():
        """What a PyTorch user writes: Euler with the per-sample KPE, under inference mode."""
        with torch.inference_mode():
            x, kpe, h = x0.clone(), torch.zeros(B), 1.0 / steps
            for i in range(steps):
                v = model(torch.full((B,), i * h), x)
                kpe += 0.5 * h * (v * v).sum(dim=1)
                x = x + h * v
            return x, kpe

    def through_kinflow():
        return kinflow.sample(field, x0, solver="euler", steps=steps)

    t_loops, t_kins, (x_loop, kpe_loop), r = interleaved(plain_loop, through_kinflow, reps)
    t_loop, t_kin = statistics.median(t_loops), statistics.median(t_kins)
    diff = float((r.x - x_loop).abs().max())
    ediff = float(((r.kpe - kpe_loop).abs() / kpe_loop.abs().clamp(min=1.0)).max())
    print("RESULT " + " ".join([
        "label=torch_field_mlp", "scalar=float", f"d={d}", f"width={width}", f"B={B}", f"steps={steps}",
        f"threads={threads}", f"kinflow_s={t_kin:.6g}", f"torch_loop_s={t_loop:.6g}",
        f"overhead={t_kin / t_loop - 1:+.3f}", f"max_sample_diff={diff:.3g}",
        f"max_energy_reldiff={ediff:.3g}"]), flush=True)
    return t_kin / t_loop - 1


def cfg_case(d, N, B, steps, w, threads, reps):
    """Guided Euler sampling of the exact class-conditional field: kinflow against PyTorch."""
    import torch

    torch.set_num_threads(threads)
    K = 10
    rng = np.random.default_rng(9)
    centres = 2.0 * rng.normal(size=(K, d))
    labels = np.arange(N) % K
    Y = centres[labels] + 0.5 * rng.normal(size=(N, d))
    x0 = rng.normal(size=(B, d))
    C = np.arange(B) % K
    field = kinflow.EmpiricalField(Y, labels=labels, threads=threads, pruning="off")
    y, lab, c = torch.from_numpy(Y), torch.from_numpy(labels), torch.from_numpy(C)
    other_class = lab[None, :] != c[:, None]  # B x N: the points outside each sample's class

    def plain_loop():
        """What a PyTorch user writes: two softmaxes per step, Euler, left-Riemann KPE."""
        with torch.inference_mode():
            x, kpe, h = torch.from_numpy(x0.copy()), torch.zeros(B, dtype=torch.float64), 1.0 / steps
            for i in range(steps):
                t = i * h
                s = max(1.0 - t, 1e-6)
                logits = -torch.cdist(x, t * y).pow(2) / (2 * s * s)
                vu = (torch.softmax(logits, dim=1) @ y - x) / s
                vc = (torch.softmax(logits.masked_fill(other_class, -float("inf")), dim=1) @ y - x) / s
                v = vu + w * (vc - vu)
                kpe += 0.5 * h * (v * v).sum(dim=1)
                x = x + h * v
            return x.numpy(), kpe.numpy()

    def through_kinflow():
        return kinflow.sample(field, x0, solver="euler", steps=steps, classes=C, cfg=w, kpe="left")

    t_loops, t_kins, (x_loop, kpe_loop), r = interleaved(plain_loop, through_kinflow, reps)
    t_loop, t_kin = statistics.median(t_loops), statistics.median(t_kins)
    diff = float(np.max(np.abs(np.asarray(r.x) - x_loop)))
    ediff = float(np.max(np.abs(np.asarray(r.kpe) - kpe_loop) / np.maximum(np.abs(kpe_loop), 1.0)))
    print("RESULT " + " ".join([
        f"label=cfg_d{d}", "scalar=double", f"N={N}", f"classes={K}", f"B={B}", f"steps={steps}", f"w={w}",
        f"threads={threads}", f"kinflow_s={t_kin:.6g}", f"torch_s={t_loop:.6g}", f"ratio={t_kin / t_loop:.3f}",
        f"max_sample_diff={diff:.3g}", f"max_energy_reldiff={ediff:.3g}"]), flush=True)
    return t_kin / t_loop


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=0, help="threads for kinflow and torch (0: all cores)")
    p.add_argument("--reps", type=int, default=5, help="timed runs per case (median reported)")
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repetition (smoke run)")
    a = p.parse_args()
    threads = a.threads or os.cpu_count() or 1
    reps = 1 if a.quick else max(1, a.reps)
    try:
        import torch
        torch_info = f"torch {torch.__version__}"
    except ImportError:
        torch_info = "no torch"
    blas = "unknown"
    try:
        with open("/proc/self/maps") as f:
            maps = f.read()
        blas = next((n for n in ("openblas", "mkl", "blis", "atlas") if n in maps), "reference")
    except OSError:
        pass
    print(f"build: kinflow {kinflow.__version__} ({kinflow.build_info}); {torch_info} (BLAS: {blas}); "
          f"threads {threads}; {'quick' if a.quick else 'full'} run", flush=True)
    if a.quick:
        empirical_case("d2_double", 2, 256, 512, 20, "double", threads, reps)
        empirical_case("d1024_float", 1024, 128, 128, 5, "float", threads, reps)
    else:
        empirical_case("d2_double", 2, 1024, 4096, 100, "double", threads, reps)
        empirical_case("d1024_float", 1024, 1024, 1024, 20, "float", threads, reps)
    if torch_info != "no torch":
        model_case(512 if a.quick else 4096, 20 if a.quick else 100, threads, 1 if a.quick else 3 * reps)
        module_case(784, 1024, 64 if a.quick else 256, 10 if a.quick else 100, threads, 1 if a.quick else 3 * reps)
        n_cfg = 2000 if a.quick else 10000
        cfg_case(2, n_cfg, 256 if a.quick else 1024, 10 if a.quick else 50, 3.0, threads, reps)
        cfg_case(64, n_cfg, 64 if a.quick else 256, 10 if a.quick else 50, 3.0, threads, reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
