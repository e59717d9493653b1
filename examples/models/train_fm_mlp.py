#!/usr/bin/env python3
"""Train a small flow-matching MLP on 8gaussians and export it for kinflow.

Linear path x_t = (1 - t) x0 + t x1, x0 ~ N(0, I), x1 drawn from a fixed training set of
--n-train points of 8gaussians (FFJORD recipe: centres 4 * (cos 2pi k/8, sin 2pi k/8),
noise std 0.5, divided by 1.414); the network regresses the conditional target x1 - x0.
A finite training set, as in the paper, so that memorization can be measured against it.
CPU only, well under a minute.

Writes, next to this script unless --out says otherwise:
  fm_mlp_8gaussians_train.csv the training set (x_0, x_1), for memorization metrics and
                              the exact empirical field of the same data
  fm_mlp_8gaussians.npz       weights for kinflow::mlp_field (float32, a few KB)
  fm_mlp_8gaussians.pt        the same model as TorchScript: forward(t[B], x[B, 2]) -> v[B, 2]
  fm_mlp_8gaussians_fixture.csv
                              inputs (t, x) and the velocities PyTorch computes for them in
                              double precision, for kinflow's tests
  gelu_raw_time.npz / gelu_raw_time_fixture.csv
                              an untrained net with GELU and time as a raw input feature, same
                              purpose (covers the other time mode and the exact GELU)

Weight-file convention (read by kinflow::load_mlp_field, see include/kinflow/models/mlp_npz.hpp):
  layers.<i>.weight   (out_i, in_i)  float32 or float64, i = 0 .. L-1 (PyTorch's nn.Linear layout)
  layers.<i>.bias     (out_i,)
  activation          uint8 ASCII: "silu", "relu", "tanh" or "gelu" (exact, erf form); applied
                      after every layer but the last
  time_embedding      uint8 ASCII: "raw" (input = [x; t]) or "sinusoidal"
                      (input = [x; sin(w_0 t) .. sin(w_{K-1} t); cos(w_0 t) .. cos(w_{K-1} t)])
  time_frequencies    (K,) float64, the w_k above (only with "sinusoidal")
Writing it for a PyTorch model whose nn.Linear layers sit in a ModuleList called `layers`
takes two lines (numpy str values are read as well as uint8 ASCII bytes):
  arrays = {k: v.detach().numpy() for k, v in model.state_dict().items()}
  numpy.savez("model.npz", **arrays, activation="silu", time_embedding="raw")
"""

import argparse
import math
import os
import sys
import zipfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import flow_examples  # noqa: E402


def eight_gaussians(n, gen):
    k = torch.randint(0, 8, (n,), generator=gen).double()
    theta = 2.0 * math.pi * k / 8.0
    centres = 4.0 * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    return (centres + 0.5 * torch.randn(n, 2, generator=gen, dtype=torch.float64)) / 1.414


class FlowMLP(flow_examples.FlowMLP):
    """flow_examples.FlowMLP under this script's own name, which its TorchScript archive
    records (__torch__.FlowMLP)."""


def save_torchscript(model, path):
    # TorchScript's *.debug_pkl records hold the absolute path of this script; the archive is
    # rewritten without them (they only serve tracebacks) so that it does not depend on where
    # it was made. The module loads the same without them.
    tmp = path + ".tmp"
    torch.jit.script(model).save(tmp)
    with zipfile.ZipFile(tmp) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if not info.filename.endswith(".debug_pkl"):
                zout.writestr(info, zin.read(info.filename))
    os.remove(tmp)
    check = torch.jit.load(path)
    t, x = torch.rand(4), torch.randn(4, 2)
    assert torch.equal(check(t, x), model(t, x))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--n-train", type=int, default=32)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    train = eight_gaussians(a.n_train, gen)
    base = os.path.join(a.out, "fm_mlp_8gaussians")
    with open(base + "_train.csv", "w") as f:
        f.write("x_0,x_1\n")
        for row in train.tolist():
            f.write(f"{row[0]!r},{row[1]!r}\n")
    train = train.float()

    model = FlowMLP(2, a.hidden, 2, "silu", flow_examples.FREQUENCIES)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.steps)

    def report(step, loss):
        if (step - 1) % 500 == 0 or step == a.steps:
            print(f"step {step - 1:5d}  loss {loss:.4f}")

    flow_examples.train(model, train, a.steps, a.batch, opt, sched, gen, report)

    flow_examples.export_npz(model, base + ".npz")
    save_torchscript(model, base + ".pt")
    flow_examples.export_fixture(model, base + "_fixture.csv", gen, n=48, scale=2.5, x_name="x{}", v_name="v{}")

    torch.manual_seed(a.seed + 1)
    gelu = FlowMLP(2, 8, 2, "gelu", [])
    flow_examples.export_npz(gelu, os.path.join(a.out, "gelu_raw_time.npz"))
    flow_examples.export_fixture(gelu, os.path.join(a.out, "gelu_raw_time_fixture.csv"), gen, n=16, scale=2.5,
                                 x_name="x{}", v_name="v{}")
    for name in ("fm_mlp_8gaussians.npz", "fm_mlp_8gaussians.pt", "gelu_raw_time.npz"):
        print(f"{name}: {os.path.getsize(os.path.join(a.out, name))} bytes")


if __name__ == "__main__":
    main()
