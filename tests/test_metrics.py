"""Quality metrics on inputs with known answers, and the judge's training and cache on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from acgan_cli import data, metrics
from acgan_cli.errors import ConfigError
from tests.conftest import make_arrays

# Enough steps for the tiny bar digits to be learnt perfectly, in about two seconds.
TINY_JUDGE = dict(epochs=3, batch_size=16, seed=3)


# --- Fréchet distance -------------------------------------------------------------------
def test_identical_sets_are_at_distance_zero():
    feats = np.random.default_rng(0).normal(size=(400, 16)) * np.arange(1, 17)
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0, abs=1e-8)


def test_rank_deficient_features_stay_real_and_zero():
    # Dead ReLU units: whole columns of zeros make the covariance singular.
    feats = np.random.default_rng(1).normal(size=(300, 8))
    feats[:, 3:] = 0
    assert metrics.frechet_distance(feats, feats) == pytest.approx(0, abs=1e-8)


def _closed_form(mu1, s1, mu2, s2):
    """Diagonal covariances: |mu1 - mu2|^2 + sum(s1 + s2 - 2 sqrt(s1 s2))."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2)))


def test_two_gaussians_match_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([2.0, 1.0, 0.25])
    expected = _closed_form(mu1, s1, mu2, s2)
    assert metrics.frechet_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    # A rotation applied to both sets changes no distance, but makes the covariances full.
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))
    rotated = metrics.frechet_from_stats(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert rotated == pytest.approx(expected, rel=1e-8)
    # And from samples, within sampling error.
    rng = np.random.default_rng(3)
    a = mu1 + rng.normal(size=(40_000, 3)) * np.sqrt(s1)
    b = mu2 + rng.normal(size=(40_000, 3)) * np.sqrt(s2)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=0.03)


# --- classifier score, accuracy, diversity ---------------------------------------------
def test_classifier_score_bounds():
    confident_balanced = np.eye(10)[np.arange(100) % 10]
    assert metrics.classifier_score(confident_balanced) == pytest.approx(10, rel=1e-6)
    one_class = np.eye(10)[np.zeros(100, int)]
    assert metrics.classifier_score(one_class) == pytest.approx(1, rel=1e-6)
    unsure = np.full((100, 10), 0.1)
    assert metrics.classifier_score(unsure) == pytest.approx(1, rel=1e-6)


def test_class_accuracy_overall_and_per_class():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(10)[[0, 1, 1, 1, 0, 0]]
    acc = metrics.class_accuracy(probs, labels)
    assert acc["overall"] == pytest.approx(0.5)
    assert acc["per_class"][:3] == [0.5, 1.0, 0.0]
    assert acc["per_class"][3:] == [None] * 7


def test_diversity_of_real_against_itself_is_one_and_constant_is_zero():
    rng = np.random.default_rng(4)
    feats, labels = rng.normal(size=(200, 5)), np.arange(200) % 10
    assert metrics.diversity(feats, labels, feats, labels) == pytest.approx([1.0] * 10)
    constant = np.ones_like(feats)
    assert metrics.diversity(constant, labels, feats, labels) == pytest.approx([0.0] * 10, abs=1e-6)


def test_pairwise_distance_known_value():
    # Three points on a line at 0, 1, 3: pairs 1, 3, 2 -> mean 2.
    assert metrics.mean_pairwise_distance(np.array([[0.0], [1.0], [3.0]])) == pytest.approx(2.0)


def test_collapse_alarms_name_the_dead_classes():
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(3), 20)
    images = np.where(rng.random((60, 28, 28, 1)) < 0.15, 1.0, -1.0).astype(np.float32)
    images[labels == 1] = -1.0  # blank canvas
    images[labels == 2] = 1.0  # a white blob
    feats = rng.normal(size=(60, 4))
    feats[labels == 2] = 7.0  # and all alike
    real_div = np.full(10, metrics.mean_pairwise_distance(rng.normal(size=(20, 4))))
    real_ink = np.full(10, 0.15)
    found = {(a.digit, a.reason) for a in metrics.collapse_alarms(images, labels, feats, real_div, real_ink)}
    assert found == {(1, "blank"), (2, "saturated"), (2, "near-identical")}


def test_metric_names_parse():
    assert metrics.parse_metrics("all") == metrics.METRICS
    assert metrics.parse_metrics("score, FID") == ("fid", "score")
    with pytest.raises(ConfigError, match="unknown metric inception"):
        metrics.parse_metrics("fid,inception")


# --- the judge ----------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_dataset() -> data.Dataset:
    return data.check(make_arrays(n_train=400, n_test=200, seed=11), "tiny")


@pytest.fixture(scope="session")
def judge_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache") / "judges"


@pytest.fixture(scope="session")
def tiny_judge(tiny_dataset, judge_cache):
    from acgan_cli import judge

    events = []
    trained = judge.get_judge(tiny_dataset, judge_cache, events.append, **TINY_JUDGE)
    return trained, events


def test_judge_trains_with_progress_and_learns(tiny_judge, tiny_dataset):
    from acgan_cli import judge

    trained, events = tiny_judge
    assert not trained.cached
    steps = [e for e in events if isinstance(e, judge.JudgeStep)]
    assert len(steps) == 3 * 25 and steps[-1].done == steps[-1].total == 75
    assert trained.test_accuracy >= 0.95
    x = data.scale(tiny_dataset.x_test[:7])
    probs, feats = trained.outputs(x)
    assert probs.shape == (7, 10) and feats.shape == (7, judge.FEATURES)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(trained.predict_proba(x[..., 0]), probs, atol=1e-6)


