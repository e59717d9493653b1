"""The digits study (examples/digits/) in its quick mode, and its trained model.

The study's numbers are checked against its own per-sample files, recomputed here with SciPy
and NumPy rather than kinflow (Spearman, partial correlations, deciles, nearest neighbours);
the exact empirical field must memorize; the committed weights must give, through kinflow's
MLP field, the velocities PyTorch computes for the same network.
"""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")
stats = pytest.importorskip("scipy.stats")
special = pytest.importorskip("scipy.special")

import kinflow  # noqa: E402
from _study_files import check_bad_parameters, read  # noqa: E402

DIGITS = pathlib.Path(__file__).resolve().parents[2] / "examples" / "digits"
STUDY = DIGITS / "digits_study.py"
NPZ = DIGITS / "fm_mlp_digits.npz"
FIXTURE = DIGITS / "fm_mlp_digits_fixture.csv"
D = 64
QUICK_SETTINGS = {"exact", "trained", "smoothed_0.3", "trained_kts_0_0.025_0.6", "trained_kts_0.02_0_0.6",
                  "exact_kts_0_0.05_0.4", "exact_kts_0.01_0.01_0.6",
                  "trained_kts_0.02_0.025_0.6"}


def points(cols):
    return np.stack([cols[f"x_{j}"] for j in range(D)], axis=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits")
    p = subprocess.run([sys.executable, str(STUDY), "--out", str(out), "--quick"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return out, json.loads((out / "summary.json").read_text())


def test_outputs_are_complete(run):
    out, summary = run
    assert summary["complete"] is True
    assert set(summary["results"]) == QUICK_SETTINGS
    assert not list(out.rglob("*.tmp*"))
    for name in ("kpe_deciles", "memorized", "kpe_confidence_density", "goldilocks", "exact_kts"):
        png = out / "figures" / f"digits_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert 10_000 < png.stat().st_size < 300_000
    train, held = read(out / "data" / "train.csv"), read(out / "data" / "held_out.csv")
    assert len(train["label"]) == 1500 and len(held["label"]) == 297
    from sklearn.datasets import load_digits

    # centered by the training mean, one global scale: the training pixels have mean 0, mean variance 1
    np.testing.assert_allclose(points(train).mean(axis=0), 0, atol=1e-12)
    assert np.mean(points(train) ** 2) == pytest.approx(1.0, rel=1e-12)
    # undoing the scale leaves integer pixels 0..16 shifted by one constant per pixel
    x = np.concatenate([points(train), points(held)]) * summary["settings"]["scale"]
    shifted = x - x[:1]
    np.testing.assert_allclose(shifted, np.round(shifted), atol=1e-9)
    assert np.all(np.ptp(x, axis=0) <= 16 + 1e-9)
    # every image of load_digits once: the same class counts
    labels = np.concatenate([train["label"], held["label"]]).astype(int)
    np.testing.assert_array_equal(np.bincount(labels), np.bincount(load_digits().target))
    for name, s in summary["results"].items():
        for key in ("f_mem", "spearman_kpe_confidence", "spearman_kpe_knn_log_density", "n_samples",
                    "frechet_features_held_out", "mmd2_held_out"):
            assert key in s, (name, key)
        cols = read(out / name / "samples.csv")
        for key in [f"x_{j}" for j in range(D)] + ["kpe", "kpe_early", "kpe_late", "memorized", "confidence",
                                                   "knn_log_density"]:
            assert key in cols, (name, key)


def test_memorization_kts_and_the_best_point(run):
    _, summary = run
    r = summary["results"]
    best = summary["best_kts"]
    assert best["setting"] in r and best["frechet"] == r[best["setting"]]["frechet_features_held_out"]
    assert best["frechet"] == min(v["frechet_features_held_out"] for k, v in r.items() if k.startswith("trained_kts_"))
    assert r["exact"]["f_mem"] >= 0.99
    # A strong landing brake stops short of the posterior mean: fewer copies.
    assert r["exact_kts_0_0.05_0.4"]["f_mem"] < r["exact"]["f_mem"]
    # A brake on the late velocity takes energy out of the late phase.
    assert r["trained_kts_0_0.025_0.6"]["kpe_late_mean"] < r["trained"]["kpe_late_mean"]


def test_numbers_agree_with_the_per_sample_files(run):
    out, summary = run
    for name, s in summary["results"].items():
        c = read(out / name / "samples.csv")
        kpe, conf, dens, late = c["kpe"], c["confidence"], c["knn_log_density"], c["kpe_late"]
        mem = c["memorized"].astype(bool)
        assert len(kpe) == s["n_samples"] == 300
        assert np.all(c["status"] == "success")
        np.testing.assert_allclose(c["kpe_early"] + late, kpe, rtol=1e-9)
        assert np.mean(mem) == pytest.approx(s["f_mem"], abs=1e-12)
        assert s["f_mem_ci"][0] <= s["f_mem"] <= s["f_mem_ci"][1]
        assert np.mean(kpe) == pytest.approx(s["kpe_mean"], rel=1e-9)
        assert np.all((conf > 0.1 - 1e-12) & (conf <= 1 + 1e-12))  # the top of ten probabilities
        assert stats.spearmanr(kpe, conf)[0] == pytest.approx(s["spearman_kpe_confidence"], abs=1e-9)
        assert stats.spearmanr(kpe, dens)[0] == pytest.approx(s["spearman_kpe_knn_log_density"], abs=1e-9)
        for key in ("spearman_kpe_confidence", "spearman_kpe_knn_log_density"):
            lo, hi = s[key + "_ci"]
            assert lo <= s[key] <= hi, (name, key)
        order = np.argsort(kpe, kind="stable")
        for k, v in enumerate(s["confidence_by_kpe_decile"]):
            assert np.mean(conf[order[k * 30:(k + 1) * 30]]) == pytest.approx(v, rel=1e-12)
        for k, v in enumerate(s["f_mem_by_kpe_decile"]):
            assert np.mean(mem[order[k * 30:(k + 1) * 30]]) == pytest.approx(v, abs=1e-12)
        if mem.any():
            assert np.mean(late[mem]) == pytest.approx(s["kpe_late_mean_memorized"], rel=1e-9)
        if (~mem).any():
            assert np.mean(late[~mem]) == pytest.approx(s["kpe_late_mean_other"], rel=1e-9)
        if "partial_kpe_knn_log_density_given_norm_x1" in s:
            assert np.linalg.norm(points(c), axis=1) == pytest.approx(c["norm_x1"], rel=1e-12)
            for z, key in ((c["norm_x1"], "partial_kpe_knn_log_density_given_norm_x1"),
                           (c["norm_x0"], "partial_kpe_knn_log_density_given_norm_x0")):
                r = np.corrcoef([stats.rankdata(kpe), stats.rankdata(dens), stats.rankdata(z)])
                partial = (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
                assert partial == pytest.approx(s[key]["value"], abs=1e-9), (name, key)


def test_memorization_and_density_columns_from_the_training_images(run):
    out, summary = run
    train = points(read(out / "data" / "train.csv"))
    for name in ("exact", "trained", "smoothed_0.3"):
        c = read(out / name / "samples.csv")
        x = points(c)
        d = np.sqrt(np.maximum(0, (x ** 2).sum(1)[:, None] + (train ** 2).sum(1)[None, :] - 2 * x @ train.T))
        d.sort(axis=1)
        np.testing.assert_allclose(c["nn_dist"], d[:, 0], atol=1e-6)
        assert np.median(d[:, 0]) == pytest.approx(summary["results"][name]["nn_dist_median"], abs=1e-6)
        ratio = d[:, 0] / d[:, 1]
        clear = np.abs(ratio - 1 / 3) > 1e-6  # away from the threshold, rounding cannot flip a sample
        np.testing.assert_array_equal(c["memorized"][clear].astype(bool), ratio[clear] < 1 / 3)
        # The kNN estimate (docs/math.md, k = 10): log k - log N - log V_d - d log r_10
        log_vd = (D / 2) * np.log(np.pi) - special.gammaln(D / 2 + 1)
        expected = np.log(10) - np.log(len(train)) - log_vd - D * np.log(d[:, 9])
        np.testing.assert_allclose(c["knn_log_density"], expected, rtol=1e-7, atol=1e-6)


def test_bad_parameters_are_named():
    check_bad_parameters(STUDY, ((["--samples", "5"], "--samples"), (["--beta0", "0.2"], "--beta0"),
                                 (["--smoothed", "0"], "--smoothed"), (["--tau", "x"], "--tau"),
                                 (["--model", "/nonexistent.npz"], "--model"), (["--steps", "0"], "--steps")))


# ---------------------------------------------------------------------------------------
# The trained model


def torch_network():
    """The network of train_digits_mlp.py with the committed weights, in double precision."""
    import torch

    sys.path.insert(0, str(DIGITS))
    try:
        from train_digits_mlp import FlowMLP
    finally:
        sys.path.remove(str(DIGITS))
    z = np.load(NPZ)
    net = FlowMLP()
    state = {k: torch.from_numpy(z[k].astype(np.float64)) for k in z.files if k.startswith("layers.")}
    state["frequencies"] = torch.from_numpy(np.asarray(z["time_frequencies"], dtype=np.float64))
    net.load_state_dict(state)
    return net.double().eval()


def test_committed_weights_fit_the_budget_and_the_data():
    assert NPZ.stat().st_size <= 2_000_000
    sys.path.insert(0, str(DIGITS))
    try:
        import digits_data
    finally:
        sys.path.remove(str(DIGITS))
    info = json.loads((DIGITS / "fm_mlp_digits.json").read_text())
    assert info["data_fingerprint"] == digits_data.load().fingerprint()
    assert info["training"]["seconds"] <= 600


def test_kinflow_mlp_reproduces_the_fixture():
    rows = read(FIXTURE)
    field = kinflow.load_mlp(NPZ, dtype="float64")
    x = np.stack([rows[f"x_{j}"] for j in range(D)], axis=1)
    v = np.stack([rows[f"v_{j}"] for j in range(D)], axis=1)
    for i, t in enumerate(rows["t"]):
        got = field.velocity(float(t), x[i:i + 1])
        np.testing.assert_allclose(got[0], v[i], rtol=1e-9, atol=1e-9)


def test_conditional_network_reproduces_its_fixture():
    """The class-conditional digits network (train_digits_mlp.py --conditional): PyTorch's
    double-precision velocities for inputs of every class and the null class (-1)."""
    rows = read(DIGITS / "fm_cmlp_digits_fixture.csv")
    field = kinflow.load_mlp(DIGITS / "fm_cmlp_digits.npz", dtype="float64")
    assert field.classes == 10
    x = np.stack([rows[f"x_{j}"] for j in range(D)], axis=1)
    v = np.stack([rows[f"v_{j}"] for j in range(D)], axis=1)
    c = np.asarray(rows["c"], dtype=float).astype(np.int64)
    assert set(c) == set(range(-1, 10))
    for i, t in enumerate(rows["t"]):
        got = field.velocity(float(t), x[i:i + 1], c[i:i + 1])
        np.testing.assert_allclose(got[0], v[i], rtol=1e-9, atol=1e-9)
    info = json.loads((DIGITS / "fm_cmlp_digits.json").read_text())
    sys.path.insert(0, str(DIGITS))
    try:
        import digits_data
    finally:
        sys.path.remove(str(DIGITS))
    assert info["data_fingerprint"] == digits_data.load().fingerprint()
    assert info["architecture"]["classes"] == 10


def test_kinflow_mlp_reproduces_pytorch_on_random_inputs():
    import torch

    net = torch_network()
    field = kinflow.load_mlp(NPZ, dtype="float64")
    rng = np.random.default_rng(5)
    for t in (0.0, 0.13, 0.5, 0.77, 1.0):
        x = 2.0 * rng.standard_normal((40, D))
        with torch.no_grad():
            ref = net(torch.full((40,), t, dtype=torch.float64), torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(field.velocity(t, x), ref, rtol=1e-9, atol=1e-9)
        # float32 queries compute in float32: close, to float32 rounding
        got32 = kinflow.load_mlp(NPZ).velocity(t, x.astype(np.float32))
        assert got32.dtype == np.float32
        np.testing.assert_allclose(got32, ref, rtol=1e-3, atol=1e-3)


def test_guidance_study_on_the_conditional_network(tmp_path):
    """digits_guidance.py on 100 samples: the 1-NN judge (its own held-out accuracy printed)
    sees chance-level classes without guidance (w = 0: expected 0.1; above 0.3 has a
    probability below 1e-8) and the asked-for class with it (w = 2 measured 1.000 on 1000
    samples; below 0.9 of 100 would be a failure of guidance, not chance)."""
    p = subprocess.run([sys.executable, str(DIGITS / "digits_guidance.py"), "--out", str(tmp_path), "--samples", "100",
                        "--steps", "10"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["settings"]["judge_accuracy"] >= 0.95
    rows = {(r["variant"], r["w"]): r for r in summary["results"]}
    assert rows[("whole path", 0.0)]["class_match"] <= 0.3
    assert rows[("whole path", 0.0)]["kpe_guidance"] == 0.0
    assert rows[("whole path", 2.0)]["class_match"] >= 0.9
    # The guidance part grows with the scale (about as w^2).
    parts = [rows[("whole path", w)]["kpe_guidance"] for w in (1.0, 2.0, 4.0, 6.0)]
    assert all(a < b for a, b in zip(parts, parts[1:]))
