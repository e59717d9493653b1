"""The Fashion-MNIST data of the study, shared by fashion_study.py and its test.

Debian's dataset-fashion-mnist (60 000 training and 10 000 test images, 28 x 28, ten classes),
read with kinflow.datasets.fashion_mnist, each image averaged over 2 x 2 blocks to 14 x 14
(DIM = 196 pixels), centered by the per-pixel mean of the 60 000 training images and divided by
one global factor (the root mean square of the centered training pixels), so that the training
pixels have mean 0 and mean variance 1.

The generative subsets are nested: a fixed seeded permutation of the 60 000 training images,
and the subset of size n is its first n images. The judge (the classifier that scores samples)
is trained on the training images outside the largest subset, so it never saw an image that a
generative model was trained on.
"""

import hashlib

import numpy as np

import kinflow

DIM = 196
SIDE = 14
SPLIT_SEED = 2026


def downsample(images):
    """[n, 784] 28 x 28 images -> [n, 196]: the mean of each 2 x 2 block."""
    x = np.asarray(images, dtype=np.float64).reshape(-1, SIDE, 2, SIDE, 2)
    return x.mean(axis=(2, 4)).reshape(-1, DIM)


class Fashion:
    """The transformed splits: train [60000, 196] with labels, test [10000, 196] with labels,
    the permutation that defines the subsets, mean [196] and scale."""

    def __init__(self, train, train_labels, test, test_labels, order, mean, scale):
        self.train, self.train_labels = train, train_labels
        self.test, self.test_labels = test, test_labels
        self.order, self.mean, self.scale = order, mean, scale

    def subset(self, n):
        """The first n images of the permutation and their labels: a generative training set."""
        if not 2 <= n <= self.train.shape[0] // 2:
            raise ValueError(f"n: expected a subset size in [2, {self.train.shape[0] // 2}], got {n}")
        idx = self.order[:n]
        return self.train[idx], self.train_labels[idx]

    def judge_split(self, largest):
        """The training images outside the first `largest` of the permutation, and their labels."""
        idx = self.order[largest:]
        return self.train[idx], self.train_labels[idx]

    def to_pixels(self, x):
        """Back to pixels in [0, 1] (for pictures)."""
        return np.asarray(x, dtype=np.float64) * self.scale + self.mean

    def fingerprint(self, n):
        """SHA-256 of the subset of size n, to tie trained weights to their data."""
        x, y = self.subset(n)
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(x, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
        return h.hexdigest()


def load(directory=None, seed=SPLIT_SEED):
    """Reads both splits (Debian's files by default) and applies the transform above."""
    train, train_labels = kinflow.datasets.fashion_mnist("train", directory=directory)
    test, test_labels = kinflow.datasets.fashion_mnist("test", directory=directory)
    train, test = downsample(train), downsample(test)
    mean = train.mean(axis=0)
    scale = float(np.sqrt(np.mean((train - mean) ** 2)))
    order = np.random.default_rng(seed).permutation(train.shape[0])
    return Fashion((train - mean) / scale, np.asarray(train_labels, dtype=np.int64), (test - mean) / scale,
                   np.asarray(test_labels, dtype=np.int64), order, mean, scale)
