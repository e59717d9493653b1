"""The example examples/python/train_and_shape.py in its quick mode: it runs, writes complete
outputs, and its numbers agree with its own per-sample files and with what is known
independently of it (the exact empirical field memorizes; a trained network much less)."""

import csv
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python" / "train_and_shape.py"


def read(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("example")
    p = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(out), "--quick"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return out, p.stdout


def test_outputs_are_complete(run):
    out, stdout = run
    assert "F_mem" in stdout
    png = out / "trajectories_by_kpe.png"
    assert png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.tmp*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True
    assert set(summary["results"]) == {"trained", "trained_kts", "exact"}


def test_numbers_agree_with_the_per_sample_files(run):
    out, _ = run
    summary = json.loads((out / "summary.json").read_text())
    for name, s in summary["results"].items():
        rows = read(out / f"samples_{name}.csv")
        assert len(rows["kpe"]) == s["n_samples"] == 400
        assert np.mean(rows["memorized"]) == pytest.approx(s["f_mem"], abs=1e-12)
        assert np.mean(rows["kpe"]) == pytest.approx(s["kpe_mean"], rel=1e-6)
        np.testing.assert_allclose(rows["kpe_early"] + rows["kpe_late"], rows["kpe"], rtol=1e-5)
        lo, hi = s["f_mem_ci"]
        assert lo <= s["f_mem"] <= hi
        assert np.all(np.isfinite(rows["x_0"])) and np.all(np.isfinite(rows["x_1"]))


def test_memorization_is_where_theory_puts_it(run):
    out, _ = run
    r = json.loads((out / "summary.json").read_text())["results"]
    # The exact empirical field's flow ends on training points (docs/math.md §2).
    assert r["exact"]["f_mem"] >= 0.95
    # A small network trained briefly generalizes: far fewer copies.
    assert r["trained"]["f_mem"] < 0.5
    # A landing brake takes energy out of the late phase (KTS shrinks v for t > tau).
    assert r["trained_kts"]["kpe_late_mean"] < r["trained"]["kpe_late_mean"]
