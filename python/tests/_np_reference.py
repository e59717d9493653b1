"""NumPy references for kinflow's Python tests, written from docs/math.md alone.

Nothing here imports kinflow: every function is an independent implementation of a formula
of docs/math.md, so that a test compares the package with a second, plain computation.
Arrays follow the package's convention: samples [B, d], training sets / means [N, d].
"""

import math

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


def logsumexp(a, axis):
    """log Σ exp(a) along axis, with max subtraction (no overflow, no 0/0)."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def softmax(a, axis):
    m = np.max(a, axis=axis, keepdims=True)
    e = np.exp(a - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def sq_dist(X, C):
    """‖x_b - c_i‖² as a [B, N] matrix, by direct differences (no expansion)."""
    diff = X[:, None, :] - C[None, :, :]
    return np.einsum("bnd,bnd->bn", diff, diff)


# ---------------------------------------------------------------------------------------
# Empirical field (docs/math.md §2)

def empirical_sigma(t, sigma_min=0.0, eps=1e-6):
    return max(1.0 - (1.0 - sigma_min) * t, eps)


def empirical_logits(t, X, Y, sigma_min=0.0):
    s = empirical_sigma(t, sigma_min)
    return -sq_dist(X, t * Y) / (2.0 * s * s)


def empirical_posterior(t, X, Y, sigma_min=0.0):
    """w [B, N]: softmax_i(-‖x - t y_i‖² / (2σ_t²)), max subtracted."""
    return softmax(empirical_logits(t, X, Y, sigma_min), axis=1)


def empirical_velocity(t, X, Y, sigma_min=0.0):
    """v = (m - (1 - σ_min) x) / σ_t for t < 1; v(x, 1) = m(x, 1) when σ_min = 0 (§2.6)."""
    w = empirical_posterior(t, X, Y, sigma_min)
    m = w @ Y
    if t >= 1.0 and sigma_min == 0.0:
        return m
    return (m - (1.0 - sigma_min) * X) / empirical_sigma(t, sigma_min)


def empirical_log_density(t, X, Y, sigma_min=0.0):
    """log p_t = logsumexp(-‖x - t y‖²/(2σ²)) - log N - d log σ - (d/2) log 2π."""
    N, d = Y.shape
    s = empirical_sigma(t, sigma_min)
    return (logsumexp(empirical_logits(t, X, Y, sigma_min), axis=1)
            - math.log(N) - d * math.log(s) - 0.5 * d * LOG_2PI)


def empirical_divergence(t, X, Y, sigma_min=0.0):
    """div v = t/σ³ tr Cov_w(y) - (1 - σ_min) d / σ (§2.4)."""
    d = Y.shape[1]
    s = empirical_sigma(t, sigma_min)
    w = empirical_posterior(t, X, Y, sigma_min)
    m = w @ Y
    diff = Y[None, :, :] - m[:, None, :]                           # y_i - m [B, N, d]
    tr = np.sum(w * np.einsum("bnd,bnd->bn", diff, diff), axis=1)  # Σ w_i ‖y_i - m‖²
    return t / s**3 * tr - (1.0 - sigma_min) * d / s


# ---------------------------------------------------------------------------------------
# Gaussian mixture (docs/math.md §3.1)

def mixture_terms(t, X, means, stds, weights):
    d = means.shape[1]
    var = (1.0 - t) ** 2 + t * t * stds**2                       # σ_k(t)² [K]
    logits = (np.log(weights)[None, :] - sq_dist(X, t * means) / (2.0 * var[None, :])
              - 0.5 * d * np.log(var)[None, :])                   # [B, K]
    return var, logits


def mixture_velocity(t, X, means, stds, weights):
    """v = Σ_k w_k (μ_k + g_k (x - t μ_k)), g_k = (t s_k² - (1 - t)) / σ_k², w_k ∝ π_k N_k."""
    var, logits = mixture_terms(t, X, means, stds, weights)
    w = softmax(logits, axis=1)                                   # [B, K]
    g = (t * stds**2 - (1.0 - t)) / var                           # [K]
    vk = means[None, :, :] + g[None, :, None] * (X[:, None, :] - t * means[None, :, :])
    return np.einsum("bk,bkd->bd", w, vk)


def mixture_log_density(t, X, means, stds, weights):
    d = means.shape[1]
    _, logits = mixture_terms(t, X, means, stds, weights)
    return logsumexp(logits, axis=1) - 0.5 * d * LOG_2PI


def mixture_posterior(t, X, means, stds, weights):
    _, logits = mixture_terms(t, X, means, stds, weights)
    return softmax(logits, axis=1)


def fd_divergence(velocity, t, X, h=1e-5):
    """Σ_r ∂v_r/∂x_r by central differences of a reference velocity (independent check)."""
    B, d = X.shape
    div = np.zeros(B)
    for r in range(d):
        e = np.zeros(d)
        e[r] = h
        div += (velocity(t, X + e)[:, r] - velocity(t, X - e)[:, r]) / (2.0 * h)
    return div


# ---------------------------------------------------------------------------------------
# One Gaussian target N(mu, s² I): the exact flow (docs/math.md §3.4)

def gaussian_sigma(t, s):
    return np.sqrt((1.0 - t) ** 2 + t * t * s * s)


def gaussian_dsigma(t, s):
    return (t * s * s - (1.0 - t)) / gaussian_sigma(t, s)


def gaussian_velocity(t, X, mu, s):
    """v(x, t) = μ + g (x - t μ), g = (t s² - (1 - t)) / σ(t)²."""
    g = (t * s * s - (1.0 - t)) / ((1.0 - t) ** 2 + t * t * s * s)
    return mu[None, :] + g * (X - t * mu[None, :])


def gaussian_trajectory(t, x0, mu, s):
    """x(t) = t μ + σ(t) x0."""
    return t * mu[None, :] + gaussian_sigma(t, s) * x0


def _gl_integral(f, a, b, n=96):
    """Gauss-Legendre quadrature of a smooth f on [a, b] (machine precision here)."""
    if b <= a:
        return 0.0
    z, w = np.polynomial.legendre.leggauss(n)
    t = 0.5 * (b - a) * z + 0.5 * (b + a)
    return 0.5 * (b - a) * np.sum(w * f(t))


def gaussian_kpe(x0, mu, s, a=0.0, b=1.0):
    """½ ∫_a^b ‖μ + σ'(t) x0‖² dt per sample, exactly up to rounding:
    ½ [ (b - a) ‖μ‖² + 2 μ·x0 (σ(b) - σ(a)) + ‖x0‖² ∫ σ'² ]."""
    i1 = float(gaussian_sigma(b, s) - gaussian_sigma(a, s))
    i2 = _gl_integral(lambda t: gaussian_dsigma(t, s) ** 2, a, b)
    return 0.5 * ((b - a) * mu @ mu + 2.0 * (x0 @ mu) * i1 + np.sum(x0 * x0, axis=1) * i2)


def gaussian_log_density(X, mu, s):
    d = X.shape[1]
    return (-np.sum((X - mu[None, :]) ** 2, axis=1) / (2.0 * s * s)
            - d * math.log(s) - 0.5 * d * LOG_2PI)


# ---------------------------------------------------------------------------------------
# Metrics (docs/math.md §10)

def nn_two(samples, train):
    """Distances to the nearest and second-nearest training points, brute force."""
    D = np.sqrt(sq_dist(samples, train))
    D.sort(axis=1)
    return D[:, 0], D[:, 1]


def memorization(samples, train, ratio=1.0 / 3.0):
    d1, d2 = nn_two(samples, train)
    r = np.where(d1 == 0, 0.0, d1 / np.where(d2 == 0, 1.0, d2))
    mem = r < ratio
    return d1, r, mem, float(np.mean(mem))


def ranks(x):
    """Ranks 1..n, ties sharing the average of their ranks."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        r[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return r


def spearman(x, y):
    a, b = ranks(x), ranks(y)
    a -= a.mean()
    b -= b.mean()
    return float(a @ b / math.sqrt((a @ a) * (b @ b)))


def knn_log_density(queries, reference, k=10):
    N, d = reference.shape
    D = np.sqrt(sq_dist(queries, reference))
    D.sort(axis=1)
    rk = D[:, k - 1]
    log_vd = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)
    return math.log(k) - math.log(N) - log_vd - d * np.log(rk)


def mmd2_unbiased(X, Y, bandwidths):
    def ksum(A, B):
        r2 = sq_dist(A, B)
        return sum(np.exp(-r2 / (2.0 * s * s)) for s in bandwidths)
    n, m = len(X), len(Y)
    kxx, kyy, kxy = ksum(X, X), ksum(Y, Y), ksum(X, Y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2.0 * kxy.mean())


def median_pairwise(X, Y):
    P = np.vstack([X, Y])
    D = np.sqrt(sq_dist(P, P))
    iu = np.triu_indices(len(P), k=1)
    return float(np.median(D[iu]))
