#!/usr/bin/env python3
"""Prints SciPy's RK45 (Dormand–Prince 5(4)) results on two problems with known solutions.

tests/integrators/test_adaptive.cpp compares kinflow's dopri5 against these numbers:
the same controller (safety 0.9, factors in [0.2, 10], Hairer's initial step, the RMS
error norm with atol + rtol * max(|x|, |x_new|)) must take the same steps.
Run with Debian's python3-scipy:  python3 tests/support/scipy_rk45_reference.py
"""
from scipy.integrate import solve_ivp


def spin(t, y):
    w = (1 + t) * y[2]
    return [-w * y[1], w * y[0], 0.0]


def decay(t, y):
    return -2 * t * y**2


for tol in (1e-4, 1e-6, 1e-8):
    s = solve_ivp(spin, (0, 2), [1.0, 0.0, 3.0], method="RK45", rtol=tol, atol=tol)
    print(f"spin tol={tol:g} nfev={s.nfev} steps={s.t.size - 1} "
          f"x=({s.y[0, -1]!r}, {s.y[1, -1]!r})")
for tol in (1e-4, 1e-6, 1e-8):
    # one sample at a time: SciPy's error norm mixes all components of a vector state
    for x0 in (0.5, 1.0, 2.0):
        s = solve_ivp(decay, (0, 2), [x0], method="RK45", rtol=tol, atol=tol)
        print(f"decay tol={tol:g} x0={x0} nfev={s.nfev} steps={s.t.size - 1} x={s.y[0, -1]!r}")
