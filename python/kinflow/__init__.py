"""kinflow: kinetic path energy (KPE) and kinetic trajectory shaping (KTS) for
flow-matching samplers, from NumPy and PyTorch at the speed of the C++ library.

Conventions
-----------
* Samples are ``[B, d]`` arrays (one row per sample), training sets ``[N, d]``.
  float64 and float32 are kept: a field built from float32 data computes in float32 and
  returns float32; a Python callable field is sampled in the precision of ``x0``.
* kinflow's C++ batches are ``d x B`` column-major, which is the memory layout of a
  C-contiguous ``[B, d]`` array: arrays are read in place where the C++ side accepts a view,
  and converted (copied) once per call otherwise -- never once per step for C++ fields.
* Bad parameters raise ``ValueError`` whose message names the parameter and its valid range;
  wrong types raise ``TypeError``.
* The GIL is released around C++ work that calls no Python. A Python callable field takes it
  back for each evaluation; an exception it raises (``KeyboardInterrupt`` from Ctrl-C
  included) ends ``sample()`` and propagates.

Example
-------
>>> import kinflow
>>> Y = kinflow.datasets.make("8gaussians", 500, seed=0)
>>> field = kinflow.EmpiricalField(Y)
>>> x0 = kinflow.standard_normal(1000, 2, seed=1)
>>> r = kinflow.sample(field, x0, solver="euler", steps=100, kts=kinflow.KTS(0.01, 0.01))
>>> r.x.shape, r.kpe.shape
((1000, 2), (1000,))
"""

from __future__ import annotations

import numpy as _np

from . import _kinflow
from ._kinflow import KTS, EmpiricalField, GaussianMixture
from ._torch_field import TorchField, torch_field

__version__ = _kinflow.__version__
#: How the C++ module was compiled: build type, compiler, flags and products (Eigen or BLAS),
#: e.g. ``"Release, GNU 12.2.0, -O3 -DNDEBUG -march=native, Eigen products"``; benchmark
#: reports print it.
build_info = _kinflow.build_info

__all__ = [
    "EmpiricalField",
    "GaussianMixture",
    "MLPField",
    "KTS",
    "SampleResult",
    "MemorizationResult",
    "smoothed_empirical",
    "merge_states",
    "load_mlp",
    "torch_field",
    "TorchField",
    "sample",
    "grid",
    "standard_normal",
    "memorization",
    "sliced_wasserstein2",
    "exact_wasserstein2",
    "mmd2",
    "knn_log_density",
    "spearman",
    "read_idx",
    "read_labels",
    "datasets",
]

# ---------------------------------------------------------------------------------------
# Docstrings of the compiled classes

EmpiricalField.__doc__ = """EmpiricalField(Y, sigma_min=0.0, threads=0, pruning="auto", pruning_eps=1e-12, labels=None, classes=None)

The exact flow-matching velocity field of the training set ``Y`` ``[N, d]`` (the field
that memorizes it): ``v(t, x) = (m(x, t) - (1 - sigma_min) x) / sigma_t`` with the
posterior mean ``m`` over the training points and ``sigma_t = 1 - (1 - sigma_min) t``
(clamped near t = 1).

Parameters
----------
Y : array [N, d]
    Training set (copied). float32 data gives a float32 field, anything else float64.
sigma_min : float in [0, 1)
    Noise level left at t = 1.
threads : int
    Worker threads of an evaluation; 0 uses every core.
pruning : "auto", "on" or "off"
    Certified pruning (docs/math.md, section 4.6): per sample, skip the training points whose
    posterior mass is provably at most ``pruning_eps`` times the mass of the points visited.
    The log density is then within ``pruning_eps`` of the exact one, the posterior mean
    within ``2 pruning_eps R`` (R: the largest distance from the mean to a point). "auto"
    prunes where the bounds show it pays (late times) and runs the dense pass elsewhere.
    The first evaluation that prunes builds an index and keeps a reordered copy of ``Y``.
pruning_eps : float in (0, 0.5]
    The posterior mass a sample may leave out, relative to the mass it finds.
labels : array [N] of int >= 0, or None
    The class of every training point: the field then also holds the exact
    class-conditional field (docs/math.md, section 3.5), the empirical field of each class's
    points, beside the field of all points (a second copy of ``Y``, split by class).
classes : int or None
    The number of classes with ``labels`` (None: the largest label + 1); a class without
    points may exist, asking for it is an error.

With labels, ``velocity(t, X, classes)``, ``log_density(t, X, classes)`` and
``divergence(t, X, classes)`` take one class per row of X (``classes`` an int array ``[B]``;
-1: all points, the unconditional field), and ``velocity_pair(t, X, classes)`` returns
``(v_u, v_c)``, both from one pass over the points. ``labels`` and ``classes`` are the
labels given (None without) and the number of classes. ``sample(field, x0, classes=...,
cfg=...)`` samples the class-conditional field with classifier-free guidance.

``pruning_statistics() -> dict`` counts the (sample, point) pairs evaluated so far against
the dense count (``touched_share``); ``reset_pruning_statistics()`` zeroes it. The share per
step of a solve: ``record_pruning_passes(True)`` before it, then
``pruning_statistics(times=grid)`` adds ``touched_share_by_step`` ``[steps]`` (and
``pairs_by_step``, ``dense_pairs_by_step``): the evaluations at times in ``[t_n, t_{n+1})``,
so a Runge-Kutta stage at ``t_n + h`` counts with the next step. With labels, the counts
include the class-conditional field's (solves with ``classes=``; it passes every sample
over every class's points, since one pass gives both ``v_u`` and ``v_c``).

Methods take ``t`` (float) and ``X`` ``[B, d]``: ``velocity(t, X) -> [B, d]``,
``log_density(t, X) -> [B]`` (log p_t), ``posterior_weights(t, X) -> [B, N]`` (rows sum
to 1), ``divergence(t, X) -> [B]`` (exact). A field is also callable: ``field(t, X)``.

Sharded training sets (docs/python.md, "Sharded training sets"): a field built on one
shard of the points gives ``partial_state(t, X) -> [B, d + 4]``, the mergeable posterior
state of X over its points (per query ``[M, W, C, Q, S_1..S_d]``: the largest logit, the
weight sums, the posterior's squared deviations and weighted points, rescaled to ``M``).
``kinflow.merge_states([s_1, s_2, ...])`` merges the states of disjoint shards into the state
of their union, exactly (commutative bit for bit). A field of any shard then finishes it:
``velocity_from(t, X, state) -> [B, d]``, ``divergence_from(t, state) -> [B]`` and
``log_density_from(t, state, n=None) -> [B]`` with ``n`` the number of points the state
covers (None: this field's own ``size``). With labels (the same ``classes`` on every shard; a
shard need not hold every class), ``partial_states(t, X, classes) -> (state_u, state_c)``
gives from one pass the states over all the shard's points and over each row's class (all
points for -1; an empty record where the shard has no point of the class); merge each over the
shards and finish ``state_c`` for ``v_c``. With ``unconditional=False`` (``v_c`` alone) each
class streams only its own rows, about 1/K of the work, and ``state_u`` holds only the rows of
class -1 (empty records elsewhere). Finishing an empty record (a class no shard has) is a
ValueError.
"""