def test_second_get_judge_hits_the_cache(tiny_judge, tiny_dataset, judge_cache, monkeypatch):
    from acgan_cli import judge

    trained, _ = tiny_judge
    events = []
    # The environment variable names acgan's cache folder; judges live in its judges/.
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(judge_cache.parent))
    again = judge.get_judge(tiny_dataset, None, events.append, **TINY_JUDGE)
    assert again.cached and events == []
    assert again.test_accuracy == trained.test_accuracy
    x = data.scale(tiny_dataset.x_test)
    np.testing.assert_allclose(again.predict_proba(x), trained.predict_proba(x), atol=1e-6)


def test_other_data_or_recipe_is_not_served_from_the_cache(tiny_dataset):
    from acgan_cli import judge

    other = data.check(make_arrays(n_train=400, n_test=200, seed=12), "other")
    key = judge.data_key(tiny_dataset, **TINY_JUDGE)
    assert judge.data_key(other, **TINY_JUDGE) != key
    assert judge.data_key(tiny_dataset, **{**TINY_JUDGE, "epochs": 4}) != key


@pytest.mark.parametrize("damage", ["json", "weights"])
def test_corrupt_cache_is_trained_over(tiny_dataset, tmp_path, tiny_judge, judge_cache, damage):
    from acgan_cli import judge

    folder = tmp_path / "judges"
    folder.mkdir()
    for f in judge_cache.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    target = next(folder.glob("*.json" if damage == "json" else "*.weights.h5"))
    target.write_bytes(b"\x00 torn")
    events = []
    retrained = judge.get_judge(tiny_dataset, folder, events.append, **TINY_JUDGE)
    assert not retrained.cached and events
    # Same seed, same data: the same judge again, and a sound cache entry after it.
    x = data.scale(tiny_dataset.x_test)
    np.testing.assert_allclose(retrained.predict_proba(x), tiny_judge[0].predict_proba(x), atol=1e-4)
    assert judge.get_judge(tiny_dataset, folder, **TINY_JUDGE).cached


def test_reference_is_cached_beside_the_judge(tiny_judge, tiny_dataset, judge_cache):
    from acgan_cli import judge

    trained, _ = tiny_judge
    ref = trained.reference()
    assert ref.score > 9 and ref.accuracy == trained.test_accuracy
    assert list(judge_cache.glob("*.reference.npz"))
    events = []
    again = judge.get_judge(tiny_dataset, judge_cache, **TINY_JUDGE)
    loaded = again.reference(events.append)
    assert events == [] and loaded.score == ref.score
    np.testing.assert_allclose(loaded.test_cov, ref.test_cov)


# --- the report, with generators whose answer is known --------------------------------------
def _real_test_digits(dataset):
    def generate(labels, rng):
        idx = np.array([rng.choice(np.flatnonzero(dataset.y_test == c)) for c in labels])
        return data.scale(dataset.x_test[idx])

    return generate


def test_real_digits_score_like_real_data(tiny_judge, tiny_dataset):
    trained, _ = tiny_judge
    seen = []
    report = metrics.quality_report(_real_test_digits(tiny_dataset), trained, n_per_class=40, on_progress=seen.append)
    json.dumps(report)  # JSON all the way down
    assert report["alarms"] == []
    assert report["accuracy"]["value"] == pytest.approx(report["accuracy"]["real"], abs=0.02)
    assert report["score"]["value"] == pytest.approx(report["score"]["real"], rel=0.02)
    assert report["fid"]["value"] <= 1.5 * report["fid"]["real"]
    assert all(0.8 <= r <= 1.2 for r in report["diversity"]["per_class"])
    samples = [e for e in seen if e.task == "samples"]
    assert samples[-1].done == samples[-1].total == 400


def test_constant_generator_raises_the_collapse_alarm(tiny_judge):
    trained, _ = tiny_judge

    def constant(labels, rng):
        return np.full((len(labels), 28, 28, 1), -1.0, np.float32)

    report = metrics.quality_report(constant, trained, n_per_class=20, metrics="fid,diversity")
    assert set(report) >= {"fid", "diversity", "alarms"} and "accuracy" not in report and "score" not in report
    alarmed = {(a["class"], a["reason"]) for a in report["alarms"]}
    assert alarmed == {(c, r) for c in range(10) for r in ("blank", "near-identical")}
    assert report["diversity"]["value"] == pytest.approx(0, abs=1e-3)
    assert report["fid"]["value"] > 10 * report["fid"]["real"]


def test_report_is_reproducible_from_its_seed(tiny_judge):
    trained, _ = tiny_judge

    def noisy(labels, rng):
        return rng.uniform(-1, 1, (len(labels), 28, 28)).astype(np.float32)

    a = metrics.quality_report(noisy, trained, n_per_class=10, seed=5)
    b = metrics.quality_report(noisy, trained, n_per_class=10, seed=5)
    assert a == b


def test_generator_of_the_wrong_shape_is_refused(tiny_judge):
    with pytest.raises(ValueError, match="expected"):
        metrics.quality_report(lambda labels, rng: np.zeros((len(labels), 14, 14)), tiny_judge[0], n_per_class=2)
