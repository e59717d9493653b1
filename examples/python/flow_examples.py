"""What the example scripts share: the flow-matching MLP, its training loop, its export for
kinflow, and writing files and figures atomically.

Used by examples/python/train_and_shape.py, examples/models/train_fm_mlp.py and
examples/digits/{train_digits_mlp,digits_study}.py; a script outside this folder puts it on
its path with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

PyTorch is needed only for the network, its training and its export (FlowMLP and the
functions that take a model): without it the rest still imports, for digits_study.py, which
samples the exported network through kinflow.
"""

import copy
import math
import os
from typing import Optional

import numpy as np

try:
    import torch
    from torch import nn
except ImportError:  # the scripts that train say so themselves
    torch = None

# w_k = pi 2^k, k = 0 .. 3: the frequencies of the sinusoidal time features.
FREQUENCIES = [math.pi * 2.0 ** k for k in range(4)]


if torch is not None:

    class FlowMLP(nn.Module):
        """v(t, x) = MLP([x; time features(t)]); x is (B, d), t is (B,).

        Time features: [sin(w t); cos(w t)] for the given frequencies w, or t itself when
        there are none. Dense layers dim + features -> hidden (depth times) -> dim, the
        activation between them, none after the last: kinflow's .npz MLP format
        (examples/models/README.md), written by export_npz.

        With classes = K > 0 the network is class-conditional, v(t, x, c) = MLP([x; time
        features(t); one_hot(c)]) with K + 1 code entries: c in [0, K) a class, c = -1 the
        null class (entry K), the unconditional field that label dropout trains. forward's
        c is a (B,) integer tensor, or None for the null class.
        """

        def __init__(self, dim, hidden, depth, activation="silu", frequencies=FREQUENCIES, classes=0):
            super().__init__()
            self.activation_name = activation
            self.classes = int(classes)
            self.register_buffer("frequencies", torch.tensor(frequencies, dtype=torch.float64))
            self.sinusoidal = len(frequencies) > 0
            n_time = 2 * len(frequencies) if self.sinusoidal else 1
            n_code = self.classes + 1 if self.classes > 0 else 0
            sizes = [dim + n_time + n_code] + [hidden] * depth + [dim]
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
            acts = {"silu": nn.SiLU(), "relu": nn.ReLU(), "tanh": nn.Tanh(),
                    "gelu": nn.GELU(approximate="none")}
            self.act = acts[activation]

        def forward(self, t, x, c: Optional[torch.Tensor] = None):
            t = t.reshape(-1, 1).to(x.dtype)
            if self.sinusoidal:
                wt = t * self.frequencies.to(x.dtype).reshape(1, -1)
                h = torch.cat([x, torch.sin(wt), torch.cos(wt)], dim=1)
            else:
                h = torch.cat([x, t], dim=1)
            if self.classes > 0:
                if c is None:
                    code = torch.full((x.shape[0],), self.classes, dtype=torch.long, device=x.device)
                else:
                    code = torch.where(c < 0, torch.full_like(c, self.classes), c).long()
                h = torch.cat([h, nn.functional.one_hot(code, self.classes + 1).to(x.dtype)], dim=1)
            for i, layer in enumerate(self.layers):
                h = layer(h)
                if i + 1 < len(self.layers):
                    h = self.act(h)
            return h


def flow_matching_loss(model, data, batch, generator=None, labels=None, drop=0.0):
    """The conditional flow-matching loss on the linear path x_t = (1 - t) x0 + t x1:
    mean over a batch of |v(t, x_t) - (x1 - x0)|^2, x1 drawn from the rows of data,
    x0 ~ N(0, I), t ~ U[0, 1) (drawn in that order, from generator or torch's own).

    With labels (one class per row of data) the model is class-conditional: each x1's class
    is given, replaced by the null class -1 with probability drop (label dropout, which
    trains the unconditional field of classifier-free guidance)."""
    idx = torch.randint(0, data.shape[0], (batch,), generator=generator)
    x1 = data[idx]
    x0 = torch.randn(x1.shape, generator=generator)
    t = torch.rand(batch, generator=generator)
    xt = (1 - t[:, None]) * x0 + t[:, None] * x1
    if labels is None:
        v = model(t, xt)
    else:
        c = labels[idx]
        dropped = torch.rand(batch, generator=generator) < drop
        v = model(t, xt, torch.where(dropped, torch.full_like(c, -1), c))
    return ((v - (x1 - x0)) ** 2).sum(dim=1).mean()


def train(model, data, steps, batch, optimizer, scheduler, generator=None, report=None, labels=None, drop=0.0):
    """steps steps of optimizer (and scheduler) on flow_matching_loss (with labels and label
    dropout drop for a class-conditional model); report(step, loss) after each, step
    counted from 1. Leaves the model in evaluation mode."""
    for step in range(1, steps + 1):
        loss = flow_matching_loss(model, data, batch, generator, labels, drop)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if report is not None:
            report(step, float(loss))
    model.eval()