GaussianMixture.__doc__ = """GaussianMixture(means, stds, weights, threads=0)

The exact flow-matching field whose data distribution is the isotropic Gaussian mixture
``sum_k weights[k] N(means[k], stds[k]^2 I)``.

Parameters
----------
means : array [K, d]
stds : array [K], each > 0
weights : array [K], each > 0, summing to 1 (within 1e-6)
threads : int, 0 for every core

Methods as EmpiricalField: ``velocity``, ``log_density``, ``posterior_weights`` ``[B, K]``,
``divergence``, ``pruning_statistics``, ``reset_pruning_statistics``, ``record_pruning_passes``.
"""

KTS.__doc__ = """KTS(alpha0=0.0, beta0=0.0, tau=0.6, k=3.0, early="linear", late="exponential")

Kinetic Trajectory Shaping: the gain ``eta(t) = 1 + alpha(t)`` before ``tau`` (launch boost)
and ``1 - beta(t)`` after it (soft landing); the field sampled is ``eta(t) v(t, x)``.

Parameters
----------
alpha0, beta0 : float >= 0
    Launch and landing strengths (both 0: KTS off, results identical to the plain field).
tau : float in [0, 1]
    Switch time; also where ``sample()`` splits the energy into early and late by default.
k : float > 0
    Steepness of the exponential forms.
early, late : "linear", "constant" or "exponential"
    Shapes of the launch boost and the landing brake.

``eta(t)`` evaluates the gain, ``integral()`` is its integral over [0, 1].
"""


def merge_states(states):
    """The posterior state of the union of disjoint shards of the training points.

    Parameters
    ----------
    states : sequence of arrays [B, d + 4]
        ``EmpiricalField.partial_state(t, X)`` of the same queries ``(t, X)`` over each shard
        (from any process: they are plain arrays, e.g. gathered with mpi4py or
        torch.distributed).

    Returns
    -------
    array [B, d + 4]
        The merged state, in the precision of the first; finish it with
        ``field.velocity_from(t, X, state)``, ``field.divergence_from(t, state)`` or
        ``field.log_density_from(t, state, n)``. Exact: the merge rescales the shards' sums to
        the larger maximum logit and adds Chan's term to the deviations. It is commutative bit
        for bit and associative up to rounding, so merge in one fixed order (e.g. by rank) for
        the same bits everywhere.
    """
    if _is_tensor(states):
        raise TypeError("states: expected a sequence of [B, d + 4] arrays, got one tensor")
    return _kinflow.merge_states([_np.asarray(s.detach().cpu().numpy() if _is_tensor(s) else s) for s in states])


def smoothed_empirical(Y, s, threads=0, pruning="auto", pruning_eps=1e-12, labels=None, classes=None):
    """The smoothed empirical field of ``Y`` ``[N, d]``: the Gaussian mixture with one component
    ``N(y_i, s^2 I)`` of weight 1/N at every training point. It generalises instead of copying;
    as ``s -> 0`` it tends to the empirical field. Returns a :class:`GaussianMixture`.
    ``pruning`` and ``pruning_eps`` as in :class:`EmpiricalField`.

    With ``labels`` (one int >= 0 per row of ``Y``; ``classes`` their number, None: the largest
    + 1) it also holds the smoothed class-conditional field, the smoothed empirical field of
    each class's points, and takes ``classes`` as a labelled :class:`EmpiricalField` does:
    ``velocity(t, X, classes)``, ``velocity_pair``, ``log_density``, ``divergence`` and
    ``sample(field, x0, classes=..., cfg=...)`` (with an exact guided log-likelihood).

    Raises ValueError unless ``s`` is finite and > 0, and for bad labels."""
    return _kinflow.smoothed_empirical(Y, float(s), int(threads), str(pruning), float(pruning_eps), labels, classes)


def _is_float32(x):
    dt = getattr(x, "dtype", None)
    return dt is not None and str(dt) in ("float32", "torch.float32")


