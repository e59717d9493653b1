#!/usr/bin/env python3
"""Outputs complete or absent, and progress on stderr, for kinflow-sample and kinflow-trained.

    python3 tests/cli/check_outputs.py --sample EXE --trained EXE --work DIR [--part PART]

PART (default all): `sample` (kinflow-sample killed), `trained` (kinflow-trained killed, and
its sweep's progress) or `progress` (kinflow-sample's progress); each part works in its own
directory under DIR, so the parts can run at the same time (CTest runs them as three tests).

Runs are killed (SIGKILL, SIGTERM, SIGINT) at several moments, from the start to just past
the end of a run, into a directory that holds a previous complete run. After every kill the
directory must hold either one complete run -- summary.json saying complete, listing exactly
the program's output files there, each with the size it records and complete rows -- or no
summary.json (a run killed well before its end leaves the previous run whole); and files of the program's names are never truncated (every row has the
header's number of fields and the file ends with a newline). A signal that can be caught
leaves no staging files; the next run removes those SIGKILL leaves. Progress: a line per 10 %
on a non-terminal stderr, a live line with an ETA on a terminal, nothing with --quiet, and
nothing of it on stdout. With --no-train-csv, kinflow-sample writes no train.csv (and a
previous run's is removed).
"""

import argparse
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

SAMPLE_OUTPUTS = {"samples.csv", "train.csv", "trajectories.csv"}
TRAINED_OUTPUTS = {"samples_model.csv", "samples_empirical.csv", "samples_model_best.csv", "sweep.csv",
                   "train.csv"}
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what, flush=True)


def complete_csv(path):
    with open(path, "rb") as f:
        data = f.read()
    if not data.endswith(b"\n"):
        return False
    lines = data.decode().splitlines()
    n = len(lines[0].split(","))
    return len(lines) >= 2 and all(len(line.split(",")) == n for line in lines)


def check_directory(d, outputs, caught, label):
    """The invariant of a directory after a run ended in any way."""
    names = set(os.listdir(d))
    staged = {n for n in names if n.startswith(".") and n.endswith(".partial")}
    known = outputs | {"summary.json"}
    check(names <= known | staged, f"{label}: unexpected files {sorted(names - known - staged)}")
    if caught:
        check(not staged, f"{label}: staging files left after a catchable signal: {sorted(staged)}")
    for n in names & outputs:
        check(complete_csv(os.path.join(d, n)), f"{label}: {n} is truncated")
    if "summary.json" in names:
        with open(os.path.join(d, "summary.json")) as f:
            s = json.load(f)
        check(s.get("complete") is True, f"{label}: summary.json does not say complete")
        files = s.get("files", {})
        check(set(files) == names & outputs,
              f"{label}: summary lists {sorted(files)} but the directory has {sorted(names & outputs)}")
        for n, size in files.items():
            if n in names:
                check(os.path.getsize(os.path.join(d, n)) == size, f"{label}: {n} is not the size summary.json records")
        return True
    return False


def timed_run(cmd, quiet=None):
    """Seconds `cmd` took; with a list for `quiet`, its stderr is appended to it."""
    start = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"check_outputs.py: {' '.join(cmd)} failed:\n{p.stderr}")
    if quiet is not None:
        quiet.append(p.stderr)
    return time.perf_counter() - start


def killed_run(cmd, delay, sig):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    if p.poll() is None:
        p.send_signal(sig)
    p.wait()
    return p.returncode


def kill_matrix(exe, d, outputs, first, second, label, moments):
    """`first` completes into d; then `second` is killed at several moments into the same d."""
    timed_run([exe, *first, "--out", d, "--quiet"])
    check(check_directory(d, outputs, True, f"{label}: first run"), f"{label}: the first run is not complete")
    duration = timed_run([exe, *second, "--out", d, "--quiet"])
    check(check_directory(d, outputs, True, f"{label}: second run"), f"{label}: the second run is not complete")
    seen = {"complete": 0, "absent": 0}
    for i, fraction in enumerate(moments):
        sig = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)[i % 3]
        timed_run([exe, *first, "--out", d, "--quiet"])  # a complete run of other settings first
        rc = killed_run([exe, *second, "--out", d, "--quiet"], fraction * duration, sig)
        tag = f"{label}: {signal.Signals(sig).name} at {fraction:.2f} of the run (exit {rc})"
        complete = check_directory(d, outputs, sig != signal.SIGKILL, tag)
        samples = None
        if complete:
            with open(os.path.join(d, "summary.json")) as f:
                samples = json.load(f)["settings"].get("samples")
        first_n, second_n = (int(r[r.index("--samples") + 1]) for r in (first, second))
        if rc == 0:
            check(complete and samples == second_n, f"{tag}: the run finished but is not complete")
        else:
            check(rc == -sig, f"{tag}: expected death by the signal, exit status {rc}")
            # Killed before its commit, the previous run is still whole; killed after it (on
            # its way out), the run is complete: either way one run's files and summary,
            # checked against each other above.
            check(not complete or samples in (first_n, second_n), f"{tag}: a summary.json of neither run")
            if fraction <= 0.6:  # long before its commit: the previous run is untouched
                check(complete and samples == first_n, f"{tag}: the previous run is no longer whole")
        seen["complete" if complete else "absent"] += 1
    print(f"{label}: {len(moments)} killed runs, {seen}", flush=True)
    # A SIGKILL's staging files go with the next run.
    killed_run([exe, *second, "--out", d, "--quiet"], 0.5 * duration, signal.SIGKILL)
    timed_run([exe, *first, "--out", d, "--quiet"])
    check(check_directory(d, outputs, True, f"{label}: after SIGKILL and a new run"),
          f"{label}: the run after a SIGKILL is not complete")


