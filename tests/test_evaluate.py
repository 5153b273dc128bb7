"""`acgan evaluate`: test losses and class accuracy of saved epochs, the table, --json,
evaluation.json (merged, atomic, deterministic) and the errors.

Every test that evaluates works on a copy of the session's tiny run (latent size 8,
epochs 1 and 2, 16 test images), since evaluating writes evaluation.json into it.
These tests measure `--metrics losses`; the quality metrics are tests/test_quality_cli.py's.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from acgan_cli import evaluate
from acgan_cli.cli import app
from tests.conftest import assert_one_line_error

runner = CliRunner()
KEYS = [m.key for m in evaluate.METRICS if not m.is_quality]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    # Never ~/.cache, should a test reach the judge.
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def evaluate_ok(run, *args):
    result = invoke("evaluate", "--run", run, "--metrics", "losses", *args)
    assert result.exit_code == 0, result.output
    return result



@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def saved(run: Path) -> dict:
    return json.loads((run / "evaluation.json").read_text())


def check_metrics(metrics: dict, n_test: int = 16) -> None:
    assert list(metrics) == KEYS
    for network in ("generator", "discriminator"):
        total, gen, aux = (metrics[f"{network}_{c}"] for c in ("total", "generation", "auxiliary"))
        assert all(math.isfinite(v) and v > 0 for v in (total, gen, aux))
        assert total == pytest.approx(gen + aux)
    accuracy = metrics["class_accuracy"]
    assert 0 <= accuracy <= 1 and (accuracy * n_test) == pytest.approx(round(accuracy * n_test))


def test_table_and_evaluation_json_for_the_latest_epoch(run_copy):
    result = evaluate_ok(run_copy)
    out = result.stdout
    assert f"Test evaluation: {run_copy}" in out
    for word in ("generator", "discriminator", "total", "gen", "aux", "accuracy", "%"):
        assert word in out
    row = next(line for line in out.splitlines() if line.strip().startswith("2 "))
    assert len(row.split()) == 1 + len(KEYS)
    assert "16 test images" in out and f"saved in {run_copy / 'evaluation.json'}" in out
    assert result.stderr == ""

    doc = saved(run_copy)
    config = json.loads((run_copy / "config.json").read_text())
    assert doc["format"] == "acgan-evaluation/1"
    assert doc["run"] == {"created": config["created"], "seed": 7}
    assert list(doc["metrics"]) == [m.key for m in evaluate.METRICS]
    assert doc["metrics"]["class_accuracy"]["better"] == "higher"
    assert list(doc["epochs"]) == ["2"]
    record = doc["epochs"]["2"]
    assert record["epoch"] == 2 and record["data"]["test"] == 16 and record["evaluated"]
    check_metrics(record["metrics"])
    # the table shows what the file holds
    assert f"{record['metrics']['generator_total']:.3f}" in row and f"{record['metrics']['class_accuracy']:.1%}" in row
    assert [p.name for p in run_copy.iterdir() if ".tmp" in p.name] == []


def test_json_prints_json_only_and_matches_the_file(run_copy):
    result = evaluate_ok(run_copy, "--epoch", 1, "--json")
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["format"] == "acgan-evaluation/1" and list(doc["epochs"]) == ["1"]
    check_metrics(doc["epochs"]["1"]["metrics"])
    assert doc["epochs"] == saved(run_copy)["epochs"]


def test_all_epochs_merge_deterministically_and_keep_other_metrics(run_copy):
    first = json.loads(evaluate_ok(run_copy, "--epoch", 2, "--json").stdout)["epochs"]["2"]["metrics"]
    # a metric of a later issue, added to the file by another command
    doc = saved(run_copy)
    doc["epochs"]["2"]["metrics"]["fid"] = 12.5
    (run_copy / "evaluation.json").write_text(json.dumps(doc))

    result = evaluate_ok(run_copy, "--epoch", "all")
    assert [line.split()[0] for line in result.stdout.splitlines() if line.strip()[:1].isdigit()] == ["1", "2"]
    doc = saved(run_copy)
    assert list(doc["epochs"]) == ["1", "2"]
    again = doc["epochs"]["2"]["metrics"]
    assert again.pop("fid") == 12.5
    assert again == first, "same run, seed and epoch: same numbers"
    assert doc["epochs"]["1"]["metrics"] != again


def test_losses_are_the_reference_test_losses(run_copy, monkeypatch, tiny_npz):
    """On training's own noise stream, evaluation reproduces history.json's test losses:
    both weight files load into the networks that trained; the accuracy is the class
    head's argmax on the real test images."""
    from acgan_cli.models import build_discriminator

    monkeypatch.setattr(evaluate, "STREAM", 1)
    doc = json.loads(evaluate_ok(run_copy, "--epoch", "all", "--json").stdout)
    history = json.loads((run_copy / "history.json").read_text())["epochs"]
    for record in history:
        metrics = doc["epochs"][str(record["epoch"])]["metrics"]
        for network in ("generator", "discriminator"):
            got = [metrics[f"{network}_{c}"] for c in ("total", "generation", "auxiliary")]
            np.testing.assert_allclose(got, record["test"][network], rtol=1e-5)

    with np.load(tiny_npz) as raw:
        x, y = raw["x_test"], raw["y_test"]
    discriminator = build_discriminator()
    discriminator.load_weights(run_copy / "params_discriminator_epoch_002.weights.h5")
    _, classes = discriminator(((x.astype(np.float32) - 127.5) / 127.5)[..., None], training=False)
    expected = float(np.mean(np.argmax(np.asarray(classes), axis=1) == y))
    assert doc["epochs"]["2"]["metrics"]["class_accuracy"] == pytest.approx(expected)