class MLPField:
    """A trained MLP velocity field loaded from an .npz file by :func:`load_mlp`.

    The weights are read in the precision of the queries: ``velocity(t, X)``,
    ``divergence(t, X)`` (exact) and ``sample(field, x0)`` compute in float32 for float32
    arrays and in float64 otherwise (unless ``load_mlp`` was given a ``dtype``, which is then
    always used). Each precision is loaded once, when first needed.

    A class-conditional network (``classes`` > 0: its .npz has a ``classes`` array, as
    examples/models/train_conditional_mlp.py writes) takes one class per row:
    ``velocity(t, X, classes)`` and ``divergence(t, X, classes)`` with ``classes`` an int
    array ``[B]`` (-1, or None for every row: the null class, the unconditional field),
    ``velocity_pair(t, X, classes)`` returns ``(v_u, v_c)``, and ``sample(field, x0,
    classes=..., cfg=...)`` guides it.
    """

    def __init__(self, path, dtype=None):
        import os

        self.path = os.fspath(path)
        self._fixed = None if dtype is None else str(_np.dtype(dtype))
        if self._fixed not in (None, "float64", "float32"):
            raise ValueError(f"dtype: expected None, 'float64' or 'float32', got {dtype!r}")
        self._fields = {}
        self._field(self._fixed or "float64")  # read now: a bad file fails here

    def _field(self, dtype):
        if dtype not in self._fields:
            self._fields[dtype] = _kinflow.load_mlp(self.path, dtype)
        return self._fields[dtype]

    def _for(self, x):
        return self._field(self._fixed or ("float32" if _is_float32(x) else "float64"))

    @property
    def dim(self):
        """The dimension d."""
        return self._field(self._fixed or "float64").dim

    @property
    def dtype(self):
        """The fixed precision given to load_mlp, or None (the queries' precision)."""
        return None if self._fixed is None else _np.dtype(self._fixed)

    @property
    def classes(self):
        """The number of classes of a class-conditional network (0: unconditional)."""
        return self._field(self._fixed or "float64").classes

    def velocity(self, t, X, classes=None):
        """``v(t, X)`` ``[B, d]`` for ``X`` ``[B, d]`` (with ``classes`` ``[B]``: each row's class)."""
        return self._for(X).velocity(t, X, classes)

    __call__ = velocity

    def divergence(self, t, X, classes=None):
        """Exact divergence ``div v(t, x)`` at every row of ``X``, ``[B]`` (with ``classes``:
        of each row's class)."""
        return self._for(X).divergence(t, X, classes)

    def velocity_pair(self, t, X, classes):
        """``(v_u, v_c)``: the null class's and each row's class's velocities, ``[B, d]`` each."""
        return self._for(X).velocity_pair(t, X, classes)

    def __repr__(self):
        extra = f", classes={self.classes}" if self.classes else ""
        return f"MLPField({self.path!r}, d={self.dim}{extra}, dtype={self._fixed})"


def load_mlp(path, dtype=None):
    """Load a trained MLP velocity field from an ``.npz`` file (the format of
    examples/models/README.md). With ``dtype=None`` the field computes in the precision of the
    arrays it is given (float32 or float64); "float64" or "float32" fixes it. Raises ValueError
    naming the file and what is wrong with it."""
    return MLPField(path, dtype)


# ---------------------------------------------------------------------------------------
# Sampling


class SampleResult:
    """What :func:`sample` returns: NumPy arrays, or torch tensors on ``x0``'s device when
    ``x0`` was a tensor (the same values; ``status`` stays a list).

    Attributes
    ----------
    x : array [B, d]
        The samples at t = 1.
    kpe, kpe_early, kpe_late : array [B]
        Each sample's kinetic path energy ``E = 1/2 int |v|^2 dt`` and its parts before and
        after the split time ``kpe_tau`` (``kpe = kpe_early + kpe_late``).
    nfe : array [B] of int64
        Field evaluations spent on each sample; ``accepted``/``rejected`` steps likewise.
    status : list of str
        Per sample: "success", "max_steps_reached", "dt_underflow" or "non_finite".
    log_likelihood : array [B] or None
        ``log p_1(x(1))`` (natural log) when ``likelihood=True``.
    trajectory : array [steps + 1, B, d] or None
        The states on the time grid when ``trajectories=True`` (fixed-step solvers; one more
        frame with ``last_step_size``).
    drift_energy, drift_energy_early, drift_energy_late : array [B] or None
        Stochastic solvers: ``1/2 int |v + w grad log p|^2 dt`` along each sample's path (the
        SDE's drift), split like the KPE; None for the ODE solvers.
    control_energy, control_energy_early, control_energy_late : array [B] or None
        Stochastic solvers: ``1/2 int |g grad log p / 2|^2 dt``, the energy of the control that
        keeps the noisy flow on the marginals (its mean is the Kullback-Leibler divergence of
        the SDE's paths from the noisy flow's; docs/math.md section 11.5); None otherwise.
    kpe_profile : array [B, steps], array [steps] or None
        With ``profile="per_sample"``: each step's energy increment per sample (the rows sum to
        ``kpe``); with ``profile="mean"``: the batch mean of each step's increments.
    kpe_unconditional, kpe_cross, kpe_guidance : array [B] or None
        Guided solves (``classes=``): the parts ``1/2 int |b|^2``, ``int w <b, D>`` and
        ``1/2 int w^2 |D|^2`` of the energy (``b = s v_u``, ``D = v_c - b``), which sum to
        ``kpe``; None otherwise.
    integrals : array [K, B] or None
        ``along=[g_1, ..., g_K]``: row k holds each sample's integral of ``g_k`` along its
        path; None otherwise.
    """

    __slots__ = ("x", "kpe", "kpe_early", "kpe_late", "kpe_tau", "nfe", "accepted", "rejected", "status",
                 "log_likelihood", "trajectory", "drift_energy", "drift_energy_early", "drift_energy_late",
                 "control_energy", "control_energy_early", "control_energy_late", "kpe_profile",
                 "kpe_unconditional", "kpe_cross", "kpe_guidance", "integrals")

    def __init__(self, values):
        for k in self.__slots__:
            setattr(self, k, values[k])

    def __repr__(self):
        b, d = self.x.shape
        ok = sum(1 for s in self.status if s == "success")
        # (sums, not numpy.mean: the arrays may be torch tensors, also integer ones)
        return (f"SampleResult(B={b}, d={d}, dtype={self.x.dtype}, kpe_mean={float(self.kpe.sum()) / b:.6g}, "
                f"nfe_mean={float(self.nfe.sum()) / b:.6g}, success={ok}/{b})")


