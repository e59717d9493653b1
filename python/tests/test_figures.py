"""The rank correlations the example studies share (examples/python/flow_examples.py; figure b of
examples/figures.py, the digits and Fashion-MNIST studies: pooled, within class, with the
landing norm held fixed) against SciPy and the regression form of a partial correlation, and
figures.py's classes of toy landing points against the labels kinflow's own recipes give
their points."""

import pathlib

import numpy as np
import pytest

import kinflow
from _study_files import import_from

stats = pytest.importorskip("scipy.stats")
pytest.importorskip("matplotlib")

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
figures = import_from(EXAMPLES, "figures")
rank = import_from(EXAMPLES / "python", "flow_examples")


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 6, 300).astype(float)  # many ties
    b = a + rng.normal(size=300)
    assert rank.spearman(a, b) == pytest.approx(stats.spearmanr(a, b)[0], abs=1e-12)
    np.testing.assert_allclose(rank.ranks([3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0])


def test_partial_spearman_is_the_correlation_of_rank_residuals():
    rng = np.random.default_rng(4)
    c = rng.normal(size=500)
    a = c + 0.5 * rng.normal(size=500)
    b = c ** 3 + rng.normal(size=500)
    ra, rb, rc = (stats.rankdata(v) for v in (a, b, c))
    design = np.column_stack([np.ones_like(rc), rc])
    res_a = ra - design @ np.linalg.lstsq(design, ra, rcond=None)[0]
    res_b = rb - design @ np.linalg.lstsq(design, rb, rcond=None)[0]
    expected = np.corrcoef(res_a, res_b)[0, 1]
    assert rank.partial_spearman(a, b, c) == pytest.approx(expected, abs=1e-12)
    # a and b depend on each other only through c: the pooled rho is large, the partial one small
    assert rank.spearman(a, b) > 0.5 and abs(expected) < 0.15


def test_within_class_removes_the_difference_between_classes():
    rng = np.random.default_rng(5)
    classes = np.repeat([0, 1, 2], [100, 200, 30])
    a = classes * 10 + rng.normal(size=classes.size)
    b = classes * 10 - a + classes * 10 + rng.normal(size=classes.size)  # negative inside each class
    assert rank.spearman(a, b) > 0.5  # pooled: the classes' offsets dominate
    per_class = [(np.sum(classes == k), stats.spearmanr(a[classes == k], b[classes == k])[0]) for k in (0, 1, 2)]
    expected = sum(n * r for n, r in per_class) / sum(n for n, _ in per_class)
    assert rank.within_class_spearman(a, b, classes) == pytest.approx(expected, abs=1e-12)
    assert rank.within_class_spearman(a, b, classes) < -0.3
    # a class under the smallest size is left out, and so is one where either is constant
    small = [(n, r) for n, r in per_class if n >= 50]
    assert rank.within_class_spearman(a, b, classes, min_count=50) == pytest.approx(
        sum(n * r for n, r in small) / sum(n for n, _ in small), abs=1e-12)
    flat = np.where(classes == 2, 1.0, a)
    assert rank.within_class_spearman(flat, b, classes) == pytest.approx(
        sum(n * r for n, r in per_class[:2]) / sum(n for n, _ in per_class[:2]), abs=1e-12)
    assert np.isnan(rank.spearman(np.ones(5), np.arange(5.0)))


@pytest.mark.parametrize("name, agree", [("8gaussians", 0.99), ("moons", 0.95)])
def test_toy_classes_recover_the_recipes_labels(name, agree):
    # A class is the recipe's component nearest to the point; noise carries a few points past
    # the boundary (seed fixed, so the share that agrees is a fixed number, here above `agree`).
    points, labels = kinflow.datasets.make(name, 4000, seed=11, labels=True)
    got = figures.toy_class(name, points[:, 0], points[:, 1])
    assert np.mean(got == labels) >= agree
    if name == "8gaussians":  # the nearest of 8 means on a circle, by brute force, whatever its radius
        theta = 2 * np.pi * np.arange(8) / 8
        means = np.column_stack([np.cos(theta), np.sin(theta)])
        nearest = np.argmin(((points[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
        np.testing.assert_array_equal(got, nearest)
    with pytest.raises(ValueError, match="no classes"):
        figures.toy_class("circles", [0.0], [0.0])
