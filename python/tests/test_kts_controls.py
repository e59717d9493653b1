"""examples/python/kts_controls.py: the constant-gain control is what it says (eta(t) = 1 - beta0
on the whole of [0, 1], by KTS's definition), and the study runs and reports every setting
with F_mem inside its own bootstrap interval; the rescale rows' F_mem against the NumPy
reference of the memorization ratio on the same samples."""

import json
import pathlib
import subprocess
import sys

import numpy as np

import kinflow
import _np_reference as ref

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_a_constant_gain_is_constant():
    k = kinflow.KTS(beta0=0.1, tau=0.0, late="constant")
    for t in np.linspace(0.0, 1.0, 11):
        assert k.eta(float(t)) == 0.9
    assert abs(k.integral() - 0.9) < 1e-12


def test_the_study_reports_every_setting(tmp_path):
    out = tmp_path / "controls.json"
    p = subprocess.run([sys.executable, str(ROOT / "examples" / "python" / "kts_controls.py"), "--samples", "300",
                        "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = json.loads(out.read_text())["rows"]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("none") == 1 and kinds.count("constant gain eta") == 6 and kinds.count("rescale x1 by c") == 4
    for r in rows:
        assert r["F_mem_ci"][0] <= r["F_mem"] <= r["F_mem_ci"][1]
        assert np.isfinite(r["sliced_w2"]) and r["sliced_w2"] > 0
    # The rescale rows from the same unshaped samples, against the NumPy ratio test.
    mlp = kinflow.load_mlp(str(ROOT / "examples" / "models" / "fm_mlp_8gaussians.npz"), dtype=np.float32)
    train = np.loadtxt(ROOT / "examples" / "models" / "fm_mlp_8gaussians_train.csv", delimiter=",", skiprows=1)
    x0 = np.asarray(kinflow.standard_normal(300, 2, 1), dtype=np.float32)
    x = np.asarray(kinflow.sample(mlp, x0, solver="euler", steps=100).x, dtype=np.float64)
    for r in rows:
        if r["kind"] == "rescale x1 by c":
            fraction = ref.memorization(r["value"] * x, train)[3]
            assert abs(r["F_mem"] - fraction) < 1e-12