def _is_tensor(x):
    """True for a torch.Tensor, without importing torch when it is not in use."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach") and hasattr(x, "device")


def _tensor_in(name, x):
    """The NumPy view of a CPU tensor (no copy when it is contiguous), or a host copy of a CUDA
    tensor, and the device to send results back to. float32 and float64 only."""
    import torch

    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name}: expected a float32 or float64 tensor, got {x.dtype}")
    if x.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name}: expected a tensor on the CPU or a CUDA device, got device '{x.device}'")
    return x.detach().cpu().numpy(), x.device


def _tensor_out(values, device):
    """A result's arrays as tensors on ``device`` (zero copy on the CPU); other values as they are."""
    import torch

    return {k: torch.from_numpy(v).to(device) if isinstance(v, _np.ndarray) else v for k, v in values.items()}


def _require_real(name, value):
    if isinstance(value, (bool, _np.bool_)) or not isinstance(value, (int, float, _np.integer, _np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")


def sample(field, x0, solver="euler", steps=None, grid="uniform", kts=None, kpe="stage", tau=None,
           rtol=1e-5, atol=1e-5, likelihood=False, trajectories=False, last_step="method",
           start="lower", diffusion=None, diffusion_norm=None, noise_seed=None, last_step_size=None,
           churn=None, t0=None, t1=None, divergence=None, probes=None, probe_seed=None, profile=None,
           callback=None, classes=None, cfg=None, cfg_window=None, cfg_zero_star=None, cfg_schedule=None,
           along=None):
    """Integrate ``dx/dt = v(t, x)`` from t = 0 to 1 for every row of ``x0`` and measure each
    sample's kinetic path energy.

    Parameters
    ----------
    field : EmpiricalField, GaussianMixture, MLPField, TorchField, or any callable ``f(t, X) -> [B, d]``
        A Python callable gets ``t`` as a float and ``X`` as a ``[B, d]`` NumPy array (a fresh
        copy) and may return a NumPy array, a torch tensor or anything ``numpy.asarray`` takes.
        A wrong shape raises ValueError naming both shapes; its exceptions propagate. A
        ``torch.nn.Module`` with ``forward(t[B], x[B, d])`` is passed as
        ``kinflow.torch_field(module)``: inference mode, its own device, chunks.
    x0 : array [B, d] or torch.Tensor [B, d]
        Initial noise; not modified. C++ fields convert it to their own precision; a callable
        field is sampled in float32 when ``x0`` is float32, else float64. A torch tensor
        (float32 or float64, on the CPU or a CUDA device; ``requires_grad`` is ignored: no
        gradients flow through the solve) is read in place on the CPU and copied to the host
        once from a CUDA device; the result's arrays are then tensors on ``x0``'s device.
    solver : str
        Fixed grid, Runge-Kutta: "euler", "midpoint", "heun", "ralston", "rk3", "rk4";
        fixed grid, multistep (one evaluation per step; docs/integrators.md): "ab2", "ab3",
        "dpmpp2m", "dpmpp3m", "unipc"; adaptive (embedded pairs with per-sample step
        control): "dopri5", "bs32", "tsit5"; stochastic (fixed grid, the flow SDE
        ``dx = [v + w grad log p] dt + sqrt(2 w) dW`` with the ODE's marginals; docs/math.md
        section 11): "sde-euler" (Euler-Maruyama), "sde-heun" (weak order 2),
        "renoise-euler" (predict the data, re-noise to the next time).
    steps : int or None
        Steps of the fixed-grid solvers, in [1, 10^7]; None means 100, or the steps of an
        array ``grid`` (an int must then equal ``len(grid) - 1``).
    grid : str or array [n]
        Time grid of the fixed-step solvers, by the names ``kinflow.grid`` takes: "uniform",
        "cosine", "edm[:RHO]", "shift:S", "exponential[:SIGMA_MIN,SIGMA_MAX]", "beta[:A,B]",
        "dynamic-shift:MU", or from a pilot run of the field on up to 256 of the samples:
        "energy[:GAMMA]" (equal shares of the energy) and "acceleration[:GAMMA]" (equal shares
        of the integral of ``|dv/dt|^GAMMA``). Or the times themselves: at least 2, in
        [0, 1], strictly increasing, or strictly decreasing for a backward solve (``x0`` is
        then the state at ``grid[0]``; Runge-Kutta and multistep solvers only). The solve
        walks exactly these times.
    kts : KTS or None
        Kinetic Trajectory Shaping of the field; None for the plain field.
    kpe : str
        Energy quadrature: "stage" (the integrator's stages) or "left" (left Riemann sum).
    tau : float in [0, 1] or None
        Split of the energy into early and late; None means ``kts.tau`` when ``kts`` is given,
        else 0.6.
    rtol, atol : float
        Tolerances of the adaptive solvers.
    likelihood : bool
        Also each sample's log-likelihood from the same solve (exact divergence for kinflow's
        fields, Hutchinson's estimate for a callable). Not defined for the stochastic solvers
        (ValueError).
    trajectories : bool
        Also record the states on the grid, ``[steps + 1, B, d]`` (fixed-step solvers only).
    last_step : str
        The last step of a fixed grid: "method" or "none" (the method's own), "euler" (one
        evaluation at its start, for fields singular at t = 1; stochastic solvers: the drift
        without noise) or "denoise" or "mean" (the jump ``x + (1 - t) v`` to t = 1; the grid
        must end at 1).
    start : str
        First steps of a multistep solver: "lower" (lower order while the history is short,
        as published) or "rk" (Runge-Kutta steps of its order, which keep it, at ``order - 1``
        more evaluations per start step).
    diffusion : str or None
        Stochastic solvers (sde-euler, sde-heun): the diffusion form of ``w(t) = g(t)^2/2``,
        SiT's: "constant[:G]", "sbdm" (the default), "sigma", "linear", "decreasing",
        "increasing-decreasing". "constant" does not vanish at t = 1 and needs
        ``last_step="mean"`` or ``"euler"``.
    diffusion_norm : float or None
        Multiplies the form (default 1; 0 is the ODE).
    noise_seed : int or None
        Seed of the samples' noise streams (default 0): row i's noise depends on the seed, i
        and the step only, so the first rows of a larger batch get the same paths.
    last_step_size : float in (0, 1) or None
        With last_step "mean" or "euler": the grid mapped onto ``[0, 1 - H]`` and one more
        step from ``1 - H`` to 1 (SiT's last_step_size); None: the grid's own last step.
    churn : float in [0, 1] or None
        renoise-euler: the share of fresh noise, ``x' = t' x1 + (1 - t')(sqrt(1 - c^2) x0 + c xi)``
        (default 1, diffusers' stochastic sampling; 0 is Euler).

    t0, t1 : float in [0, 1] or None
        The adaptive solvers' span (default 0 and 1), either direction: ``x0`` is the state
        at ``t0``. The fixed-step solvers take an array ``grid`` instead. With
        ``likelihood=True`` the span must be the whole of [0, 1] (``t0=1, t1=0``: the log
        density of given points, as ``log_likelihood`` computes it).
    divergence : str or None
        With ``likelihood=True``: "auto" (the default: the field's exact divergence when it
        has one -- kinflow's fields and MLPs -- else Hutchinson's estimate), "exact" (an error
        for a field without one) or "hutchinson" (the estimate even for an exact field).
    probes : int in [1, 1000] or None
        Hutchinson's probes per stage and sample (default 1): the estimate's variance falls as
        1 / probes, at 2 probes evaluations of the field per stage.
    probe_seed : int >= 0 or None
        Seed of Hutchinson's Rademacher probes (default 0); the same seed gives the same
        estimates.
    profile : str or None
        The per-step energy profile, for the fixed-grid and stochastic solvers: "per_sample"
        (``kpe_profile`` ``[B, steps]``, each step's increment of each sample's energy, by the
        same quadrature as ``kpe``) or "mean" (``[steps]``, their batch mean); None: none.
    callback : callable or None
        ``callback(step, t, X, V)`` after every step of a fixed grid (Runge-Kutta, multistep,
        stochastic): ``step`` the step's index, ``t`` its start time, ``X`` the state after it
        ``[B, d]`` and ``V`` its stage velocities ``[stages, B, d]`` (one stage for the
        multistep and stochastic solvers, and for a last step taken with Euler); fresh NumPy
        arrays in the solve's precision. Its return value is ignored; an exception it raises
        ends the solve and propagates. Cost: two copies of the batch per step, the GIL taken
        per step, and the batch is then integrated whole rather than in cache-sized tiles.
        The adaptive solvers, whose steps differ per sample, call it after every accepted
        step of every sample as ``callback(step, t, X, V, sample=i)``: ``step`` counts that
        sample's accepted steps from 0, ``t`` is the step's start, ``X`` ``[1, d]`` the
        sample's state after it and ``V`` ``[stages, 1, d]`` its stage velocities (one Python
        call per accepted sample step).

    classes : int, array [B] of int, or None
        The samples' classes (-1: unconditional) for a conditional field: an
        ``EmpiricalField`` with labels (the exact class-conditional field) or a callable
        ``f(t, X, c) -> [B, d]`` (``c`` the int64 array ``[B]`` of the rows' classes). The
        solve then integrates the guided velocity ``v_u + w (v_c - v_u)`` (docs/math.md
        section 6.5; ``w = 1``, the conditional field, unless ``cfg`` says otherwise), and the
        result's ``kpe_unconditional``, ``kpe_cross`` and ``kpe_guidance`` ``[B]`` are the parts
        ``1/2 int |b|^2``, ``int w <b, D>``, ``1/2 int w^2 |D|^2`` of its energy (``b = s v_u``,
        ``D = v_c - b``; they sum to ``kpe``), at no extra evaluation.
    cfg : float or None
        Classifier-free guidance scale w (default 1; 0 gives the unconditional field).
    cfg_window : (float, float) or None
        Guide only for t in ``[start, end]`` (``0 <= start <= end <= 1``); w = 1 outside.
    cfg_zero_star : int >= 0 or None
        CFG-Zero*: the velocity is 0 for the first K steps of the grid (a fixed grid known
        before the solve), and ``v_u`` is scaled by ``<v_c, v_u> / |v_u|^2``. No exact
        divergence then (``likelihood=True`` needs ``divergence="hutchinson"``).
    cfg_schedule : callable or None
        A weight ``w(t) -> float`` of one's own, replacing ``cfg`` and ``cfg_window``.
    along : list of callables or None
        Integrals of one's own along every path, ``int g(t, x(t), v) dt`` from the solve's
        start to its end, carried like the energy: ``g(t, X, V) -> [B]`` is called at every
        stage of every step with the rows' times ``t`` ``[B]`` (all equal on a fixed grid), states
        ``X`` ``[B, d]`` and the velocities the solve integrates ``V`` ``[B, d]`` (after KTS and
        guidance; fresh NumPy arrays in the solve's precision), and the stage values are
        summed with the method's weights, so the integral converges at the solver's order at
        no extra evaluation of the field (the stochastic solvers: at their points, V the
        field's velocity). ``result.integrals`` is ``[K, B]``. Rows may come in tiles or, for
        the adaptive solvers, only the unfinished samples: g must act row by row. Cost: one
        Python call and two copies of the batch per stage and integrand.

    Returns
    -------
    SampleResult
        NumPy arrays, or torch tensors on ``x0``'s device when ``x0`` is a tensor.
    """
    device = None
    if _is_tensor(x0):
        x0, device = _tensor_in("x0", x0)
    if tau is None:
        tau = kts.tau if isinstance(kts, KTS) else 0.6
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, _np.integer))):
        raise TypeError(f"steps: expected an int or None, got {type(steps).__name__}")
    if not isinstance(grid, str):
        if _is_tensor(grid):
            grid = grid.detach().cpu().numpy()
        try:
            times = _np.asarray(grid, dtype=_np.float64)
        except (TypeError, ValueError):
            times = None
        if times is None or times.ndim == 0:  # not numbers, or one number
            raise TypeError(f"grid: expected a name (str) or a 1-D array of times, got {type(grid).__name__}")
        if times.ndim != 1:
            raise ValueError(f"grid: expected a 1-D array of times, got shape {times.shape}")
        if steps is not None and steps != times.size - 1:
            raise ValueError(f"steps: expected None or len(grid) - 1 = {times.size - 1} with an array grid, got {steps}")
        steps, grid = max(times.size - 1, 1), times.tolist()
    elif steps is None:
        steps = 100
    for name, value in (("solver", solver), ("kpe", kpe), ("last_step", last_step), ("start", start)):
        if not isinstance(value, str):
            raise TypeError(f"{name}: expected a str, got {type(value).__name__}")
    for name, value in (("tau", tau), ("rtol", rtol), ("atol", atol)):
        _require_real(name, value)
    if diffusion is not None and not isinstance(diffusion, str):
        raise TypeError(f"diffusion: expected a str or None, got {type(diffusion).__name__}")
    for name, value in (("diffusion_norm", diffusion_norm), ("last_step_size", last_step_size), ("churn", churn)):
        if value is not None:
            _require_real(name, value)
    for name, value in (("noise_seed", noise_seed), ("probe_seed", probe_seed)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, _np.integer)) or value < 0):
            raise TypeError(f"{name}: expected an int >= 0 or None, got {value!r}")
    if probes is not None and (isinstance(probes, bool) or not isinstance(probes, (int, _np.integer))):
        raise TypeError(f"probes: expected an int or None, got {type(probes).__name__}")
    for name, value in (("divergence", divergence), ("profile", profile)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name}: expected a str or None, got {type(value).__name__}")
    for name, value in (("t0", t0), ("t1", t1)):
        if value is not None:
            _require_real(name, value)
    for name, value in (("likelihood", likelihood), ("trajectories", trajectories)):
        if not isinstance(value, (bool, _np.bool_)):
            raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    if isinstance(field, MLPField):
        field = field._for(x0)
    def _opt(v, kind):
        return None if v is None else kind(v)
    values = _kinflow.sample(field, x0, solver, int(steps), grid, kts, kpe, float(tau), float(rtol),
                             float(atol), bool(likelihood), bool(trajectories), last_step, start, diffusion,
                             _opt(diffusion_norm, float), _opt(noise_seed, int), _opt(last_step_size, float),
                             _opt(churn, float), _opt(t0, float), _opt(t1, float), divergence, _opt(probes, int),
                             _opt(probe_seed, int), profile, callback, classes, _opt(cfg, float), cfg_window,
                             _opt(cfg_zero_star, int), cfg_schedule, along)
    return SampleResult(values if device is None else _tensor_out(values, device))


