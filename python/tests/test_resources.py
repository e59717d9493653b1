"""Repeated calls leak nothing; the GIL is released around C++ work; Ctrl-C interrupts sample().

- reference counts of the inputs (arrays, field, callable, KTS) are the same after 200 calls;
- Python-tracked memory (tracemalloc, which sees NumPy's buffers) and the resident set size
  stay roughly constant over 200 calls once warmed up;
- a Python thread keeps running while sample() works on a C++ field;
- SIGINT during a long sample() on a C++ field raises KeyboardInterrupt within about a second.
"""

import gc
import os
import signal
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest

import kinflow

Y = np.random.default_rng(0).normal(size=(50, 2))
X0 = np.random.default_rng(1).normal(size=(32, 2))


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def lam(t, X):
    return -np.asarray(X) * (1.0 - t)


def _calls(field, x0, kts):
    return [
        lambda: kinflow.sample(field, x0, solver="heun", steps=5, kts=kts, trajectories=True),
        lambda: kinflow.sample(field, x0, solver="dopri5", likelihood=True),
        lambda: kinflow.sample(lam, x0, solver="rk4", steps=3),
        lambda: field.velocity(0.5, x0),
        lambda: field.log_density(0.5, x0),
        lambda: field.posterior_weights(0.5, x0),
        lambda: kinflow.memorization(x0, Y, bootstrap=10),
    ]


def test_reference_counts_stable():
    field = kinflow.EmpiricalField(Y)
    kts = kinflow.KTS(alpha0=0.01, beta0=0.01)
    x0 = X0.copy()
    calls = _calls(field, x0, kts)
    for c in calls:  # warm up (caches, lazily created objects)
        c()
    gc.collect()
    before = [sys.getrefcount(o) for o in (x0, field, kts, lam, Y)]
    for _ in range(200):
        for c in calls:
            r = c()
        del r
    gc.collect()
    after = [sys.getrefcount(o) for o in (x0, field, kts, lam, Y)]
    assert after == before


def test_result_arrays_do_not_pin_inputs():
    field = kinflow.EmpiricalField(Y)
    x0 = X0.copy()
    n = sys.getrefcount(x0)
    results = [kinflow.sample(field, x0, steps=3) for _ in range(20)]
    assert sys.getrefcount(x0) == n
    del results


def test_callable_exception_does_not_leak():
    x0 = X0.copy()

    def bad(t, X):
        raise ValueError("no")

    for _ in range(5):
        with pytest.raises(ValueError):
            kinflow.sample(bad, x0)
    gc.collect()
    n_x, n_f = sys.getrefcount(x0), sys.getrefcount(bad)
    for _ in range(100):
        with pytest.raises(ValueError):
            kinflow.sample(bad, x0)
    gc.collect()
    assert (sys.getrefcount(x0), sys.getrefcount(bad)) == (n_x, n_f)


def test_memory_stable_over_200_calls():
    field = kinflow.EmpiricalField(Y)
    kts = kinflow.KTS(alpha0=0.01, beta0=0.01)
    x0 = X0.copy()
    calls = _calls(field, x0, kts)

    def round_():
        for c in calls:
            c()

    for _ in range(20):
        round_()
    gc.collect()
    tracemalloc.start()
    try:
        rss0 = rss_bytes()
        t0, _ = tracemalloc.get_traced_memory()
        for _ in range(200):
            round_()
        gc.collect()
        t1, _ = tracemalloc.get_traced_memory()
        rss1 = rss_bytes()
    finally:
        tracemalloc.stop()
    # 1400 calls, each returning arrays of a few KB: a leak of one result per call would be
    # several MB.
    assert t1 - t0 < 256 * 1024, f"traced memory grew by {t1 - t0} bytes"
    assert rss1 - rss0 < 8 * 1024 * 1024, f"RSS grew by {rss1 - rss0} bytes"


