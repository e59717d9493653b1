"""A trained class-conditional network (examples/models/train_conditional_mlp.py: one-hot
class code with a null class, label dropout): load_mlp's MLPField with classes, guided by
sample(classes=..., cfg=...), as a TorchScript module taking (t, x, c) through TorchField,
and kinflow-sample --model ... --class/--classes --cfg.

Oracles: the velocities PyTorch computed for the network in double precision (the fixture
beside the weights); a guided Euler solve written out in NumPy on the network's velocities;
the energy parts summing to the KPE; the TorchScript module run by PyTorch itself; the
command line on the same inputs.
"""

import csv
import pathlib

import numpy as np
import pytest

import kinflow
from test_cli import cli, column, run_cli  # noqa: F401 (cli: the fixture)

MODELS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "models"
NPZ = MODELS / "fm_cmlp_8gaussians.npz"
PT = MODELS / "fm_cmlp_8gaussians.pt"


def fixture_rows():
    with open(MODELS / "fm_cmlp_8gaussians_fixture.csv") as f:
        rows = list(csv.DictReader(f))
    t = np.array([float(r["t"]) for r in rows])
    X = np.array([[float(r["x0"]), float(r["x1"])] for r in rows])
    C = np.array([int(float(r["c"])) for r in rows])
    V = np.array([[float(r["v0"]), float(r["v1"])] for r in rows])
    return t, X, C, V


def test_velocities_match_pytorch():
    m = kinflow.load_mlp(NPZ)
    assert m.classes == 8 and m.dim == 2
    t, X, C, V = fixture_rows()
    for j in range(len(t)):
        v = m.velocity(t[j], X[j:j + 1], C[j:j + 1])
        assert np.allclose(v[0], V[j], rtol=1e-10, atol=1e-10)
        if C[j] < 0:  # no classes: the null class
            assert np.allclose(m.velocity(t[j], X[j:j + 1])[0], V[j], rtol=1e-10, atol=1e-10)
    v32 = kinflow.load_mlp(NPZ, dtype="float32").velocity(0.5, X.astype(np.float32), C)
    assert v32.dtype == np.float32
    assert np.allclose(v32, m.velocity(0.5, X, C), rtol=1e-4, atol=1e-4)
    u, vc = m.velocity_pair(0.3, X, C)
    assert np.array_equal(u, m.velocity(0.3, X)) and np.array_equal(vc, m.velocity(0.3, X, C))


def numpy_guided_euler(m, X0, C, steps, w):
    X = X0.copy()
    parts = np.zeros((3, len(X)))
    h = 1.0 / steps
    for n in range(steps):
        U, Vc = m.velocity(n / steps, X), m.velocity(n / steps, X, C)
        D = Vc - U
        parts += h * np.stack([0.5 * (U * U).sum(1), w * (U * D).sum(1), 0.5 * w * w * (D * D).sum(1)])
        X = X + h * (U + w * D)
    return X, parts


@pytest.mark.parametrize("cfg", [0.0, 1.0, 3.0])
def test_guided_solve_matches_numpy(cfg):
    m = kinflow.load_mlp(NPZ)
    rng = np.random.default_rng(4)
    X0 = rng.normal(size=(30, 2))
    C = rng.integers(-1, 8, size=30)
    r = kinflow.sample(m, X0, solver="euler", steps=20, classes=C, cfg=cfg)
    X, parts = numpy_guided_euler(m, X0, C, 20, cfg)
    assert np.allclose(r.x, X, rtol=1e-11, atol=1e-11)
    for name, p in zip(("kpe_unconditional", "kpe_cross", "kpe_guidance"), parts):
        assert np.allclose(getattr(r, name), p, rtol=1e-11, atol=1e-11), name
    assert np.allclose(r.kpe_unconditional + r.kpe_cross + r.kpe_guidance, r.kpe, rtol=1e-12, atol=1e-12)
    if cfg == 0.0:  # the unconditional solve
        assert np.array_equal(r.x, kinflow.sample(m, X0, solver="euler", steps=20).x)


