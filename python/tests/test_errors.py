"""Every error of the issue: ValueError naming the parameter (TypeError for wrong types), a
raising callable propagates, a callable returning the wrong shape raises ValueError naming
the shapes."""

import re

import numpy as np
import pytest

import kinflow

Y = np.random.default_rng(0).normal(size=(10, 2))
X0 = np.random.default_rng(1).normal(size=(7, 2))


def field():
    return kinflow.EmpiricalField(Y)


def good(t, X):
    return -np.asarray(X)


# ---------------------------------------------------------------------------------------
# sample(): bad parameters

@pytest.mark.parametrize("kw,name", [
    (dict(solver="rk5"), "solver"),
    (dict(solver=""), "solver"),
    (dict(steps=0), "steps"),
    (dict(steps=-3), "steps"),
    (dict(grid="spiral"), "grid"),
    (dict(grid="shift:-1"), "shift"),
    (dict(grid="shift:x"), "shift"),
    (dict(kpe="middle"), "kpe"),
    (dict(tau=1.5), "tau"),
    (dict(tau=-0.1), "tau"),
    (dict(solver="dopri5", rtol=0.0), "rtol"),
    (dict(solver="dopri5", rtol=-1.0), "rtol"),
    (dict(solver="dopri5", atol=-1e-3), "atol"),
    (dict(solver="dopri5", rtol=float("nan")), "rtol"),
])
def test_sample_bad_parameter_names_it(kw, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        kinflow.sample(field(), X0, **kw)


@pytest.mark.parametrize("kw,text", [
    (dict(tau=1.5), "got 1.5"),
    (dict(solver="dopri5", rtol=-0.25), "got -0.25"),
    (dict(solver="dopri5", atol=2e-300 * -1), "got -2e-300"),
])
def test_sample_messages_print_the_value_given(kw, text):
    # shortest round-trip form, as the C++ library prints (not six fixed decimals)
    with pytest.raises(ValueError) as e:
        kinflow.sample(field(), X0, **kw)
    assert str(e.value).endswith(text)


def test_kts_repr_round_trips():
    k = kinflow.KTS(alpha0=0.1, beta0=0.03, tau=0.55, k=2.5)
    assert repr(k).startswith("KTS(alpha0=0.1, beta0=0.03, tau=0.55, k=2.5,")


def test_adaptive_solver_with_a_grid_is_rejected():
    with pytest.raises(ValueError, match="grid"):
        kinflow.sample(field(), X0, solver="dopri5", grid="cosine")


@pytest.mark.parametrize("x0,what", [
    (np.zeros((7, 3)), "dimension"),   # the field is 2-D
    (np.zeros(7), None),               # not [B, d]
    (np.zeros((2, 7, 2)), None),
])
def test_sample_bad_x0(x0, what):
    with pytest.raises(ValueError) as e:
        kinflow.sample(field(), x0)
    assert "x0" in str(e.value) or (what and what in str(e.value))


@pytest.mark.parametrize("kw", [
    dict(solver=3), dict(steps="10"), dict(steps=2.5), dict(grid=1), dict(kts="balanced"),
    dict(kpe=0), dict(tau="0.5"), dict(likelihood="yes"),
])
def test_sample_wrong_types_raise_type_error(kw):
    with pytest.raises(TypeError):
        kinflow.sample(field(), X0, **kw)


@pytest.mark.parametrize("f", [42, "empirical", None, np.zeros((3, 2))])
def test_not_a_field_raises_type_error(f):
    with pytest.raises(TypeError):
        kinflow.sample(f, X0)


@pytest.mark.parametrize("x0", ["abc", None, {"a": 1}, [[1.0, "x"]]])
def test_x0_of_the_wrong_type(x0):
    with pytest.raises((TypeError, ValueError)):
        kinflow.sample(field(), x0)


# ---------------------------------------------------------------------------------------
# A Python callable as the field

class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("solver", ["euler", "rk4", "dopri5"])
def test_raising_callable_propagates(solver):
    calls = []

    def f(t, X):
        calls.append(t)
        if len(calls) == 3:
            raise Boom("from the field")
        return -np.asarray(X)

    with pytest.raises(Boom, match="from the field"):
        kinflow.sample(f, X0, solver=solver, steps=10)


def test_raising_callable_keeps_its_traceback():
    def f(t, X):
        raise KeyError("missing")

    with pytest.raises(KeyError) as e:
        kinflow.sample(f, X0)
    assert any(entry.name == "f" for entry in e.traceback)


@pytest.mark.parametrize("shape", [(7, 3), (6, 2), (2, 7), (14,)])
def test_wrong_return_shape_names_the_shapes(shape):
    def f(t, X):
        return np.zeros(shape)

    with pytest.raises(ValueError) as e:
        kinflow.sample(f, X0, solver="euler", steps=2)
    msg = str(e.value)
    got = r"\D{1,4}".join(str(n) for n in shape)
    want = r"7\D{1,4}2"
    assert re.search(got, msg), msg
    assert re.search(want, msg), msg


def test_wrong_return_dtype_shape_float32():
    def f(t, X):
        return np.zeros((X.shape[0], 5), dtype=np.float32)

    with pytest.raises(ValueError):
        kinflow.sample(f, X0.astype(np.float32), solver="euler", steps=2)


@pytest.mark.parametrize("ret", [None, "abc", 1.5])
def test_callable_returning_no_array(ret):
    def f(t, X):
        return ret

    with pytest.raises((TypeError, ValueError)):
        kinflow.sample(f, X0, solver="euler", steps=2)


def test_callable_returning_non_finite_is_a_status_not_a_crash():
    def f(t, X):
        V = -np.asarray(X).copy()
        V[0, 0] = np.nan
        return V

    r = kinflow.sample(f, X0, solver="euler", steps=3)
    assert list(r.status)[0] == "non_finite"
    assert all(s == "success" for s in list(r.status)[1:])


# ---------------------------------------------------------------------------------------
# Fields, KTS, metrics, data

@pytest.mark.parametrize("kw,name", [
    (dict(alpha0=-0.1), "alpha0"), (dict(beta0=-1.0), "beta0"), (dict(beta0=0.06), "beta0"),
    (dict(tau=1.2), "tau"), (dict(k=0.0), "k"), (dict(early="square"), "early"),
    (dict(late="cubic"), "late"), (dict(alpha0=float("nan")), "alpha0"),
])
def test_kts_bad_parameters(kw, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        kinflow.KTS(**kw)


def test_kts_wrong_types():
    with pytest.raises(TypeError):
        kinflow.KTS(alpha0="0.1")
    with pytest.raises(TypeError):
        kinflow.KTS(early=1)


@pytest.mark.parametrize("kw,name", [(dict(sigma_min=1.0), "sigma_min"),
                                     (dict(sigma_min=-0.1), "sigma_min"),
                                     (dict(threads=-1), "threads")])
def test_empirical_bad_parameters(kw, name):
    with pytest.raises(ValueError, match=name):
        kinflow.EmpiricalField(Y, **kw)


@pytest.mark.parametrize("bad", [np.zeros((0, 2)), np.array([[0.0, np.nan]]), np.zeros(5),
                                 np.array([[np.inf, 0.0], [0.0, 0.0]])])
def test_empirical_bad_training_set(bad):
    with pytest.raises(ValueError):
        kinflow.EmpiricalField(bad)


def test_empirical_wrong_types():
    with pytest.raises(TypeError):
        kinflow.EmpiricalField("points")
    with pytest.raises(TypeError):
        kinflow.EmpiricalField(Y, sigma_min="0.1")


def test_field_evaluation_dimension_mismatch():
    f = field()
    with pytest.raises(ValueError):
        f.velocity(0.5, np.zeros((4, 3)))
    with pytest.raises(ValueError):
        f.log_density(0.5, np.zeros((4, 3)))


def test_mixture_bad_parameters():
    means = np.zeros((2, 2))
    with pytest.raises(ValueError, match="std"):
        kinflow.GaussianMixture(means, np.array([0.5, 0.0]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="weight"):
        kinflow.GaussianMixture(means, np.array([0.5, 0.5]), np.array([0.5, -0.5]))
    with pytest.raises(ValueError):
        kinflow.GaussianMixture(means, np.array([0.5]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError):
        kinflow.smoothed_empirical(Y, 0.0)
    with pytest.raises(ValueError):
        kinflow.smoothed_empirical(Y, -1.0)


def test_load_mlp_errors(tmp_path):
    missing = tmp_path / "missing.npz"
    with pytest.raises((ValueError, OSError)) as e:
        kinflow.load_mlp(str(missing))
    assert "missing.npz" in str(e.value)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"layers.0.weight": np.zeros((2, 3)), "layers.0.bias": np.zeros(2),
                     "activation": "silu", "time_embedding": "raw", "typo": np.zeros(1)})
    with pytest.raises(ValueError) as e:
        kinflow.load_mlp(str(bad))
    assert "typo" in str(e.value)
    with pytest.raises(TypeError):
        kinflow.load_mlp(3)


def test_metric_errors():
    A = np.zeros((5, 2))
    with pytest.raises(ValueError, match="ratio"):
        kinflow.memorization(A, np.ones((4, 2)), ratio=0.0)
    with pytest.raises(ValueError, match="bootstrap"):
        kinflow.memorization(A, np.ones((4, 2)), bootstrap=-1)
    with pytest.raises(ValueError):
        kinflow.memorization(A, np.ones((4, 3)))         # dimensions differ
    with pytest.raises(ValueError):
        kinflow.exact_wasserstein2(A, np.zeros((4, 2)))  # sizes differ
    with pytest.raises(ValueError):
        kinflow.sliced_wasserstein2(A, np.zeros((4, 3)))
    with pytest.raises(ValueError):
        kinflow.spearman(np.arange(3.0), np.arange(4.0))


def test_data_errors():
    with pytest.raises(ValueError, match="nope"):
        kinflow.datasets.make("nope", 10, 0)
    assert np.asarray(kinflow.datasets.make("moons", 0, 0)).shape == (0, 2)  # n >= 0 is valid
    with pytest.raises(ValueError, match="n"):
        kinflow.datasets.make("moons", -5, 0)
    with pytest.raises(TypeError):
        kinflow.datasets.make(3, 10, 0)
    with pytest.raises(ValueError):
        kinflow.standard_normal(10, 0, 0)
    with pytest.raises((ValueError, TypeError, OverflowError)):
        kinflow.standard_normal(10, 2, -1)