def _long_problem(seconds):
    """An EmpiricalField sample() sized to take about `seconds` (measured on a short run)."""
    rng = np.random.default_rng(2)
    field = kinflow.EmpiricalField(rng.normal(size=(4000, 2)))
    x0 = rng.normal(size=(256, 2))
    start = time.perf_counter()
    kinflow.sample(field, x0, solver="euler", steps=10)
    per_step = max((time.perf_counter() - start) / 10, 1e-6)
    steps = int(seconds / per_step) + 1
    return field, x0, steps, per_step


def test_gil_released_during_cpp_sample():
    field, x0, steps, _ = _long_problem(1.0)
    counter = [0]
    running = threading.Event()
    stop = threading.Event()

    def spin():
        running.set()
        while not stop.is_set():
            counter[0] += 1

    th = threading.Thread(target=spin, daemon=True)
    th.start()
    running.wait()
    try:
        # baseline: how far the thread gets in 0.2 s when the main thread sleeps
        c0 = counter[0]
        time.sleep(0.2)
        base = (counter[0] - c0) / 0.2
        c1 = counter[0]
        t0 = time.perf_counter()
        kinflow.sample(field, x0, solver="euler", steps=steps)
        dt = time.perf_counter() - t0
        during = (counter[0] - c1) / dt
    finally:
        stop.set()
        th.join()
    # With the GIL held for the whole call the thread would not advance at all.
    assert during > 0.1 * base, (during, base, dt)


SIGNAL_AFTER = 0.5     # seconds from the start of the solve to SIGINT
REACT_WITHIN = 1.5     # seconds the solve may take after SIGINT to raise KeyboardInterrupt


def _assert_ctrl_c_interrupts(prepare, size, grow=4, attempts=4):
    """SIGINT sent `SIGNAL_AFTER` s into a solve raises KeyboardInterrupt promptly.

    `prepare(size)` builds the inputs (not timed) and returns the solve to run; `size` is
    calibrated to last ~5 s. Calibration on a loaded machine can come out too short: a solve that
    ends before the signal says nothing about interruption, so the size is multiplied by `grow`
    and the solve tried again. A solve that runs on past the signal fails the test at once.
    """
    for _ in range(attempts):
        solve = prepare(size)
        fired = threading.Event()

        def interrupt():
            fired.set()
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(SIGNAL_AFTER, interrupt)
        finished = None
        try:
            t0 = time.perf_counter()
            timer.start()
            try:
                solve()
                finished = time.perf_counter() - t0
            finally:
                timer.cancel()
                timer.join()
            time.sleep(0.05)          # a signal sent as the solve returned is handled here
        except KeyboardInterrupt:
            if finished is None:
                elapsed = time.perf_counter() - t0
                assert fired.is_set()
                assert elapsed < SIGNAL_AFTER + REACT_WITHIN, f"interrupted after {elapsed:.2f} s"
                return
        if finished >= SIGNAL_AFTER:
            pytest.fail(f"SIGINT sent at {SIGNAL_AFTER} s, but the solve ran to its end "
                        f"at {finished:.2f} s")
        size = int(size * grow) + 1
    pytest.fail(f"the solve never lasted {SIGNAL_AFTER} s, even at size {size}")


def test_ctrl_c_interrupts_a_long_cpp_sample():
    field, x0, _, per_step = _long_problem(0.1)
    steps = int(5.0 / per_step) + 1           # ~5 s if nothing interrupted it
    _assert_ctrl_c_interrupts(
        lambda n: lambda: kinflow.sample(field, x0, solver="euler", steps=n), steps)
    # the module still works afterwards
    r = kinflow.sample(field, x0[:4], solver="euler", steps=2)
    assert list(r.status) == ["success"] * 4


