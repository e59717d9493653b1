#!/usr/bin/env python3
"""Train the flow-matching MLP of the digits study with PyTorch and export it for kinflow.

    .venv/bin/python examples/digits/train_digits_mlp.py [--out DIR] [--steps N] [--conditional]

Linear path x_t = (1 - t) x0 + t x1, x0 ~ N(0, I), x1 drawn from the 1500 training digits of
digits_data.py (centered, one global scale); the network regresses the conditional target
x1 - x0 (Adam, cosine learning rate, CPU, float32, one thread: about six minutes).

Network: input [x; sin(w t); cos(w t)] with w = pi (1, 2, 4, 8) (72 inputs), three hidden
layers of 256 with SiLU, 64 outputs: 166k parameters, 0.65 MB as float32.

With --conditional the network is class-conditional, v(t, x, c): the digit's class enters as
a one-hot code of 11 entries (10 classes and the null class, 82 inputs), and label dropout
(--drop, default 0.2) replaces it by the null class, so that classifier-free guidance can
combine the conditional and the unconditional field of one network. Its files are named
fm_cmlp_digits.* instead.

Writes, next to this script unless --out says otherwise:
  fm_mlp_digits.npz          the weights in kinflow's .npz MLP format (examples/models/README.md)
  fm_mlp_digits.json         how it was trained: settings, losses, seconds, and the fingerprint
                             of the training split (digits_study.py refuses weights trained on
                             other data)
  fm_mlp_digits_fixture.csv  24 inputs (t, x_0..x_63) and the velocities PyTorch computes for them
                             in double precision (v_0..v_63), for the fixture test
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover - told to the user
    sys.exit("train_digits_mlp.py needs PyTorch: bash scripts/install-python.sh --torch")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import digits_data  # noqa: E402
import flow_examples  # noqa: E402
from flow_examples import FREQUENCIES  # noqa: E402


class FlowMLP(flow_examples.FlowMLP):
    """The study's network: v(t, x) = MLP([x; sin(w t); cos(w t)]), SiLU between layers."""

    def __init__(self, classes=0):
        super().__init__(dim=digits_data.DIM, hidden=256, depth=3, activation="silu",
                         frequencies=FREQUENCIES, classes=classes)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)), help="output directory")
    p.add_argument("--steps", type=int, default=15000, help="Adam steps (default 15000)")
    p.add_argument("--batch", type=int, default=256, help="batch size (default 256)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--conditional", action="store_true",
                   help="a class-conditional network with label dropout (files fm_cmlp_digits.*)")
    p.add_argument("--drop", type=float, default=0.2, help="label dropout probability with --conditional")
    p.add_argument("--threads", type=int, default=1,
                   help="PyTorch threads (default 1: on a busy machine more threads ran slower)")
    a = p.parse_args(argv)
    for name in ("steps", "batch", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name}: expected an integer >= 1, got {getattr(a, name)}")
    if not (a.lr > 0 and math.isfinite(a.lr)):
        p.error(f"--lr: expected a finite number > 0, got {a.lr}")
    if not 0 < a.drop < 1:
        p.error(f"--drop: expected a probability in (0, 1), got {a.drop}")
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    digits = digits_data.load()
    train = torch.from_numpy(digits.train.astype(np.float32))
    held_out = torch.from_numpy(digits.held_out.astype(np.float32))
    classes = 10 if a.conditional else 0
    labels = torch.from_numpy(digits.train_labels) if a.conditional else None
    held_labels = torch.from_numpy(digits.held_out_labels) if a.conditional else None
    drop = a.drop if a.conditional else 0.0
    name = "fm_cmlp_digits" if a.conditional else "fm_mlp_digits"
    model = FlowMLP(classes)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.05)
    start = time.perf_counter()
    log, recent = [], []

    def report(step, loss):
        recent.append(loss)
        if step % 1000 == 0 or step == a.steps:
            with torch.no_grad():
                vgen = torch.Generator().manual_seed(12345)
                # (a conditional network: the loss given the class)
                held = float(np.mean([float(flow_examples.flow_matching_loss(model, held_out, 1024, vgen, held_labels))
                                      for _ in range(4)]))
                trn = float(np.mean([float(flow_examples.flow_matching_loss(model, train, 1024, vgen, labels))
                                     for _ in range(4)]))
            log.append({"step": step, "loss_recent": float(np.mean(recent)), "loss_train": trn,
                        "loss_held_out": held, "seconds": time.perf_counter() - start})
            recent.clear()
            print(f"step {step:6d}/{a.steps}  loss {log[-1]['loss_recent']:.4f}  train {trn:.4f}  "
                  f"held-out {held:.4f}  ({log[-1]['seconds']:.0f} s)", flush=True)

    flow_examples.train(model, train, a.steps, a.batch, opt, sched, gen, report, labels=labels, drop=drop)
    seconds = time.perf_counter() - start

    npz = os.path.join(a.out, name + ".npz")
    flow_examples.export_npz(model, npz)
    flow_examples.export_fixture(model, os.path.join(a.out, name + "_fixture.csv"), gen, n=24, scale=1.5)
    record = {
        "data_fingerprint": digits.fingerprint(),
        "architecture": {"inputs": "[x; sin(w t); cos(w t)" + ("; one_hot(c, 11)]" if classes else "]"),
                         "classes": classes, "label_dropout": drop, "frequencies": FREQUENCIES, "hidden": 256,
                         "depth": 3, "activation": "silu",
                         "parameters": int(sum(p.numel() for p in model.parameters()))},
        "training": {"steps": a.steps, "batch": a.batch, "lr": a.lr, "schedule": "one-cycle (5% warm-up, cosine)",
                     "seed": a.seed, "threads": a.threads, "seconds": seconds, "log": log},
        "torch": torch.__version__,
    }
    tmp = os.path.join(a.out, name + ".json.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, os.path.join(a.out, name + ".json"))
    print(f"trained in {seconds:.0f} s; wrote {npz} ({os.path.getsize(npz)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
