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