def test_results_of_an_earlier_run_in_the_directory_are_dropped(run_copy):
    stale = {"format": "acgan-evaluation/1", "run": {"created": "1999-01-01T00:00:00+00:00", "seed": 1},
             "epochs": {"1": {"epoch": 1, "metrics": {"class_accuracy": 0.5}}}}
    (run_copy / "evaluation.json").write_text(json.dumps(stale))
    evaluate_ok(run_copy, "--json")
    assert list(saved(run_copy)["epochs"]) == ["2"]


def test_metric_formats_and_merge():
    accuracy = next(m for m in evaluate.METRICS if m.key == "class_accuracy")
    assert accuracy.format(0.9876) == "98.8%" and accuracy.format(None) == "n/a"
    assert evaluate.METRICS[0].format(float("nan")) == "n/a" and evaluate.METRICS[0].format(1.23456) == "1.235"
    result = evaluate.EpochResult(epoch=10, metrics={"class_accuracy": 1.0}, data={})
    merged = evaluate.merge({"2": {"metrics": {"fid": 3.0}}, "10": {"metrics": {"fid": 4.0, "class_accuracy": 0.1}}}, result)
    assert list(merged) == ["2", "10"] and merged["10"]["metrics"] == {"fid": 4.0, "class_accuracy": 1.0}


# --- errors: one line, exit 1 (2 for usage), no evaluation.json -------------------------


def test_missing_and_empty_run(tmp_path):
    assert_one_line_error(invoke("evaluate", "--run", tmp_path / "nope"), 1, "run directory not found")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("evaluate", "--run", tmp_path / "empty"), 1, "holds no config.json")


def test_epoch_not_saved(run_copy):
    assert_one_line_error(invoke("evaluate", "--run", run_copy, "--epoch", 3), 1, "epoch 3 is not saved", "saved epochs: 1-2")
    assert not (run_copy / "evaluation.json").exists()


@pytest.mark.parametrize(("value", "fragment"), [("every", "give an epoch number or latest or all"), ("-1", "epochs count from 1")])
def test_bad_epoch_is_a_usage_error(run_copy, value, fragment):
    result = invoke("evaluate", "--run", run_copy, "--epoch", value)
    assert result.exit_code == 2 and fragment in " ".join(result.stderr.replace("│", " ").split())
    assert "Traceback" not in result.stderr


def test_missing_discriminator_weights(run_copy):
    (run_copy / "params_discriminator_epoch_002.weights.h5").unlink()
    result = invoke("evaluate", "--run", run_copy)
    assert_one_line_error(result, 1, "params_discriminator_epoch_002.weights.h5 is missing", "epochs with both weight files: 1")
    assert not (run_copy / "evaluation.json").exists()


def test_damaged_weights(run_copy):
    weights = run_copy / "params_discriminator_epoch_001.weights.h5"
    weights.write_bytes(weights.read_bytes()[:4000])
    result = invoke("evaluate", "--run", run_copy, "--epoch", "all")
    assert_one_line_error(result, 1, "cannot read weights", "params_discriminator_epoch_001.weights.h5")
    assert not (run_copy / "evaluation.json").exists()


def test_weights_that_do_not_fit_the_config(run_copy):
    path = run_copy / "config.json"
    config = json.loads(path.read_text())
    config["config"]["latent_size"] = 16
    path.write_text(json.dumps(config))
    assert_one_line_error(invoke("evaluate", "--run", run_copy), 1, "do not fit a generator with latent size 16")


def test_test_data_gone(run_copy, tmp_path):
    path = run_copy / "config.json"
    config = json.loads(path.read_text())
    config["config"]["data"] = str(tmp_path / "moved.npz")
    path.write_text(json.dumps(config))
    assert_one_line_error(invoke("evaluate", "--run", run_copy), 1, "data not found", "moved.npz")


def test_damaged_evaluation_json_is_left_alone(run_copy):
    (run_copy / "evaluation.json").write_text("{not json")
    assert_one_line_error(invoke("evaluate", "--run", run_copy), 1, "evaluation.json is not valid JSON", "move it away")
    assert (run_copy / "evaluation.json").read_text() == "{not json"
