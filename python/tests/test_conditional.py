"""Conditions and classifier-free guidance: EmpiricalField(Y, labels=...), sample(classes=...,
cfg=...), and kinflow-sample --labels/--classes/--cfg.

Oracles: the class-conditional field and a guided Euler solve written out in NumPy (softmax
over each class's points, the guided combination, the left Riemann energy of Euler's
steps); a callable conditional field computing the same thing in Python; the energy parts
summing to the KPE; CFG-Zero*'s zero start leaving the first states unmoved; the command
line on the same inputs.
"""

import numpy as np
import pytest

import kinflow
from test_cli import cli, column, run_cli  # noqa: F401 (cli: the fixture)


def np_velocity(Y, t, X, eps=1e-6):
    """The empirical field of the points Y [n, d] at time t < 1, per row of X, in NumPy."""
    s = max(1.0 - t, eps)
    L = -((X[:, None, :] - t * Y[None, :, :]) ** 2).sum(-1) / (2 * s * s)
    W = np.exp(L - L.max(axis=1, keepdims=True))
    W /= W.sum(axis=1, keepdims=True)
    return (W @ Y - X) / s


def np_conditional(Y, labels, t, X, C):
    """(v_u, v_c) per row of X: all points, and the points of the row's class (-1: all)."""
    U = np_velocity(Y, t, X)
    Vc = U.copy()
    for c in np.unique(C):
        if c >= 0:
            rows = C == c
            Vc[rows] = np_velocity(Y[labels == c], t, X[rows])
    return U, Vc


def np_guided_euler(Y, labels, X0, C, steps, w_of):
    """A guided Euler solve on a uniform grid: the samples and the three energy parts."""
    X = X0.copy()
    parts = np.zeros((3, len(X)))
    h = 1.0 / steps
    for n in range(steps):
        t = n / steps  # as the grid forms its times (a window edge may fall on one)
        U, Vc = np_conditional(Y, labels, t, X, C)
        w = w_of(t)
        D = Vc - U
        parts += h * np.stack([0.5 * (U * U).sum(1), w * (U * D).sum(1), 0.5 * w * w * (D * D).sum(1)])
        X = X + h * (U + w * D)
    return X, parts


@pytest.fixture(scope="module")
def labelled():
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=3.0, size=(4, 2))
    labels = rng.integers(0, 4, size=120)
    Y = centres[labels] + 0.6 * rng.normal(size=(120, 2))
    X0 = rng.normal(size=(40, 2))
    C = rng.integers(-1, 4, size=40)
    return Y, labels, X0, C


def test_field_methods_match_numpy(labelled):
    Y, labels, X0, C = labelled
    f = kinflow.EmpiricalField(Y, labels=labels, threads=1)
    assert f.classes == 4
    assert np.array_equal(f.labels, labels)
    for t in (0.0, 0.4, 0.9):
        U, Vc = f.velocity_pair(t, X0, C)
        Ur, Vr = np_conditional(Y, labels, t, X0, C)
        assert np.allclose(U, Ur, rtol=1e-12, atol=1e-12)
        assert np.allclose(Vc, Vr, rtol=1e-12, atol=1e-12)
        assert np.array_equal(f.velocity(t, X0, C), Vc)
        assert np.allclose(f.velocity(t, X0), Ur, rtol=1e-12, atol=1e-12)  # the field of all points
        # log p_t(x | c): a Gaussian mixture over the class's points, in NumPy.
        s2 = (1 - t) ** 2
        for j in range(0, 40, 7):
            P = Y if C[j] < 0 else Y[labels == C[j]]
            q = -((X0[j] - t * P) ** 2).sum(1) / (2 * s2)
            ref = np.log(np.exp(q - q.max()).sum()) + q.max() - np.log(len(P)) - np.log(2 * np.pi * s2)
            assert abs(f.log_density(t, X0[j:j + 1], C[j:j + 1])[0] - ref) < 1e-10


@pytest.mark.parametrize("cfg, window", [(1.0, None), (0.0, None), (3.0, None), (4.0, (0.25, 0.7))])
def test_guided_euler_matches_numpy(labelled, cfg, window):
    Y, labels, X0, C = labelled
    f = kinflow.EmpiricalField(Y, labels=labels, threads=1)
    r = kinflow.sample(f, X0, solver="euler", steps=20, classes=C, cfg=cfg, cfg_window=window)
    lo, hi = window if window else (0.0, 1.0)
    X, parts = np_guided_euler(Y, labels, X0, C, 20, lambda t: cfg if lo <= t <= hi else 1.0)
    assert np.allclose(r.x, X, rtol=1e-10, atol=1e-10)
    for got, want in zip((r.kpe_unconditional, r.kpe_cross, r.kpe_guidance), parts):
        assert np.allclose(got, want, rtol=1e-10, atol=1e-10)
    assert np.allclose(r.kpe_unconditional + r.kpe_cross + r.kpe_guidance, r.kpe, rtol=1e-12, atol=1e-12)