def test_ctrl_c_interrupts_a_long_adaptive_cpp_sample():
    # A few hundred samples and a field large enough for the solve to take ~6 s: signals are
    # seen between the steps of the batch.
    rng = np.random.default_rng(4)
    x0 = rng.normal(size=(256, 2))
    start = time.perf_counter()
    kinflow.sample(kinflow.EmpiricalField(rng.normal(size=(20000, 2))), x0[:64], solver="dopri5",
                   rtol=1e-9, atol=1e-9)
    per_point = max((time.perf_counter() - start) / (64 * 20000), 1e-12)
    N = min(int(6.0 / (per_point * 256)) + 1, 1_000_000)   # ~6 s if nothing interrupted it

    def prepare(n):
        field = kinflow.EmpiricalField(np.random.default_rng(5).normal(size=(n, 2)))
        return lambda: kinflow.sample(field, x0, solver="dopri5", rtol=1e-9, atol=1e-9)

    _assert_ctrl_c_interrupts(prepare, N, grow=2)


def test_ctrl_c_interrupts_a_large_batch_adaptive_cpp_sample():
    rng = np.random.default_rng(8)
    field = kinflow.EmpiricalField(rng.normal(size=(300, 2)))
    small = rng.normal(size=(256, 2))
    start = time.perf_counter()
    kinflow.sample(field, small, solver="dopri5")
    per_sample = max((time.perf_counter() - start) / 256, 1e-9)
    B = min(int(5.0 / per_sample) + 1, 3_000_000)       # ~5 s if nothing interrupted it

    def prepare(n):
        x0 = np.random.default_rng(9).normal(size=(n, 2))
        return lambda: kinflow.sample(field, x0, solver="dopri5")

    _assert_ctrl_c_interrupts(prepare, B)


def test_ctrl_c_interrupts_a_python_field_sample():
    x0 = np.random.default_rng(5).normal(size=(64, 2))
    start = time.perf_counter()
    kinflow.sample(lam, x0, solver="euler", steps=200)
    per_step = max((time.perf_counter() - start) / 200, 1e-6)
    steps = int(5.0 / per_step) + 1           # ~5 s if nothing interrupted it
    _assert_ctrl_c_interrupts(
        lambda n: lambda: kinflow.sample(lam, x0, solver="euler", steps=n), steps)


def test_ctrl_c_interrupts_a_large_batch_cpp_sample():
    rng = np.random.default_rng(6)
    field = kinflow.EmpiricalField(rng.normal(size=(2000, 2)))
    small = rng.normal(size=(256, 2))
    start = time.perf_counter()
    kinflow.sample(field, small, solver="euler", steps=20)
    per_sample_step = max((time.perf_counter() - start) / (256 * 20), 1e-9)
    B = 100_000
    steps = max(int(5.0 / (per_sample_step * B)) + 1, 2)   # ~5 s if nothing interrupted it
    x0 = rng.normal(size=(B, 2))
    _assert_ctrl_c_interrupts(
        lambda n: lambda: kinflow.sample(field, x0, solver="euler", steps=n), steps)


def test_one_field_object_from_several_threads():
    # The GIL is released while a C++ field runs, so two Python threads may evaluate one
    # field object at the same time; each must get what it gets alone (the MLP's buffers
    # are per call, the closed-form fields keep none).
    import pathlib
    npz = pathlib.Path(__file__).resolve().parents[2] / "examples" / "models" / "fm_mlp_8gaussians.npz"
    rng = np.random.default_rng(21)
    fields = [kinflow.load_mlp(str(npz), dtype="float64"),
              kinflow.EmpiricalField(rng.normal(size=(300, 2)), threads=2)]
    for field in fields:
        inputs = [rng.normal(size=(n, 2)) for n in (257, 1000)]
        expected = [np.asarray(field.velocity(0.37, x)) for x in inputs]
        expected_s = [np.asarray(kinflow.sample(field, x, solver="heun", steps=8).x) for x in inputs]
        errors = []

        def work(k):
            try:
                for _ in range(40):
                    np.testing.assert_array_equal(np.asarray(field.velocity(0.37, inputs[k])), expected[k])
                    r = kinflow.sample(field, inputs[k], solver="heun", steps=8)
                    np.testing.assert_array_equal(np.asarray(r.x), expected_s[k])
            except Exception as e:  # reported by the main thread
                errors.append(e)

        threads = [threading.Thread(target=work, args=(k,)) for k in (0, 1, 0, 1)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors[0]