def log_likelihood(field, data, solver="rk4", steps=100, grid="uniform", rtol=1e-5, atol=1e-5, divergence=None,
                   probes=None, probe_seed=None):
    """The model's log density ``log p_1(x)`` of given points ``data`` ``[B, d]``: the flow
    integrated backward from t = 1 (the points) to t = 0 with the divergence carried beside it,
    ``log p_1(x) = log N(x(0); 0, I) + int_1^0 div v dt`` (docs/math.md section 8).

    ``grid`` is a name (``kinflow.grid``) or an increasing array of times from 0 to 1; the
    solve walks it from 1 to 0. ``solver`` is a Runge-Kutta or multistep solver on that grid,
    or an adaptive one ("dopri5", "bs32", "tsit5") with the tolerances ``rtol`` and ``atol``
    (``grid`` and ``steps`` are then unused). Exact divergences for kinflow's fields,
    Hutchinson's estimate for a callable; ``divergence``, ``probes`` and ``probe_seed`` as
    in ``sample``. Returns an array ``[B]`` (a tensor when ``data`` is one). Equivalent to
    ``sample(field, data, solver, grid=times[::-1], likelihood=True).log_likelihood``, or
    ``sample(field, data, solver, t0=1, t1=0, likelihood=True)`` for an adaptive solver.
    """
    hutchinson = dict(divergence=divergence, probes=probes, probe_seed=probe_seed)
    if isinstance(solver, str) and solver in ("dopri5", "bs32", "tsit5"):
        return sample(field, data, solver=solver, t0=1.0, t1=0.0, rtol=rtol, atol=atol, likelihood=True,
                      **hutchinson).log_likelihood
    if isinstance(grid, str):
        times = globals()["grid"](grid, steps)
    else:
        times = _np.asarray(grid.detach().cpu().numpy() if _is_tensor(grid) else grid, dtype=_np.float64)
        if times.ndim != 1 or times.size < 2 or times[0] != 0.0 or times[-1] != 1.0:
            raise ValueError("grid: expected a name or an increasing 1-D array of times from 0 to 1")
    return sample(field, data, solver=solver, grid=times[::-1].copy(), likelihood=True, **hutchinson).log_likelihood