def lasting(make_cmd, n, seconds=2.0, stderr=None):
    """A size for `make_cmd(n)` whose work grows in proportion to `n` that makes that work last
    `seconds` (progress shows only after a run's first second, and how long a size takes
    depends on the machine and on what else runs). Two runs with --quiet, at n and 4 n, give
    the seconds per unit of size apart from the program's fixed costs. Their stderr goes to
    the list `stderr`."""
    t1 = timed_run([*make_cmd(n), "--quiet"], stderr)
    t2 = timed_run([*make_cmd(4 * n), "--quiet"], stderr)
    per_unit = max((t2 - t1) / (3 * n), 1e-9)
    return max(4 * n, int(1.25 * seconds / per_unit) + 1)


def progress_checks(exe, d):
    # A batch small enough for the metrics after the solve (not covered by the meter) to be
    # quick, and as many steps as it takes for the solve to last a few seconds.
    def run(steps):
        return [exe, "--dataset", "moons", "--n-train", "1500", "--samples", "4000", "--steps", str(steps),
                "--out", d]
    quiet = []
    long_run = run(lasting(run, 60, stderr=quiet))[1:]
    check(quiet == [""] * len(quiet), f"--quiet printed on stderr: {quiet!r}")
    p = subprocess.run([exe, *long_run], capture_output=True, text=True)
    check(p.returncode == 0, f"progress run failed: {p.stderr}")
    lines = [ln for ln in p.stderr.splitlines() if "%" in ln and "ETA" in ln]
    check(2 <= len(lines) <= 10, f"expected a progress line per 10 % on a pipe, got {len(lines)}: {p.stderr!r}")
    check("done in" in p.stderr, "the last progress line says how long it took")
    check("ETA" not in p.stdout and "%|" not in p.stdout.replace(" ", ""), "progress reached stdout")
    check("\r" not in p.stderr, "a pipe gets whole lines, not a live line")
    # A terminal: the live line, rewritten with carriage returns.
    master, slave = pty.openpty()
    t = subprocess.Popen([exe, *long_run], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 30)
        if not r:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    t.wait()
    os.close(master)
    text = out.decode(errors="replace")
    check(text.count("\r") >= 2 and "ETA" in text, f"no live progress line on a terminal: {text[-300:]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", required=True)
    ap.add_argument("--trained", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--part", choices=("all", "sample", "trained", "progress"), default="all")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    if a.part in ("all", "sample"):
        d = os.path.join(a.work, "sample-out")
        first = ["--dataset", "8gaussians", "--n-train", "100", "--samples", "300", "--steps", "10",
                 "--trajectories", "4"]
        second = ["--dataset", "moons", "--n-train", "1500", "--samples", "20000", "--steps", "60"]
        kill_matrix(a.sample, d, SAMPLE_OUTPUTS, first, second, "kinflow-sample",
                    [0.0, 0.1, 0.3, 0.6, 0.9, 1.0, 1.05])
        # --no-train-csv: no train.csv, and the previous run's one is gone (a directory holds
        # one run's files), while the run is otherwise complete.
        subprocess.run([a.sample] + first + ["--quiet", "--out", d], check=True, capture_output=True)
        check(os.path.exists(os.path.join(d, "train.csv")), "kinflow-sample: train.csv missing by default")
        p = subprocess.run([a.sample] + first + ["--quiet", "--no-train-csv", "--out", d], capture_output=True, text=True)
        check(p.returncode == 0, f"kinflow-sample --no-train-csv failed: {p.stderr}")
        check(not os.path.exists(os.path.join(d, "train.csv")), "kinflow-sample --no-train-csv left a train.csv")
        check("train.csv" not in p.stdout, f"kinflow-sample --no-train-csv names train.csv: {p.stdout!r}")
        check_directory(d, SAMPLE_OUTPUTS, True, "kinflow-sample --no-train-csv")
        with open(os.path.join(d, "summary.json")) as f:
            files = json.load(f).get("files", {})
        check("samples.csv" in files and "train.csv" not in files,
              f"kinflow-sample --no-train-csv: summary.json lists {sorted(files)}")
    if a.part in ("all", "trained"):
        dt = os.path.join(a.work, "trained-out")
        kill_matrix(a.trained, dt, TRAINED_OUTPUTS, ["--quick", "--samples", "200", "--threads", "2"],
                    ["--quick", "--samples", "600", "--threads", "2"], "kinflow-trained",
                    [0.05, 0.4, 0.8, 1.0, 1.1])
        # kinflow-trained's sweep reports runs done (the sweep widened; a sweep over before the
        # meter's first second shows nothing, so it is tried again with more samples).
        for n in (500, 2000, 8000):
            p = subprocess.run([a.trained, "--quick", "--samples", str(n), "--threads", "1", "--alpha0", "0,0.1,0.2",
                                "--beta0", "0,0.02,0.04", "--tau", "0.4,0.6", "--out", dt],
                               capture_output=True, text=True)
            if p.returncode != 0 or " runs |" in p.stderr:
                break
        check(p.returncode == 0, f"kinflow-trained failed: {p.stderr}")
        check(" runs |" in p.stderr and "ETA" not in p.stdout, f"kinflow-trained shows no sweep progress: {p.stderr!r}")
    if a.part in ("all", "progress"):
        progress_checks(a.sample, os.path.join(a.work, "progress-out"))
    if failures:
        print(f"check_outputs.py: {len(failures)} failures", flush=True)
        return 1
    print("check_outputs.py: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
