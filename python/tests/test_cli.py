"""Agreement with the C++ command-line program kinflow-sample on the same inputs.

The test writes the training set and the noise as CSV (17 significant digits, so the CLI reads
the very same doubles), runs kinflow-sample with --train/--noise, and compares samples.csv
(coordinates, kpe, kpe_early, kpe_late, nfe, status, memorization columns, log density and
log-likelihood) to kinflow.sample and the metrics on the same arrays, within 1e-12.

The program is taken from $KINFLOW_SAMPLE, else the newest build*/**/kinflow-sample of the
repository; the tests skip when there is none (or when it lacks an option a case needs).
"""

import csv
import os
import pathlib
import subprocess

import numpy as np
import pytest

import kinflow

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "models" / "fm_mlp_8gaussians.npz"
MODEL_TRAIN = ROOT / "examples" / "models" / "fm_mlp_8gaussians_train.csv"
TOL = 1e-12


def _find_cli():
    env = os.environ.get("KINFLOW_SAMPLE")
    if env:
        return pathlib.Path(env) if pathlib.Path(env).is_file() else None
    found = [p for b in ROOT.glob("build*") for p in b.rglob("kinflow-sample")
             if p.is_file() and os.access(p, os.X_OK)]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


@pytest.fixture(scope="module")
def cli():
    exe = _find_cli()
    if exe is None:
        pytest.skip("no kinflow-sample binary (build the examples, or set KINFLOW_SAMPLE)")
    helptext = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=30).stdout
    return exe, helptext


def write_points(path, A):
    with open(path, "w") as f:
        for row in A:
            f.write(",".join(repr(float(v)) for v in row) + "\n")