def grid(name, steps, **params):
    """The time grid ``name`` of ``steps`` steps: ``steps + 1`` times from exactly 0 (noise)
    to exactly 1 (data), strictly increasing, as ``sample(..., grid=name)`` walks it.

    Parameters
    ----------
    name : str
        "uniform", "cosine", "edm[:RHO]", "shift:S", "exponential[:SIGMA_MIN,SIGMA_MAX]",
        "beta[:A,B]" or "dynamic-shift:MU" (formulas in docs/kts.md). The pilot grids
        "energy" and "acceleration" need a field: pass them to ``sample``.
    steps : int
        Number of steps, in [1, 10^7].
    **params : float
        The grid's parameters by name instead of after the colon: ``rho`` (edm), ``shift``,
        ``sigma_min`` and ``sigma_max`` (exponential), ``alpha`` and ``beta`` (beta), ``mu``
        (dynamic-shift).

    Returns
    -------
    numpy.ndarray of float64, shape ``[steps + 1]``

    Raises
    ------
    ValueError naming ``grid`` for an unknown name, a parameter the grid does not take or one
    out of its range, and for the pilot grids.
    """
    if not isinstance(name, str):
        raise TypeError(f"grid: expected a str name, got {type(name).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, (int, _np.integer)):
        raise TypeError(f"steps: expected an int, got {type(steps).__name__}")
    for key, value in params.items():
        _require_real(f"grid parameter {key}", value)
    return _kinflow.grid(name, int(steps), {k: float(v) for k, v in params.items()})


def standard_normal(B, d, seed=0, dtype="float64"):
    """``[B, d]`` independent standard-normal entries from kinflow's seeded stream: the same
    noise as the C++ library's ``standard_normal(d, B, seed)`` (and the CLI's ``seed + 1``
    for its samples). The first rows do not depend on ``B``."""
    return _kinflow.standard_normal(int(B), int(d), int(seed), str(_np.dtype(dtype)))


# ---------------------------------------------------------------------------------------
# Metrics


class MemorizationResult:
    """What :func:`memorization` returns.

    Attributes
    ----------
    fraction : float
        F_mem, the fraction of samples whose nearest-neighbour ratio d1/d2 is below ``ratio``.
    ci : (float, float)
        Bootstrap percentile 95% CI of F_mem.
    nn_dist : array [B]
        Distance of each sample to its nearest training point (``nn_dist2``: the second).
    nn_ratio : array [B]
        d1/d2 (0 when d1 = 0).
    nearest : array [B]
        Row of the nearest training point.
    memorized : array [B] of bool
        ``nn_ratio < ratio``.
    """

    __slots__ = ("fraction", "ci", "nn_dist", "nn_dist2", "nn_ratio", "nearest", "memorized")

    def __init__(self, values):
        for k in self.__slots__:
            setattr(self, k, values[k])

    def __repr__(self):
        return f"MemorizationResult(fraction={self.fraction:.6g}, ci=({self.ci[0]:.6g}, {self.ci[1]:.6g}))"


def memorization(samples, train, ratio=1 / 3, bootstrap=1000, seed=0):
    """F_mem of ``samples`` ``[B, d]`` against the training set ``train`` ``[N, d]`` (N >= 2): a
    sample is a copy when d1/d2 < ``ratio`` (d1, d2 its distances to the two nearest training
    points). ``bootstrap`` resamples (0: none) seeded by ``seed`` give the CI."""
    return MemorizationResult(_kinflow.memorization(samples, train, float(ratio), int(bootstrap), int(seed)))


def sliced_wasserstein2(x, y, projections=256, seed=0):
    """Sliced W2 between point sets ``x`` ``[n, d]`` and ``y`` ``[m, d]`` (any sizes) over
    ``projections`` seeded random directions."""
    return _kinflow.sliced_wasserstein2(x, y, int(projections), int(seed))


def exact_wasserstein2(x, y):
    """Exact W2 between two equal-size point sets ``[n, d]`` (optimal assignment; O(n^3))."""
    return _kinflow.exact_wasserstein2(x, y)


def mmd2(x, y, bandwidths=None):
    """Unbiased MMD^2 between ``x`` ``[n, d]`` and ``y`` ``[m, d]`` (n, m >= 2) with a sum of RBF
    kernels; bandwidths default to factors 0.25..4 of the median pairwise distance."""
    return _kinflow.mmd2(x, y, bandwidths)


def knn_log_density(queries, reference, k=10, exclude_self=False):
    """k-NN estimate of the log density of the point set ``reference`` ``[N, d]`` at each row of
    ``queries`` ``[B, d]``; ``exclude_self`` when the queries are the reference points."""
    return _kinflow.knn_log_density(queries, reference, int(k), bool(exclude_self))


def spearman(x, y):
    """Spearman rank correlation of two 1-D arrays of equal length (ties get average ranks)."""
    return _kinflow.spearman(x, y)


# ---------------------------------------------------------------------------------------
# Data


def read_labels(path):
    """The class labels in the file ``path``, an int64 array ``[N]`` of integers >= 0: an IDX
    labels file (plain or gzip, e.g. Fashion-MNIST's ``train-labels-idx1-ubyte.gz``), a
    ``.npy`` of any integer dtype, or text with one integer per line -- what
    ``kinflow-sample --labels`` reads (kinflow/data/labels.hpp). ValueError naming the file and
    the line or index for anything else.
    """
    import os

    return _kinflow.read_labels(os.fspath(path))


def read_idx(path, max_items=None):
    """The array stored in the IDX file ``path`` (the format of MNIST and Fashion-MNIST),
    plain or gzip-compressed (told apart by the file's first bytes, not its name).

    Parameters
    ----------
    path : str or os.PathLike
        The file, e.g. ``/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz``.
    max_items : int >= 1 or None
        Keep only the first ``max_items`` items (the first dimension); None keeps all. Only
        the bytes those items need are decompressed.

    Returns
    -------
    ndarray
        The file's shape (``[N, 28, 28]`` for images, ``[N]`` for labels, N cut to
        ``max_items``) and element type (uint8, int8, int16, int32, float32 or float64), in
        the machine's byte order; the values as stored.

    Raises
    ------
    ValueError
        Naming the file and what is wrong: not an IDX file (its magic number), truncated,
        bytes past the data, sizes past 4 GiB, corrupt gzip data (a CRC-32 or length that
        disagrees), fewer items than ``max_items``, a missing or unreadable file.

    The C++ reader (kinflow/data/idx.hpp) does the work, so that Python and
    ``kinflow-sample --train`` read every file alike.
    """
    import os

    if max_items is None:
        count = 0
    else:
        if isinstance(max_items, bool) or not isinstance(max_items, (int, _np.integer)):
            raise TypeError(f"max_items: expected an int or None, got {type(max_items).__name__}")
        count = int(max_items)
        if count < 1:
            raise ValueError(f"max_items: expected None (every item) or a count >= 1, got {count}")
    return _kinflow.read_idx(os.fspath(path), count)


class _Datasets:
    """The toy 2-D datasets: ``kinflow.datasets.make(name, n, seed)`` -> ``[n, 2]`` float64,
    ``kinflow.datasets.names`` the valid names (the same generators as the C++ library and the
    command-line programs); and Fashion-MNIST from its IDX files,
    ``kinflow.datasets.fashion_mnist(split, n)``."""

    #: Where Debian's ``dataset-fashion-mnist`` installs the Fashion-MNIST files.
    fashion_mnist_dir = "/usr/share/datasets/fashion-mnist"

    names = tuple(_kinflow.dataset_names)

    @staticmethod
    def make(name, n, seed=0, labels=False):
        """``n`` points of the toy dataset ``name`` (one of ``names``), seeded by ``seed``.

        With ``labels=True``, ``(X, labels)``: the same points and each one's natural class,
        an int64 array ``[n]`` (the component of 8gaussians and 25gaussians, the arc of moons,
        the arm of 2spirals and pinwheel, the circle, the ring, the filled checkerboard cell,
        the quarter of the swissroll; ``classes(name)`` of them).
        """
        if not isinstance(name, str):
            raise TypeError(f"name: expected a str, got {type(name).__name__}")
        if labels:
            X, y, _ = _kinflow.make_labelled_dataset(name, int(n), int(seed))
            return X, y
        return _kinflow.make_dataset(name, int(n), int(seed))

    @staticmethod
    def classes(name):
        """The number of classes of ``make(name, n, labels=True)``'s labels."""
        if not isinstance(name, str):
            raise TypeError(f"name: expected a str, got {type(name).__name__}")
        return int(_kinflow.make_labelled_dataset(name, 0, 0)[2])

    @staticmethod
    def fashion_mnist(split="train", n=None, directory=None):
        """The first ``n`` images of Fashion-MNIST's ``split`` ("train": 60000, "test":
        10000) and their labels, read from ``directory`` (default ``fashion_mnist_dir``,
        where ``bash scripts/install-deps.sh --datasets`` puts Debian's files).

        Returns ``(X, labels)``: ``X`` ``[n, 784]`` float64, one image per row, its 28 x 28
        pixels in row-major order divided by 255 into [0, 1] -- the training set that
        ``kinflow-sample --train <images file> --n-train n`` uses --; ``labels`` ``[n]``
        uint8, the classes 0..9. ``n=None`` reads the whole split.

        Raises FileNotFoundError when the files are absent, ValueError for a bad ``split``
        or ``n`` or a malformed file (see ``read_idx``).
        """
        import os

        prefixes = {"train": "train", "test": "t10k"}
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, _np.integer)) or n < 1):
            raise ValueError(f"n: expected None (the whole split) or a count >= 1, got {n!r}")
        if split not in prefixes:
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        d = _Datasets.fashion_mnist_dir if directory is None else os.fspath(directory)
        paths = [os.path.join(d, f"{prefixes[split]}-{kind}-ubyte.gz") for kind in ("images-idx3", "labels-idx1")]
        for path in paths:
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path}: Fashion-MNIST is not installed there (Debian: install "
                                        f"dataset-fashion-mnist, e.g. bash scripts/install-deps.sh --datasets)")
        images, labels = read_idx(paths[0], n), read_idx(paths[1], n)
        return images.reshape(images.shape[0], -1) / 255.0, labels

    def __repr__(self):
        return "kinflow.datasets(names=" + ", ".join(self.names) + ", fashion_mnist)"


datasets = _Datasets()
