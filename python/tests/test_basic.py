"""First tests of the kinflow package: the empirical field against a NumPy reference, a
Python callable field against the analytic Gaussian-target flow, float32, and errors."""

import numpy as np
import pytest

import kinflow


def empirical_velocity_reference(Y, t, X):
    """v(t, x) = (m(x, t) - x) / (1 - t), m the posterior mean under x_t = (1 - t) x0 + t y."""
    sigma = 1.0 - t
    d2 = ((X[:, None, :] - t * Y[None, :, :]) ** 2).sum(axis=2)  # [B, N]
    logits = -d2 / (2 * sigma**2)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    m = w @ Y
    return (m - X) / (1.0 - t), w


@pytest.mark.parametrize("t", [0.0, 0.3, 0.7, 0.9])
def test_empirical_velocity_matches_numpy(t):
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(40, 3))
    X = rng.normal(size=(25, 3))
    field = kinflow.EmpiricalField(Y)
    v_ref, w_ref = empirical_velocity_reference(Y, t, X)
    v = field.velocity(t, X)
    assert v.shape == (25, 3) and v.dtype == np.float64
    np.testing.assert_allclose(v, v_ref, rtol=0, atol=1e-12)
    w = field.posterior_weights(t, X)
    assert w.shape == (25, 40)
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-12)
    assert field.log_density(t, X).shape == (25,)
    assert field.divergence(t, X).shape == (25,)


def test_sample_does_not_modify_x0_and_reports_per_sample():
    Y = kinflow.datasets.make("8gaussians", 200, seed=0)
    x0 = kinflow.standard_normal(64, 2, seed=1)
    keep = x0.copy()
    r = kinflow.sample(kinflow.EmpiricalField(Y), x0, solver="heun", steps=20)
    np.testing.assert_array_equal(x0, keep)
    assert r.x.shape == (64, 2)
    for a in (r.kpe, r.kpe_early, r.kpe_late, r.nfe):
        assert a.shape == (64,)
    np.testing.assert_allclose(r.kpe, r.kpe_early + r.kpe_late, rtol=1e-12)
    assert np.all(r.nfe == 40)
    assert r.status == ["success"] * 64
    assert r.log_likelihood is None and r.trajectory is None


def gaussian_target_field(mu, s):
    """Exact velocity of the flow from N(0, I) to N(mu, s^2 I) along x_t = (1 - t) x0 + t x1."""

    def v(t, X):
        c = (t * s**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * s**2)
        return mu + c * (X - t * mu)

    return v


def test_python_callable_matches_analytic_endpoint():
    mu = np.array([1.5, -0.5, 2.0])
    s = 0.4
    x0 = kinflow.standard_normal(50, 3, seed=3)
    calls = []

    def field(t, X):
        calls.append(t)
        assert isinstance(t, float) and X.shape == (50, 3)
        return gaussian_target_field(mu, s)(t, X)

    r = kinflow.sample(field, x0, solver="rk4", steps=100)
    np.testing.assert_allclose(r.x, mu + s * x0, rtol=0, atol=1e-8)
    assert len(calls) == 400
    assert np.all(r.nfe == 400)

    # With trajectories: [steps + 1, B, d], first frame x0, last the result.
    rt = kinflow.sample(gaussian_target_field(mu, s), x0, solver="rk4", steps=10, trajectories=True)
    assert rt.trajectory.shape == (11, 50, 3)
    np.testing.assert_array_equal(rt.trajectory[0], x0)
    np.testing.assert_array_equal(rt.trajectory[-1], rt.x)