def test_guidance_lands_in_the_class_and_has_an_exact_likelihood():
    m = kinflow.load_mlp(NPZ)
    X0 = np.random.default_rng(5).normal(size=(400, 2))
    centres = 4 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1) / 1.414
    r = kinflow.sample(m, X0, solver="rk4", steps=30, classes=5, cfg=2.0, likelihood=True)
    nearest = ((r.x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    # A guided sample lands in its class's component: a failure rate above 5 % would fail.
    assert (nearest == 5).mean() >= 0.95
    assert np.all(np.isfinite(r.log_likelihood))
    # Hutchinson's estimate of the same guided solve agrees within its noise: the mean of
    # 400 estimates, each with a standard deviation measured from them (4.5 sigma).
    h = kinflow.sample(m, X0, solver="rk4", steps=30, classes=5, cfg=2.0, likelihood=True,
                       divergence="hutchinson", probes=4, probe_seed=1)
    diff = h.log_likelihood - r.log_likelihood
    assert abs(diff.mean()) <= 4.5 * diff.std(ddof=1) / np.sqrt(len(diff)) + 1e-9


def test_torchscript_module_takes_classes():
    torch = pytest.importorskip("torch")
    module = torch.jit.load(str(PT))
    t, X, C, V = fixture_rows()
    with torch.no_grad():
        v = module.double()(torch.from_numpy(t), torch.from_numpy(X), torch.from_numpy(C)).numpy()
    assert np.allclose(v, V, rtol=1e-10, atol=1e-10)
    # The same module sampled through TorchField as a callable f(t, X, c), guided.
    field = kinflow.TorchField(module, dtype=torch.float64)
    X0 = np.random.default_rng(6).normal(size=(20, 2))
    Cs = np.arange(20) % 9 - 1
    a = kinflow.sample(field, X0, solver="heun", steps=12, classes=Cs, cfg=2.5)
    b = kinflow.sample(kinflow.load_mlp(NPZ), X0, solver="heun", steps=12, classes=Cs, cfg=2.5)
    assert np.allclose(a.x, b.x, rtol=1e-9, atol=1e-9)
    assert np.allclose(a.kpe_guidance, b.kpe_guidance, rtol=1e-9, atol=1e-9)


def test_errors_name_the_parameter():
    m = kinflow.load_mlp(NPZ)
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"classes\[1\]"):
        m.velocity(0.5, X, np.array([0, 8, 1]))
    with pytest.raises(ValueError, match="classes"):
        m.velocity(0.5, X, np.array([0, 1]))
    plain = kinflow.load_mlp(MODELS / "fm_mlp_8gaussians.npz")
    assert plain.classes == 0
    with pytest.raises(ValueError, match="no class input"):
        kinflow.sample(plain, X, classes=0, cfg=2.0)
    with pytest.raises(ValueError, match="expected -1"):
        plain.velocity(0.5, X, np.array([0, 0, 0]))


def test_command_line_agrees(cli, tmp_path):
    train = np.loadtxt(MODELS / "fm_cmlp_8gaussians_train.csv", delimiter=",", skiprows=1)
    X0 = np.random.default_rng(7).normal(size=(25, 2))
    C = np.arange(25) % 9 - 1
    (tmp_path / "classes.txt").write_text("\n".join(str(c) for c in C) + "\n")
    rows, out = run_cli(cli, tmp_path, "cmodel", train, X0,
                        ["--model", str(NPZ), "--classes", str(tmp_path / "classes.txt"), "--cfg", "2",
                         "--labels", str(MODELS / "fm_cmlp_8gaussians_labels.txt"), "--solver", "rk4",
                         "--steps", "10"], needs=("--cfg",))
    r = kinflow.sample(kinflow.load_mlp(NPZ), X0, solver="rk4", steps=10, classes=C, cfg=2.0)
    X = np.stack([column(rows, "x_0"), column(rows, "x_1")], axis=1)
    assert np.allclose(X, r.x, rtol=1e-12, atol=1e-12)
    for name in ("kpe", "kpe_unconditional", "kpe_cross", "kpe_guidance"):
        assert np.allclose(column(rows, name), getattr(r, name), rtol=1e-12, atol=1e-12), name
    assert np.array_equal(column(rows, "class", int), C)
