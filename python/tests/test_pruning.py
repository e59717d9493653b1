"""Certified pruning from Python (docs/math.md, section 4.6): ``EmpiricalField(Y, pruning=...)``
and ``smoothed_empirical(..., pruning=...)``.

The pruned values are checked against a plain NumPy evaluation of the formulas, within
the bound the docs derive for a relative mass ``eps`` left out. With ``eps = 1e-3`` the
bound bites. The statistics must show that points were skipped, and a solve with pruning
must land where the dense one does. kinflow-sample's ``--pruning`` reports the share of
points touched.
"""

import json
import subprocess

import numpy as np
import pytest

import kinflow
from test_cli import _find_cli


def clustered(n, d, seed=0):
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((10, d))
    return centres[np.arange(n) % 10] + 0.2 * rng.standard_normal((n, d))


def reference(Y, X, t):
    """Posterior mean, log-sum-exp of the logits and trace of the posterior covariance, in long double."""
    Y = Y.astype(np.longdouble)
    X = X.astype(np.longdouble)
    sigma = 1 - t
    d2 = ((X[:, None, :] - t * Y[None, :, :]) ** 2).sum(-1)
    L = -d2 / (2 * sigma * sigma)
    M = L.max(axis=1, keepdims=True)
    w = np.exp(L - M)
    W = w.sum(axis=1, keepdims=True)
    w = w / W
    mean = w @ Y
    trace = (w * ((Y[None, :, :] - mean[:, None, :]) ** 2).sum(-1)).sum(1)
    R = np.sqrt(((Y[None, :, :] - mean[:, None, :]) ** 2).sum(-1)).max(axis=1)
    return mean, (M + np.log(W))[:, 0], trace, R


@pytest.mark.parametrize("d", [2, 32])
def test_pruned_values_within_the_certified_bound(d):
    Y = clustered(1500, d)
    rng = np.random.default_rng(1)
    eps = 1e-3
    field = kinflow.EmpiricalField(Y, pruning="on", pruning_eps=eps, threads=1)
    for t in (0.3, 0.7, 0.95):
        X = t * Y[rng.integers(0, len(Y), 64)] + (1 - t) * rng.standard_normal((64, d))
        mean, lse, trace, R = reference(Y, X, t)
        sigma = 1 - t
        field.reset_pruning_statistics()
        V = field.velocity(t, X)
        m = X + sigma * V  # the posterior mean behind the velocity
        err = np.sqrt(((m - mean.astype(float)) ** 2).sum(1))
        assert np.all(err <= 2 * eps * R.astype(float) + 1e-10 * (1 + R.astype(float)))
        # The log density loses at most a share eps of the mass.
        ref_logp = (lse - np.log(len(Y)) - d * np.log(sigma) - 0.5 * d * np.log(2 * np.pi)).astype(float)
        dl = ref_logp - field.log_density(t, X)
        assert np.all(dl >= -1e-10) and np.all(dl <= eps + 1e-10)
        # The exact divergence t/σ³ tr Cov - d/σ, and the trace's bound 8 eps R².
        div = field.divergence(t, X)
        div_ref = (t / sigma ** 3 * trace - d / sigma).astype(float)
        bound = t / sigma ** 3 * 8 * eps * R.astype(float) ** 2
        assert np.all(np.abs(div - div_ref) <= bound + 1e-9 * (1 + np.abs(div_ref)))
    stats = field.pruning_statistics()
    assert stats["pruned_evaluations"] == stats["evaluations"] > 0
    assert 0 < stats["touched_share"] < 1
    assert stats["pairs"] < stats["dense_pairs"]


def test_solve_with_pruning_lands_with_the_dense_solve():
    Y = clustered(3000, 2)
    x0 = np.random.default_rng(2).standard_normal((200, 2))
    pruned = kinflow.EmpiricalField(Y)  # pruning="auto"
    dense = kinflow.EmpiricalField(Y, pruning="off")
    a = kinflow.sample(pruned, x0, solver="rk4", steps=40)
    b = kinflow.sample(dense, x0, solver="rk4", steps=40)
    assert np.max(np.abs(a.x - b.x)) <= 1e-10
    assert np.max(np.abs(a.kpe - b.kpe)) <= 1e-9 * (1 + np.max(np.abs(b.kpe)))
    assert pruned.pruning_statistics()["touched_share"] < 0.9
    assert dense.pruning_statistics()["touched_share"] == 1.0
    smoothed = kinflow.smoothed_empirical(Y, 0.01, pruning="on")
    smoothed_dense = kinflow.smoothed_empirical(Y, 0.01, pruning="off")
    X = 0.9 * Y[:50] + 0.1 * x0[:50]
    assert np.max(np.abs(smoothed.velocity(0.9, X) - smoothed_dense.velocity(0.9, X))) <= 1e-9
    assert smoothed.pruning_statistics()["touched_share"] < 1