def test_a_callable_conditional_field_gives_the_same_solve(labelled):
    Y, labels, X0, C = labelled
    f = kinflow.EmpiricalField(Y, labels=labels, threads=1)
    seen = []

    def g(t, X, c):
        seen.append(c.dtype)
        return np_conditional(Y, labels, t, X, c)[1]

    grid = np.linspace(0.0, 0.9, 11)  # the NumPy field has no value of its own at t = 1
    a = kinflow.sample(f, X0, solver="rk4", grid=grid, classes=C, cfg=2.5, cfg_schedule=None)
    b = kinflow.sample(g, X0, solver="rk4", grid=grid, classes=C, cfg=2.5)
    assert seen and all(d == np.int64 for d in seen)
    assert np.allclose(a.x, b.x, rtol=1e-10, atol=1e-10)
    assert np.allclose(a.kpe_guidance, b.kpe_guidance, rtol=1e-10, atol=1e-10)
    # One class for all, and a schedule w(t) of one's own.
    c1 = kinflow.sample(f, X0, steps=10, classes=2, cfg_schedule=lambda t: 1 + 2 * t)
    c2 = kinflow.sample(f, X0, steps=10, classes=np.full(40, 2), cfg_schedule=lambda t: 1 + 2 * t)
    assert np.array_equal(c1.x, c2.x)
    # On a fixed grid every column of a call shares one time: w(t) is called once per stage.
    calls = []
    kinflow.sample(f, X0, solver="euler", steps=10, classes=2, cfg_schedule=lambda t: calls.append(t) or 2.0)
    assert len(calls) == 10


def test_zero_star_holds_the_first_steps(labelled):
    Y, labels, X0, C = labelled
    f = kinflow.EmpiricalField(Y, labels=labels, threads=1)
    r = kinflow.sample(f, X0, solver="euler", steps=10, classes=C, cfg=2.0, cfg_zero_star=3, trajectories=True)
    for k in range(4):  # the states after 0..3 steps are the noise itself
        assert np.array_equal(r.trajectory[k], X0)
    assert not np.allclose(r.trajectory[4], X0)
    assert np.allclose(r.kpe_cross, 0.0, atol=1e-12)  # b is the projection: <b, v_c - b> = 0


def test_exact_guided_likelihood_and_adaptive_solves(labelled):
    Y, labels, X0, C = labelled
    f = kinflow.EmpiricalField(Y, labels=labels, threads=1)
    r = kinflow.sample(f, X0, solver="dopri5", classes=C, cfg=2.0, likelihood=True, rtol=1e-8, atol=1e-8)
    assert np.all(np.isfinite(r.log_likelihood))
    assert np.allclose(r.kpe_unconditional + r.kpe_cross + r.kpe_guidance, r.kpe, rtol=1e-12, atol=1e-12)
    # The same field with Hutchinson's estimate: within 6 standard errors over 8 seeds.
    runs = [kinflow.sample(f, X0[:6], solver="rk4", steps=30, classes=C[:6], cfg=2.0, likelihood=True,
                           divergence="hutchinson", probes=16, probe_seed=s).log_likelihood for s in range(8)]
    exact = kinflow.sample(f, X0[:6], solver="rk4", steps=30, classes=C[:6], cfg=2.0, likelihood=True).log_likelihood
    m, se = np.mean(runs, axis=0), np.std(runs, axis=0, ddof=1) / np.sqrt(8)
    assert np.all(np.abs(m - exact) <= 6 * se + 1e-9)


