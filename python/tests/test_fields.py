"""The closed-form fields of kinflow against NumPy references written from docs/math.md.

EmpiricalField: posterior weights (softmax with max subtraction), velocity, log density
(log p_t = logsumexp(-‖x - t y‖²/(2σ²)) - log N - d log σ - (d/2) log 2π, σ = 1 - t) and
divergence; GaussianMixture and smoothed_empirical: velocity, log density and divergence
(docs/math.md §3.1, §3.2, §3.3); the input layouts a field accepts; float32 kept.
"""

import numpy as np
import pytest

import kinflow
import _np_reference as ref

TIMES = [0.0, 0.25, 0.5, 0.9, 0.99]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1234)
    Y = rng.normal(size=(23, 3)) * np.array([1.0, 2.0, 0.5])
    X = rng.normal(size=(11, 3)) * 1.5
    return Y, X


# ---------------------------------------------------------------------------------------
# Empirical field

@pytest.mark.parametrize("t", TIMES)
def test_empirical_velocity_matches_numpy(data, t):
    Y, X = data
    f = kinflow.EmpiricalField(Y)
    v = np.asarray(f.velocity(t, X))
    assert v.shape == X.shape
    assert v.dtype == np.float64
    np.testing.assert_allclose(v, ref.empirical_velocity(t, X, Y), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("t", TIMES)
def test_empirical_log_density_matches_numpy(data, t):
    Y, X = data
    f = kinflow.EmpiricalField(Y)
    lp = np.asarray(f.log_density(t, X))
    assert lp.shape == (X.shape[0],)
    np.testing.assert_allclose(lp, ref.empirical_log_density(t, X, Y), rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("t", [0.0, 0.5, 0.99])
def test_empirical_posterior_weights_matches_numpy(data, t):
    Y, X = data
    f = kinflow.EmpiricalField(Y)
    W = np.asarray(f.posterior_weights(t, X))
    # NumPy convention: one row per sample, one column per training point.
    assert W.shape == (X.shape[0], Y.shape[0])
    np.testing.assert_allclose(W.sum(axis=1), 1.0, rtol=0, atol=1e-13)
    np.testing.assert_allclose(W, ref.empirical_posterior(t, X, Y), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("t", [0.0, 0.3, 0.8])
def test_empirical_divergence_matches_numpy(data, t):
    Y, X = data
    f = kinflow.EmpiricalField(Y)
    div = np.asarray(f.divergence(t, X))
    assert div.shape == (X.shape[0],)
    np.testing.assert_allclose(div, ref.empirical_divergence(t, X, Y), rtol=1e-10, atol=1e-10)
    # and against central differences of the reference velocity (a second, formula-free check)
    fd = ref.fd_divergence(lambda tt, XX: ref.empirical_velocity(tt, XX, Y), t, X)
    np.testing.assert_allclose(div, fd, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sigma_min", [0.05, 0.3])
@pytest.mark.parametrize("t", [0.0, 0.6, 1.0])
def test_empirical_sigma_min(data, t, sigma_min):
    Y, X = data
    f = kinflow.EmpiricalField(Y, sigma_min=sigma_min)
    np.testing.assert_allclose(np.asarray(f.velocity(t, X)),
                               ref.empirical_velocity(t, X, Y, sigma_min), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(np.asarray(f.log_density(t, X)),
                               ref.empirical_log_density(t, X, Y, sigma_min), rtol=1e-12, atol=1e-11)


def test_empirical_velocity_at_one_is_nearest_training_point(data):
    # docs/math.md §2.6: v(x, 1) = m(x, 1), the nearest training point off the data.
    Y, X = data
    f = kinflow.EmpiricalField(Y)
    v = np.asarray(f.velocity(1.0, X))
    nearest = Y[np.argmin(ref.sq_dist(X, Y), axis=1)]
    np.testing.assert_allclose(v, nearest, rtol=0, atol=1e-12)


def test_empirical_far_samples_stay_finite():
    # Max subtraction: samples far from every training point give finite, exact results.
    Y = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    X = np.array([[1e3, -1e3], [-5e2, 7e2]])
    f = kinflow.EmpiricalField(Y)
    for t in (0.1, 0.9):
        v = np.asarray(f.velocity(t, X))
        assert np.all(np.isfinite(v))
        np.testing.assert_allclose(v, ref.empirical_velocity(t, X, Y), rtol=1e-12)
        lp = np.asarray(f.log_density(t, X))
        np.testing.assert_allclose(lp, ref.empirical_log_density(t, X, Y), rtol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_empirical_threads_give_the_same_bits(data, threads):
    Y, X = data
    a = np.asarray(kinflow.EmpiricalField(Y, threads=threads).velocity(0.7, X))
    b = np.asarray(kinflow.EmpiricalField(Y).velocity(0.7, X))
    np.testing.assert_array_equal(a, b)


def test_empirical_float32_kept(data):
    Y, X = data
    f = kinflow.EmpiricalField(Y.astype(np.float32))
    v = np.asarray(f.velocity(0.5, X.astype(np.float32)))
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, ref.empirical_velocity(0.5, X, Y), rtol=2e-4, atol=2e-4)
    lp = np.asarray(f.log_density(0.5, X.astype(np.float32)))
    assert lp.dtype == np.float32
    np.testing.assert_allclose(lp, ref.empirical_log_density(0.5, X, Y), rtol=1e-4, atol=1e-4)


def test_layouts_give_identical_results(data):
    # A C-contiguous [B, d] array is mapped as a d×B matrix; other layouts are converted:
    # Fortran order, strided views and non-owning slices must give the same numbers.
    Y, X = data
    f = kinflow.EmpiricalField(Y)
    base = np.asarray(f.velocity(0.4, X))
    big = np.zeros((2 * X.shape[0], X.shape[1] + 2))
    big[::2, 1:-1] = X
    variants = [np.asfortranarray(X), big[::2, 1:-1], X.T.copy().T, X.copy()[:, :]]
    for V in variants:
        np.testing.assert_array_equal(np.asarray(f.velocity(0.4, V)), base)
    # and the training set in another layout builds the same field
    g = kinflow.EmpiricalField(np.asfortranarray(Y))
    np.testing.assert_array_equal(np.asarray(g.velocity(0.4, X)), base)


def test_field_keeps_its_own_copy_of_the_training_set(data):
    Y, X = data
    Yc = Y.copy()
    f = kinflow.EmpiricalField(Yc)
    before = np.asarray(f.velocity(0.5, X)).copy()
    Yc[:] = 0.0  # mutating (or freeing) the caller's array must not change the field
    del Yc
    np.testing.assert_array_equal(np.asarray(f.velocity(0.5, X)), before)


def test_inputs_not_modified(data):
    Y, X = data
    Y0, X0 = Y.copy(), X.copy()
    f = kinflow.EmpiricalField(Y)
    f.velocity(0.5, X)
    f.log_density(0.5, X)
    f.divergence(0.5, X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)


# ---------------------------------------------------------------------------------------
# Gaussian mixture and smoothed empirical field

@pytest.fixture(scope="module")
def mixture():
    rng = np.random.default_rng(99)
    means = rng.normal(size=(5, 2)) * 3.0
    stds = np.array([0.2, 0.5, 1.0, 0.35, 0.8])
    weights = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
    X = rng.normal(size=(13, 2)) * 2.0
    return means, stds, weights, X


@pytest.mark.parametrize("t", [0.0, 0.3, 0.7, 0.95, 1.0])
def test_mixture_velocity_matches_numpy(mixture, t):
    means, stds, weights, X = mixture
    f = kinflow.GaussianMixture(means, stds, weights)
    v = np.asarray(f.velocity(t, X))
    assert v.shape == X.shape
    np.testing.assert_allclose(v, ref.mixture_velocity(t, X, means, stds, weights),
                               rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("t", [0.0, 0.5, 1.0])
def test_mixture_log_density_matches_numpy(mixture, t):
    means, stds, weights, X = mixture
    f = kinflow.GaussianMixture(means, stds, weights)
    np.testing.assert_allclose(np.asarray(f.log_density(t, X)),
                               ref.mixture_log_density(t, X, means, stds, weights),
                               rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("t", [0.2, 0.6])
def test_mixture_posterior_weights_matches_numpy(mixture, t):
    means, stds, weights, X = mixture
    f = kinflow.GaussianMixture(means, stds, weights)
    W = np.asarray(f.posterior_weights(t, X))
    assert W.shape == (X.shape[0], means.shape[0])
    np.testing.assert_allclose(W, ref.mixture_posterior(t, X, means, stds, weights),
                               rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("t", [0.0, 0.4, 0.8, 1.0])
def test_mixture_divergence_matches_finite_differences(mixture, t):
    means, stds, weights, X = mixture
    f = kinflow.GaussianMixture(means, stds, weights)
    div = np.asarray(f.divergence(t, X))
    fd = ref.fd_divergence(lambda tt, XX: ref.mixture_velocity(tt, XX, means, stds, weights), t, X)
    np.testing.assert_allclose(div, fd, rtol=1e-6, atol=1e-6)
    if t == 1.0:
        np.testing.assert_allclose(div, X.shape[1], rtol=0, atol=1e-12)  # §3.2: exactly d


def test_mixture_weights_not_summing_to_one_rejected(mixture):
    means, stds, weights, _ = mixture
    with pytest.raises(ValueError, match="weight"):
        kinflow.GaussianMixture(means, stds, weights * 1.1)


@pytest.mark.parametrize("t", [0.0, 0.5, 0.9, 1.0])
def test_smoothed_empirical_is_the_mixture_of_training_points(data, t):
    Y, X = data
    s = 0.3
    f = kinflow.smoothed_empirical(Y, s)
    N = Y.shape[0]
    stds, weights = np.full(N, s), np.full(N, 1.0 / N)
    np.testing.assert_allclose(np.asarray(f.velocity(t, X)),
                               ref.mixture_velocity(t, X, Y, stds, weights), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(np.asarray(f.log_density(t, X)),
                               ref.mixture_log_density(t, X, Y, stds, weights), rtol=1e-12, atol=1e-11)
    fd = ref.fd_divergence(lambda tt, XX: ref.mixture_velocity(tt, XX, Y, stds, weights), t, X)
    np.testing.assert_allclose(np.asarray(f.divergence(t, X)), fd, rtol=1e-6, atol=1e-6)


def test_mixture_float32_kept(mixture):
    means, stds, weights, X = mixture
    f = kinflow.GaussianMixture(means.astype(np.float32), stds.astype(np.float32),
                                weights.astype(np.float32))
    v = np.asarray(f.velocity(0.5, X.astype(np.float32)))
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, ref.mixture_velocity(0.5, X, means, stds, weights),
                               rtol=1e-4, atol=1e-4)
