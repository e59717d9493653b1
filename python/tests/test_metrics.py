"""kinflow's metrics and data against brute-force NumPy references (docs/math.md §9, §10)."""

import itertools
import math

import numpy as np
import pytest

import kinflow
import _np_reference as ref

NAMES = ["8gaussians", "moons", "checkerboard", "2spirals", "pinwheel", "circles", "rings",
         "swissroll", "25gaussians"]


# ---------------------------------------------------------------------------------------
# Memorization

def test_memorization_matches_brute_force():
    rng = np.random.default_rng(7)
    train = rng.normal(size=(40, 2))
    # half the samples copy a training point (up to a small jitter), half do not
    copies = train[:15] + 1e-4 * rng.normal(size=(15, 2))
    fresh = rng.normal(size=(25, 2))
    samples = np.vstack([copies, fresh])
    m = kinflow.memorization(samples, train)
    d1, r, mem, frac = ref.memorization(samples, train)
    np.testing.assert_allclose(np.asarray(m.nn_dist), d1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(m.nn_ratio), r, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(np.asarray(m.memorized).astype(bool), mem)
    assert m.fraction == pytest.approx(frac, abs=1e-15)
    assert np.all(np.asarray(m.memorized)[:15])
    low, high = m.ci
    assert 0.0 <= low <= m.fraction <= high <= 1.0
    assert high - low > 0.0


def test_memorization_options_and_seed():
    rng = np.random.default_rng(8)
    train = rng.normal(size=(30, 3))
    samples = rng.normal(size=(50, 3))
    for ratio in (0.2, 0.5, 0.9):
        m = kinflow.memorization(samples, train, ratio=ratio)
        assert m.fraction == pytest.approx(ref.memorization(samples, train, ratio)[3], abs=1e-15)
    a = kinflow.memorization(samples, train, bootstrap=200, seed=3)
    b = kinflow.memorization(samples, train, bootstrap=200, seed=3)
    assert tuple(a.ci) == tuple(b.ci)
    z = kinflow.memorization(samples, train, bootstrap=0)
    assert tuple(z.ci) == (z.fraction, z.fraction)


def test_memorization_duplicate_training_point_counts_as_copy():
    train = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    m = kinflow.memorization(np.array([[0.0, 0.0]]), train)
    assert np.asarray(m.nn_ratio)[0] == 0.0
    assert m.fraction == 1.0


# ---------------------------------------------------------------------------------------
# Wasserstein

def _w2_value(res):
    """exact_wasserstein2 may return a number (W2) or a result with distance/squared."""
    if hasattr(res, "squared"):
        assert math.isclose(res.distance ** 2, res.squared, rel_tol=1e-12, abs_tol=1e-300)
        return res.distance
    return float(res)


def test_exact_wasserstein2_matches_permutations():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(6, 2))
    Y = rng.normal(size=(6, 2)) + 0.5
    C = ref.sq_dist(X, Y)
    best = min(sum(C[i, p[i]] for i in range(6)) for p in itertools.permutations(range(6))) / 6
    assert _w2_value(kinflow.exact_wasserstein2(X, Y)) == pytest.approx(math.sqrt(best), rel=1e-12)


def test_sliced_wasserstein2_translation():
    # For y = x + s every 1-D projection is a translation by θ·s: SW2² = mean_p (θ_p·s)²,
    # close to ‖s‖²/d, and SW2 <= W2 = ‖s‖.
    rng = np.random.default_rng(12)
    X = rng.normal(size=(200, 3))
    s = np.array([0.6, -0.3, 0.9])
    sw = float(kinflow.sliced_wasserstein2(X, X + s))
    assert sw <= np.linalg.norm(s) * (1 + 1e-12)
    assert sw ** 2 == pytest.approx(s @ s / 3, rel=0.25)
    assert float(kinflow.sliced_wasserstein2(X, X.copy())) == pytest.approx(0.0, abs=1e-12)
    # sliced <= exact on small sets
    A, Bm = X[:30], rng.normal(size=(30, 3))
    assert float(kinflow.sliced_wasserstein2(A, Bm)) <= _w2_value(kinflow.exact_wasserstein2(A, Bm)) + 1e-12


