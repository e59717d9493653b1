"""The mergeable posterior state from Python: a training set split into shards, each shard's
partial state of the same queries, merged and finished, against the NumPy reference of the
whole set (softmax with max subtraction, written in _np_reference.py) and the whole field;
and the mpi4py example on 2 ranks."""

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import kinflow
import _np_reference as ref

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _data(d, n=157, b=23, seed=3):
    Y = np.asarray(kinflow.standard_normal(n, d, seed)) * 0.7 + 0.3
    X = np.asarray(kinflow.standard_normal(b, d, seed + 1)) * 1.2
    return Y, X


@pytest.mark.parametrize("d", [2, 9])
def test_shards_merged_and_finished_equal_the_whole_set(d):
    Y, X = _data(d)
    cuts = [0, 61, 100, 156, 157]  # uneven, the last shard a single point
    shards = [kinflow.EmpiricalField(Y[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    whole = kinflow.EmpiricalField(Y)
    for t in (0.0, 0.35, 0.9, 0.999):
        states = [f.partial_state(t, X) for f in shards]
        assert states[0].shape == (X.shape[0], d + 4)
        forward = kinflow.merge_states(states)
        backward = kinflow.merge_states(states[::-1])
        finisher = shards[2]  # any shard's field finishes the merged state
        for s in (forward, backward):
            v = finisher.velocity_from(t, X, s)
            scale = 1.0 / ref.empirical_sigma(t)
            np.testing.assert_allclose(v, ref.empirical_velocity(t, X, Y), rtol=0, atol=1e-12 * scale * 10)
            np.testing.assert_allclose(finisher.log_density_from(t, s, n=Y.shape[0]),
                                       ref.empirical_log_density(t, X, Y), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(finisher.divergence_from(t, s), ref.empirical_divergence(t, X, Y),
                                       rtol=1e-9, atol=1e-9 * scale ** 3)
        np.testing.assert_allclose(finisher.velocity_from(t, X, forward), whole.velocity(t, X), rtol=1e-13,
                                   atol=1e-13 / ref.empirical_sigma(t))
        # Two states merge the same bits whichever comes first.
        np.testing.assert_array_equal(kinflow.merge_states(states[:2]), kinflow.merge_states(states[1::-1]))
    # Without n, the finishing field's own size normalises the density.
    s = kinflow.merge_states([f.partial_state(0.5, X) for f in shards])
    np.testing.assert_allclose(shards[0].log_density_from(0.5, s) - shards[0].log_density_from(0.5, s, n=157),
                               np.log(157 / 61), rtol=1e-12)


def test_float32_states():
    Y, X = _data(3)
    Y32, X32 = Y.astype(np.float32), X.astype(np.float32)
    a, b = kinflow.EmpiricalField(Y32[:80]), kinflow.EmpiricalField(Y32[80:])
    s = kinflow.merge_states([a.partial_state(0.6, X32), b.partial_state(0.6, X32)])
    assert s.dtype == np.float32
    v = a.velocity_from(0.6, X32, s)
    np.testing.assert_allclose(v, ref.empirical_velocity(0.6, X, Y), rtol=0, atol=2e-5)


def test_state_errors():
    Y, X = _data(3)
    f = kinflow.EmpiricalField(Y)
    s = f.partial_state(0.5, X)
    with pytest.raises(ValueError, match="states"):
        kinflow.merge_states([])
    with pytest.raises(ValueError, match=r"states\[1\]"):
        kinflow.merge_states([s, s[:5]])
    with pytest.raises(ValueError, match=r"states\[1\]"):
        kinflow.merge_states([s, s[:, :6]])
    with pytest.raises(ValueError, match="state"):
        f.velocity_from(0.5, X, s[:, :6])
    with pytest.raises(ValueError):
        f.velocity_from(0.5, X[:4], s)  # one record per query
    with pytest.raises(ValueError, match="n:"):
        f.log_density_from(0.5, s, n=0)


def _mpirun():
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return exe


@pytest.mark.skipif(_mpirun() is None, reason="needs mpi4py (python3-mpi4py) and mpirun (openmpi-bin)")
def test_mpi4py_example_on_two_ranks():
    cmd = [_mpirun()]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += ["--oversubscribe", "-np", "2", sys.executable, str(ROOT / "examples" / "python" / "mpi_shards.py"),
            "--check", "--n-train", "2000", "--d", "8", "--samples", "48", "--steps", "10"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 rank(s)" in p.stdout and "largest relative difference" in p.stdout
