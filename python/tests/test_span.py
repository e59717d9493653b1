"""sample()'s span for the adaptive solvers (t0, t1, either direction) and the likelihood's
divergence settings (exact or Hutchinson's estimate, its probes and seed).

The references are closed forms: for data N(mu, s^2 I) the flow-matching flow is
x_t = t mu + sigma(t) x_0 with sigma(t) = sqrt((1 - t)^2 + t^2 s^2), so the state at t1 of
a state x at t0 is t1 mu + sigma(t1) / sigma(t0) (x - t0 mu), and the model's log density of
a point is that of N(mu, s^2 I).
"""

import numpy as np
import pytest

import kinflow

MU, S, D = np.array([0.7, -1.2, 0.4]), 0.5, 3


def _gaussian():
    return kinflow.GaussianMixture(MU[None, :], np.array([S]), np.array([1.0]))


def _sigma(t):
    return np.sqrt((1 - t) ** 2 + (t * S) ** 2)


def _flow(x, t0, t1):
    return t1 * MU + _sigma(t1) / _sigma(t0) * (x - t0 * MU)


@pytest.mark.parametrize("solver", ["dopri5", "bs32", "tsit5"])
@pytest.mark.parametrize("t0,t1", [(0.3, 0.8), (0.8, 0.3), (1.0, 0.0), (0.0, 0.45)])
def test_adaptive_span_either_direction(solver, t0, t1):
    x = np.asarray(kinflow.standard_normal(50, D, 4))
    r = kinflow.sample(_gaussian(), x, solver=solver, t0=t0, t1=t1, rtol=1e-9, atol=1e-9)
    assert all(s == "success" for s in r.status)
    np.testing.assert_allclose(np.asarray(r.x), _flow(x, t0, t1), rtol=0, atol=2e-6)


def test_adaptive_round_trip_and_energy_of_either_direction():
    x = np.asarray(kinflow.standard_normal(20, D, 5))
    f = kinflow.sample(_gaussian(), x, solver="dopri5", t0=0.2, t1=0.9, rtol=1e-10, atol=1e-10)
    b = kinflow.sample(_gaussian(), np.asarray(f.x), solver="dopri5", t0=0.9, t1=0.2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(b.x), x, rtol=0, atol=1e-7)
    # 1/2 int |v|^2 dt over the same path, walked either way
    np.testing.assert_allclose(np.asarray(b.kpe), np.asarray(f.kpe), rtol=1e-6)


@pytest.mark.parametrize("solver", ["dopri5", "rk4"])
def test_log_likelihood_of_given_points(solver):
    data = MU + S * np.asarray(kinflow.standard_normal(40, D, 6))
    got = np.asarray(kinflow.log_likelihood(_gaussian(), data, solver=solver, steps=200, rtol=1e-9, atol=1e-9))
    want = -0.5 * D * np.log(2 * np.pi * S ** 2) - 0.5 * ((data - MU) ** 2).sum(1) / S ** 2
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def _field():
    Y = np.asarray(kinflow.datasets.make("8gaussians", 64, seed=1))
    return kinflow.smoothed_empirical(Y, 0.4)


def test_hutchinson_probes_and_seed():
    # The smoothed field's Jacobian is not a multiple of the identity, so each Rademacher
    # estimate has a variance; it is unbiased, and P probes divide the variance by P.
    # Against the exact divergence's log-likelihood, per sample: the error's spread with 16
    # probes is about 1/4 of that with one (the bound 1/2 leaves room for the sampling error
    # of two standard deviations over 400 samples, a few per cent).
    field = _field()
    x0 = np.asarray(kinflow.standard_normal(400, 2, 7))
    kw = dict(solver="rk4", steps=40, likelihood=True)
    exact = np.asarray(kinflow.sample(field, x0, **kw).log_likelihood)
    exact2 = np.asarray(kinflow.sample(field, x0, divergence="exact", **kw).log_likelihood)
    np.testing.assert_array_equal(exact, exact2)  # "auto" is the exact divergence here
    one = np.asarray(kinflow.sample(field, x0, divergence="hutchinson", **kw).log_likelihood)
    many = np.asarray(kinflow.sample(field, x0, divergence="hutchinson", probes=16, **kw).log_likelihood)
    e1, e16 = one - exact, many - exact
    assert np.std(e1) > 1e-3  # the estimate is not the exact divergence
    assert np.std(e16) < 0.5 * np.std(e1)
    for e in (e1, e16):  # unbiased up to O(delta^2): the mean error within 4 standard errors
        assert abs(np.mean(e)) < 4 * np.std(e) / np.sqrt(e.size) + 1e-6
    # The seed fixes the probes.
    again = np.asarray(kinflow.sample(field, x0, divergence="hutchinson", probe_seed=0, **kw).log_likelihood)
    other = np.asarray(kinflow.sample(field, x0, divergence="hutchinson", probe_seed=5, **kw).log_likelihood)
    np.testing.assert_array_equal(again, one)
    assert np.mean(other != one) > 0.9