def test_sliced_wasserstein2_1d_is_exact():
    # In one dimension every direction is ±1: SW2 = W2 = the quantile coupling.
    rng = np.random.default_rng(13)
    x = rng.normal(size=(50, 1))
    y = rng.normal(size=(50, 1)) * 2 + 1
    w2 = math.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    assert float(kinflow.sliced_wasserstein2(x, y)) == pytest.approx(w2, rel=1e-12)


# ---------------------------------------------------------------------------------------
# MMD, kNN density, Spearman

def test_mmd2_matches_numpy():
    rng = np.random.default_rng(14)
    X = rng.normal(size=(10, 2))
    Y = rng.normal(size=(9, 2)) + 0.4   # 19 pooled points: 171 pairs, an odd count
    res = kinflow.mmd2(X, Y)
    med = ref.median_pairwise(X, Y)
    bw = [f * med for f in (0.25, 0.5, 1.0, 2.0, 4.0)]
    if hasattr(res, "bandwidths"):
        np.testing.assert_allclose(np.asarray(res.bandwidths), bw, rtol=1e-12)
        value = res.mmd2
    else:
        value = float(res)
    assert value == pytest.approx(ref.mmd2_unbiased(X, Y, bw), rel=1e-10, abs=1e-14)


def test_knn_log_density_matches_numpy():
    rng = np.random.default_rng(15)
    R = rng.normal(size=(60, 2))
    Q = rng.normal(size=(17, 2))
    np.testing.assert_allclose(np.asarray(kinflow.knn_log_density(Q, R)),
                               ref.knn_log_density(Q, R, k=10), rtol=1e-12)


def test_spearman_matches_numpy():
    rng = np.random.default_rng(16)
    a = rng.normal(size=40)
    b = -a + 0.5 * rng.normal(size=40)
    assert kinflow.spearman(a, b) == pytest.approx(ref.spearman(a, b), rel=1e-12)
    # ties share their average rank
    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 5.0])
    y = np.array([3.0, 1.0, 2.0, 2.0, 0.0, 4.0])
    assert kinflow.spearman(x, y) == pytest.approx(ref.spearman(x, y), rel=1e-12)
    assert kinflow.spearman(a, a) == pytest.approx(1.0, abs=1e-15)


# ---------------------------------------------------------------------------------------
# Datasets and noise

def test_dataset_names():
    assert list(kinflow.datasets.names) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_dataset_make(name):
    a = np.asarray(kinflow.datasets.make(name, 257, 4))
    assert a.shape == (257, 2)
    assert a.dtype == np.float64
    assert np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, np.asarray(kinflow.datasets.make(name, 257, 4)))
    assert not np.array_equal(a, np.asarray(kinflow.datasets.make(name, 257, 5)))


def test_eight_gaussians_recipe():
    # (4 c_k + 0.5 z) / 1.414: the points cluster around the 8 centres 4 c_k / 1.414.
    a = np.asarray(kinflow.datasets.make("8gaussians", 4000, 0))
    k = np.arange(8)
    centres = 4 * np.stack([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)], axis=1) / 1.414
    nearest = np.argmin(ref.sq_dist(a, centres), axis=1)
    resid = a - centres[nearest]
    assert np.std(resid) == pytest.approx(0.5 / 1.414, rel=0.05)
    assert np.all(np.bincount(nearest, minlength=8) > 400)


def test_standard_normal():
    z = np.asarray(kinflow.standard_normal(5000, 3, 1))
    assert z.shape == (5000, 3)
    assert z.dtype == np.float64
    assert np.all(np.abs(z.mean(axis=0)) < 0.06)
    assert np.all(np.abs(z.std(axis=0) - 1) < 0.05)
    np.testing.assert_array_equal(z, np.asarray(kinflow.standard_normal(5000, 3, 1)))
    # docs/math.md §9.1: filled sample by sample, so the first rows do not depend on B
    np.testing.assert_array_equal(np.asarray(kinflow.standard_normal(10, 3, 1)), z[:10])
    assert not np.array_equal(np.asarray(kinflow.standard_normal(10, 3, 2)), z[:10])
