"""`acgan evaluate`: a saved epoch's test losses and class accuracy, kept in evaluation.json.

Every result is a named number per epoch. `METRICS` lists them in the order of the
table's columns, so a later metric (a quality score of the generated digits) slots in
as one more entry there and one more key in each epoch's `metrics`; evaluation.json
merges per metric, so computing one never drops another.

Nothing here prints, and TensorFlow is imported only once the run and its files
have been checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from acgan_cli import atomic, data
from acgan_cli.errors import RunError
from acgan_cli.runs import RunDir, RunInfo
from acgan_cli.sampling import describe_epochs, load_weights, saved_epoch

EVALUATION = "evaluation.json"
FORMAT = "acgan-evaluation/1"
# Noise streams of a run's seed: [seed, epoch] shuffles the training set, [.., 1]
# draws training's test losses, [.., 2] the epoch plot; evaluation draws its own.
STREAM = 3
PREDICT_BATCH = 500


@dataclass(frozen=True)
class Metric:
    """One named number per epoch: its key in evaluation.json and its table column."""

    key: str
    group: str  # the table's column group
    header: str
    better: str  # "lower" or "higher"
    about: str
    percent: bool = False

    def format(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{value:.1%}" if self.percent else f"{value:.3f}"


_ON_FAKES = "on 2N fresh fakes through the discriminator, target real"
_ON_BOTH = "on the N test images (target real) and N fresh fakes (target fake)"

METRICS: tuple[Metric, ...] = (
    Metric("generator_total", "generator", "total", "lower", f"generator's generation + auxiliary loss {_ON_FAKES}"),
    Metric("generator_generation", "generator", "gen", "lower", f"generator's real/fake loss {_ON_FAKES}"),
    Metric("generator_auxiliary", "generator", "aux", "lower", f"generator's class loss {_ON_FAKES}"),
    Metric("discriminator_total", "discriminator", "total", "lower", f"discriminator's generation + auxiliary loss {_ON_BOTH}"),
    Metric("discriminator_generation", "discriminator", "gen", "lower", f"discriminator's real/fake loss {_ON_BOTH}"),
    Metric("discriminator_auxiliary", "discriminator", "aux", "lower", f"discriminator's class loss {_ON_BOTH}"),
    Metric(
        "class_accuracy", "classes", "accuracy", "higher",
        "share of the N real test images whose class the discriminator's auxiliary head names (argmax)", percent=True,
    ),
)


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    metrics: dict[str, float | None]
    data: dict[str, Any]
    evaluated: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "evaluated": self.evaluated, "data": self.data, "metrics": self.metrics}


@dataclass(frozen=True)
class Evaluation:
    run: Path
    info: RunInfo
    path: Path  # evaluation.json
    data: dict[str, Any]
    epochs: list[EpochResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """evaluation.json's shape, holding this evaluation's epochs only."""
        return _document(self.info, {str(r.epoch): r.to_json() for r in self.epochs})


def _document(info: RunInfo, epochs: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "run": {"created": info.created, "seed": info.config.seed},
        "metrics": {m.key: {"better": m.better, "about": m.about} for m in METRICS},
        "epochs": epochs,
    }


def choose_epochs(run: RunDir, choice: int | str | None) -> list[int]:
    """None or "latest": the latest saved epoch; "all": every saved one; N: epoch N if saved."""
    if choice == "all":
        saved = run.saved_epochs()
        return saved if saved else [saved_epoch(run, None)]  # the latter raises "no saved epoch"
    return [saved_epoch(run, None if choice in (None, "latest") else int(choice))]


# --- evaluation.json --------------------------------------------------------------------
def read_results(run: RunDir, info: RunInfo) -> dict[str, Any]:
    """Earlier results of this run, by epoch; none when the file belongs to an earlier run.

    `train --overwrite` leaves evaluation.json behind: results of a run with another
    creation time are not this run's and are dropped when the file is next written.
    """
    path = run.path / EVALUATION
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} is not valid JSON ({exc}); move it away to start the evaluations afresh") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("epochs"), dict):
        raise RunError(f"{path} is not an acgan evaluation ({FORMAT}); move it away to start afresh")
    if (raw.get("run") or {}).get("created") != info.created:
        return {}
    return raw["epochs"]


def merge(earlier: dict[str, Any], result: EpochResult) -> dict[str, Any]:
    """Earlier results with `result` in its place: its metrics replace those of the same name only."""
    key = str(result.epoch)
    record = result.to_json()
    old = earlier.get(key)
    if isinstance(old, dict) and isinstance(old.get("metrics"), dict):
        record["metrics"] = {**old["metrics"], **result.metrics}
    merged = {**earlier, key: record}
    return dict(sorted(merged.items(), key=lambda kv: _epoch_key(kv[0])))


def _epoch_key(key: str) -> float:
    return float(key) if key.isdigit() else math.inf


def write_results(run: RunDir, info: RunInfo, epochs: dict[str, Any]) -> Path:
    path = run.path / EVALUATION
    atomic.write_json(path, _document(info, epochs))
    return path


# --- the measurements -------------------------------------------------------------------
def _finite(value: float) -> float | None:
    """Strict JSON has no NaN: a diverged network's loss is stored as null."""
    value = float(value)
    return value if math.isfinite(value) else None