def read_table(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows


def column(rows, name, conv=float):
    return np.array([conv(r[name]) for r in rows])


def run_cli(cli, tmp_path, name, train, noise, args, needs=()):
    exe, helptext = cli
    for flag in needs:
        if flag not in helptext:
            pytest.skip(f"{exe} has no {flag} (an older build)")
    d = tmp_path / name
    d.mkdir()
    tfile, nfile = d / "train.in.csv", d / "noise.in.csv"
    write_points(tfile, train)
    write_points(nfile, noise)
    out = d / "out"
    cmd = [str(exe), "--train", str(tfile), "--noise", str(nfile), "--quiet", "--out", str(out)] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (cmd, p.stdout, p.stderr)
    return read_table(out / "samples.csv"), out


def compare(rows, r, d, train, *, exact_ld=None, likelihood=False):
    X = np.stack([column(rows, f"x_{i}") for i in range(d)], axis=1)
    np.testing.assert_allclose(np.asarray(r.x), X, rtol=TOL, atol=TOL)
    for name in ("kpe", "kpe_early", "kpe_late"):
        np.testing.assert_allclose(np.asarray(getattr(r, name)), column(rows, name),
                                   rtol=TOL, atol=TOL, err_msg=name)
    np.testing.assert_array_equal(np.asarray(r.nfe), column(rows, "nfe", int))
    assert list(r.status) == [row["status"] for row in rows]
    # the CLI's memorization columns, from the same samples
    m = kinflow.memorization(np.asarray(r.x), train)
    np.testing.assert_allclose(np.asarray(m.nn_dist), column(rows, "nn_dist"), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(np.asarray(m.nn_ratio), column(rows, "nn_ratio"), rtol=1e-10, atol=TOL)
    np.testing.assert_array_equal(np.asarray(m.memorized).astype(int), column(rows, "memorized", int))
    if "log_density" in rows[0]:
        ld = column(rows, "log_density")
        want = exact_ld if exact_ld is not None else np.asarray(kinflow.knn_log_density(np.asarray(r.x), train))
        np.testing.assert_allclose(want, ld, rtol=1e-11, atol=TOL)
    if likelihood:
        np.testing.assert_allclose(np.asarray(r.log_likelihood), column(rows, "log_likelihood"),
                                   rtol=TOL, atol=TOL)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(2024)
    train = rng.normal(size=(25, 2)) * 1.5
    noise = rng.normal(size=(12, 2))
    return train, noise


CASES = [
    ("euler", ["--steps", "20"], dict(solver="euler", steps=20)),
    ("heun_cosine", ["--solver", "heun", "--steps", "15", "--grid", "cosine"],
     dict(solver="heun", steps=15, grid="cosine")),
    ("rk4_shift", ["--solver", "rk4", "--steps", "12", "--grid", "shift:2.5"],
     dict(solver="rk4", steps=12, grid="shift:2.5")),
    ("midpoint_edm_left", ["--solver", "midpoint", "--steps", "10", "--grid", "edm", "--kpe", "left"],
     dict(solver="midpoint", steps=10, grid="edm", kpe="left")),
    ("ralston_kts", ["--solver", "ralston", "--steps", "16", "--alpha0", "0.1", "--beta0", "0.02",
                     "--tau", "0.5", "--k", "2"],
     dict(solver="ralston", steps=16, kts=dict(alpha0=0.1, beta0=0.02, tau=0.5, k=2.0))),
    ("euler_tau", ["--solver", "euler", "--steps", "20", "--tau", "0.3"],
     dict(solver="euler", steps=20, tau=0.3)),
    ("dopri5_kts", ["--solver", "dopri5", "--alpha0", "0.01", "--beta0", "0.01", "--rtol", "1e-7",
                    "--atol", "1e-7"],
     dict(solver="dopri5", rtol=1e-7, atol=1e-7, kts=dict(alpha0=0.01, beta0=0.01))),
    ("bs32_kts", ["--solver", "bs32", "--beta0", "0.02", "--early", "constant", "--late", "linear"],
     dict(solver="bs32", kts=dict(beta0=0.02, early="constant", late="linear"))),
]


def _kwargs(kw):
    kw = dict(kw)
    if "kts" in kw:
        kw["kts"] = kinflow.KTS(**kw["kts"])
    return kw


@pytest.mark.parametrize("name,args,kw", CASES, ids=[c[0] for c in CASES])
def test_empirical_field_agrees_with_cli(cli, tmp_path, inputs, name, args, kw):
    train, noise = inputs
    rows, _ = run_cli(cli, tmp_path, name, train, noise, args)
    r = kinflow.sample(kinflow.EmpiricalField(train), noise, **_kwargs(kw))
    compare(rows, r, 2, train)


def test_empirical_sigma_min_agrees_with_cli(cli, tmp_path, inputs):
    train, noise = inputs
    rows, _ = run_cli(cli, tmp_path, "smin", train, noise,
                      ["--sigma-min", "0.05", "--solver", "rk4", "--steps", "10"])
    r = kinflow.sample(kinflow.EmpiricalField(train, sigma_min=0.05), noise, solver="rk4", steps=10)
    compare(rows, r, 2, train)


def test_smoothed_field_with_likelihood_agrees_with_cli(cli, tmp_path, inputs):
    train, noise = inputs
    rows, _ = run_cli(cli, tmp_path, "smoothed", train, noise,
                      ["--field", "smoothed:0.2", "--solver", "rk4", "--steps", "10", "--likelihood"],
                      needs=("--likelihood",))
    f = kinflow.smoothed_empirical(train, 0.2)
    r = kinflow.sample(f, noise, solver="rk4", steps=10, likelihood=True)
    compare(rows, r, 2, train, exact_ld=np.asarray(f.log_density(1.0, np.asarray(r.x))), likelihood=True)


def test_three_dimensions_agree_with_cli(cli, tmp_path):
    rng = np.random.default_rng(3)
    train, noise = rng.normal(size=(9, 3)), rng.normal(size=(5, 3))
    rows, _ = run_cli(cli, tmp_path, "d3", train, noise, ["--solver", "rk4", "--steps", "8",
                                                          "--grid", "cosine"])
    r = kinflow.sample(kinflow.EmpiricalField(train), noise, solver="rk4", steps=8, grid="cosine")
    compare(rows, r, 3, train)


def test_trajectories_agree_with_cli(cli, tmp_path, inputs):
    train, noise = inputs
    _, out = run_cli(cli, tmp_path, "traj", train, noise,
                     ["--solver", "heun", "--steps", "6", "--trajectories", "4"])
    rows = read_table(out / "trajectories.csv")
    r = kinflow.sample(kinflow.EmpiricalField(train), noise, solver="heun", steps=6, trajectories=True)
    traj = np.asarray(r.trajectory)
    for row in rows:
        i, n = int(row["sample"]), int(row["step"])
        np.testing.assert_allclose(traj[n, i], [float(row["x_0"]), float(row["x_1"])], rtol=TOL, atol=TOL)


def test_mlp_model_agrees_with_cli(cli, tmp_path, inputs):
    _, noise = inputs
    train = np.loadtxt(MODEL_TRAIN, delimiter=",", skiprows=1)
    rows, _ = run_cli(cli, tmp_path, "mlp", train, noise,
                      ["--model", str(MODEL), "--solver", "heun", "--steps", "10", "--beta0", "0.02"])
    r = kinflow.sample(kinflow.load_mlp(str(MODEL)), noise, solver="heun", steps=10,
                       kts=kinflow.KTS(beta0=0.02))
    compare(rows, r, 2, train)


def test_datasets_and_noise_agree_with_cli(cli, tmp_path):
    # Without --train/--noise the CLI draws make_dataset(name, n, seed) and
    # standard_normal(d, B, seed + 1); it writes the former to train.csv and the latter as
    # step 0 of trajectories.csv.
    exe, _ = cli
    out = tmp_path / "ds"
    for name in ("moons", "pinwheel"):
        p = subprocess.run([str(exe), "--dataset", name, "--n-train", "30", "--samples", "7",
                            "--seed", "5", "--steps", "2", "--trajectories", "7", "--quiet",
                            "--out", str(out)], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        train = np.loadtxt(out / "train.csv", delimiter=",", skiprows=1)
        np.testing.assert_array_equal(np.asarray(kinflow.datasets.make(name, 30, 5)), train)
        rows = [r for r in read_table(out / "trajectories.csv") if r["step"] == "0"]
        x0 = np.array([[float(r["x_0"]), float(r["x_1"])] for r in rows])
        np.testing.assert_array_equal(np.asarray(kinflow.standard_normal(7, 2, 6)), x0)


def test_large_batch_agrees_with_cli(cli, tmp_path, inputs):
    # A larger batch than the other comparisons.
    train, _ = inputs
    noise = np.random.default_rng(77).normal(size=(1500, 2))
    rows, _ = run_cli(cli, tmp_path, "large", train, noise, ["--solver", "heun", "--steps", "8"])
    r = kinflow.sample(kinflow.EmpiricalField(train), noise, solver="heun", steps=8)
    compare(rows, r, 2, train)


@pytest.mark.parametrize("solver", ["rk4", "sde-euler"])
def test_energy_profile_agrees_with_cli(cli, tmp_path, inputs, solver):
    # profile.csv: per step, the batch mean and quantiles of the increments that
    # sample(profile="per_sample") returns; the means sum to the KPE mean.
    train, noise = inputs
    rows, out = run_cli(cli, tmp_path, solver, train, noise,
                        ["--solver", solver, "--steps", "9", "--grid", "cosine", "--profile"], needs=("--profile",))
    r = kinflow.sample(kinflow.EmpiricalField(train), noise, solver=solver, steps=9, grid="cosine",
                       profile="per_sample")
    prof = read_table(out / "profile.csv")
    assert len(prof) == 9
    t = kinflow.grid("cosine", 9)
    np.testing.assert_allclose(column(prof, "t_start"), t[:-1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(column(prof, "t_end"), t[1:], rtol=0, atol=1e-15)
    P = np.asarray(r.kpe_profile)
    np.testing.assert_allclose(column(prof, "kpe_mean"), P.mean(0), rtol=TOL, atol=TOL)
    for q in (10, 50, 90):
        np.testing.assert_allclose(column(prof, f"kpe_q{q}"), np.quantile(P, q / 100, axis=0), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(column(prof, "kpe_mean").sum(), column(rows, "kpe").mean(), rtol=1e-12)


def test_profile_with_an_adaptive_solver_is_a_usage_error(cli, tmp_path, inputs):
    exe, helptext = cli
    if "--profile" not in helptext:
        pytest.skip("an older build")
    p = subprocess.run([str(exe), "--solver", "dopri5", "--profile", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--profile" in p.stderr and not (tmp_path / "o" / "summary.json").exists()
