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
