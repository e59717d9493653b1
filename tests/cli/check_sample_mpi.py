#!/usr/bin/env python3
"""kinflow-sample under mpirun: the outputs of 2 ranks equal those of one process.

    python3 tests/cli/check_sample_mpi.py --sample EXE --mpiexec MPIEXEC [--mpiexec-flag F ...] --work DIR

The reference is one process without mpirun and --shard samples (the plain empirical field
over every sample). Then `mpirun -np 2` with --shard train (the training set sharded, one
reduction per evaluation), with --shard samples, and with no --shard (train, since N >= B):
every number of samples.csv (and of profile.csv, the per-step energy) equals the reference's within 1e-12 relative (|a - b| <=
1e-12 max(1, |b|); the nearest-neighbour distances are differences of nearly equal numbers,
hence the unit floor), the text columns are equal, summary.json records the ranks and the
shard mode and the pruning counts of both ranks, and only rank 0 writes. The same for a stochastic solve (sde-euler): each sample's
noise is its own counter-based stream, so sharding the samples or the training set changes
neither the paths nor the drift and control energies. The same for a guided solve of the
labelled set (--class, --cfg): its energy parts and exact log-likelihood. A training file that cannot be read makes the run fail
with one message (not one per rank), and no summary.
"""

import argparse
import csv
import json
import os
import subprocess
import sys

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def run(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=240, env=env)
    return p.returncode, p.stdout, p.stderr


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def compare(ref_dir, dir_, label):
    compare_table(ref_dir, dir_, label, "samples.csv")
    if os.path.exists(os.path.join(ref_dir, "profile.csv")):
        compare_table(ref_dir, dir_, label + ", profile.csv", "profile.csv")


def compare_table(ref_dir, dir_, label, name):
    a, b = rows(os.path.join(dir_, name)), rows(os.path.join(ref_dir, name))
    check(a[0] == b[0], f"{label}: same columns ({a[0]} vs {b[0]})")
    check(len(a) == len(b), f"{label}: same number of rows ({len(a)} vs {len(b)})")
    worst = 0.0
    for ra, rb in zip(a[1:], b[1:]):
        for name, x, y in zip(a[0], ra, rb):
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                check(x == y, f"{label}: column {name}: {x} vs {y}")
                continue
            err = abs(fx - fy) / max(1.0, abs(fy))
            worst = max(worst, err)
            check(err <= 1e-12, f"{label}: column {name}: {x} vs {y} (relative {err:.3g})")
    print(f"{label}: largest relative difference {worst:.3g}")
    if name == "samples.csv":
        with open(os.path.join(ref_dir, "train.csv")) as f1, open(os.path.join(dir_, "train.csv")) as f2:
            check(f1.read() == f2.read(), f"{label}: train.csv differs")