def test_python_callable_adaptive():
    mu = np.array([0.5, 1.0])
    s = 0.7
    x0 = kinflow.standard_normal(20, 2, seed=4)
    r = kinflow.sample(gaussian_target_field(mu, s), x0, solver="dopri5", rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(r.x, mu + s * x0, rtol=0, atol=1e-6)
    assert r.status == ["success"] * 20


def test_float32_kept():
    Y = kinflow.datasets.make("moons", 100, seed=0).astype(np.float32)
    field = kinflow.EmpiricalField(Y)
    assert field.dtype == np.float32
    X = kinflow.standard_normal(10, 2, seed=1, dtype="float32")
    assert X.dtype == np.float32
    assert field.velocity(0.5, X).dtype == np.float32
    r = kinflow.sample(field, X, steps=10)
    assert r.x.dtype == np.float32 and r.kpe.dtype == np.float32
    r64 = kinflow.sample(kinflow.EmpiricalField(Y.astype(np.float64)), X.astype(np.float64), steps=10)
    np.testing.assert_allclose(r.x, r64.x, rtol=0, atol=1e-4)
    rl = kinflow.sample(lambda t, x: -x, X, steps=10)
    assert rl.x.dtype == np.float32


def test_kts_and_likelihood():
    means = np.array([[2.0, 0.0], [-2.0, 0.0]])
    gmm = kinflow.GaussianMixture(means, np.array([0.3, 0.3]), np.array([0.5, 0.5]))
    x0 = kinflow.standard_normal(100, 2, seed=5)
    plain = kinflow.sample(gmm, x0, solver="rk4", steps=50, likelihood=True)
    assert plain.log_likelihood.shape == (100,)
    np.testing.assert_allclose(plain.log_likelihood, gmm.log_density(1.0, plain.x), atol=1e-3)
    off = kinflow.sample(gmm, x0, solver="rk4", steps=50, kts=kinflow.KTS())
    np.testing.assert_array_equal(off.x, plain.x)
    shaped = kinflow.sample(gmm, x0, solver="rk4", steps=50, kts=kinflow.KTS(alpha0=0.01, beta0=0.01))
    assert not np.array_equal(shaped.x, plain.x)


def test_errors_name_the_parameter():
    Y = np.random.default_rng(0).normal(size=(10, 2))
    field = kinflow.EmpiricalField(Y)
    x0 = np.zeros((5, 2))
    with pytest.raises(ValueError, match="solver"):
        kinflow.sample(field, x0, solver="nope")
    with pytest.raises(ValueError, match="steps"):
        kinflow.sample(field, x0, steps=0)
    with pytest.raises(ValueError, match="grid"):
        kinflow.sample(field, x0, grid="square")
    with pytest.raises(ValueError, match="kpe"):
        kinflow.sample(field, x0, kpe="right")
    with pytest.raises(ValueError, match="alpha0"):
        kinflow.KTS(alpha0=-1)
    with pytest.raises(ValueError, match="early"):
        kinflow.KTS(early="cubic")
    with pytest.raises(ValueError, match="sigma_min"):
        kinflow.EmpiricalField(Y, sigma_min=2.0)
    with pytest.raises(ValueError, match=r"x0.*\(5, 3\)"):
        kinflow.sample(field, np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(5, 2\)"):
        kinflow.sample(lambda t, x: np.zeros((5, 3)), x0)
    with pytest.raises(TypeError):
        kinflow.sample("not a field", x0)
    with pytest.raises(TypeError):
        kinflow.EmpiricalField("abc")
    with pytest.raises(ValueError, match="dataset|name"):
        kinflow.datasets.make("nope", 10, 0)


def test_callable_exception_propagates():
    class Boom(RuntimeError):
        pass

    def field(t, X):
        if t > 0.5:
            raise Boom("from the field")
        return -X

    with pytest.raises(Boom, match="from the field"):
        kinflow.sample(field, np.ones((4, 2)), steps=10)


def test_metrics_and_data():
    assert "8gaussians" in kinflow.datasets.names
    Y = kinflow.datasets.make("8gaussians", 300, seed=0)
    assert Y.shape == (300, 2)
    np.testing.assert_array_equal(Y, kinflow.datasets.make("8gaussians", 300, seed=0))
    m = kinflow.memorization(Y[:50] + 1e-9, Y, bootstrap=100)
    assert m.fraction == 1.0 and m.memorized.all() and m.nn_dist.shape == (50,)
    assert m.ci[0] <= m.fraction <= m.ci[1]
    Z = kinflow.datasets.make("8gaussians", 300, seed=1)
    assert kinflow.sliced_wasserstein2(Y, Z) > 0
    assert kinflow.exact_wasserstein2(Y, Y) == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(kinflow.mmd2(Y, Z))
    assert kinflow.knn_log_density(Z[:10], Y).shape == (10,)
    assert kinflow.spearman(np.arange(5.0), np.arange(5.0) ** 3) == pytest.approx(1.0)


def test_large_batches_give_every_sample_its_own_result():
    # B > 4096: the integrators walk the batch in tiles of columns; every sample's result is
    # the one it gets alone.
    Y = kinflow.datasets.make("8gaussians", 50, seed=0)
    field = kinflow.EmpiricalField(Y, threads=1)
    x0 = kinflow.standard_normal(10000, 2, seed=2)
    for solver in ("euler", "dopri5"):
        r = kinflow.sample(field, x0, solver=solver, steps=5, likelihood=True)
        for rows in (slice(0, 200), slice(9800, 10000)):
            alone = kinflow.sample(field, x0[rows], solver=solver, steps=5, likelihood=True)
            np.testing.assert_array_equal(r.x[rows], alone.x)
            np.testing.assert_array_equal(r.kpe[rows], alone.kpe)
            np.testing.assert_array_equal(r.nfe[rows], alone.nfe)
            np.testing.assert_array_equal(r.log_likelihood[rows], alone.log_likelihood)
    rt = kinflow.sample(field, x0, steps=3, trajectories=True)
    alone = kinflow.sample(field, x0[9000:], steps=3, trajectories=True)
    np.testing.assert_array_equal(rt.trajectory[:, 9000:], alone.trajectory)
