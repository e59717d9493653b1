"""A torch.nn.Module as the field, against kinflow.load_mlp on the committed model.

The module is rebuilt here from the weights in examples/models/fm_mlp_8gaussians.npz with the
architecture of examples/models/train_fm_mlp.py (10 -> 32 -> 32 -> 2, SiLU, input
[x; sin(ω t); cos(ω t)], ω = π (1, 2, 4, 8)), so the test does not depend on TorchScript.
"""

import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import kinflow  # noqa: E402

MODELS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "models"
NPZ = MODELS / "fm_mlp_8gaussians.npz"
FIXTURE = MODELS / "fm_mlp_8gaussians_fixture.csv"
GELU_NPZ = MODELS / "gelu_raw_time.npz"
GELU_FIXTURE = MODELS / "gelu_raw_time_fixture.csv"


def _text(a):
    a = np.asarray(a)
    return a.tobytes().decode("ascii") if a.dtype == np.uint8 else str(a)


class FlowMLP(nn.Module):
    """v(t, X) for kinflow: t a float, X a [B, d] NumPy array; returns a torch tensor."""

    def __init__(self, path, dtype=torch.float64):
        super().__init__()
        z = np.load(path)
        n = len([k for k in z.files if k.endswith(".weight")])
        self.layers = nn.ModuleList()
        for i in range(n):
            w = torch.from_numpy(z[f"layers.{i}.weight"].astype(np.float64))
            lin = nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(w)
                lin.bias.copy_(torch.from_numpy(z[f"layers.{i}.bias"].astype(np.float64)))
            self.layers.append(lin)
        self.act = {"silu": nn.SiLU(), "relu": nn.ReLU(), "tanh": nn.Tanh(),
                    "gelu": nn.GELU(approximate="none")}[_text(z["activation"])]
        self.sinusoidal = _text(z["time_embedding"]) == "sinusoidal"
        freqs = z["time_frequencies"] if self.sinusoidal else np.zeros(0)
        self.register_buffer("freqs", torch.from_numpy(np.asarray(freqs, dtype=np.float64)))
        self.to(dtype)
        self.dtype_ = dtype

    def net(self, t, x):
        t = t.reshape(-1, 1).to(x.dtype)
        if self.sinusoidal:
            wt = t * self.freqs.to(x.dtype).reshape(1, -1)
            h = torch.cat([x, torch.sin(wt), torch.cos(wt)], dim=1)
        else:
            h = torch.cat([x, t], dim=1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i + 1 < len(self.layers):
                h = self.act(h)
        return h

    def forward(self, t, X):
        x = torch.as_tensor(np.asarray(X), dtype=self.dtype_)
        with torch.no_grad():
            return self.net(torch.full((x.shape[0],), float(t), dtype=self.dtype_), x)


def _fixture(path):
    a = np.loadtxt(path, delimiter=",", skiprows=1)
    return a[:, 0], a[:, 1:3], a[:, 3:5]


@pytest.mark.parametrize("npz,fixture", [(NPZ, FIXTURE), (GELU_NPZ, GELU_FIXTURE)],
                         ids=["fm_mlp_8gaussians", "gelu_raw_time"])
def test_load_mlp_and_module_match_the_fixture(npz, fixture):
    t, X, V = _fixture(fixture)
    field = kinflow.load_mlp(str(npz))
    module = FlowMLP(npz)
    for i in range(len(t)):
        x = X[i:i + 1]
        np.testing.assert_allclose(np.asarray(field.velocity(float(t[i]), x)), V[i:i + 1],
                                   rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(module(float(t[i]), x).numpy(), V[i:i + 1], rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def x0():
    return np.asarray(kinflow.standard_normal(64, 2, 3))


@pytest.mark.parametrize("solver,kw", [("euler", dict(steps=50)), ("heun", dict(steps=20)),
                                       ("rk4", dict(steps=10, kts=True)),
                                       ("dopri5", dict(rtol=1e-6, atol=1e-6))])
def test_module_field_agrees_with_load_mlp(x0, solver, kw):
    kw = dict(kw)
    if kw.pop("kts", False):
        kw["kts"] = kinflow.KTS(alpha0=0.1, beta0=0.02)
    a = kinflow.sample(FlowMLP(NPZ), x0, solver=solver, **kw)
    b = kinflow.sample(kinflow.load_mlp(str(NPZ)), x0, solver=solver, **kw)
    np.testing.assert_allclose(np.asarray(a.x), np.asarray(b.x), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(np.asarray(a.kpe), np.asarray(b.kpe), rtol=1e-9, atol=1e-10)
    if solver != "dopri5":
        np.testing.assert_array_equal(np.asarray(a.nfe), np.asarray(b.nfe))


def test_module_field_float32(x0):
    x32 = x0.astype(np.float32)
    a = kinflow.sample(FlowMLP(NPZ, dtype=torch.float32), x32, solver="heun", steps=20)
    c = kinflow.sample(kinflow.load_mlp(str(NPZ)), x0, solver="heun", steps=20)
    assert np.asarray(a.x).dtype == np.float32
    np.testing.assert_allclose(np.asarray(a.x), np.asarray(c.x), rtol=0, atol=1e-4)


def test_load_mlp_keeps_float32(x0):
    # float32 samples are kept as given: load_mlp(path) sampled from float32 noise runs
    # and returns float32, within float rounding of the double run.
    x32 = x0.astype(np.float32)
    b = kinflow.sample(kinflow.load_mlp(str(NPZ)), x32, solver="heun", steps=20)
    c = kinflow.sample(kinflow.load_mlp(str(NPZ)), x0, solver="heun", steps=20)
    assert np.asarray(b.x).dtype == np.float32
    np.testing.assert_allclose(np.asarray(b.x), np.asarray(c.x), rtol=0, atol=1e-4)


def test_load_mlp_divergence_matches_autograd(x0):
    field = kinflow.load_mlp(str(NPZ))
    module = FlowMLP(NPZ)
    X = x0[:8]
    for t in (0.0, 0.37, 1.0):
        div = np.asarray(field.divergence(t, X))
        want = []
        for x in torch.from_numpy(X):
            J = torch.autograd.functional.jacobian(
                lambda xx: module.net(torch.tensor([t], dtype=torch.float64), xx.reshape(1, -1))[0], x)
            want.append(torch.trace(J).item())
        np.testing.assert_allclose(div, want, rtol=1e-10, atol=1e-10)


def test_module_field_with_likelihood_matches_load_mlp(x0):
    # The module has no divergence: Hutchinson's estimate; load_mlp's is exact. They agree
    # on average over the samples (unbiased up to O(δ²)), not per sample.
    X = x0[:32]
    a = kinflow.sample(FlowMLP(NPZ), X, solver="heun", steps=20, likelihood=True)
    b = kinflow.sample(kinflow.load_mlp(str(NPZ)), X, solver="heun", steps=20, likelihood=True)
    la, lb = np.asarray(a.log_likelihood), np.asarray(b.log_likelihood)
    assert np.all(np.isfinite(la)) and np.all(np.isfinite(lb))
    diff = la - lb
    assert abs(np.mean(diff)) < 3.0 * np.std(diff) / np.sqrt(len(diff)) + 1e-6


# ---------------------------------------------------------------------------------------
# kinflow.torch_field: a module forward(t[B], x[B, d]) run under inference mode on its device


class TensorMLP(FlowMLP):
    """The same network with the tensor signature forward(t[B], x[B, d]) -> v[B, d]; it
    records what it was called with."""

    def __init__(self, path, dtype=torch.float64):
        super().__init__(path, dtype)
        self.seen = []

    def forward(self, t, x):
        self.seen.append((tuple(t.shape), tuple(x.shape), x.dtype, torch.is_inference_mode_enabled()))
        return self.net(t, x)


@pytest.mark.parametrize("solver,kw", [("euler", dict(steps=50)), ("rk4", dict(steps=10)),
                                       ("dopri5", dict(rtol=1e-6, atol=1e-6))])
def test_torch_field_agrees_with_load_mlp(x0, solver, kw):
    # Two implementations of one network: libtorch's products against kinflow's C++ MLP.
    module = TensorMLP(NPZ)
    a = kinflow.sample(kinflow.torch_field(module), x0, solver=solver, **kw)
    b = kinflow.sample(kinflow.load_mlp(str(NPZ)), x0, solver=solver, **kw)
    np.testing.assert_allclose(np.asarray(a.x), np.asarray(b.x), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(np.asarray(a.kpe), np.asarray(b.kpe), rtol=1e-9, atol=1e-10)
    # Every call under inference mode, with one time per row, in the module's precision.
    assert module.seen and all(inf for *_, inf in module.seen)
    assert all(ts == (xs[0],) and xs[1] == 2 and dt == torch.float64 for ts, xs, dt, _ in module.seen)


def test_torch_field_chunks_bound_the_rows_per_call(x0):
    module = TensorMLP(NPZ)
    whole = kinflow.sample(kinflow.torch_field(module), x0, solver="heun", steps=7)
    module.seen.clear()
    field = kinflow.torch_field(module, chunk=10)
    parts = kinflow.sample(field, x0, solver="heun", steps=7)
    rows = [xs[0] for _, xs, _, _ in module.seen]
    # 64 rows in chunks of 10: six of 10 and one of 4 per evaluation, 2 evaluations per step.
    assert max(rows) == 10 and field.calls == 7 * 2 * 7 == len(rows)
    assert sorted(set(rows)) == [4, 10]
    np.testing.assert_allclose(np.asarray(parts.x), np.asarray(whole.x), rtol=1e-13, atol=1e-13)


def test_torch_field_float32_module_and_tensor_x0(x0):
    # A float32 module: called in float32 whatever x0's precision; a float64 solve stays
    # float64 and lands within float rounding of the double network.
    module = TensorMLP(NPZ, dtype=torch.float32)
    field = kinflow.torch_field(module)
    assert field.dtype == torch.float32 and field.device == torch.device("cpu")
    a = kinflow.sample(field, torch.from_numpy(x0), solver="heun", steps=20)
    assert isinstance(a.x, torch.Tensor) and a.x.dtype == torch.float64
    assert all(dt == torch.float32 for _, _, dt, _ in module.seen)
    c = kinflow.sample(kinflow.load_mlp(str(NPZ)), x0, solver="heun", steps=20)
    np.testing.assert_allclose(a.x.numpy(), np.asarray(c.x), rtol=0, atol=1e-4)
    # A function of tensors (no parameters) runs in the states' precision.
    f = kinflow.torch_field(lambda t, x: -x)
    r = kinflow.sample(f, x0.astype(np.float32), solver="euler", steps=4)
    assert np.asarray(r.x).dtype == np.float32
    np.testing.assert_allclose(np.asarray(r.x), x0 * 0.75 ** 4, rtol=1e-6)


def test_torch_field_log_likelihood_of_a_linear_flow():
    # v = a x (a = -0.5) maps N(0, I) to N(0, e^{2a} I). A torch field has no divergence of
    # its own, so it is Hutchinson's estimate, which Rademacher probes make exact for a
    # multiple of the identity: log p_1(x) = log N(x; 0, e^{2a} I) up to RK4's error.
    a, d = -0.5, 3
    f = kinflow.torch_field(lambda t, x: a * x)
    data = np.asarray(kinflow.standard_normal(16, d, 9))
    got = np.asarray(kinflow.log_likelihood(f, data, solver="rk4", steps=40))
    var = np.exp(2 * a)
    want = -0.5 * d * np.log(2 * np.pi * var) - 0.5 * (data ** 2).sum(1) / var
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7)


def test_torch_field_errors(x0):
    with pytest.raises(ValueError, match="chunk"):
        kinflow.torch_field(TensorMLP(NPZ), chunk=0)
    with pytest.raises(TypeError, match="module"):
        kinflow.torch_field(3)
    with pytest.raises(ValueError, match="dtype"):
        kinflow.torch_field(TensorMLP(NPZ), dtype=torch.int32)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device"):
            kinflow.torch_field(TensorMLP(NPZ), device="cuda")
    with pytest.raises(ValueError, match=r"shape \(64, 3\)"):
        kinflow.sample(kinflow.torch_field(lambda t, x: torch.zeros(x.shape[0], 3, dtype=x.dtype)), x0, steps=2)
    with pytest.raises(TypeError, match="tensor"):
        kinflow.sample(kinflow.torch_field(lambda t, x: x.numpy()), x0, steps=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_field_on_cuda_matches_the_cpu(x0):
    module = TensorMLP(NPZ).to("cuda")
    field = kinflow.torch_field(module)
    assert field.device.type == "cuda"
    a = kinflow.sample(field, torch.from_numpy(x0).cuda(), solver="rk4", steps=10)
    assert a.x.device.type == "cuda"
    b = kinflow.sample(kinflow.load_mlp(str(NPZ)), x0, solver="rk4", steps=10)
    np.testing.assert_allclose(a.x.cpu().numpy(), np.asarray(b.x), rtol=1e-9, atol=1e-10)