def test_span_and_divergence_errors():
    x = np.asarray(kinflow.standard_normal(4, D, 8))
    g = _gaussian()
    cases = [
        (dict(solver="euler", t0=0.2), "t0: applies to the adaptive"),
        (dict(solver="dopri5", t0=0.5, t1=0.5), "t1: expected a time != t0"),
        (dict(solver="dopri5", t1=1.5), r"t1: expected a time in \[0, 1\]"),
        (dict(solver="dopri5", t0=0.2, likelihood=True), "likelihood: needs the whole span"),
        (dict(solver="rk4", probes=4), "probes: applies with likelihood=True"),
        (dict(solver="rk4", likelihood=True, probes=0), r"probes: expected .* \[1, 1000\]"),
        (dict(solver="rk4", likelihood=True, divergence="fast"), "divergence = 'fast' is invalid; expected 'auto'"),
    ]
    for kw, message in cases:
        with pytest.raises(ValueError, match=message):
            kinflow.sample(g, x, **kw)
    with pytest.raises(ValueError, match="divergence"):  # a callable has no exact divergence
        kinflow.sample(lambda t, X: -X, x, solver="rk4", steps=4, likelihood=True, divergence="exact")
    with pytest.raises(TypeError, match="probe_seed"):
        kinflow.sample(g, x, solver="rk4", likelihood=True, probe_seed=-1)


def test_energy_profile_of_euler_on_a_linear_field():
    # v = -x with Euler's steps h: x_k = (1 - h)^k x0, and the stage quadrature's increment of
    # step k is h/2 |v(x_k)|^2 = h/2 (1 - h)^{2k} |x0|^2 -- exactly, per sample.
    steps, h = 8, 1 / 8
    x0 = np.asarray(kinflow.standard_normal(30, 3, 12))
    r = kinflow.sample(lambda t, X: -X, x0, solver="euler", steps=steps, profile="per_sample")
    assert r.kpe_profile.shape == (30, steps)
    want = 0.5 * h * (1 - h) ** (2 * np.arange(steps))[None, :] * (x0 ** 2).sum(1)[:, None]
    np.testing.assert_allclose(r.kpe_profile, want, rtol=1e-13)
    np.testing.assert_allclose(r.kpe_profile.sum(1), r.kpe, rtol=1e-13)
    m = kinflow.sample(lambda t, X: -X, x0, solver="euler", steps=steps, profile="mean")
    np.testing.assert_allclose(m.kpe_profile, want.mean(0), rtol=1e-13)
    assert kinflow.sample(lambda t, X: -X, x0, steps=steps).kpe_profile is None


@pytest.mark.parametrize("solver", ["rk4", "unipc", "sde-euler"])
def test_energy_profile_sums_to_the_energy(solver):
    x0 = np.asarray(kinflow.standard_normal(40, D, 13))
    r = kinflow.sample(_gaussian(), x0, solver=solver, steps=12, grid="cosine", profile="per_sample")
    assert r.kpe_profile.shape == (40, 12)
    np.testing.assert_allclose(r.kpe_profile.sum(1), r.kpe, rtol=1e-12)
    # the early part is the steps whose lower end is below tau
    t = kinflow.grid("cosine", 12)
    early = r.kpe_profile[:, t[:-1] < r.kpe_tau].sum(1)
    np.testing.assert_allclose(early, r.kpe_early, rtol=1e-12, atol=1e-14)


def test_energy_profile_errors():
    x = np.asarray(kinflow.standard_normal(4, D, 8))
    with pytest.raises(ValueError, match="profile: the per-step energy"):
        kinflow.sample(_gaussian(), x, solver="dopri5", profile="mean")
    with pytest.raises(ValueError, match="profile: expected"):
        kinflow.sample(_gaussian(), x, profile="sum")


def _recorder():
    seen = []

    def callback(step, t, X, V):
        seen.append((step, t, X.copy(), V.copy()))
    return seen, callback


