"""The paired comparison behind the shipping rule (sepnet_train/compare.py): McNemar's exact
p-value against scipy's binomial test, the paired standard error against numpy on the per-image
differences, and a real comparison of the committed files on a slice of the validation split."""

import json

import numpy as np
import pytest

from sepnet_train import compare, reference
from sepnet_train import data as D

scipy_stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize("b,c", [(0, 0), (0, 1), (0, 5), (5, 5), (7, 3), (12, 30), (95, 134),
                                 (300, 360), (0, 60), (1000, 1100)])
def test_mcnemar_matches_scipy_binomtest(b, c):
    expected = 1.0 if b + c == 0 else scipy_stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert compare.mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)
    assert compare.mcnemar_exact_p(b, c) == compare.mcnemar_exact_p(c, b)


def test_mcnemar_known_values_and_bad_counts():
    assert compare.mcnemar_exact_p(0, 5) == 2 / 32   # both one-sided extremes of 5 fair coins
    assert compare.mcnemar_exact_p(4, 4) == 1.0
    # Exact to the last term: 2 * 2^-1000 is a normal float; summed in floats it would be lost.
    assert compare.mcnemar_exact_p(0, 1000) == 2.0 ** -999
    with pytest.raises(ValueError):
        compare.mcnemar_exact_p(-1, 3)


def test_paired_difference_counts_and_standard_error():
    rng = np.random.RandomState(0)
    a = rng.rand(5000) < 0.90
    b = a.copy()
    flip = rng.rand(5000) < 0.06        # disagreements, tilted towards b
    b[flip] = rng.rand(int(flip.sum())) < 0.6
    r = compare.paired_difference(a, b)
    assert r["n"] == 5000 and r["top1_a"] == a.mean() and r["top1_b"] == b.mean()
    assert r["only_a_correct"] == int((a & ~b).sum()) and r["only_b_correct"] == int((b & ~a).sum())
    d = b.astype(float) - a.astype(float)
    assert r["difference"] == pytest.approx(d.mean(), abs=1e-15)
    assert r["difference_se"] == pytest.approx(d.std() / np.sqrt(len(d)), rel=1e-12)
    lo, hi = r["difference_ci95"]
    assert lo < r["difference"] < hi
    expected_p = scipy_stats.binomtest(min(r["only_a_correct"], r["only_b_correct"]),
                                       r["only_a_correct"] + r["only_b_correct"]).pvalue
    assert r["mcnemar_p"] == pytest.approx(expected_p, rel=1e-9)
    assert r["b_better_beyond_noise"] == (r["only_b_correct"] > r["only_a_correct"]
                                          and expected_p < 0.05)
    # The same disagreements the other way round: never "better" for the worse model.
    assert not compare.paired_difference(b, a)["b_better_beyond_noise"] or not r["b_better_beyond_noise"]


def test_paired_difference_rejects_mismatched_masks():
    with pytest.raises(ValueError):
        compare.paired_difference(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError):
        compare.paired_difference(np.ones(0, bool), np.ones(0, bool))


@pytest.fixture(scope="module")
def val_slice(tmp_path_factory):
    if not D.DEFAULT_CIFAR_TRAIN.is_dir():
        pytest.skip("the CIFAR-10 training folder is not on this machine")
    root = tmp_path_factory.mktemp("val")
    assert D.export_split(D.DEFAULT_CIFAR_TRAIN, root, per_class=500, limit_per_class=20) == 200
    return root


def test_compare_files_on_the_committed_models(repo_root, val_slice, tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNET_CACHE", str(tmp_path / "cache"))
    models = repo_root / "www" / "models"
    r_file, bq_file = models / "sepnet_cifar-r.sepnet", models / "sepnet_cifar-bq.sepnet"
    out = tmp_path / "cmp.json"
    r = compare.main([str(r_file), str(bq_file), "--data-path", str(val_slice),
                      "--per-class", "20", "--threads", "1", "--json-out", str(out)])
    # Each side's accuracy is what the reader's own top-k evaluation gives on the same images.
    for key, path in (("top1_a", r_file), ("top1_b", bq_file)):
        acc = reference.evaluate_cifar_val(reference.load(path), data_path=val_slice, per_class=20)
        assert acc["n"] == r["n"] == 200
        assert r[key] == pytest.approx(acc["top1"], abs=1e-12)
    assert r["top1_a"] > 0.8 and r["top1_b"] > 0.8      # real models on real images
    assert r["difference"] == pytest.approx(r["top1_b"] - r["top1_a"], abs=1e-12)
    saved = json.loads(out.read_text())
    assert saved["a"] == r_file.name and saved["b"] == bq_file.name and saved["split"] == "val200"
    same = compare.compare_files(bq_file, bq_file, val_slice, per_class=20)
    assert same["only_a_correct"] == same["only_b_correct"] == 0 and same["mcnemar_p"] == 1.0
    assert not same["b_better_beyond_noise"]
