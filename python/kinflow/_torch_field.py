"""kinflow.torch_field: a torch.nn.Module (or a function of tensors) as a velocity field."""

from __future__ import annotations

import numpy as _np


class TorchField:
    """A torch module or function ``f(t, x) -> v`` as a field that ``kinflow.sample`` takes.

    Built by :func:`kinflow.torch_field`; see there. Calling it, ``field(t, X)``, takes the
    time ``t`` (float) and the states ``X`` ``[B, d]`` (a NumPy array or a tensor) and returns
    the velocities ``[B, d]`` as a NumPy array of ``X``'s dtype. A class-conditional module,
    ``forward(t, x, c)`` with ``c`` an int64 tensor ``[B]`` (-1: the null class), is called
    as ``field(t, X, c)``, which ``kinflow.sample(field, x0, classes=..., cfg=...)`` does.

    Attributes
    ----------
    module : torch.nn.Module or callable
        What is evaluated.
    device : torch.device
        Where it runs.
    dtype : torch.dtype or None
        The precision of its inputs (None: the precision of ``X``).
    chunk : int or None
        The most rows per call of the module.
    calls : int
        Calls of the module so far (chunks counted one by one).
    """

    def __init__(self, module, device=None, dtype=None, chunk=None):
        import torch

        if not callable(module):
            raise TypeError(f"module: expected a torch.nn.Module or a callable f(t, x), got {type(module).__name__}")
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, (int, _np.integer)) or chunk < 1):
            raise ValueError(f"chunk: expected None or an int >= 1 (rows per call of the module), got {chunk!r}")
        if dtype is not None and dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype: expected None, torch.float32 or torch.float64, got {dtype!r}")
        tensors = []
        if isinstance(module, torch.nn.Module):
            tensors = [*module.parameters(), *module.buffers()]
        if device is None:
            device = tensors[0].device if tensors else torch.device("cpu")
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device: '{device}' was asked for, but torch sees no CUDA device")
        if dtype is None:
            floating = [p.dtype for p in tensors if p.is_floating_point()]
            dtype = floating[0] if floating else None
        self.module = module
        self.device = device
        self.dtype = dtype
        self.chunk = None if chunk is None else int(chunk)
        self.calls = 0

    def __repr__(self):
        name = type(self.module).__name__
        return f"TorchField({name}, device={self.device}, dtype={self.dtype}, chunk={self.chunk})"

    def __call__(self, t, X, c=None):
        import torch

        x = X if isinstance(X, torch.Tensor) else torch.from_numpy(_np.ascontiguousarray(X))
        out_dtype = x.dtype
        if x.ndim != 2:
            raise ValueError(f"X: expected a [B, d] array, got shape {tuple(x.shape)}")
        dtype = self.dtype or x.dtype
        x = x.to(device=self.device, dtype=dtype, non_blocking=True)
        B = x.shape[0]
        step = self.chunk or max(B, 1)
        parts = []
        with torch.inference_mode():
            times = torch.full((B,), float(t), dtype=dtype, device=self.device)
            classes = None
            if c is not None:  # a class-conditional module: forward(t, x, c), c int64 [B]
                classes = torch.as_tensor(_np.asarray(c, dtype=_np.int64)).to(self.device)
                if tuple(classes.shape) != (B,):
                    raise ValueError(f"c: expected one class per row of X ({B}), got shape {tuple(classes.shape)}")
            for begin in range(0, B, step):
                if classes is None:
                    v = self.module(times[begin:begin + step], x[begin:begin + step])
                else:
                    v = self.module(times[begin:begin + step], x[begin:begin + step], classes[begin:begin + step])
                self.calls += 1
                if not isinstance(v, torch.Tensor):
                    raise TypeError(f"module: expected forward(t[B], x[B, d]) to return a tensor, "
                                    f"got {type(v).__name__}")
                n = min(step, B - begin)
                if tuple(v.shape) != (n, x.shape[1]):
                    raise ValueError(f"module: forward(t[B], x[B, d]) returned shape {tuple(v.shape)}, "
                                     f"expected {(n, x.shape[1])}")
                parts.append(v)
            v = parts[0] if len(parts) == 1 else torch.cat(parts)
            return v.to(device="cpu", dtype=out_dtype).numpy()


def torch_field(module, device=None, dtype=None, chunk=None):
    """A ``torch.nn.Module`` or a function of tensors as a field for :func:`kinflow.sample`.

    The module is called as ``module(t, x)`` with ``t`` a tensor ``[B]`` (every entry the
    step's time, in [0, 1]) and ``x`` a tensor ``[B, d]``, and must return the velocities
    ``[B, d]`` -- the convention of kinflow's TorchScript adapter and of
    ``examples/models/train_fm_mlp.py``. A module with another signature is wrapped in a
    lambda first, e.g. ``torch_field(lambda t, x: model(x, t[:1]))``.

    Every call runs under ``torch.inference_mode()`` (no autograd graph, no version
    counters) on the module's device, so a CUDA model samples on the GPU: each evaluation
    sends the states ``[B, d]`` there and the velocities back (``B d`` scalars each way;
    nothing else crosses). Results are the same whether ``x0`` is a NumPy array or a tensor.

    Parameters
    ----------
    module : torch.nn.Module or callable
        ``f(t[B], x[B, d]) -> v[B, d]``.
    device : torch.device, str or None
        Where to evaluate; None: the device of the module's first parameter or buffer, or the
        CPU for a function or a module without any.
    dtype : torch.float32, torch.float64 or None
        The precision the module is called in; None: that of its first floating parameter
        (the CPU solve's precision is still that of ``x0``: results are converted back), or
        that of the states for a function.
    chunk : int >= 1 or None
        The most rows per call, to bound the module's memory (activations ``chunk x width``
        on the device); None: the whole batch at once. Rows are independent, so chunking
        changes results only by the rounding of the module's own products.

    Returns
    -------
    TorchField
        A callable ``field(t, X) -> [B, d]`` NumPy array; ``field.calls`` counts the calls
        of the module.

    Notes
    -----
    The overhead against a plain PyTorch Euler loop over the same module is measured by
    ``bench/python/bench_torch_field.py`` (docs/python.md gives the figures).

    Examples
    --------
    >>> import torch, kinflow
    >>> net = torch.nn.Linear(3, 2).double()
    >>> field = kinflow.torch_field(lambda t, x: net(torch.cat([x, t[:, None]], 1)))
    >>> r = kinflow.sample(field, torch.randn(64, 2, dtype=torch.float64), solver="rk4", steps=20)
    """
    return TorchField(module, device=device, dtype=dtype, chunk=chunk)
