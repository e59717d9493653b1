"""The digits data of the study, shared by digits_study.py and train_digits_mlp.py.

scikit-learn's 8x8 handwritten digits (load_digits: 1797 images, 64 pixels of 0..16, ten
classes), split by a fixed seeded permutation into N_TRAIN training and the rest held out,
centered by the per-pixel mean of the training split and divided by one global factor (the
root mean square of the centered training pixels), so that the training pixels have mean 0 and
mean variance 1. Images are rows [n, 64] of float64; `to_pixels` undoes the transform.
"""

import hashlib

import numpy as np

N_TRAIN = 1500
SPLIT_SEED = 2026
DIM = 64


class Digits:
    """train [1500, 64], held_out [297, 64] (transformed), their labels, mean [64], scale."""

    def __init__(self, train, held_out, train_labels, held_out_labels, mean, scale):
        self.train, self.held_out = train, held_out
        self.train_labels, self.held_out_labels = train_labels, held_out_labels
        self.mean, self.scale = mean, scale

    def to_pixels(self, x):
        """Back to the 0..16 pixel scale of load_digits (for pictures)."""
        return np.asarray(x, dtype=np.float64) * self.scale + self.mean

    def fingerprint(self):
        """SHA-256 of the transformed training split, to tie trained weights to this data."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.train, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(self.train_labels, dtype=np.int64).tobytes())
        return h.hexdigest()


def load(n_train=N_TRAIN, seed=SPLIT_SEED):
    """The split and transform above. Raises ValueError for an n_train outside [2, 1795]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - told to the user
        raise SystemExit("the digits study needs scikit-learn: bash scripts/install-python.sh --torch "
                         "(Debian package python3-sklearn)") from e
    d = load_digits()
    images = np.asarray(d.data, dtype=np.float64)
    labels = np.asarray(d.target, dtype=np.int64)
    if not 2 <= n_train <= images.shape[0] - 2:
        raise ValueError(f"n_train: expected an integer in [2, {images.shape[0] - 2}], got {n_train}")
    order = np.random.default_rng(seed).permutation(images.shape[0])
    tr, ho = order[:n_train], order[n_train:]
    mean = images[tr].mean(axis=0)
    centered = images[tr] - mean
    scale = float(np.sqrt(np.mean(centered ** 2)))
    return Digits(centered / scale, (images[ho] - mean) / scale, labels[tr], labels[ho], mean, scale)
