"""kinflow.grid: every name gives steps + 1 times from exactly 0 to exactly 1, strictly
increasing; the beta, dynamic-shift and exponential grids against their definitions written
out here (Beta(½, ½) is the arcsine law, Flux's time shift of σ = 1 - t, log-uniform σ with
t = 1/(1 + σ)); bad names and parameters raise ValueError naming grid."""

import math

import numpy as np
import pytest

import kinflow

NAMES = ["uniform", "cosine", "edm", "edm:3", "shift:2.5", "exponential", "exponential:0.01,20", "beta",
         "beta:0.5,2", "dynamic-shift:1.15", "dynamic-shift:-0.5"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [1, 2, 7, 100])
def test_every_grid_runs_from_0_to_1(name, steps):
    t = kinflow.grid(name, steps)
    assert isinstance(t, np.ndarray) and t.dtype == np.float64
    assert t.shape == (steps + 1,)
    assert t[0] == 0.0 and t[-1] == 1.0
    assert np.all(np.diff(t) > 0)


def test_formulas():
    i = np.arange(9) / 8
    np.testing.assert_allclose(kinflow.grid("uniform", 8), i, rtol=0, atol=1e-16)
    np.testing.assert_allclose(kinflow.grid("beta", 8, alpha=0.5, beta=0.5), np.sin(math.pi * i / 2) ** 2,
                               rtol=0, atol=1e-14)
    np.testing.assert_array_equal(kinflow.grid("beta:0.5,0.5", 8), kinflow.grid("beta", 8, alpha=0.5, beta=0.5))
    np.testing.assert_allclose(kinflow.grid("beta:1,1", 8), i, rtol=0, atol=1e-15)
    mu, sigma = 1.15, 1 - i[1:-1]
    flux = math.exp(mu) / (math.exp(mu) + (1 / sigma - 1))
    np.testing.assert_allclose(kinflow.grid("dynamic-shift", 8, mu=mu)[1:-1], 1 - flux, rtol=0, atol=1e-14)
    np.testing.assert_allclose(kinflow.grid("dynamic-shift:1.15", 8), kinflow.grid("shift", 8, shift=math.exp(-mu)),
                               rtol=0, atol=1e-14)
    t = kinflow.grid("exponential", 8, sigma_min=0.01, sigma_max=20)[1:-1]
    log_sigma = math.log(20) + i[1:-1] * (math.log(0.01) - math.log(20))
    np.testing.assert_allclose(np.log((1 - t) / t), log_sigma, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, params, words", [
    ("spiral", {}, ["grid", "beta[:A,B]"]),
    ("shift", {}, ["grid", "shift"]),
    ("beta:0,1", {}, ["grid", "alpha = 0"]),
    ("beta:0.6", {}, ["grid", "2 number(s)"]),
    ("beta", {"beta": -1.0}, ["grid", "beta = -1"]),
    ("beta", {"mu": 1.0}, ["grid", "alpha, beta"]),
    ("dynamic-shift:nan", {}, ["grid", "mu = nan"]),
    ("dynamic-shift", {"mu": math.inf}, ["grid", "mu = inf"]),
    ("energy", {}, ["grid", "pilot"]),
    ("acceleration:2", {}, ["grid", "pilot"]),
])
def test_bad_grids_raise_value_error_naming_grid(name, params, words):
    with pytest.raises(ValueError) as e:
        kinflow.grid(name, 10, **params)
    for w in words:
        assert w in str(e.value)


def test_bad_types_and_steps():
    with pytest.raises(TypeError, match="grid"):
        kinflow.grid(3, 10)
    with pytest.raises(TypeError, match="steps"):
        kinflow.grid("uniform", 2.5)
    with pytest.raises(ValueError, match="steps"):
        kinflow.grid("uniform", 0)
    with pytest.raises(TypeError, match="alpha"):
        kinflow.grid("beta", 10, alpha="x")


def test_sample_walks_the_same_grid():
    x0 = np.random.default_rng(3).normal(size=(4, 2))
    r = kinflow.sample(lambda t, X: -X, x0, solver="euler", steps=6, grid="beta:0.5,2", trajectories=True)
    assert np.asarray(r.nfe).tolist() == [6] * 4
    # Euler on v = -x: x_{i+1} = (1 - dt_i) x_i along the grid's own steps.
    t = kinflow.grid("beta:0.5,2", 6)
    np.testing.assert_allclose(np.asarray(r.x), x0 * np.prod(1 - np.diff(t)), rtol=1e-13)
    with pytest.raises(ValueError, match="grid"):
        kinflow.sample(lambda t, X: -X, x0, grid="beta:0")


@pytest.mark.parametrize("a, b", [(0.6, 0.6), (0.5, 2.0), (3.0, 0.7)])
def test_beta_grid_is_diffusers_beta_sigmas(a, b):
    # diffusers' _convert_to_beta with sigma_min = 0, sigma_max = 1, then t = 1 - sigma.
    stats = pytest.importorskip("scipy.stats")
    sigmas = np.array([stats.beta.ppf(u, a, b) for u in 1 - np.linspace(0, 1, 21)])
    np.testing.assert_allclose(kinflow.grid(f"beta:{a},{b}", 20), 1 - sigmas, rtol=0, atol=1e-12)


def test_required_parameters_by_keyword():
    np.testing.assert_array_equal(kinflow.grid("shift", 5, shift=2.5), kinflow.grid("shift:2.5", 5))
    with pytest.raises(ValueError, match="grid: 'dynamic-shift' needs its parameter mu"):
        kinflow.grid("dynamic-shift", 5, shift=2.0)


# --- grids as arrays of times -------------------------------------------------------------


