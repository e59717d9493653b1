"""torch tensors as x0: the same solve as the NumPy array's, results as tensors on x0's device.

The oracle is the NumPy path itself (bit for bit: the tensor path only changes the container),
plus the exact answer of a one-point empirical field (constant velocity y - x0 for t < 1).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import kinflow  # noqa: E402

ARRAYS = ("x", "kpe", "kpe_early", "kpe_late", "nfe", "accepted", "rejected")


def field_and_noise(dtype=np.float64, B=64):
    Y = kinflow.datasets.make("8gaussians", 40, seed=3).astype(dtype)
    return kinflow.EmpiricalField(Y), kinflow.standard_normal(B, 2, seed=4, dtype=str(np.dtype(dtype)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver,kw", [("rk4", {"likelihood": True, "trajectories": True}),
                                       ("dopri5", {}),
                                       ("sde-heun", {"noise_seed": 7, "trajectories": True})])
def test_tensor_in_tensor_out_same_values(dtype, solver, kw):
    field, x0 = field_and_noise(dtype)
    ref = kinflow.sample(field, x0, solver=solver, steps=20, **kw)
    t0 = torch.from_numpy(x0.copy())
    before = t0.clone()
    r = kinflow.sample(field, t0, solver=solver, steps=20, **kw)
    assert torch.equal(t0, before)  # x0 not modified
    names = list(ARRAYS)
    if kw.get("likelihood"):
        names.append("log_likelihood")
    if kw.get("trajectories"):
        names.append("trajectory")
    if solver.startswith("sde"):
        names += ["drift_energy", "control_energy"]
    for name in names:
        got, want = getattr(r, name), getattr(ref, name)
        assert isinstance(got, torch.Tensor), name
        assert got.device.type == "cpu" and got.dtype == torch.from_numpy(want).dtype, name
        assert tuple(got.shape) == want.shape, name
        np.testing.assert_array_equal(got.numpy(), want, err_msg=name)
    assert r.status == ref.status
    if not kw.get("likelihood"):
        assert r.log_likelihood is None
    assert "SampleResult(B=64" in repr(r)


def test_cpu_tensor_is_read_in_place():
    # What sample() hands to the C++ side for a contiguous CPU tensor is a view of its memory.
    t0 = torch.from_numpy(kinflow.standard_normal(8, 3, seed=1))
    view, device = kinflow._tensor_in("x0", t0)
    assert device == t0.device and np.shares_memory(view, t0.numpy())
    out = kinflow._tensor_out({"x": view, "status": ["success"]}, device)
    assert out["x"].data_ptr() == t0.data_ptr() and out["status"] == ["success"]


def test_one_point_field_exact_with_tensors():
    y = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    x0 = torch.tensor([[0.5, -1.0], [-2.0, 0.25]], dtype=torch.float64)
    r = kinflow.sample(kinflow.EmpiricalField(y.numpy()), x0, solver="euler", steps=16)
    want_kpe = 0.5 * ((y - x0) ** 2).sum(dim=1)
    torch.testing.assert_close(r.x, y.expand(2, 2), rtol=0, atol=1e-12)
    torch.testing.assert_close(r.kpe, want_kpe, rtol=1e-12, atol=0)


def test_requires_grad_and_non_contiguous_inputs():
    field, x0 = field_and_noise()
    ref = kinflow.sample(field, x0, solver="heun", steps=10)
    g = torch.from_numpy(x0.copy()).requires_grad_(True)
    np.testing.assert_array_equal(kinflow.sample(field, g, solver="heun", steps=10).x.numpy(), ref.x)
    # A transposed view (not C-contiguous): converted once, same values.
    t = torch.from_numpy(np.ascontiguousarray(x0.T)).T
    assert not t.is_contiguous()
    np.testing.assert_array_equal(kinflow.sample(field, t, solver="heun", steps=10).x.numpy(), ref.x)


def test_bad_tensors_name_x0():
    field, x0 = field_and_noise()
    with pytest.raises(TypeError, match=r"x0: expected a float32 or float64 tensor, got torch.int64"):
        kinflow.sample(field, torch.zeros(4, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"x0: expected a float32 or float64 tensor"):
        kinflow.sample(field, torch.zeros(4, 2, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"x0: expected a tensor on the CPU or a CUDA device, got device 'meta'"):
        kinflow.sample(field, torch.zeros(4, 2, dtype=torch.float64, device="meta"))
    with pytest.raises(ValueError, match="x0"):  # the shape check of the NumPy path still applies
        kinflow.sample(field, torch.zeros(4, 3, dtype=torch.float64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device in this machine")
def test_cuda_tensor_round_trip():
    field, x0 = field_and_noise()
    ref = kinflow.sample(field, x0, solver="rk4", steps=10)
    r = kinflow.sample(field, torch.from_numpy(x0).cuda(), solver="rk4", steps=10)
    assert r.x.device.type == "cuda" and r.kpe.device.type == "cuda"
    np.testing.assert_array_equal(r.x.cpu().numpy(), ref.x)
    np.testing.assert_array_equal(r.kpe.cpu().numpy(), ref.kpe)
