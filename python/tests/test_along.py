"""sample(along=[g, ...]): integrals of one's own along every path.

Oracles: the exact flow to the Gaussian target N(mu, s² I), x(t) = t mu + σ(t) x0, whose
integral of ‖x(t)‖² is computed here by Gauss-Legendre quadrature (_np_reference); the
integrator's convergence order; ∫ t dt over the solve's span (signed, backward too); and the
kinetic path energy, which is the integral of ½‖V‖² by the same quadrature.
"""

import numpy as np
import pytest

import kinflow
import _np_reference as ref

MU = np.array([1.0, -2.0])
S = 0.5


def sq_norm(t, X, V):
    return np.sum(X * X, axis=1)


def half_sq_velocity(t, X, V):
    return 0.5 * np.sum(V * V, axis=1)


def exact_sq_norm(x0):
    return np.array([ref._gl_integral(lambda t: np.sum(ref.gaussian_trajectory(t[:, None], x[None, :], MU, S) ** 2,
                                                       axis=1), 0.0, 1.0) for x in x0])


@pytest.fixture(scope="module")
def gaussian():
    return kinflow.GaussianMixture(MU[None, :], [S], [1.0])


@pytest.fixture(scope="module")
def x0():
    return np.random.default_rng(11).normal(size=(9, 2))


def test_an_integral_converges_at_the_solver_order(gaussian, x0):
    exact = exact_sq_norm(x0)
    errors = {}
    for solver in ("euler", "rk4"):
        errors[solver] = [np.max(np.abs(kinflow.sample(gaussian, x0, solver=solver, steps=n,
                                                       along=[sq_norm]).integrals[0] - exact))
                          for n in (20, 40)]
    # Halving the step divides the error by about 2^order.
    assert 1.6 < errors["euler"][0] / errors["euler"][1] < 2.5
    assert 12 < errors["rk4"][0] / errors["rk4"][1] < 20
    r = kinflow.sample(gaussian, x0, solver="rk4", steps=200, along=[sq_norm, half_sq_velocity])
    assert r.integrals.shape == (2, x0.shape[0])
    np.testing.assert_allclose(r.integrals[0], exact, rtol=1e-9)
    adaptive = kinflow.sample(gaussian, x0, solver="dopri5", rtol=1e-10, atol=1e-10, along=[sq_norm])
    np.testing.assert_allclose(adaptive.integrals[0], exact, rtol=1e-7)


@pytest.mark.parametrize("solver", ["heun", "rk4", "dpmpp3m", "unipc", "dopri5", "sde-euler"])
def test_half_the_squared_velocity_is_the_energy(gaussian, x0, solver):
    """The energy is carried by the same quadrature: the user's ½‖V‖² gives the KPE."""
    r = kinflow.sample(gaussian, x0, solver=solver, steps=30, along=[half_sq_velocity],
                       kts=kinflow.KTS(alpha0=0.3, beta0=0.04))
    np.testing.assert_allclose(r.integrals[0], r.kpe, rtol=1e-13)


def test_times_span_and_direction(gaussian, x0):
    def t_of(t, X, V):
        assert t.shape == (X.shape[0],) and X.shape == V.shape
        return t

    forward = kinflow.sample(gaussian, x0, solver="heun", steps=7, along=[t_of])
    np.testing.assert_allclose(forward.integrals[0], 0.5, rtol=1e-14)  # exact for linear g
    backward = kinflow.sample(gaussian, x0, solver="rk4", grid=np.linspace(0.9, 0.2, 8), along=[t_of])
    np.testing.assert_allclose(backward.integrals[0], (0.2 ** 2 - 0.9 ** 2) / 2, rtol=1e-13)
    adaptive = kinflow.sample(gaussian, x0, solver="dopri5", t0=1.0, t1=0.0, along=[t_of])
    np.testing.assert_allclose(adaptive.integrals[0], -0.5, rtol=1e-12)
    assert kinflow.sample(gaussian, x0, steps=3).integrals is None


def test_with_guidance_and_callables(x0):
    """The guidance parts and the user's integrals come together; a callable field too."""
    rng = np.random.default_rng(3)
    Y = rng.normal(size=(40, 2)) + np.repeat([[2.0, 0.0], [-2.0, 1.0]], 20, axis=0)
    field = kinflow.EmpiricalField(Y, labels=np.repeat([0, 1], 20))
    r = kinflow.sample(field, x0, solver="rk4", steps=20, classes=1, cfg=2.5, along=[half_sq_velocity, sq_norm])
    np.testing.assert_allclose(r.integrals[0], r.kpe, rtol=1e-13)
    np.testing.assert_allclose(r.kpe_unconditional + r.kpe_cross + r.kpe_guidance, r.kpe, rtol=1e-12)
    plain = kinflow.sample(lambda t, X: field.velocity(t, X), x0, solver="rk4", steps=20, along=[sq_norm])
    same = kinflow.sample(field, x0, solver="rk4", steps=20, along=[sq_norm])
    np.testing.assert_allclose(plain.integrals, same.integrals, rtol=1e-13)


def test_tensors_in_and_out(gaussian, x0):
    torch = pytest.importorskip("torch")
    r = kinflow.sample(gaussian, torch.from_numpy(x0), solver="heun", steps=10, along=[sq_norm])
    assert isinstance(r.integrals, torch.Tensor) and tuple(r.integrals.shape) == (1, x0.shape[0])
    np.testing.assert_array_equal(r.integrals.numpy(),
                                  kinflow.sample(gaussian, x0, solver="heun", steps=10, along=[sq_norm]).integrals)


def test_errors_name_the_parameter(gaussian, x0):
    with pytest.raises(TypeError, match=r"along: .*in a list"):
        kinflow.sample(gaussian, x0, along=sq_norm)
    with pytest.raises(TypeError, match=r"along\[1\]"):
        kinflow.sample(gaussian, x0, along=[sq_norm, 3])
    with pytest.raises(ValueError, match=r"along\[0\] returned an array of shape \(9, 2\), expected \(9,\)"):
        kinflow.sample(gaussian, x0, steps=2, along=[lambda t, X, V: X])

    class Boom(RuntimeError):
        pass

    def boom(t, X, V):
        raise Boom("from the integrand")

    with pytest.raises(Boom):
        kinflow.sample(gaussian, x0, steps=2, along=[boom])
