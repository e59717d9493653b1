#!/usr/bin/env python3
"""The exact empirical field of a training set sharded over MPI ranks, with mpi4py.

    mpirun -np 4 .venv/bin/python examples/python/mpi_shards.py [--n-train 20000] [--d 16]
        [--samples 256] [--steps 20] [--classes K [--cfg W]] [--check]

Every rank holds only its shard of the training set (here: rows rank, rank + P, ...) and
builds a kinflow.EmpiricalField on it. At each evaluation every rank computes the partial
posterior state of the same queries over its shard, the ranks all-gather the states (B × (d +
4) numbers each), and every rank merges them in rank order -- so every rank holds the same
bits -- and finishes the velocity from the merged state. Wrapped as a Python callable, that is
a field kinflow.sample integrates like any other, with the per-sample KPE.

--classes K: the points carry labels (point i has class i mod K, and its class moves it), each
rank builds the labelled field of its shard, and the samples (class j mod K) are drawn with
classifier-free guidance of scale --cfg (default 2): every evaluation all-gathers the
per-class partial states (EmpiricalField.partial_states), and the conditional callable
f(t, X, c) finishes each row from its class's merged state (all points for c = -1).

--check: rank 0 also builds the whole field and reports the largest relative difference of
the velocity, log density and divergence at a few times, and of the samples and energies of
the whole solve (the test suite runs it on 2 ranks and asks for 1e-12).
"""

import argparse
import sys

import numpy as np
from mpi4py import MPI

import kinflow


class ShardedField:
    """v(t, X) of the whole training set from the ranks' shards: one all-gather of the
    partial states per evaluation."""

    def __init__(self, shard, comm, n_total):
        self.local = kinflow.EmpiricalField(shard)
        self.comm = comm
        self.n_total = n_total

    def state(self, t, X):
        states = self.comm.allgather(self.local.partial_state(t, X))  # in rank order
        return kinflow.merge_states(states)

    def __call__(self, t, X):
        return self.local.velocity_from(t, X, self.state(t, X))

    def log_density(self, t, X):
        return self.local.log_density_from(t, self.state(t, X), n=self.n_total)

    def divergence(self, t, X):
        return self.local.divergence_from(t, self.state(t, X))


class ShardedClassField:
    """v(t, X, c) of the whole labelled training set from the ranks' labelled shards: the
    field of each row's class c (all points for c = -1), one all-gather per evaluation."""

    def __init__(self, shard, labels, classes, comm):
        self.local = kinflow.EmpiricalField(shard, labels=labels, classes=classes)
        self.comm = comm

    def __call__(self, t, X, c):
        _, by_class = self.local.partial_states(t, X, c, unconditional=False)  # v_c alone
        return self.local.velocity_from(t, X, kinflow.merge_states(self.comm.allgather(by_class)))


def relative(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--classes", type=int, default=0, help="label the points with K classes and guide (0: no labels)")
    p.add_argument("--cfg", type=float, default=2.0, help="guidance scale with --classes")
    p.add_argument("--check", action="store_true", help="compare with the whole field on rank 0")
    a = p.parse_args()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()

    # Every rank draws the same data and noise (seeded) and keeps its shard of the data.
    Y = np.asarray(kinflow.standard_normal(a.n_train, a.d, 1)) * 0.5 + 1.0
    x0 = np.asarray(kinflow.standard_normal(a.samples, a.d, 2))
    if a.classes < 0:
        p.error(f"--classes: expected a number of classes >= 0, got {a.classes}")
    if a.classes > 0:
        return labelled(a, Y, x0, comm)
    field = ShardedField(Y[rank::size], comm, a.n_train)

    r = kinflow.sample(field, x0, solver="heun", steps=a.steps)
    if rank == 0:
        print(f"mpi_shards.py: {size} rank(s), N = {a.n_train} (about {a.n_train // size} per rank), "
              f"d = {a.d}, B = {a.samples}, Heun {a.steps} steps: KPE mean {float(np.mean(r.kpe)):.6f}")

    worst = 0.0
    if a.check:
        whole = kinflow.EmpiricalField(Y) if rank == 0 else None
        for t in (0.0, 0.4, 0.9, 1.0):
            sharded = (field(t, x0), field.log_density(t, x0), field.divergence(t, x0))  # collective
            if rank == 0:
                ref = (whole.velocity(t, x0), whole.log_density(t, x0), whole.divergence(t, x0))
                errs = [relative(s, w) for s, w in zip(sharded, ref)]
                worst = max(worst, *errs)
                print(f"  t = {t}: velocity {errs[0]:.2e}, log density {errs[1]:.2e}, divergence {errs[2]:.2e}")
        if rank == 0:
            w = kinflow.sample(whole, x0, solver="heun", steps=a.steps)
            errs = (relative(r.x, w.x), relative(r.kpe, w.kpe))
            worst = max(worst, *errs)
            print(f"  whole solve: samples {errs[0]:.2e}, KPE {errs[1]:.2e}; largest relative difference {worst:.2e}")
    worst = comm.bcast(worst, root=0)
    return 0 if worst <= 1e-12 else 1


def labelled(a, Y, x0, comm):
    """The --classes run: guided sampling of the sharded class-conditional field."""
    rank, size = comm.Get_rank(), comm.Get_size()
    labels = np.arange(a.n_train) % a.classes
    Y = Y + 1.5 * labels[:, None]  # each class shifted along the diagonal
    C = np.arange(a.samples) % a.classes
    field = ShardedClassField(Y[rank::size], labels[rank::size], a.classes, comm)
    r = kinflow.sample(field, x0, solver="heun", steps=a.steps, classes=C, cfg=a.cfg)
    if rank == 0:
        print(f"mpi_shards.py: {size} rank(s), N = {a.n_train} in {a.classes} classes, d = {a.d}, B = {a.samples}, "
              f"Heun {a.steps} steps, CFG {a.cfg}: KPE mean {float(np.mean(r.kpe)):.6f} "
              f"(guidance part {float(np.mean(r.kpe_guidance)):.6f})")
    worst = 0.0
    if a.check and rank == 0:
        whole = kinflow.EmpiricalField(Y, labels=labels)
        w = kinflow.sample(whole, x0, solver="heun", steps=a.steps, classes=C, cfg=a.cfg)
        errs = (relative(r.x, w.x), relative(r.kpe, w.kpe), relative(r.kpe_guidance, w.kpe_guidance))
        worst = max(errs)
        print(f"  whole guided solve: samples {errs[0]:.2e}, KPE {errs[1]:.2e}, guidance part {errs[2]:.2e}; "
              f"largest relative difference {worst:.2e}")
    worst = comm.bcast(worst, root=0)
    return 0 if worst <= 1e-12 else 1


if __name__ == "__main__":
    sys.exit(main())