def class_accuracy(discriminator: Any, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Share of real images whose argmax of the auxiliary head is their label (inference mode)."""
    _, classes = discriminator.predict(x_test, batch_size=PREDICT_BATCH, verbose=0)
    return float(np.mean(np.argmax(classes, axis=1) == y_test))


def measure(model: Any, x_test: np.ndarray, y_test: np.ndarray, rng: np.random.Generator) -> dict[str, float | None]:
    """Every metric of METRICS for the weights now in `model` (a gan.ACGAN)."""
    losses = model.test_losses(x_test, y_test, rng)
    metrics: dict[str, float | None] = {}
    for network in ("generator", "discriminator"):
        for column, value in zip(("total", "generation", "auxiliary"), losses[network]):
            metrics[f"{network}_{column}"] = _finite(value)
    metrics["class_accuracy"] = class_accuracy(model.discriminator, x_test, y_test)
    return metrics


def evaluate(
    run_path: str | Path,
    epochs: int | str | None = None,
    on_epoch: Callable[[int, int, int], None] | None = None,
) -> Evaluation:
    """Measure the chosen epochs (None: the latest; "all"; N) and merge them into evaluation.json.

    The test split comes from the run's own config.json. Each epoch's results are
    written as soon as they exist, so an interrupted `--epoch all` keeps what it did.
    `on_epoch(epoch, index, count)` is called before each epoch's work.
    Deterministic: the noise of epoch E comes from numpy's default_rng([seed, E, 3]).
    """
    run = RunDir(run_path)
    info = run.read_config()
    chosen = choose_epochs(run, epochs)
    complete = [e for e in run.saved_epochs() if run.discriminator_weights(e).is_file()]
    missing = [e for e in chosen if e not in complete]
    if missing:
        found = f"epochs with both weight files: {describe_epochs(complete)}" if complete else "no epoch has both"
        raise RunError(f"{run.discriminator_weights(missing[0])} is missing; {found}")
    earlier = read_results(run, info)
    config = info.config
    dataset = data.load(config.dataset, config.data)
    x_test, y_test = data.scale(dataset.x_test), dataset.y_test

    from acgan_cli import gan  # TensorFlow, once everything else is known to be there

    # float32 whatever the run trained in: mixed-precision weights are stored in float32.
    model = gan.ACGAN(latent_size=config.latent_size, num_classes=config.num_classes, seed=config.seed)
    result = Evaluation(run=run.path, info=info, path=run.path / EVALUATION, data=dataset.summary())
    for index, epoch in enumerate(chosen):
        if on_epoch is not None:
            on_epoch(epoch, index, len(chosen))
        load_weights(model.generator, run.generator_weights(epoch), f"a generator with latent size {config.latent_size}")
        load_weights(model.discriminator, run.discriminator_weights(epoch), f"a discriminator for {config.num_classes} classes")
        metrics = measure(model, x_test, y_test, np.random.default_rng([config.seed, epoch, STREAM]))
        record = EpochResult(
            epoch=epoch,
            metrics=metrics,
            data=dataset.summary(),
            evaluated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        result.epochs.append(record)
        earlier = merge(earlier, record)
        write_results(run, info, earlier)
    return result
