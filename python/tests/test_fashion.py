"""The Fashion-MNIST study (examples/fashion/) in its quick mode.

Its numbers are recomputed here from its own files with NumPy and SciPy rather than kinflow:
the judge's accuracy from its saved weights, every model's F_mem from brute-force nearest
neighbours in its training subset, the confidences and the Frechet distances from the judge's
weights, the paired t-tests with SciPy and the Holm adjustment written out again, Spearman
correlations with SciPy, and the energy profiles against the KPE they must sum to.
"""

import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")
stats = pytest.importorskip("scipy.stats")
linalg = pytest.importorskip("scipy.linalg")

import kinflow  # noqa: E402
from _study_files import check_bad_parameters, import_from, read  # noqa: E402

FASHION = pathlib.Path(__file__).resolve().parents[2] / "examples" / "fashion"
STUDY = FASHION / "fashion_study.py"
QUICK_EPOCHS = 60
RAW = pathlib.Path(kinflow.datasets.fashion_mnist_dir)

pytestmark = pytest.mark.skipif(not (RAW / "train-images-idx3-ubyte.gz").exists(),
                                reason="Fashion-MNIST is not installed (bash scripts/install-deps.sh --datasets)")


def data_module():
    return import_from(FASHION, "fashion_data")


@pytest.fixture(scope="module")
def data():
    return data_module().load()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fashion")
    # two models trained at once, each for 60 passes over its images (n = 64: 30 steps; n = 256: 120)
    p = subprocess.run([sys.executable, str(STUDY), "--out", str(out), "--quick", "--jobs", "2", "--train-epochs",
                        str(QUICK_EPOCHS)],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    return out, json.loads((out / "summary.json").read_text())


def judge_of(out):
    w = np.load(out / "judge.npz")

    def features(x):
        h = np.maximum(0.0, x @ w["W1"] + w["b1"])
        return np.maximum(0.0, h @ w["W2"] + w["b2"])

    def proba(x):
        z = features(x) @ w["W3"] + w["b3"]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return features, proba


def frechet(a, b):
    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(ca @ cb).real
    return float(mu @ mu + np.trace(ca) + np.trace(cb) - 2 * np.trace(root))


def test_the_data_transform(data):
    raw, labels = kinflow.datasets.fashion_mnist("test")
    img = raw.reshape(-1, 28, 28)
    blocks = (img[:, 0::2, 0::2] + img[:, 1::2, 0::2] + img[:, 0::2, 1::2] + img[:, 1::2, 1::2]) / 4
    np.testing.assert_allclose(data.to_pixels(data.test), blocks.reshape(-1, 196), atol=1e-12)
    np.testing.assert_array_equal(data.test_labels, labels)
    assert data.train.shape == (60000, 196)
    np.testing.assert_allclose(data.train.mean(axis=0), 0, atol=1e-10)
    assert np.mean(data.train ** 2) == pytest.approx(1.0, rel=1e-12)
    # nested subsets; the judge's images are the rest, disjoint from every subset
    a, _ = data.subset(64)
    b, _ = data.subset(256)
    np.testing.assert_array_equal(a, b[:64])
    j, _ = data.judge_split(256)
    assert len(j) == 60000 - 256
    assert not set(data.order[:256]) & set(data.order[256:])
    with pytest.raises(ValueError, match="n: expected"):
        data.subset(1)


def test_report_recomputes_the_same_comparisons(run):
    out, s = run
    p = subprocess.run([sys.executable, str(STUDY), "--out", str(out), "--report"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert "against the baseline" in p.stdout and "KTS minus control" in p.stdout
    again = json.loads((out / "summary.json").read_text())
    assert again["comparisons"] == s["comparisons"]


def test_outputs_are_complete(run):
    out, s = run
    assert s["complete"] is True
    assert not list(out.rglob("*.tmp*"))
    # strict JSON: no NaN or Infinity tokens (undefined numbers are null)
    json.loads((out / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"summary.json holds {c}"))
    for name in ("tradeoff", "checkpoints", "energy_profile", "samples"):
        png = out / "figures" / f"fashion_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    units = read(out / "units.csv")
    methods = [m["name"] for m in s["settings"]["methods"]]
    assert len(units["method"]) == len(s["settings"]["sizes"]) * s["settings"]["seeds"] * len(methods)
    assert s["settings"]["jobs"] == 2 and s["settings"]["train_epochs"] == QUICK_EPOCHS
    for n in s["settings"]["sizes"]:
        total = math.ceil(QUICK_EPOCHS * n / s["settings"]["batch"])  # Adam steps of QUICK_EPOCHS passes
        assert s["settings"]["train_steps_per_size"][str(n)] == total
        marks = sorted({max(1, total * k // 8) for k in (1, 2, 4, 8)})
        for seed in range(s["settings"]["seeds"]):
            for step in marks:
                assert (out / "models" / f"n{n}_seed{seed}_step{step}.npz").exists()
            assert sorted(r["step"] for r in s["checkpoints"] if r["n"] == n and r["seed"] == seed) == marks


def test_the_judge_never_saw_the_subsets_and_meets_its_floor(run, data):
    out, s = run
    _, proba = judge_of(out)
    accuracy = np.mean(proba(data.test).argmax(axis=1) == data.test_labels)
    assert accuracy == pytest.approx(s["judge"]["test_accuracy"], abs=1e-12)
    # the quick judge (one epoch on 12 000 images) is held to 0.70, the full one to 0.85
    assert accuracy >= s["judge"]["floor"] == 0.70
    assert s["judge"]["train_images"] == 12000


def test_numbers_agree_with_the_per_sample_files(run, data):
    out, s = run
    features, proba = judge_of(out)
    test_features = features(data.test)
    units = read(out / "units.csv")
    for i, method in enumerate(units["method"]):
        n, seed = int(units["n"][i]), int(units["seed"][i])
        x = np.load(out / "samples" / f"n{n}_seed{seed}" / f"{method}.npy").astype(np.float64)
        c = read(out / "samples" / f"n{n}_seed{seed}" / f"{method}.csv")
        assert x.shape == (s["settings"]["samples"], 196)
        train, _ = data.subset(n)
        d = np.sqrt(np.maximum(0, (x ** 2).sum(1)[:, None] + (train ** 2).sum(1)[None, :] - 2 * x @ train.T))
        d.sort(axis=1)
        ratio = d[:, 0] / d[:, 1]
        clear = np.abs(ratio - 1 / 3) > 1e-6  # away from the threshold rounding cannot flip a sample
        np.testing.assert_array_equal(c["memorized"][clear].astype(bool), ratio[clear] < 1 / 3)
        assert np.mean(c["memorized"]) == pytest.approx(units["f_mem"][i], abs=1e-12)
        p = proba(x)
        np.testing.assert_allclose(c["confidence"], p.max(axis=1), rtol=1e-9)
        np.testing.assert_array_equal(c["predicted"], p.argmax(axis=1))
        assert frechet(features(x), test_features) == pytest.approx(units["fd"][i], rel=1e-6)
        np.testing.assert_allclose(c["norm_x1"], np.linalg.norm(x, axis=1), rtol=1e-12)
        if units["family"][i] == "rescale":
            assert np.all(np.isnan(c["kpe"]))
        else:
            np.testing.assert_allclose(c["kpe_early"] + c["kpe_late"], c["kpe"], rtol=1e-5)
            assert np.mean(c["kpe"]) == pytest.approx(units["kpe"][i], rel=1e-12)


def test_comparisons_recomputed_from_the_model_table(run):
    out, s = run
    units = read(out / "units.csv")
    keys = sorted({(int(n), int(seed)) for n, seed in zip(units["n"], units["seed"])})
    value = {(int(units["n"][i]), int(units["seed"][i]), units["method"][i]): i for i in range(len(units["n"]))}
    methods = [m["name"] for m in s["settings"]["methods"] if m["name"] != "baseline"]
    # F_mem is compared over the models that copy (baseline F_mem >= the stated floor)
    copying = [k for k in keys if units["f_mem"][value[k + ("baseline",)]] >= s["comparisons"]["copying_floor"]]
    assert [list(k) for k in copying] == s["comparisons"]["copying_units"]
    for metric in ("f_mem", "fd", "confidence"):
        over = copying if metric == "f_mem" else keys
        if not over:
            continue
        ps = []
        for m in methods:
            a = np.array([units[metric][value[k + (m,)]] for k in over])
            b = np.array([units[metric][value[k + ("baseline",)]] for k in over])
            got = s["comparisons"]["vs_baseline"][m][metric]
            assert got["mean"] == pytest.approx(np.mean(a - b), abs=1e-12)
            p = stats.ttest_rel(a, b).pvalue if len(over) > 1 and np.std(a - b) > 0 else np.nan
            if np.isnan(p):
                assert got["p"] is None or np.isnan(got["p"])
            else:
                assert got["p"] == pytest.approx(p, rel=1e-9)
            ps.append(p)
        # Holm: sort ascending, multiply the i-th smallest by (m - i), running maximum, cap at 1
        finite = [i for i, p in enumerate(ps) if np.isfinite(p)]
        order = sorted(finite, key=lambda i: ps[i])
        adjusted, top = {}, 0.0
        for rank, i in enumerate(order):
            top = max(top, min(1.0, (len(order) - rank) * ps[i]))
            adjusted[i] = top
        for i, m in enumerate(methods):
            if i in adjusted:
                assert s["comparisons"]["vs_baseline"][m][metric]["p_holm"] == pytest.approx(adjusted[i], rel=1e-9)


def test_claims_and_profiles_from_the_baseline_files(run):
    out, s = run
    steps = s["settings"]["steps"]
    for claim in s["claims_per_model"]:
        c = read(out / "samples" / f"n{claim['n']}_seed{claim['seed']}" / "baseline.csv")
        assert claim["kpe_confidence"] == pytest.approx(stats.spearmanr(c["kpe"], c["confidence"])[0], abs=1e-9)
        assert claim["kpe_density"] == pytest.approx(stats.spearmanr(c["kpe"], c["knn_log_density"])[0], abs=1e-9)
        r = np.corrcoef([stats.rankdata(c["kpe"]), stats.rankdata(c["confidence"]), stats.rankdata(c["norm_x1"])])
        partial = (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
        assert claim["kpe_confidence_given_norm_x1"] == pytest.approx(partial, abs=1e-9)
    for prof in s["profiles"]:
        c = read(out / "samples" / f"n{prof['n']}_seed{prof['seed']}" / "baseline.csv")
        assert len(prof["mean"]) == steps
        # the per-step increments of the energy sum to the KPE
        assert sum(prof["mean"]) == pytest.approx(np.mean(c["kpe"]), rel=1e-5)


def test_bad_parameters_are_named():
    check_bad_parameters(STUDY, ((["--sizes", "1"], "--sizes"), (["--sizes", "a"], "--sizes"),
                                 (["--samples", "5"], "--samples"), (["--train-steps", "0"], "--train-steps"),
                                 (["--lr", "nan"], "--lr"), (["--train-epochs", "0"], "--train-epochs"),
                                 (["--train-epochs", "5", "--train-steps", "40"], "--train-epochs"),
                                 (["--jobs", "0"], "--jobs")))


def test_the_equal_f_mem_match_by_hand():
    fashion_study = import_from(FASHION, "fashion_study")
    curve = [(0.9, 0.02, 30.0), (0.95, 0.05, 28.0), (1.0, 0.08, 26.0), (1.05, 0.10, 25.0)]
    assert fashion_study.match_at(curve, 0.065) == pytest.approx(27.0, abs=1e-12)
    assert fashion_study.match_at(curve, 0.09) == pytest.approx(25.5, abs=1e-12)
    assert fashion_study.match_at(curve, 0.02) == pytest.approx(30.0, abs=1e-12)
    assert np.isnan(fashion_study.match_at(curve, 0.2))
    # two crossings: the one nearer the baseline (knob 1) counts
    assert fashion_study.match_at([(0.9, 0.08, 40.0), (0.95, 0.05, 30.0), (1.0, 0.08, 26.0)], 0.065) == \
        pytest.approx(28.0, abs=1e-12)
    # a flat segment: its end nearer the baseline
    assert fashion_study.match_at([(0.95, 0.08, 30.0), (1.0, 0.08, 26.0)], 0.08) == 26.0
    assert fashion_study.holm([0.01, 0.04, 0.03, float("nan")])[:3] == pytest.approx([0.03, 0.06, 0.06])
