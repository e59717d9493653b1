#!/usr/bin/env python3
"""Train a class-conditional flow-matching MLP on labelled 8gaussians, with label dropout,
and export it for kinflow.

The training set is --n-train points of 8gaussians (train_fm_mlp.py's recipe) with each
point's component as its class (8 classes). The network v(t, x, c) takes the class as a
one-hot code with a null class; label dropout replaces the class by the null class (-1)
with probability --drop, so that one network gives both the conditional field v_c and the
unconditional field v_u that classifier-free guidance combines,
v_u + w (v_c - v_u). CPU only, well under a minute.

Writes, next to this script unless --out says otherwise:
  fm_cmlp_8gaussians_train.csv   the training set (x_0, x_1)
  fm_cmlp_8gaussians_labels.txt  its classes, one per line (kinflow-sample --labels)
  fm_cmlp_8gaussians.npz         weights for kinflow::load_mlp_field, with `classes` = 8
  fm_cmlp_8gaussians.pt          the same model as TorchScript:
                                 forward(t[B], x[B, 2], c[B] or None) -> v[B, 2]
  fm_cmlp_8gaussians_fixture.csv inputs (t, x, c) and the velocities PyTorch computes for
                                 them in double precision, for kinflow's tests

Sample it with guidance:
  kinflow-sample --model examples/models/fm_cmlp_8gaussians.npz \\
      --train examples/models/fm_cmlp_8gaussians_train.csv \\
      --labels examples/models/fm_cmlp_8gaussians_labels.txt --class 3 --cfg 2
"""

import argparse
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import flow_examples  # noqa: E402
from train_fm_mlp import save_torchscript  # noqa: E402


def labelled_eight_gaussians(n, gen):
    k = torch.randint(0, 8, (n,), generator=gen)
    theta = 2.0 * math.pi * k.double() / 8.0
    centres = 4.0 * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    return (centres + 0.5 * torch.randn(n, 2, generator=gen, dtype=torch.float64)) / 1.414, k


class ConditionalFlowMLP(flow_examples.FlowMLP):
    """flow_examples.FlowMLP under this script's own name, which its TorchScript archive
    records (__torch__.ConditionalFlowMLP)."""


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=HERE)
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--n-train", type=int, default=64)
    p.add_argument("--drop", type=float, default=0.2, help="label dropout probability")
    p.add_argument("--seed", type=int, default=11)
    a = p.parse_args()
    if not 0 < a.drop < 1:
        p.error(f"--drop: expected a probability in (0, 1), got {a.drop}")
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    train, labels = labelled_eight_gaussians(a.n_train, gen)
    base = os.path.join(a.out, "fm_cmlp_8gaussians")

    def write_train(f):
        f.write("x_0,x_1\n")
        for row in train.tolist():
            f.write(f"{row[0]!r},{row[1]!r}\n")

    flow_examples.write_atomically(base + "_train.csv", write_train)
    flow_examples.write_atomically(base + "_labels.txt", lambda f: f.writelines(f"{int(c)}\n" for c in labels))

    model = ConditionalFlowMLP(2, a.hidden, 2, "silu", flow_examples.FREQUENCIES, classes=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.steps)

    def report(step, loss):
        if (step - 1) % 1000 == 0 or step == a.steps:
            print(f"step {step - 1:5d}  loss {loss:.4f}")

    flow_examples.train(model, train.float(), a.steps, a.batch, opt, sched, gen, report, labels=labels, drop=a.drop)

    flow_examples.export_npz(model, base + ".npz")
    save_torchscript(model, base + ".pt")
    flow_examples.export_fixture(model, base + "_fixture.csv", gen, n=54, scale=2.5, x_name="x{}", v_name="v{}")
    for suffix in (".npz", ".pt"):
        print(f"fm_cmlp_8gaussians{suffix}: {os.path.getsize(base + suffix)} bytes")


if __name__ == "__main__":
    main()