def check_pruning(ref_dir, summary, label):
    """The pruning counts of 2 ranks are those of both: each rank makes every evaluation of
    the solve (over its shard of the training set, or over all of it for its half of the
    samples), so the evaluations are twice the single process's; one share per step."""
    with open(os.path.join(ref_dir, "summary.json")) as f:
        ref = json.load(f)["pruning"]
    got = summary.get("pruning")
    check(got is not None, f"{label}: summary.json has the pruning counts")
    if got is None:
        return
    check(got["evaluations"] == 2 * ref["evaluations"],
          f"{label}: evaluations {got['evaluations']} = 2 x {ref['evaluations']} (one per rank)")
    by_step = got["touched_share_by_step"]
    check(len(by_step) == len(ref["touched_share_by_step"]) and all(0 < x <= 1 for x in by_step),
          f"{label}: touched_share_by_step {by_step}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", required=True)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--mpiexec-flag", action="append", default=[])
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    common = ["--dataset", "moons", "--n-train", "300", "--samples", "40", "--solver", "rk4", "--steps", "20",
              "--likelihood", "--profile", "--quiet", "--seed", "3"]
    mpirun = [a.mpiexec, "-np", "2"] + a.mpiexec_flag

    stochastic = ["--dataset", "moons", "--n-train", "300", "--samples", "40", "--solver", "sde-euler",
                  "--diffusion", "sbdm", "--last-step", "mean", "--noise-seed", "11", "--steps", "20", "--quiet",
                  "--seed", "3"]
    # Classifier-free guidance of the labelled set: --shard train reduces v_u and v_c together.
    guided = ["--dataset", "moons", "--n-train", "300", "--samples", "40", "--solver", "rk4", "--steps", "20",
              "--class", "1", "--cfg", "2.5", "--cfg-window", "0.1:0.9", "--likelihood", "--quiet", "--seed", "3"]
    for label, args in [("", common), ("sde-euler, ", stochastic), ("cfg, ", guided)]:
        ref = os.path.join(a.work, f"{label[:3]}one")
        rc, out, err = run([a.sample] + args + ["--shard", "samples", "--out", ref])
        check(rc == 0, f"{label}one process: exit {rc}\n{err}")
        for mode in ["train", "samples", None]:
            d = os.path.join(a.work, f"{label[:3]}two-{mode or 'default'}")
            cmd = mpirun + [a.sample] + args + ["--out", d] + (["--shard", mode] if mode else [])
            rc, out, err = run(cmd)
            check(rc == 0, f"{label}2 ranks, --shard {mode}: exit {rc}\n{err}")
            if rc != 0:
                continue
            check(out.count("kinflow-sample:") == 1, f"{label}2 ranks, --shard {mode}: one report, got:\n{out}")
            with open(os.path.join(d, "summary.json")) as f:
                summary = json.load(f)
            check(summary.get("mpi") == {"ranks": 2, "shard": mode or "train"},
                  f"{label}2 ranks, --shard {mode}: summary.json mpi = {summary.get('mpi')}")
            check_pruning(ref, summary, f"{label}2 ranks, --shard {mode}")
            compare(ref, d, f"{label}2 ranks, --shard {mode}")

    # KINFLOW_MPI=0 under the launcher: every rank runs alone (MPI not initialized), so each
    # writes a whole run of its own (into its own directory here) and reports it.
    alone = os.path.join(a.work, "alone")
    script = f'exec "$0" "$@" --out {alone}-${{OMPI_COMM_WORLD_RANK:-$PMI_RANK}}'
    rc, out, err = run(mpirun + ["sh", "-c", script, a.sample] + common + ["--shard", "samples"],
                       env={**os.environ, "KINFLOW_MPI": "0"})
    check(rc == 0, f"KINFLOW_MPI=0 under mpirun: exit {rc}\n{err}")
    check(out.count("kinflow-sample:") == 2, f"KINFLOW_MPI=0 under mpirun: a report per rank, got:\n{out}")
    for d in sorted(f for f in os.listdir(a.work) if f.startswith("alone-")):
        compare(os.path.join(a.work, "one"), os.path.join(a.work, d), f"KINFLOW_MPI=0, {d}")
    check(len([f for f in os.listdir(a.work) if f.startswith("alone-")]) == 2, "KINFLOW_MPI=0: two run directories")
    # KINFLOW_MPI=1 without a launcher: MPI as a singleton, the distributed field on one rank.
    d = os.path.join(a.work, "singleton")
    rc, out, err = run([a.sample] + common + ["--shard", "train", "--out", d], env={**os.environ, "KINFLOW_MPI": "1"})
    check(rc == 0, f"KINFLOW_MPI=1, one process: exit {rc}\n{err}")
    if rc == 0:
        compare(os.path.join(a.work, "one"), d, "KINFLOW_MPI=1, one process, --shard train")

    # A training file no rank can read: one message, exit status not 0, no summary.
    d = os.path.join(a.work, "missing")
    rc, out, err = run(mpirun + [a.sample, "--train", os.path.join(a.work, "no-such-file.csv"), "--quiet",
                                 "--out", d])
    check(rc != 0, "unreadable --train: the run must fail")
    lines = [l for l in err.splitlines() if l.startswith("kinflow-sample")]
    check(len(lines) == 1 and "no-such-file.csv" in lines[0], f"unreadable --train: one message, got:\n{err}")
    check(not os.path.exists(os.path.join(d, "summary.json")), "unreadable --train: no summary.json")

    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("kinflow-sample under mpirun: outputs equal the single-process run")


if __name__ == "__main__":
    main()
