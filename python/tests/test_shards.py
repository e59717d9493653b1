"""The mergeable posterior state from Python: a training set split into shards, each shard's
partial state of the same queries, merged and finished, against the NumPy reference of the
whole set (softmax with max subtraction, written in _np_reference.py) and the whole field;
labelled shards' per-class states against the reference on each class's points; and the
mpi4py example on 2 ranks, plain and guided."""

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


def _labelled_data(d=3, n=120, b=17, classes=4, seed=5):
    Y, X = _data(d, n, b, seed)
    labels = np.arange(n) % classes
    Y = Y + 2.0 * labels[:, None]  # classes apart, so the class fields differ from v_u
    return Y, X, labels


def test_labelled_shards_merge_to_both_fields():
    """Per-class partial states of disjoint labelled shards, merged and finished, against the
    NumPy reference on each row's class subset (and on all points for v_u and class -1)."""
    K = 4
    Y, X, labels = _labelled_data(classes=K)
    # Class 3's points all lie in the last shard, so the other shards' class-3 records are empty.
    order = np.argsort(labels == 3, kind="stable")
    Y, labels = Y[order], labels[order]
    cuts = [0, 40, 75, Y.shape[0]]
    shards = [kinflow.EmpiricalField(Y[a:b], labels=labels[a:b], classes=K) for a, b in zip(cuts[:-1], cuts[1:])]
    assert not np.any(labels[:75] == 3)
    whole = kinflow.EmpiricalField(Y, labels=labels)
    C = np.array([-1, 0, 1, 2, 3] * 4)[: X.shape[0]]
    for t in (0.0, 0.5, 0.97):
        pairs = [f.partial_states(t, X, C) for f in shards]
        u = kinflow.merge_states([p[0] for p in pairs])
        c = kinflow.merge_states([p[1] for p in pairs])
        # The unconditional records are those of partial_state() of the same shards (the labelled
        # pass sums by class, then merges: the same up to rounding, relative to each column).
        plain = kinflow.merge_states([f.partial_state(t, X) for f in shards])
        assert np.all(np.abs(u - plain) <= 1e-13 * (np.abs(plain) + np.abs(plain).max(axis=0)))
        f = shards[0]
        scale = 1.0 / ref.empirical_sigma(t)
        np.testing.assert_allclose(f.velocity_from(t, X, u), ref.empirical_velocity(t, X, Y), rtol=0,
                                   atol=1e-12 * scale * 10)
        vc = f.velocity_from(t, X, c)
        for j, cls in enumerate(C):
            subset = Y if cls < 0 else Y[labels == cls]
            np.testing.assert_allclose(vc[j], ref.empirical_velocity(t, X[j:j + 1], subset)[0], rtol=0,
                                       atol=1e-12 * scale * 10)
            np.testing.assert_allclose(f.log_density_from(t, c[j:j + 1], n=subset.shape[0]),
                                       ref.empirical_log_density(t, X[j:j + 1], subset), rtol=1e-12, atol=1e-12)
        U, Vc = whole.velocity_pair(t, X, C)
        np.testing.assert_allclose(vc, Vc, rtol=1e-13, atol=1e-13 * scale)
        np.testing.assert_allclose(f.divergence_from(t, c), whole.divergence(t, X, C), rtol=1e-9,
                                   atol=1e-9 * scale ** 3)
    # v_c alone: each class streams only its own rows; state_c is the same to rounding, and
    # state_u holds the rows of class -1 only (W = 0 elsewhere).
    for f in shards:
        s_u, s_c = f.partial_states(0.5, X, C)
        o_u, o_c = f.partial_states(0.5, X, C, unconditional=False)
        fin = np.isfinite(s_c)  # an empty record's largest logit is -inf
        np.testing.assert_array_equal(np.isfinite(o_c), fin)
        np.testing.assert_array_equal(o_c[~fin], s_c[~fin])
        a, b = np.where(fin, o_c, 0), np.where(fin, s_c, 0)
        assert np.all(np.abs(a - b) <= 1e-13 * (np.abs(b) + np.abs(b).max(axis=0)))
        np.testing.assert_array_equal(o_u[C == -1], s_u[C == -1])
        assert np.all(o_u[C != -1][:, 1] == 0)
    # The first shard has no point of class 3: its records for class 3 are empty, and
    # finishing them alone is an error naming the row.
    s_u, s_c = shards[0].partial_states(0.5, X, C)
    row = int(np.flatnonzero(C == 3)[0])
    for finish in (lambda s: shards[0].velocity_from(0.5, X, s), lambda s: shards[0].divergence_from(0.5, s),
                   lambda s: shards[0].log_density_from(0.5, s)):
        with pytest.raises(ValueError, match=rf"state\[{row}\].*empty"):
            finish(s_c)


def test_labelled_shard_errors():
    Y, X, labels = _labelled_data()
    with pytest.raises(ValueError, match="partial_states.*no labels"):
        kinflow.EmpiricalField(Y).partial_states(0.5, X, np.zeros(X.shape[0], dtype=int))
    f = kinflow.EmpiricalField(Y, labels=labels)
    with pytest.raises(ValueError, match="classes: expected one class per row"):
        f.partial_states(0.5, X, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"classes\[0\]"):
        f.partial_states(0.5, X, np.full(X.shape[0], -2))
    with pytest.raises(ValueError):
        f.partial_states(0.5, X, np.full(X.shape[0], 9))  # out of range


def _mpirun():
    exe = shutil.which("mpirun") or shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    return exe


@pytest.mark.skipif(_mpirun() is None, reason="needs mpi4py (python3-mpi4py) and mpirun (openmpi-bin)")
@pytest.mark.parametrize("extra", [[], ["--classes", "3", "--cfg", "2.5"]], ids=["plain", "guided"])
def test_mpi4py_example_on_two_ranks(extra):
    cmd = [_mpirun()]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += ["--oversubscribe", "-np", "2", sys.executable, str(ROOT / "examples" / "python" / "mpi_shards.py"),
            "--check", "--n-train", "2000", "--d", "8", "--samples", "48", "--steps", "10"] + extra
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 rank(s)" in p.stdout and "largest relative difference" in p.stdout
