"""Quality metrics in the CLI: `acgan evaluate --metrics/--samples`, the judge's progress and
trust, the alarms in red, evaluation.json, `quality_for_history` for training, and
`acgan history` with epochs that carry a "quality" record.

The judge is trained on the session's tiny run (48 train digits: a few seconds) into a
temporary ACGAN_CACHE_DIR, never ~/.cache; reports use a handful of digits per class.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from acgan_cli import evaluate, lossplot, metrics, ui
from acgan_cli.cli import app
from acgan_cli.history import load_history
from acgan_cli.runs import describe_epochs

runner = CliRunner()
SAMPLES = "10"  # digits per class: enough for every metric, fast on the tiny generator
QUALITY = ["accuracy", "fid", "score", "diversity"]
LOSS_KEYS = [m.key for m in evaluate.METRICS if not m.is_quality]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("acgan-cache")


@pytest.fixture(autouse=True)
def _cache(cache_dir, monkeypatch):
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(cache_dir))
    monkeypatch.delenv("ACGAN_JUDGE_EPOCHS", raising=False)


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def evaluate_ok(run, *args):
    result = invoke("evaluate", "--run", run, "--samples", SAMPLES, *args)
    assert result.exit_code == 0, result.output
    return result


def saved(run: Path) -> dict:
    return json.loads((run / "evaluation.json").read_text())


def row(out: str, first: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [first])


# --- acgan evaluate ------------------------------------------------------------------------


def test_all_metrics_table_with_real_row_and_judge_accuracy(run_copy):
    out = evaluate_ok(run_copy, "--metrics", "all").stdout
    for head in ("generated digits (judge)", "accuracy", "FD", "score", "diversity", "alarms", "generator"):
        assert head in out
    doc = saved(run_copy)
    record = doc["epochs"]["2"]
    assert list(record["metrics"]) == [m.key for m in evaluate.METRICS]
    report = record["quality"]
    judge_accuracy = report["judge"]["test_accuracy"]
    # The row: 7 loss columns, 4 quality values, the alarms; real data's row beneath.
    cells = row(out, "2")
    assert len(cells) == 1 + len(LOSS_KEYS) + 4 + 1
    assert cells[8:12] == [f"{report['accuracy']['value']:.1%}", f"{report['fid']['value']:.2f}",
                           f"{report['score']['value']:.2f}", f"{report['diversity']['value']:.2f}"]
    real = row(out, "real")
    assert real[1:] == [f"{judge_accuracy:.1%}", f"{report['fid']['real']:.2f}", f"{report['score']['real']:.2f}", "1.00"]
    # The judge's trust, in words beside the numbers.
    assert f"recognises {judge_accuracy:.1%} of the 16 real test digits" in out
    assert "10 generated digits per class" in out
    assert "epoch 2 accuracy per class:" in out
    # evaluation.json keeps the details: per class, real values, alarms, sample size, seed.
    assert len(report["accuracy"]["per_class"]) == 10 and len(report["accuracy"]["real_per_class"]) == 10
    assert report["n_per_class"] == 10 and report["seed"] == 7 and isinstance(report["alarms"], list)
    assert report["metrics"] == QUALITY
    assert set(doc["metrics"]) >= {"fid", "accuracy", "class_accuracy"}


def test_chosen_metrics_only_and_merged_per_metric(run_copy):
    result = evaluate_ok(run_copy, "--metrics", "score,FID", "--json")
    doc = json.loads(result.stdout)  # stdout is the JSON alone; progress went to stderr
    record = doc["epochs"]["2"]
    assert list(record["metrics"]) == ["fid", "score"]
    assert set(record["quality"]) >= {"fid", "score", "alarms", "judge"} and "accuracy" not in record["quality"]

    evaluate_ok(run_copy, "--metrics", "losses")
    kept = saved(run_copy)["epochs"]["2"]
    assert list(kept["metrics"]) == ["fid", "score", *LOSS_KEYS]
    assert kept["quality"]["fid"] == record["quality"]["fid"]  # losses leave the quality alone

    evaluate_ok(run_copy, "--metrics", "accuracy")
    merged = saved(run_copy)["epochs"]["2"]
    assert merged["quality"]["metrics"] == ["accuracy", "fid", "score"]
    assert merged["quality"]["fid"] == record["quality"]["fid"] and merged["metrics"]["fid"] == record["metrics"]["fid"]
    # The same run, epoch and seed measure the same again.
    again = json.loads(evaluate_ok(run_copy, "--metrics", "fid,score", "--json").stdout)["epochs"]["2"]
    assert again["metrics"] == record["metrics"]


def test_losses_alone_never_touch_the_judge(run_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    result = evaluate_ok(run_copy, "--metrics", "losses")
    assert result.stderr == "" and not (tmp_path / "cache").exists()
    assert "generated digits" not in result.stdout
    assert not [line for line in result.stdout.splitlines() if line.split()[:1] == ["real"]]


def test_a_new_judge_is_trained_with_its_accuracy_on_stderr_and_json_stays_pure(run_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "fresh"))
    monkeypatch.setenv("ACGAN_JUDGE_EPOCHS", "2")
    result = evaluate_ok(run_copy, "--metrics", "quality", "--json")
    doc = json.loads(result.stdout)
    accuracy = doc["epochs"]["2"]["quality"]["judge"]["test_accuracy"]
    assert "Trained the judge in" in result.stderr and f"recognises {accuracy:.1%} of the 16 real test digits" in result.stderr
    entries = list((tmp_path / "fresh" / "judges").glob("*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text())["epochs"] == 2  # the variable's recipe
    if accuracy < evaluate.JUDGE_TRUST:
        assert "Warning: the judge recognises only" in result.stderr
    # The cached judge says nothing the second time (except a low-trust warning).
    again = evaluate_ok(run_copy, "--metrics", "quality", "--json")
    assert "Trained the judge" not in again.stderr


def test_alarm_names_the_class_and_reason_in_red(run_copy, monkeypatch):
    """A generator that draws class 3 as empty canvas: blank, and all alike."""
    real_from_acgan = metrics.from_acgan

    def broken(model):
        generate = real_from_acgan(model)

        def draw(labels, rng):
            images = generate(labels, rng)
            images[np.asarray(labels) == 3] = -1.0
            return images

        return draw

    monkeypatch.setattr(metrics, "from_acgan", broken)
    screen = io.StringIO()
    monkeypatch.setattr(ui, "console", Console(file=screen, force_terminal=True, color_system="standard", width=80))
    evaluate_ok(run_copy, "--metrics", "all")
    out = screen.getvalue()
    line = next(line for line in out.splitlines() if "class 3:" in line)
    assert line.startswith("\x1b[1;31m") and "alarm: epoch 2, class 3: blank" in line and "near-identical" in line
    alarms = saved(run_copy)["epochs"]["2"]["quality"]["alarms"]
    assert {(a["class"], a["reason"]) for a in alarms} >= {(3, "blank"), (3, "near-identical")}
    # The alarms column names the classes too, in red; an 80-column terminal gets the narrow table.
    text = _strip(out)
    classes = describe_epochs(sorted({a["class"] for a in alarms})).replace(" ", "")
    assert row(text, "2")[-1] == classes
    raw_row = next(line for line in out.splitlines() if _strip(line).split()[:1] == ["2"])
    assert "\x1b[1;31m" in raw_row
    table = [line for line in text.splitlines() if line[:6].strip() in ("epoch", "2", "real") and "class" not in line]
    assert len(table) == 3 and all(len(line) <= 80 for line in table)
    assert "G generator, D discriminator" in text


def _strip(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.mark.parametrize("value", ["bogus", "fid,inception", ","])
def test_unknown_metric_is_a_usage_error_naming_the_choices(run_copy, value):
    result = invoke("evaluate", "--run", run_copy, "--metrics", value)
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "unknown metric" in message
    assert "choose from losses, accuracy, fid, score, diversity, quality (the last four) or all" in message
    assert not (run_copy / "evaluation.json").exists()


def test_too_few_samples_is_a_usage_error(run_copy):
    result = invoke("evaluate", "--run", run_copy, "--samples", "1")
    assert result.exit_code == 2 and "--samples" in result.stderr


def test_bad_judge_epochs_variable_is_one_line(run_copy, monkeypatch):
    monkeypatch.setenv("ACGAN_JUDGE_EPOCHS", "three")
    result = invoke("evaluate", "--run", run_copy, "--metrics", "fid")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "ACGAN_JUDGE_EPOCHS must be a whole number from 1" in lines[0]


def test_damaged_weights_fail_before_the_judge(run_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    weights = run_copy / "params_generator_epoch_001.weights.h5"
    weights.write_bytes(weights.read_bytes()[:4000])
    result = invoke("evaluate", "--run", run_copy, "--epoch", "all", "--metrics", "quality")
    assert result.exit_code == 1 and "cannot read weights" in result.stderr
    assert not (tmp_path / "cache").exists() and not (run_copy / "evaluation.json").exists()


# --- quality_for_history: what training stores every K epochs --------------------------------


def test_quality_for_history_is_compact_json_and_matches_evaluate(trained_run, run_copy, tmp_path, monkeypatch):
    from acgan_cli import data, gan, judge
    from acgan_cli.runs import RunDir
    from acgan_cli.runs import load_weights

    run = RunDir(trained_run)
    config = run.read_config().config
    dataset = data.load(config.dataset, config.data)
    model = gan.ACGAN(latent_size=config.latent_size, num_classes=config.num_classes, seed=config.seed)
    load_weights(model.generator, run.generator_weights(2), "a generator")
    events = []
    record = evaluate.quality_for_history(model, dataset, config.seed, n_per_class=10,
                                          judge_cache=tmp_path / "judges", on_progress=events.append)
    text = json.dumps(record, allow_nan=False)  # strict JSON, one short line
    assert len(text) < 1000
    assert set(record) == {*QUALITY, "accuracy_per_class", "diversity_min", "real", "judge_accuracy",
                           "n_per_class", "alarms", "seconds"}
    assert set(record["real"]) == set(QUALITY) and record["real"]["accuracy"] == record["judge_accuracy"]
    assert len(record["accuracy_per_class"]) == 10 and record["n_per_class"] == 10
    kinds = [type(e).__name__ for e in events]
    assert "JudgeStep" in kinds and "JudgeReady" in kinds and kinds[-1] == "Progress"
    assert isinstance(events[kinds.index("JudgeReady")], evaluate.JudgeReady)

    # Later calls in the process reuse the judge; a metric subset gives a subset.
    events.clear()
    fid_only = evaluate.quality_for_history(model, dataset, config.seed, metrics="fid", n_per_class=10,
                                            judge_cache=tmp_path / "judges", on_progress=events.append)
    assert "JudgeStep" not in [type(e).__name__ for e in events]
    assert set(fid_only) == {"fid", "real", "judge_accuracy", "n_per_class", "alarms", "seconds"}
    assert fid_only["fid"] == record["fid"]

    # `acgan evaluate` of the same epoch, with the same judge and sample size, agrees.
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path))
    doc = json.loads(evaluate_ok(run_copy, "--metrics", "quality", "--json").stdout)["epochs"]["2"]["metrics"]
    for key in QUALITY:
        assert doc[key] == pytest.approx(record[key], abs=1e-4)

    with pytest.raises(Exception, match="unknown metric"):
        evaluate.quality_for_history(model, dataset, config.seed, metrics="inception", judge_cache=tmp_path / "judges")
    assert judge.recipe_epochs() == judge.EPOCHS


def test_history_record_rounds_and_keeps_alarms():
    report = {
        "metrics": QUALITY, "n_per_class": 1000, "seed": 1, "judge": {"test_accuracy": 0.98912345},
        "accuracy": {"value": 0.79931, "per_class": [0.444444] + [0.9] * 9, "real": 0.98912345, "real_per_class": [1.0] * 10},
        "fid": {"value": 126.123456, "real": 0.7964321},
        "score": {"value": 6.254321, "real": 9.679715, "max": 10.0},
        "diversity": {"value": 0.54321, "min": 0.3912, "per_class": [0.5] * 10, "real": 1.0},
        "alarms": [{"class": 3, "reason": "blank", "detail": "0.1% of pixels lit (real 12%)"}],
    }
    record = evaluate.history_record(report, seconds=21.27)
    assert record == {
        "accuracy": 0.7993, "fid": 126.1235, "score": 6.2543, "diversity": 0.5432,
        "accuracy_per_class": [0.4444] + [0.9] * 9, "diversity_min": 0.3912,
        "real": {"accuracy": 0.9891, "fid": 0.7964, "score": 9.6797, "diversity": 1.0},
        "judge_accuracy": 0.9891, "n_per_class": 1000, "alarms": report["alarms"], "seconds": 21.3,
    }


# --- acgan history with quality records -------------------------------------------------------


def quality_record(epoch: int, alarms: list | None = None) -> dict:
    return {
        "accuracy": 0.5 + 0.1 * epoch, "fid": 200.0 / epoch ** 2, "score": 3.0 + epoch, "diversity": 0.4 + 0.1 * epoch,
        "accuracy_per_class": [0.5] * 10, "diversity_min": 0.3,
        "real": {"accuracy": 0.9891, "fid": 0.8, "score": 9.68, "diversity": 1.0},
        "judge_accuracy": 0.9891, "n_per_class": 1000, "alarms": alarms or [], "seconds": 20.1,
    }


def history_with_quality(path: Path, n: int = 4) -> Path:
    """Quality measured every 2 epochs (`--eval-every 2`); epoch 2 lost class 7."""
    def triple(a: float, b: float) -> list[float]:
        return [a + b, a, b]

    epochs = []
    for e in range(1, n + 1):
        record = {
            "epoch": e, "steps": 600, "seconds": 30.0,
            "train": {"generator": triple(0.8, 0.3 / e), "discriminator": triple(0.6, 0.5 / e)},
            "test": {"generator": triple(0.9, 0.4 / e), "discriminator": triple(0.65, 0.55 / e)},
        }
        if e % 2 == 0:
            alarms = [{"class": 7, "reason": "near-identical", "detail": "diversity 0.12 of real"}] if e == 2 else []
            record["quality"] = quality_record(e, alarms)
        epochs.append(record)
    path.write_text(json.dumps({"format": "acgan-history/1", "columns": ["total", "generation", "auxiliary"],
                                "epochs": epochs}))
    return path


def test_history_table_shows_quality_columns_real_row_and_alarms(tmp_path):
    path = history_with_quality(tmp_path / "history.json")
    result = invoke("history", path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "quality (judge)" in out and "FD" in out and "diversity" in out
    assert row(out, "2")[13:] == ["70.0%", "50.00", "5.00", "0.60", "7"]
    assert row(out, "4")[13:] == ["90.0%", "12.50", "7.00", "0.80", "none", "best,", "last"]
    assert len(row(out, "1")) == 13  # not measured: blank quality cells
    assert row(out, "real")[1:] == ["98.9%", "0.80", "9.68", "1.00"]
    assert "it recognises 98.9% of the real test digits" in out and "1,000 generated digits per class" in out
    assert "alarm: epoch 2, class 7: near-identical — diversity 0.12 of real" in out


def test_history_alarm_is_red_on_a_terminal(tmp_path, monkeypatch):
    screen = io.StringIO()
    monkeypatch.setattr(ui, "console", Console(file=screen, force_terminal=True, color_system="standard", width=200))
    ui.print_history(load_history(history_with_quality(tmp_path / "history.json")))
    line = next(line for line in screen.getvalue().splitlines() if "class 7:" in line)
    assert line.startswith("\x1b[1;31m")


def test_history_json_keeps_quality_and_reads_back(tmp_path):
    path = history_with_quality(tmp_path / "history.json")
    doc = json.loads(invoke("history", path, "--json").stdout)
    assert "quality" not in doc["epochs"][0]
    assert doc["epochs"][1]["quality"] == quality_record(2, [{"class": 7, "reason": "near-identical",
                                                               "detail": "diversity 0.12 of real"}])
    (tmp_path / "again.json").write_text(invoke("history", path, "--json").stdout)
    assert json.loads(invoke("history", tmp_path / "again.json", "--json").stdout)["epochs"] == doc["epochs"]


def test_non_finite_quality_becomes_null(tmp_path):
    path = history_with_quality(tmp_path / "history.json")
    raw = json.loads(path.read_text())
    raw["epochs"][1]["quality"]["fid"] = float("nan")
    path.write_text(json.dumps(raw))  # NaN, as Python's json writes it
    doc = json.loads(invoke("history", path, "--json").stdout)
    assert doc["epochs"][1]["quality"]["fid"] is None
    assert row(invoke("history", path).stdout, "2")[14] == "n/a"


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda q: "good", "epochs[1].quality must be an object or null"),
    (lambda q: {**q, "fid": "low"}, "epochs[1].quality.fid must be a number or null"),
    (lambda q: {**q, "alarms": [{"reason": "blank"}]}, "epochs[1].quality.alarms[0] must be an object"),
])
def test_damaged_quality_is_a_one_line_error(tmp_path, change, fragment):
    path = history_with_quality(tmp_path / "history.json")
    raw = json.loads(path.read_text())
    raw["epochs"][1]["quality"] = change(raw["epochs"][1]["quality"])
    path.write_text(json.dumps(raw))
    result = invoke("history", path)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().startswith("Error: ") and "\n" not in result.stderr.strip()
    assert fragment in result.stderr


def test_plot_gets_quality_panels(tmp_path):
    target = tmp_path / "losses.png"
    result = invoke("history", history_with_quality(tmp_path / "history.json"), "--plot", target)
    assert result.exit_code == 0, result.output
    with Image.open(target) as image:
        assert image.size == (lossplot.WIDTH, lossplot.QUALITY_HEIGHT)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    for colour in (*lossplot._QUALITY_COLOURS.values(), lossplot._ALARM):
        assert (np.abs(pixels - colour).sum(axis=1) < 30).sum() > 50, colour


def test_quality_value_of_an_epoch_without_quality_is_nan(tmp_path):
    history = load_history(history_with_quality(tmp_path / "history.json"))
    assert math.isnan(history.epochs[0].quality_value("fid")) and history.epochs[0].alarms == []
    assert [e.number for e in history.quality_epochs] == [2, 4]
    assert history.epochs[1].quality_value("fid", real=True) == 0.8