def test_share_touched_per_step():
    """The passes recorded during a solve, binned by its grid, against the counts an observing
    callback reads after every step (Euler: every evaluation of step n is at t_n)."""
    Y = clustered(3000, 2)
    x0 = np.random.default_rng(4).standard_normal((200, 2))
    field = kinflow.EmpiricalField(Y)
    field.record_pruning_passes(True)
    seen, last = [], [0, 0]

    def callback(step, t, X, V):
        s = field.pruning_statistics()
        seen.append((s["pairs"] - last[0], s["dense_pairs"] - last[1]))
        last[:] = [s["pairs"], s["dense_pairs"]]

    times = kinflow.grid("cosine", 20)
    kinflow.sample(field, x0, solver="euler", grid=times, callback=callback)
    stats = field.pruning_statistics(times=times)
    assert stats["touched_share_by_step"].shape == (20,)
    np.testing.assert_array_equal(stats["pairs_by_step"], [p for p, _ in seen])
    np.testing.assert_array_equal(stats["dense_pairs_by_step"], [d for _, d in seen])
    np.testing.assert_allclose(stats["touched_share_by_step"], [p / d for p, d in seen], rtol=1e-15)
    assert stats["touched_share_by_step"][0] == 1 and stats["touched_share_by_step"][-1] < 0.5
    # A labelled field sampled with classes and guidance: its class-conditional part's passes.
    labels = np.arange(len(Y)) % 3
    labelled = kinflow.EmpiricalField(Y, labels=labels)
    labelled.record_pruning_passes(True)
    seen.clear()
    last[:] = [0, 0]
    field = labelled  # read by the callback
    classes = np.arange(len(x0)) % 4 - 1
    kinflow.sample(labelled, x0, solver="euler", grid=times, classes=classes, cfg=2.0, callback=callback)
    stats = labelled.pruning_statistics(times=times)
    np.testing.assert_array_equal(stats["pairs_by_step"], [p for p, _ in seen])
    np.testing.assert_array_equal(stats["dense_pairs_by_step"], [len(x0) * len(Y)] * 20)
    assert stats["touched_share_by_step"][0] == 1 and stats["touched_share_by_step"][-1] < 0.5
    labelled.reset_pruning_statistics()
    assert labelled.pruning_statistics()["pairs"] == 0
    # Without recording there is nothing to bin.
    other = kinflow.EmpiricalField(Y)
    other.velocity(0.5, x0)
    with pytest.raises(ValueError, match="record_pruning_passes"):
        other.pruning_statistics(times=times)
    with pytest.raises(ValueError, match="times"):
        field.pruning_statistics(times=[0.5])


def test_bad_pruning_arguments():
    Y = clustered(50, 2)
    with pytest.raises(ValueError, match="pruning: expected 'auto', 'on' or 'off'"):
        kinflow.EmpiricalField(Y, pruning="sometimes")
    for bad in (0.0, 0.9, float("nan")):
        with pytest.raises(ValueError, match="pruning_eps"):
            kinflow.EmpiricalField(Y, pruning_eps=bad)
    with pytest.raises(ValueError, match="pruning_eps"):
        kinflow.smoothed_empirical(Y, 0.1, pruning_eps=-1.0)


def test_cli_reports_the_points_touched(tmp_path):
    exe = _find_cli()
    if exe is None:
        pytest.skip("no kinflow-sample binary")
    out = {}
    for mode in ("on", "off"):
        p = subprocess.run([str(exe), "--dataset", "8gaussians", "--n-train", "3000", "--samples", "300",
                            "--steps", "30", "--pruning", mode, "--quiet", "--out", str(tmp_path / mode)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        out[mode] = json.loads((tmp_path / mode / "summary.json").read_text())
        samples = np.loadtxt(tmp_path / mode / "samples.csv", delimiter=",", skiprows=1, usecols=(0, 1))
        out[mode + "_x"] = samples
    assert out["on"]["pruning"]["mode"] == "on"
    assert 0 < out["on"]["pruning"]["touched_share"] < 1
    assert out["off"]["pruning"]["touched_share"] == 1
    assert out["off"]["pruning"]["pruned_evaluations"] == 0
    # Per step: Euler evaluates once per step over all samples, so every step has the same
    # dense count and the overall share is the mean of the steps' shares.
    by_step = np.array(out["on"]["pruning"]["touched_share_by_step"])
    assert by_step.shape == (30,) and by_step[0] == 1 and by_step[-1] < by_step[0]
    assert abs(by_step.mean() - out["on"]["pruning"]["touched_share"]) <= 1e-9
    assert out["off"]["pruning"]["touched_share_by_step"] == [1] * 30
    assert np.max(np.abs(out["on_x"] - out["off_x"])) <= 1e-9
    # The guided class-conditional field: every class's passes, per step the same way.
    p = subprocess.run([str(exe), "--dataset", "8gaussians", "--n-train", "3000", "--samples", "300",
                        "--steps", "30", "--pruning", "on", "--class", "2", "--cfg", "2", "--quiet",
                        "--out", str(tmp_path / "guided")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    guided = json.loads((tmp_path / "guided" / "summary.json").read_text())["pruning"]
    by_step = np.array(guided["touched_share_by_step"])
    assert by_step.shape == (30,) and by_step[0] == 1 and by_step[-1] < by_step[0]
    assert abs(by_step.mean() - guided["touched_share"]) <= 1e-9
    p = subprocess.run([str(exe), "--pruning-eps", "0", "--out", str(tmp_path / "bad")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "--pruning-eps" in p.stderr
