"""kinflow.sample with a Python lambda field against the exact Gaussian-target flow.

Target N(mu, s² I): the flow from x0 is x(t) = t mu + σ(t) x0, σ(t)² = (1 - t)² + t² s², and
its kinetic path energy is ½ ∫ ‖mu + σ'(t) x0‖² dt (docs/math.md §3.4), computed here by
Gauss-Legendre quadrature. The field is a plain Python lambda (and, for comparison, the
one-component GaussianMixture).
"""

import math

import numpy as np
import pytest

import kinflow
import _np_reference as ref

MU = np.array([1.0, -2.0])
S = 0.5
FIXED = ["euler", "midpoint", "heun", "ralston", "rk3", "rk4"]
STAGES = {"euler": 1, "midpoint": 2, "heun": 2, "ralston": 2, "rk3": 3, "rk4": 4}
ORDER = {"euler": 1, "midpoint": 2, "heun": 2, "ralston": 2, "rk3": 3, "rk4": 4}
MULTISTEP = ["ab2", "ab3", "dpmpp2m", "dpmpp3m", "dpmpp3m_exact", "unipc"]


def gaussian_lambda(mu=MU, s=S):
    return lambda t, X: ref.gaussian_velocity(t, np.asarray(X), mu, s)


@pytest.fixture(scope="module")
def x0():
    return np.random.default_rng(5).normal(size=(16, 2))


def test_result_fields_and_shapes(x0):
    r = kinflow.sample(gaussian_lambda(), x0, solver="rk4", steps=10)
    B, d = x0.shape
    assert np.asarray(r.x).shape == (B, d)
    for name in ("kpe", "kpe_early", "kpe_late", "nfe"):
        assert np.asarray(getattr(r, name)).shape == (B,), name
    assert list(r.status) == ["success"] * B
    np.testing.assert_array_equal(np.asarray(r.nfe), 40)  # 4 stages x 10 steps
    np.testing.assert_allclose(np.asarray(r.kpe),
                               np.asarray(r.kpe_early) + np.asarray(r.kpe_late), rtol=1e-13)


@pytest.mark.parametrize("solver", FIXED)
def test_fixed_solvers_follow_the_exact_trajectory(x0, solver):
    steps = 200
    r = kinflow.sample(gaussian_lambda(), x0, solver=solver, steps=steps)
    exact = ref.gaussian_trajectory(1.0, x0, MU, S)
    tol = {1: 3e-2, 2: 1e-4, 3: 1e-6, 4: 1e-9}[ORDER[solver]]
    np.testing.assert_allclose(np.asarray(r.x), exact, rtol=0, atol=tol)
    np.testing.assert_allclose(np.asarray(r.kpe), ref.gaussian_kpe(x0, MU, S), rtol=tol, atol=tol)
    np.testing.assert_array_equal(np.asarray(r.nfe), STAGES[solver] * steps)