def test_callback_of_euler_on_a_linear_field():
    steps, h = 6, 1 / 6
    x0 = np.asarray(kinflow.standard_normal(10, 2, 21))
    seen, cb = _recorder()
    r = kinflow.sample(lambda t, X: -X, x0, solver="euler", steps=steps, callback=cb)
    assert [s for s, *_ in seen] == list(range(steps))
    for k, t, X, V in seen:
        assert t == pytest.approx(k * h, abs=1e-15)
        assert V.shape == (1, 10, 2)
        np.testing.assert_allclose(V[0], -x0 * (1 - h) ** k, rtol=1e-14)
        np.testing.assert_allclose(X, x0 * (1 - h) ** (k + 1), rtol=1e-14)
    np.testing.assert_array_equal(seen[-1][2], np.asarray(r.x))


def test_callback_stages_rebuild_rk4_steps_and_change_nothing():
    # X_{k+1} = X_k + h (V_1 + 2 V_2 + 2 V_3 + V_4) / 6, from the stages the callback sees.
    x0 = np.asarray(kinflow.standard_normal(16, D, 22))
    seen, cb = _recorder()
    r = kinflow.sample(_gaussian(), x0, solver="rk4", steps=5, grid="cosine", callback=cb, trajectories=True)
    plain = kinflow.sample(_gaussian(), x0, solver="rk4", steps=5, grid="cosine")
    np.testing.assert_array_equal(np.asarray(r.x), np.asarray(plain.x))
    t = kinflow.grid("cosine", 5)
    prev = x0
    for k, tk, X, V in seen:
        assert V.shape == (4, 16, D) and tk == pytest.approx(t[k])
        h = t[k + 1] - t[k]
        np.testing.assert_allclose(X, prev + h * (V[0] + 2 * V[1] + 2 * V[2] + V[3]) / 6, rtol=1e-13, atol=1e-14)
        np.testing.assert_array_equal(X, r.trajectory[k + 1])
        prev = X
    # multistep and stochastic solvers: one velocity per step
    seen, cb = _recorder()
    kinflow.sample(_gaussian(), x0, solver="unipc", steps=7, callback=cb)
    assert len(seen) == 7 and all(V.shape == (1, 16, D) for *_, V in seen)
    seen, cb = _recorder()
    kinflow.sample(_gaussian(), x0, solver="sde-euler", steps=7, callback=cb)
    assert len(seen) == 7 and all(V.shape == (1, 16, D) for *_, V in seen)


def test_callback_errors_propagate():
    x = np.asarray(kinflow.standard_normal(4, D, 8))

    class Stop(Exception):
        pass

    def stop(step, t, X, V):
        if step == 2:
            raise Stop("enough")
    for field in (_gaussian(), lambda t, X: -X):  # a C++ field (GIL released) and a callable
        with pytest.raises(Stop, match="enough"):
            kinflow.sample(field, x, solver="heun", steps=5, callback=stop)
    def stop_adaptive(step, t, X, V, sample):
        if step == 2:
            raise Stop("enough")
    with pytest.raises(Stop, match="enough"):
        kinflow.sample(_gaussian(), x, solver="dopri5", callback=stop_adaptive)
    with pytest.raises(TypeError, match="callback"):
        kinflow.sample(_gaussian(), x, solver="euler", callback=3)


# Dormand and Prince's 5th-order weights (the propagated solution; the 7th stage is FSAL).
DOPRI5_B = np.array([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0])


def test_adaptive_callback_sees_every_accepted_step_of_every_sample():
    """Each sample's accepted steps, rebuilt from the stages the callback sees with the
    method's published weights, chain from x0 to the sample's result; the counts are the
    solve's accepted steps, and the callback changes nothing."""
    x0 = np.asarray(kinflow.standard_normal(6, D, 23))
    steps = {}

    def callback(step, t, X, V, sample):
        assert X.shape == (1, D) and V.shape == (7, 1, D)
        steps.setdefault(sample, []).append((step, t, X[0].copy(), V[:, 0].copy()))

    r = kinflow.sample(_gaussian(), x0, solver="dopri5", rtol=1e-8, atol=1e-8, callback=callback)
    plain = kinflow.sample(_gaussian(), x0, solver="dopri5", rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(np.asarray(r.x), np.asarray(plain.x))
    assert sorted(steps) == list(range(6))
    for i, seen in steps.items():
        assert [s for s, *_ in seen] == list(range(len(seen)))
        assert len(seen) == int(r.accepted[i])
        prev = x0[i]
        ends = [t for _, t, _, _ in seen[1:]] + [1.0]
        for (_, t, X, V), end in zip(seen, ends):
            np.testing.assert_allclose(X, prev + (end - t) * DOPRI5_B @ V, rtol=1e-12, atol=1e-13)
            prev = X
        np.testing.assert_array_equal(prev, np.asarray(r.x)[i])