def _ascii(s):
    return np.frombuffer(s.encode("ascii"), dtype=np.uint8)


def export_npz(model, path):
    """Writes a FlowMLP's weights (float32) in kinflow's .npz MLP format."""
    arrays = {k: v.detach().float().numpy() for k, v in model.state_dict().items()
              if k.startswith("layers.")}
    arrays["activation"] = _ascii(model.activation_name)
    if model.sinusoidal:
        arrays["time_embedding"] = _ascii("sinusoidal")
        arrays["time_frequencies"] = model.frequencies.numpy().astype(np.float64)
    else:
        arrays["time_embedding"] = _ascii("raw")
    if model.classes > 0:
        arrays["classes"] = np.array(model.classes, dtype=np.int64)
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def export_fixture(model, path, generator, n, scale, x_name="x_{}", v_name="v_{}"):
    """Writes n inputs (t, x) and the velocities v the model gives them in double precision,
    one CSV row each (columns t, x_name.format(j)..., v_name.format(j)...): t drawn uniformly
    but for 0, 1 and 1/2 first, x = scale z with z ~ N(0, I). A class-conditional model's
    rows have a class c too (column c after the x columns): -1, 0, 1, ... K-1, -1, 0, ...

    The float32 weights are exact in double: the double copy of the network is the reference
    a double implementation must reproduce to rounding."""
    ref = copy.deepcopy(model).double()
    d = model.layers[-1].out_features
    t = torch.rand(n, generator=generator, dtype=torch.float64)
    t[0], t[1], t[2] = 0.0, 1.0, 0.5
    x = scale * torch.randn(n, d, generator=generator, dtype=torch.float64)
    c = torch.arange(n) % (model.classes + 1) - 1 if model.classes > 0 else None
    with torch.no_grad():
        v = ref(t, x) if c is None else ref(t, x, c)
    c_name = [] if c is None else ["c"]

    def write(f):
        f.write(",".join(["t"] + [x_name.format(j) for j in range(d)] + c_name +
                         [v_name.format(j) for j in range(d)]) + "\n")
        for i in range(n):
            row = [float(t[i])] + x[i].tolist() + ([] if c is None else [int(c[i])]) + v[i].tolist()
            f.write(",".join(repr(float(a)) for a in row) + "\n")

    write_atomically(path, write)



def ranks(values):
    """Ranks 1..n of the values, ties given their mean rank (as Spearman's rho wants)."""
    _, inverse, counts = np.unique(np.asarray(values, dtype=np.float64), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # the last rank of each distinct value
    return (last - (counts - 1) / 2)[inverse]


def spearman(x, y):
    """Spearman's rho: the Pearson correlation of the ranks (NaN when either is constant)."""
    rx, ry = ranks(x), ranks(y)
    if np.ptp(rx) == 0 or np.ptp(ry) == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def partial_spearman(x, y, z):
    """Spearman's rho of x and y with z held fixed (the partial correlation of the ranks)."""
    rxy, rxz, ryz = spearman(x, y), spearman(x, z), spearman(y, z)
    den = math.sqrt(max(0.0, (1 - rxz ** 2) * (1 - ryz ** 2)))
    return (rxy - rxz * ryz) / den if den > 0 else float("nan")


def within_class_spearman(x, y, classes, min_count=10):
    """Spearman's rho inside each class of at least `min_count` members (where neither is
    constant), averaged with the classes' sizes as weights: the correlation with the
    differences between classes removed (NaN when no class qualifies)."""
    x, y, classes = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(classes)
    total, weight = 0.0, 0
    for c in np.unique(classes):
        m = classes == c
        if m.sum() >= min_count and np.ptp(x[m]) > 0 and np.ptp(y[m]) > 0:
            total += m.sum() * spearman(x[m], y[m])
            weight += int(m.sum())
    return total / weight if weight else float("nan")

def write_table(path, columns):
    """Writes a CSV file atomically: columns is a list of (name, 1-D array or list), one row per
    entry; integers are written as integers, strings as they are, floats in full (repr)."""
    import csv

    names = [n for n, _ in columns]
    arrays = [np.asarray(a) for _, a in columns]

    def cell(a, i):
        v = a[i]
        if a.dtype.kind in "iub":
            return str(int(v))
        if a.dtype.kind in "USO":
            return str(v)
        return repr(float(v))

    def write(f):
        w = csv.writer(f)
        w.writerow(names)
        for i in range(len(arrays[0])):
            w.writerow([cell(a, i) for a in arrays])

    write_atomically(path, write)


def write_atomically(path, write, mode="w"):
    """Calls write(file) on a temporary file beside path and renames it into place."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, mode, **({"newline": ""} if mode == "w" else {})) as f:
        write(f)
    os.replace(tmp, path)


def save_figure(fig, path, dpi):
    """Saves a matplotlib figure (tight bounding box) under a temporary name, renames it into
    place and closes it."""
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, path)