@pytest.mark.parametrize("solver", MULTISTEP)
def test_multistep_solvers_follow_the_exact_trajectory(x0, solver):
    # One evaluation per step; second order or better on the cosine grid (docs/integrators.md).
    steps = 200
    r = kinflow.sample(gaussian_lambda(), x0, solver=solver, steps=steps, grid="cosine")
    exact = ref.gaussian_trajectory(1.0, x0, MU, S)
    np.testing.assert_allclose(np.asarray(r.x), exact, rtol=0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(r.kpe), ref.gaussian_kpe(x0, MU, S), rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(np.asarray(r.nfe), steps)
    assert list(r.status) == ["success"] * x0.shape[0]


@pytest.mark.parametrize("solver", ["dopri5", "bs32"])
def test_adaptive_solvers_follow_the_exact_trajectory(x0, solver):
    r = kinflow.sample(gaussian_lambda(), x0, solver=solver, rtol=1e-9, atol=1e-9)
    assert list(r.status) == ["success"] * x0.shape[0]
    exact = ref.gaussian_trajectory(1.0, x0, MU, S)
    np.testing.assert_allclose(np.asarray(r.x), exact, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(r.kpe), ref.gaussian_kpe(x0, MU, S), rtol=1e-6, atol=1e-6)
    assert np.all(np.asarray(r.nfe) > 0)


def test_tsit5_when_it_exists(x0):
    try:
        r = kinflow.sample(gaussian_lambda(), x0, solver="tsit5", rtol=1e-9, atol=1e-9)
    except ValueError as e:
        pytest.skip(f"tsit5 not offered: {e}")
    np.testing.assert_allclose(np.asarray(r.x), ref.gaussian_trajectory(1.0, x0, MU, S),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("solver", FIXED)
def test_convergence_order(x0, solver):
    # Doubling the steps divides the error by at least about 2^p (midpoint does better on
    # this field's landing point: its leading error term happens to vanish there).
    exact = ref.gaussian_trajectory(1.0, x0, MU, S)
    E = ref.gaussian_kpe(x0, MU, S)
    errs, kerrs = [], []
    for steps in (32, 64, 128):
        r = kinflow.sample(gaussian_lambda(), x0, solver=solver, steps=steps)
        errs.append(np.max(np.abs(np.asarray(r.x) - exact)))
        kerrs.append(np.max(np.abs(np.asarray(r.kpe) - E)))
    p = ORDER[solver]
    for a, b in zip(errs, errs[1:]):
        assert a / b > 0.8 * 2 ** p, (solver, errs)
    # the stage-consistent KPE converges at the integrator's order
    assert 0.8 * 2 ** p < kerrs[1] / kerrs[2] < 1.25 * 2 ** p, (solver, kerrs)


def test_rk4_ratio_is_about_16(x0):
    exact = ref.gaussian_trajectory(1.0, x0, MU, S)
    e = [np.max(np.abs(np.asarray(kinflow.sample(gaussian_lambda(), x0, solver="rk4",
                                                 steps=n).x) - exact)) for n in (64, 128)]
    assert 14.0 < e[0] / e[1] < 18.0, e
    E = ref.gaussian_kpe(x0, MU, S)
    k = [np.max(np.abs(np.asarray(kinflow.sample(gaussian_lambda(), x0, solver="rk4",
                                                 steps=n).kpe) - E)) for n in (64, 128)]
    assert 14.0 < k[0] / k[1] < 18.0, k


def test_kpe_split_at_tau(x0):
    for tau, kw in ((0.6, {}), (0.4, {"tau": 0.4})):
        r = kinflow.sample(gaussian_lambda(), x0, solver="rk4", steps=100, **kw)
        np.testing.assert_allclose(np.asarray(r.kpe_early), ref.gaussian_kpe(x0, MU, S, 0.0, tau),
                                   rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(np.asarray(r.kpe_late), ref.gaussian_kpe(x0, MU, S, tau, 1.0),
                                   rtol=1e-8, atol=1e-9)


def test_left_riemann_kpe_is_first_order(x0):
    E = ref.gaussian_kpe(x0, MU, S)
    errs = []
    for steps in (50, 100):
        r = kinflow.sample(gaussian_lambda(), x0, solver="rk4", steps=steps, kpe="left")
        errs.append(np.max(np.abs(np.asarray(r.kpe) - E)))
        # left Riemann sum of ½‖v(x_n, t_n)‖² over the (accurate) rk4 states
        t = np.arange(steps) / steps
        xs = np.stack([ref.gaussian_trajectory(tt, x0, MU, S) for tt in t])
        vs = np.stack([ref.gaussian_velocity(tt, x, MU, S) for tt, x in zip(t, xs)])
        left = 0.5 * np.sum(vs * vs, axis=(0, 2)) / steps
        np.testing.assert_allclose(np.asarray(r.kpe), left, rtol=1e-7)
    assert 1.6 < errs[0] / errs[1] < 2.4


@pytest.mark.parametrize("grid", ["cosine", "edm", "shift:3", "energy", "exponential", "beta:0.6,0.6",
                                  "dynamic-shift:1.15", "acceleration", "acceleration:0.5"])
def test_grids(x0, grid):
    r = kinflow.sample(gaussian_lambda(), x0, solver="rk4", steps=60, grid=grid)
    np.testing.assert_allclose(np.asarray(r.x), ref.gaussian_trajectory(1.0, x0, MU, S),
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(r.kpe), ref.gaussian_kpe(x0, MU, S), rtol=1e-5)


def test_cosine_grid_trajectory_times(x0):
    steps = 24
    r = kinflow.sample(gaussian_lambda(), x0, solver="rk4", steps=steps, grid="cosine",
                       trajectories=True)
    traj = np.asarray(r.trajectory)
    assert traj.shape == (steps + 1, x0.shape[0], x0.shape[1])
    t = 0.5 * (1.0 - np.cos(np.pi * np.arange(steps + 1) / steps))
    exact = np.stack([ref.gaussian_trajectory(tt, x0, MU, S) for tt in t])
    np.testing.assert_array_equal(traj[0], x0)
    np.testing.assert_allclose(traj, exact, rtol=0, atol=1e-4)


def test_trajectory_uniform(x0):
    steps = 40
    r = kinflow.sample(gaussian_lambda(), x0, solver="rk4", steps=steps, trajectories=True)
    traj = np.asarray(r.trajectory)
    assert traj.shape == (steps + 1, x0.shape[0], x0.shape[1])
    exact = np.stack([ref.gaussian_trajectory(i / steps, x0, MU, S) for i in range(steps + 1)])
    np.testing.assert_allclose(traj, exact, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(traj[-1], np.asarray(r.x))


def test_lambda_agrees_with_the_one_component_mixture(x0):
    g = kinflow.GaussianMixture(MU[None, :], np.array([S]), np.array([1.0]))
    a = kinflow.sample(gaussian_lambda(), x0, solver="heun", steps=30)
    b = kinflow.sample(g, x0, solver="heun", steps=30)
    np.testing.assert_allclose(np.asarray(a.x), np.asarray(b.x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(a.kpe), np.asarray(b.kpe), rtol=1e-12)


def test_log_likelihood_exact_divergence(x0):
    # docs/math.md §8.1: the exact flow carries N(0, I) to N(mu, s² I).
    g = kinflow.GaussianMixture(MU[None, :], np.array([S]), np.array([1.0]))
    r = kinflow.sample(g, x0, solver="rk4", steps=100, likelihood=True)
    ll = np.asarray(r.log_likelihood)
    assert ll.shape == (x0.shape[0],)
    np.testing.assert_allclose(ll, ref.gaussian_log_density(np.asarray(r.x), MU, S), atol=1e-8)


def test_log_likelihood_of_a_python_field(x0):
    # A callable has no divergence: Hutchinson's estimate. Its Jacobian here is g(t)·I
    # (diagonal), so the estimate has zero variance and only the finite-difference bias.
    r = kinflow.sample(gaussian_lambda(), x0, solver="rk4", steps=50, likelihood=True)
    np.testing.assert_allclose(np.asarray(r.log_likelihood),
                               ref.gaussian_log_density(np.asarray(r.x), MU, S), atol=1e-6)


# ---------------------------------------------------------------------------------------
# KTS

def kts_eta(t, alpha0, beta0, tau, k):
    """η(t) with the default forms: linear launch, exponential landing (docs/math.md §7.1)."""
    if t < tau:
        return 1.0 + alpha0 * (1.0 - t / tau)
    u = (t - tau) / (1.0 - tau)
    return 1.0 - beta0 * math.expm1(k * u)


def test_kts_euler_is_the_reference_sampler(x0):
    # Euler with KTS: x_{n+1} = x_n + h η(t_n) v(x_n, t_n), written out here.
    a0, b0, tau, k, steps = 0.2, 0.03, 0.6, 3.0, 25
    f = gaussian_lambda()
    r = kinflow.sample(f, x0, solver="euler", steps=steps,
                       kts=kinflow.KTS(alpha0=a0, beta0=b0, tau=tau, k=k))
    x = x0.copy()
    E = np.zeros(x0.shape[0])
    Ee = np.zeros(x0.shape[0])
    h = 1.0 / steps
    for n in range(steps):
        t = n * h
        v = kts_eta(t, a0, b0, tau, k) * f(t, x)
        E += 0.5 * h * np.sum(v * v, axis=1)
        if t < tau:
            Ee += 0.5 * h * np.sum(v * v, axis=1)
        x = x + h * v
    np.testing.assert_allclose(np.asarray(r.x), x, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(np.asarray(r.kpe), E, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(r.kpe_early), Ee, rtol=1e-12)


def test_kts_identity_by_default(x0):
    a = kinflow.sample(gaussian_lambda(), x0, solver="heun", steps=20)
    b = kinflow.sample(gaussian_lambda(), x0, solver="heun", steps=20, kts=kinflow.KTS())
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))
    np.testing.assert_array_equal(np.asarray(a.kpe), np.asarray(b.kpe))


def test_kts_tau_sets_the_split(x0):
    f = gaussian_lambda()
    r = kinflow.sample(f, x0, solver="rk4", steps=100, kts=kinflow.KTS(tau=0.3))
    np.testing.assert_allclose(np.asarray(r.kpe_early), ref.gaussian_kpe(x0, MU, S, 0.0, 0.3),
                               rtol=1e-8)
    # an explicit tau overrides the KTS one
    r = kinflow.sample(f, x0, solver="rk4", steps=100, kts=kinflow.KTS(tau=0.3), tau=0.5)
    np.testing.assert_allclose(np.asarray(r.kpe_early), ref.gaussian_kpe(x0, MU, S, 0.0, 0.5),
                               rtol=1e-8)
    # also over a gain that is not the identity: the parts are the profile's steps on each side
    for solver in ("rk4", "dpmpp2m"):
        r = kinflow.sample(f, x0, solver=solver, steps=100, kts=kinflow.KTS(alpha0=0.1, beta0=0.02, tau=0.3),
                           tau=0.5, profile="per_sample")
        assert r.kpe_tau == 0.5
        p = np.asarray(r.kpe_profile)
        np.testing.assert_allclose(np.asarray(r.kpe_early), p[:, :50].sum(axis=1), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(r.kpe_late), p[:, 50:].sum(axis=1), rtol=1e-12)
        # and without tau, the gain's own switch time
        r = kinflow.sample(f, x0, solver=solver, steps=100, kts=kinflow.KTS(alpha0=0.1, beta0=0.02, tau=0.3),
                           profile="per_sample")
        assert r.kpe_tau == 0.3
        np.testing.assert_allclose(np.asarray(r.kpe_early), np.asarray(r.kpe_profile)[:, :30].sum(axis=1),
                                   rtol=1e-12)


@pytest.mark.parametrize("early,late", [("constant", "linear"), ("exponential", "constant")])
def test_kts_forms(x0, early, late):
    a0, b0, tau, k, steps = 0.1, 0.2, 0.5, 2.0, 10
    f = gaussian_lambda()
    r = kinflow.sample(f, x0, solver="euler", steps=steps,
                       kts=kinflow.KTS(alpha0=a0, beta0=b0, tau=tau, k=k, early=early, late=late))

    def eta(t):
        if t < tau:
            rr = t / tau
            alpha = {"constant": a0,
                     "exponential": a0 * math.expm1(k * (1 - rr)) / math.expm1(k)}[early]
            return 1.0 + alpha
        u = (t - tau) / (1 - tau)
        return 1.0 - {"linear": b0 * u, "constant": b0}[late]

    x = x0.copy()
    for n in range(steps):
        t = n / steps
        x = x + eta(t) * f(t, x) / steps
    np.testing.assert_allclose(np.asarray(r.x), x, rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------------------
# What the callable sees, dtypes, and x0

def test_callable_receives_a_float_and_an_array(x0):
    seen = []

    def f(t, X):
        seen.append((type(t), type(X), X.shape, X.dtype))
        return ref.gaussian_velocity(t, np.asarray(X), MU, S)

    kinflow.sample(f, x0, solver="euler", steps=3)
    assert seen
    for tt, tx, shape, dtype in seen:
        assert tt is float
        assert issubclass(tx, np.ndarray)
        assert shape[1] == 2 and 1 <= shape[0] <= x0.shape[0]
        assert dtype == np.float64


def test_float32_kept(x0):
    x32 = x0.astype(np.float32)
    dtypes = []

    def f(t, X):
        dtypes.append(X.dtype)
        X = np.asarray(X, dtype=np.float64)
        return ref.gaussian_velocity(t, X, MU, S).astype(np.float32)

    r = kinflow.sample(f, x32, solver="rk4", steps=20)
    assert np.asarray(r.x).dtype == np.float32
    assert all(d == np.float32 for d in dtypes)
    np.testing.assert_allclose(np.asarray(r.x), ref.gaussian_trajectory(1.0, x0, MU, S),
                               rtol=0, atol=1e-4)
    np.testing.assert_allclose(np.asarray(r.kpe, dtype=np.float64), ref.gaussian_kpe(x0, MU, S),
                               rtol=1e-4)
    # a C++ field in float32 as well
    g = kinflow.GaussianMixture(MU[None, :].astype(np.float32), np.array([S], np.float32),
                                np.array([1.0], np.float32))
    r = kinflow.sample(g, x32, solver="rk4", steps=20)
    assert np.asarray(r.x).dtype == np.float32
    np.testing.assert_allclose(np.asarray(r.x), ref.gaussian_trajectory(1.0, x0, MU, S),
                               rtol=0, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["euler", "rk4", "dopri5"])
def test_x0_not_modified(x0, dtype, solver):
    x = x0.astype(dtype)
    keep = x.copy()
    kinflow.sample(gaussian_lambda(), x, solver=solver, steps=5)
    np.testing.assert_array_equal(x, keep)
    Y = np.random.default_rng(0).normal(size=(10, 2)).astype(dtype)
    kinflow.sample(kinflow.EmpiricalField(Y), x, solver=solver, steps=5)
    np.testing.assert_array_equal(x, keep)


def test_x0_layouts_give_identical_results(x0):
    Y = np.random.default_rng(3).normal(size=(30, 2))
    f = kinflow.EmpiricalField(Y)
    base = np.asarray(kinflow.sample(f, x0, solver="heun", steps=10).x)
    big = np.zeros((x0.shape[0], 5))
    big[:, 1:3] = x0
    for v in (np.asfortranarray(x0), big[:, 1:3], x0[::-1][::-1]):
        np.testing.assert_array_equal(np.asarray(kinflow.sample(f, v, solver="heun", steps=10).x), base)
    # the result owns its memory: a later call does not change an earlier result
    r1 = kinflow.sample(f, x0, solver="heun", steps=10)
    keep = np.asarray(r1.x).copy()
    kinflow.sample(f, 2 * x0, solver="heun", steps=10)
    np.testing.assert_array_equal(np.asarray(r1.x), keep)


def test_callable_may_return_a_non_contiguous_array(x0):
    # The callable's return value may be any [B, d] array, e.g. a non-contiguous view.
    def f(t, X):
        V = ref.gaussian_velocity(t, np.asarray(X), MU, S)
        return np.asfortranarray(V)

    a = kinflow.sample(f, x0, solver="rk4", steps=8)
    b = kinflow.sample(gaussian_lambda(), x0, solver="rk4", steps=8)
    np.testing.assert_array_equal(np.asarray(a.x), np.asarray(b.x))


def test_empirical_field_lands_on_training_points():
    # docs/math.md §2.2: the last Euler step lands on the posterior mean, near t = 1 a
    # training point: every sample is a copy (F_mem = 1).
    Y = kinflow.datasets.make("8gaussians", 40, 0)
    x0 = kinflow.standard_normal(50, 2, 1)
    r = kinflow.sample(kinflow.EmpiricalField(Y), x0, solver="euler", steps=100)
    m = kinflow.memorization(np.asarray(r.x), Y)
    assert m.fraction == 1.0
    assert np.max(np.asarray(m.nn_dist)) < 1e-3


@pytest.mark.parametrize("solver", ["heun", "dopri5"])
def test_results_do_not_depend_on_the_batch(solver):
    # A sample's result is the same whatever else is in the batch (and however the integrator
    # tiles a large batch): the first rows of a large batch equal a small one.
    Y = kinflow.datasets.make("moons", 200, 1)
    f = kinflow.EmpiricalField(Y)
    x0 = np.asarray(kinflow.standard_normal(5000, 2, 9))
    big = kinflow.sample(f, x0, solver=solver, steps=10)
    small = kinflow.sample(f, x0[:100], solver=solver, steps=10)
    np.testing.assert_array_equal(np.asarray(big.x)[:100], np.asarray(small.x))
    np.testing.assert_array_equal(np.asarray(big.kpe)[:100], np.asarray(small.kpe))
    np.testing.assert_array_equal(np.asarray(big.nfe)[:100], np.asarray(small.nfe))


def test_last_step_rule_and_multistep_start(x0):
    # The last-step rule makes the last RK4 step one Euler evaluation (4 x 9 + 1); a
    # Runge-Kutta start adds order - 1 evaluations to each of its order - 1 steps.
    r = kinflow.sample(gaussian_lambda(), x0, solver="rk4", steps=10, last_step="euler")
    np.testing.assert_array_equal(np.asarray(r.nfe), 37)
    r = kinflow.sample(gaussian_lambda(), x0, solver="ab3", steps=10, start="rk")
    np.testing.assert_array_equal(np.asarray(r.nfe), 14)
    with pytest.raises(ValueError, match="last_step"):
        kinflow.sample(gaussian_lambda(), x0, solver="rk4", last_step="jump")
    with pytest.raises(ValueError, match="last_step"):
        kinflow.sample(gaussian_lambda(), x0, solver="dopri5", last_step="euler")
    with pytest.raises(ValueError, match="start"):
        kinflow.sample(gaussian_lambda(), x0, solver="rk4", start="rk")


# Stochastic solvers (docs/math.md section 11). The flow SDE keeps the ODE's marginals for any
# diffusion: on the Gaussian target N(MU, S^2 I) its samples' mean and variance must match
# within 5 standard errors (a false alarm of 5.7e-7 per check, for a seed drawn at random);
# sde-heun's weak second order keeps its bias at 50 steps far below one standard error
# (tests/integrators/test_stochastic.cpp computes the schemes' exact laws).
def gaussian_mixture():
    return kinflow.GaussianMixture(MU[None, :], np.array([S]), np.array([1.0]))


@pytest.mark.parametrize("diffusion", ["sbdm", "sigma", "decreasing", "increasing-decreasing", "constant:0.5"])
def test_stochastic_marginals_on_the_gaussian_target(diffusion):
    x0 = np.asarray(kinflow.standard_normal(20000, 2, 17))
    r = kinflow.sample(gaussian_mixture(), x0, solver="sde-heun", steps=50, diffusion=diffusion, last_step="mean",
                       noise_seed=4)
    assert list(r.status) == ["success"] * 20000
    z = (np.asarray(r.x) - MU).ravel()
    var = z.var()
    assert abs(z.mean()) < 5 * math.sqrt(var / z.size)
    assert abs(var - S * S) < 5 * math.sqrt(((z - z.mean()) ** 4).mean() - var * var) / math.sqrt(z.size)
    np.testing.assert_array_equal(np.asarray(r.nfe), 99)  # 2 x 49 + the denoiser jump
    for name in ("drift_energy", "control_energy"):
        parts = [np.asarray(getattr(r, name + p)) for p in ("", "_early", "_late")]
        np.testing.assert_allclose(parts[0], parts[1] + parts[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("solver,ode", [("sde-euler", "euler"), ("sde-heun", "heun")])
def test_stochastic_norm_zero_is_the_ode(x0, solver, ode):
    f = gaussian_mixture()
    r = kinflow.sample(f, x0, solver=solver, steps=12, grid="cosine", diffusion="sigma", diffusion_norm=0.0)
    o = kinflow.sample(f, x0, solver=ode, steps=12, grid="cosine")
    np.testing.assert_allclose(np.asarray(r.x), np.asarray(o.x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(r.kpe), np.asarray(o.kpe), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(r.drift_energy), np.asarray(r.kpe), rtol=0, atol=1e-12)
    assert np.all(np.asarray(r.control_energy) == 0)
    assert o.drift_energy is None and o.control_energy is None


@pytest.mark.parametrize("solver", ["sde-euler", "sde-heun", "renoise-euler"])
def test_stochastic_noise_is_each_samples_own(solver):
    # Row i's noise is a function of (noise_seed, i, step): the first rows of a large batch (which
    # the solver tiles) get the paths of a small one; another seed, other paths.
    Y = kinflow.datasets.make("moons", 200, 1)
    f = kinflow.EmpiricalField(Y)
    x0 = np.asarray(kinflow.standard_normal(5000, 2, 9))
    kw = dict(solver=solver, steps=10, last_step="mean", noise_seed=11)
    big = kinflow.sample(f, x0, **kw)
    small = kinflow.sample(f, x0[:100], **kw)
    np.testing.assert_array_equal(np.asarray(big.x)[:100], np.asarray(small.x))
    np.testing.assert_array_equal(np.asarray(big.control_energy)[:100], np.asarray(small.control_energy))
    other = kinflow.sample(f, x0[:100], **dict(kw, noise_seed=12))
    assert np.any(np.asarray(other.x) != np.asarray(small.x))


def test_stochastic_bad_input(x0):
    f = gaussian_mixture()
    for kw, name in [(dict(solver="euler", diffusion="sbdm"), "diffusion"),
                     (dict(solver="sde-euler", likelihood=True), "likelihood"),
                     (dict(solver="sde-euler", diffusion="brownian"), "diffusion"),
                     (dict(solver="sde-euler", diffusion_norm=-1.0), "diffusion_norm"),
                     (dict(solver="sde-euler", last_step="mean", last_step_size=1.0), "last_step_size"),
                     (dict(solver="sde-euler", last_step_size=0.1), "last_step_size"),
                     (dict(solver="sde-heun", diffusion="constant"), "last_step"),
                     (dict(solver="renoise-euler", churn=2.0), "churn")]:
        with pytest.raises(ValueError, match=name):
            kinflow.sample(f, x0, steps=10, **kw)
    with pytest.raises(TypeError, match="noise_seed"):
        kinflow.sample(f, x0, solver="sde-euler", noise_seed=-1)