@pytest.mark.parametrize("name", ["uniform", "cosine", "edm", "beta:0.5,2"])
@pytest.mark.parametrize("solver", ["rk4", "unipc", "sde-euler"])
def test_array_grid_is_the_named_grid(name, solver):
    # The named grid's own times as an array: the same solve, bit for bit.
    field = kinflow.EmpiricalField(kinflow.datasets.make("moons", 30, seed=1))
    x0 = kinflow.standard_normal(16, 2, seed=2)
    kw = {"noise_seed": 3} if solver.startswith("sde") else {"likelihood": True}
    named = kinflow.sample(field, x0, solver=solver, steps=12, grid=name, trajectories=True, **kw)
    times = kinflow.grid(name, 12)
    for g in (times, times.tolist()):
        given = kinflow.sample(field, x0, solver=solver, grid=g, trajectories=True, **kw)
        for attr in ("x", "kpe", "kpe_early", "trajectory", "nfe") + (() if solver.startswith("sde") else ("log_likelihood",)):
            np.testing.assert_array_equal(getattr(given, attr), getattr(named, attr), err_msg=attr)


def test_array_grid_euler_steps_are_the_given_ones():
    # Euler on v = -x over arbitrary times t_i: x(t_n) = x0 * prod(1 - (t_{i+1} - t_i)).
    x0 = np.random.default_rng(3).normal(size=(4, 2))
    t = np.array([0.0, 0.05, 0.3, 0.31, 0.7, 0.9])
    r = kinflow.sample(lambda s, X: -X, x0, solver="euler", grid=t, trajectories=True)
    assert np.asarray(r.nfe).tolist() == [5] * 4 and r.trajectory.shape == (6, 4, 2)
    np.testing.assert_allclose(r.x, x0 * np.prod(1 - np.diff(t)), rtol=1e-14)
    np.testing.assert_allclose(r.trajectory[2], x0 * (1 - 0.05) * (1 - 0.25), rtol=1e-14)


def test_backward_solve_returns_to_the_noise():
    # The Gaussian target N(mu, s^2 I) as a one-component mixture: the flow is x(t) = t mu +
    # sqrt((1 - t)^2 + t^2 s^2) x0 (math.md 3.4), so x(1) = mu + s x0; RK4 on the reversed grid
    # from x(1) returns to x0 (RK4's error at 400 steps is far below 1e-9 on this smooth field).
    mu, s = np.array([1.0, -2.0]), 0.5
    field = kinflow.smoothed_empirical(mu[None, :], s)
    x0 = kinflow.standard_normal(32, 2, seed=5)
    t = kinflow.grid("uniform", 400)
    forward = kinflow.sample(field, x0, solver="rk4", grid=t)
    np.testing.assert_allclose(forward.x, mu + s * x0, rtol=0, atol=1e-9)
    backward = kinflow.sample(field, mu + s * x0, solver="rk4", grid=t[::-1].copy())
    np.testing.assert_allclose(backward.x, x0, rtol=0, atol=1e-9)
    # The path is the same, walked the other way: the same kinetic energy.
    np.testing.assert_allclose(backward.kpe, forward.kpe, rtol=1e-9)


@pytest.mark.parametrize("grid, kw, err, words", [
    ([0.0, 0.5, 0.4, 1.0], {}, ValueError, "grid[2]: expected strictly increasing times, got 0.4 after 0.5"),
    ([1.0, 0.5, 0.5, 0.0], {}, ValueError, "grid[2]: expected strictly decreasing times"),
    ([0.0, float("nan"), 1.0], {}, ValueError, "grid[1]: expected a time in [0, 1], got nan"),
    ([0.0, 0.5, 1.5], {}, ValueError, "grid[2]: expected a time in [0, 1], got 1.5"),
    ([0.0], {}, ValueError, "grid: expected at least 2 times (1 step), got 1"),
    ([[0.0, 1.0]], {}, ValueError, "grid: expected a 1-D array of times, got shape (1, 2)"),
    (["a", "b"], {}, TypeError, "grid: expected a name (str) or a 1-D array of times"),
    ([0.0, 0.5, 1.0], {"steps": 3}, ValueError, "steps: expected None or len(grid) - 1 = 2"),
    ([0.0, 0.5, 1.0], {"solver": "dopri5"}, ValueError, "grid: an array of times applies to the fixed-step solvers"),
    ([1.0, 0.5, 0.0], {"solver": "sde-euler"}, ValueError, "grid: the stochastic solvers integrate forward"),
])
def test_bad_array_grids(grid, kw, err, words):
    x0 = np.zeros((3, 2))
    with pytest.raises(err) as e:
        kinflow.sample(lambda t, X: -X, x0, grid=grid, **kw)
    assert words in str(e.value)


def test_log_likelihood_of_data_is_the_mixtures_exact_log_density():
    # A three-component mixture (smoothed empirical field, s = 0.4): its log density at t = 1
    # is known in closed form (field.log_density); the backward solve with RK4 and 200 steps
    # recovers it to 1e-6 at points in and between the components.
    Y = np.array([[0.0, 1.0], [1.5, -0.5], [-1.0, -1.0]])
    field = kinflow.smoothed_empirical(Y, 0.4)
    data = np.vstack([Y + 0.1, [[0.3, 0.2], [2.5, 2.0]]])
    exact = field.log_density(1.0, data)
    np.testing.assert_allclose(kinflow.log_likelihood(field, data, solver="rk4", steps=200), exact, rtol=0, atol=1e-6)
    # A named grid and its array give the same solve.
    np.testing.assert_array_equal(kinflow.log_likelihood(field, data, steps=50, grid="cosine"),
                                  kinflow.log_likelihood(field, data, grid=kinflow.grid("cosine", 50)))
    with pytest.raises(ValueError, match="grid"):
        kinflow.log_likelihood(field, data, grid=[0.0, 0.5])