def test_errors_name_the_parameter(labelled):
    Y, labels, X0, C = labelled
    with pytest.raises(ValueError, match="labels"):
        kinflow.EmpiricalField(Y, labels=labels[:-1])
    with pytest.raises(ValueError, match=r"labels\[2\]"):
        bad = labels.copy()
        bad[2] = -1
        kinflow.EmpiricalField(Y, labels=bad)
    with pytest.raises(ValueError, match="labels"):
        kinflow.EmpiricalField(Y, labels=labels + 0.5)
    with pytest.raises(ValueError, match="classes"):
        kinflow.EmpiricalField(Y, classes=3)
    plain = kinflow.EmpiricalField(Y)
    with pytest.raises(ValueError, match="no labels"):
        plain.velocity_pair(0.5, X0, C)
    f = kinflow.EmpiricalField(Y, labels=labels)
    with pytest.raises(ValueError, match="cfg"):
        kinflow.sample(f, X0, cfg=2.0)
    with pytest.raises(ValueError, match="classes"):
        kinflow.sample(f, X0, classes=np.full(40, 9))
    with pytest.raises(ValueError, match="classes"):
        kinflow.sample(f, X0, classes=C[:5])
    with pytest.raises(ValueError, match="window_end"):
        kinflow.sample(f, X0, classes=C, cfg_window=(0.6, 0.2))
    with pytest.raises(ValueError, match="window_start"):
        kinflow.sample(f, X0, classes=C, cfg_window=(-0.1, 0.2))
    with pytest.raises(ValueError, match="scale"):
        kinflow.sample(f, X0, classes=C, cfg=float("nan"))
    with pytest.raises(ValueError, match="cfg_zero_star"):
        kinflow.sample(f, X0, classes=C, cfg_zero_star=2, solver="dopri5")
    with pytest.raises(ValueError, match="schedule"):
        kinflow.sample(f, X0, classes=C, cfg_schedule=lambda t: float("inf"))
    mix = kinflow.GaussianMixture(np.zeros((1, 2)), np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="classes: this GaussianMixture has no labels"):
        kinflow.sample(mix, X0, classes=C)
    with pytest.raises(ValueError, match="conditional field"):  # neither a kinflow field nor a callable
        kinflow.sample(np.zeros(3), X0, classes=C)


def test_command_line_agrees(cli, tmp_path, labelled):
    Y, labels, X0, C = labelled
    d = tmp_path / "lab"
    d.mkdir()
    (d / "labels.txt").write_text("\n".join(str(v) for v in labels) + "\n")
    (d / "classes.txt").write_text("\n".join(str(v) for v in C) + "\n")
    rows, out = run_cli(cli, tmp_path, "cfg", Y, X0,
                        ["--labels", str(d / "labels.txt"), "--classes", str(d / "classes.txt"), "--cfg", "3",
                         "--cfg-window", "0.2:0.8", "--solver", "heun", "--steps", "16"], needs=("--cfg",))
    f = kinflow.EmpiricalField(Y, labels=labels)
    r = kinflow.sample(f, X0, solver="heun", steps=16, classes=C, cfg=3.0, cfg_window=(0.2, 0.8))
    X = np.stack([column(rows, "x_0"), column(rows, "x_1")], axis=1)
    assert np.allclose(X, r.x, rtol=1e-12, atol=1e-12)
    for name in ("kpe", "kpe_unconditional", "kpe_cross", "kpe_guidance"):
        assert np.allclose(column(rows, name), getattr(r, name), rtol=1e-12, atol=1e-12), name
    assert np.array_equal(column(rows, "class", int), C)
    # nn_class: the label of the nearest training point.
    nearest = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(column(rows, "nn_class", int), labels[nearest])


def test_labelled_datasets_and_label_files(tmp_path):
    X, y = kinflow.datasets.make("8gaussians", 300, seed=4, labels=True)
    assert np.array_equal(X, kinflow.datasets.make("8gaussians", 300, seed=4))  # the same points
    assert y.dtype == np.int64 and kinflow.datasets.classes("8gaussians") == 8
    # The label is the component: the nearest of the eight centres (std 0.5 / radius 4).
    angles = 2 * np.pi * np.arange(8) / 8
    centres = 4 * np.stack([np.cos(angles), np.sin(angles)], axis=1) / 1.414
    nearest = ((X[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    assert np.mean(nearest == y) > 0.97
    np.save(tmp_path / "y.npy", y.astype(np.int16))
    (tmp_path / "y.txt").write_text("\n".join(map(str, y)) + "\n")
    assert np.array_equal(kinflow.read_labels(tmp_path / "y.npy"), y)
    assert np.array_equal(kinflow.read_labels(str(tmp_path / "y.txt")), y)
    (tmp_path / "bad.txt").write_text("1\n-3\n")
    with pytest.raises(ValueError, match="line 2"):
        kinflow.read_labels(tmp_path / "bad.txt")


@pytest.mark.parametrize("args, message", [
    (["--cfg", "2"], "need the samples' classes"),
    (["--class", "9"], "--class: 9 is not a class"),
    (["--class", "0", "--cfg-window", "0.8:0.2"], "reversed window"),
    (["--class", "0", "--cfg", "nan"], "--cfg"),
    (["--class", "0", "--field", "gmm", "--dataset", "8gaussians"], "--field empirical"),
    (["--class", "0", "--solver", "dopri5", "--cfg-zero-star", "2"], "fixed-grid"),
])
def test_command_line_rejects_bad_guidance(cli, tmp_path, args, message):
    import subprocess

    exe, _ = cli
    p = subprocess.run([str(exe), "--dataset", "8gaussians", "--n-train", "50", "--samples", "5", "--quiet",
                        "--out", str(tmp_path / "o")] + args, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert message in p.stderr
    out = tmp_path / "o"
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_command_line_rejects_bad_label_files(cli, tmp_path):
    import subprocess

    exe, _ = cli
    train = tmp_path / "train.csv"
    train.write_text("0,0\n1,1\n2,2\n")
    for name, text, message in (("short.txt", "0\n1\n", "one label per training point"),
                                ("negative.txt", "0\n-1\n1\n", "line 2"),
                                ("float.txt", "0\n1.5\n1\n", "line 2")):
        (tmp_path / name).write_text(text)
        p = subprocess.run([str(exe), "--train", str(train), "--labels", str(tmp_path / name), "--class", "0",
                            "--samples", "3", "--quiet", "--out", str(tmp_path / "o")],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, (name, p.stderr)
        assert message in p.stderr, (name, p.stderr)


def test_smoothed_field_with_labels(labelled):
    """smoothed_empirical(Y, s, labels=L): each class's field is the smoothed field of that
    class's points (checked against smoothed_empirical of the class subset, built apart), the
    null class that of all points; a guided Euler solve written out in NumPy on those fields
    gives the same samples and energy parts."""
    Y, labels, X0, C = labelled
    s = 0.4
    f = kinflow.smoothed_empirical(Y, s, labels=labels)
    assert f.classes == 4 and np.array_equal(f.labels, labels)
    plain = kinflow.smoothed_empirical(Y, s)
    per_class = [kinflow.smoothed_empirical(Y[labels == c], s) for c in range(4)]

    def pair(t, X, C):
        U = plain.velocity(t, X)
        Vc = U.copy()
        for c in range(4):
            rows = C == c
            if rows.any():
                Vc[rows] = per_class[c].velocity(t, X[rows])
        return U, Vc

    for t in (0.0, 0.5, 1.0):
        U, Vc = f.velocity_pair(t, X0, C)
        U_ref, Vc_ref = pair(t, X0, C)
        assert np.allclose(U, U_ref, rtol=1e-12, atol=1e-12)
        assert np.allclose(Vc, Vc_ref, rtol=1e-12, atol=1e-12)
        ld = f.log_density(t, X0, C)
        for c in range(4):
            rows = C == c
            assert np.allclose(ld[rows], per_class[c].log_density(t, X0[rows]), rtol=1e-12, atol=1e-12)
    X = X0.copy()
    parts = np.zeros((3, len(X)))
    steps, w = 12, 2.5
    for n in range(steps):
        U, Vc = pair(n / steps, X, C)
        D = Vc - U
        parts += np.stack([0.5 * (U * U).sum(1), w * (U * D).sum(1), 0.5 * w * w * (D * D).sum(1)]) / steps
        X = X + (U + w * D) / steps
    r = kinflow.sample(f, X0, solver="euler", steps=steps, classes=C, cfg=w, likelihood=True)
    assert np.allclose(r.x, X, rtol=1e-11, atol=1e-11)
    for name, p in zip(("kpe_unconditional", "kpe_cross", "kpe_guidance"), parts):
        assert np.allclose(getattr(r, name), p, rtol=1e-11, atol=1e-11), name
    assert np.all(np.isfinite(r.log_likelihood))
    with pytest.raises(ValueError, match="labels"):
        kinflow.smoothed_empirical(Y, s, labels=labels[:-1])
    with pytest.raises(ValueError, match="has no labels"):
        plain.velocity_pair(0.5, X0, C)


def test_command_line_smoothed_guidance_agrees(cli, tmp_path, labelled):
    Y, labels, X0, C = labelled
    (tmp_path / "labels.txt").write_text("\n".join(str(v) for v in labels) + "\n")
    (tmp_path / "classes.txt").write_text("\n".join(str(v) for v in C) + "\n")
    rows, out = run_cli(cli, tmp_path, "scfg", Y, X0,
                        ["--field", "smoothed:0.4", "--labels", str(tmp_path / "labels.txt"), "--classes",
                         str(tmp_path / "classes.txt"), "--cfg", "2", "--solver", "rk4", "--steps", "10"],
                        needs=("--cfg",))
    r = kinflow.sample(kinflow.smoothed_empirical(Y, 0.4, labels=labels), X0, solver="rk4", steps=10, classes=C,
                       cfg=2.0)
    X = np.stack([column(rows, "x_0"), column(rows, "x_1")], axis=1)
    assert np.allclose(X, r.x, rtol=1e-12, atol=1e-12)
    for name in ("kpe", "kpe_unconditional", "kpe_cross", "kpe_guidance"):
        assert np.allclose(column(rows, name), getattr(r, name), rtol=1e-12, atol=1e-12), name
