"""`acgan evaluate`: a saved epoch's test losses, class accuracy and the quality of its digits.

Every result is a named number per epoch. `METRICS` lists them in the order of the
table's columns; evaluation.json merges per metric, so computing one never drops
another. The quality metrics (metrics.py, measured by the judge of judge.py) also
keep their details (per class, real data's values, alarms) in the epoch's "quality";
`quality_for_history` gives training the compact form that history.json keeps.

Nothing here prints: work in progress is reported to `on_progress` (JudgeStep,
JudgeReady, metrics.Progress). TensorFlow is imported only once the run and its
files have been checked.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from acgan_cli import atomic, data
from acgan_cli import metrics as quality
from acgan_cli.errors import ConfigError, RunError
from acgan_cli.runs import EVALUATION, RunDir, RunInfo, describe_epochs, finite_or_none, load_weights, saved_epoch

FORMAT = "acgan-evaluation/1"
# Noise streams of a run's seed: [seed, epoch] shuffles the training set, [.., 1]
# draws training's test losses, [.., 2] the epoch plot; evaluation draws its own.
STREAM = 3
PREDICT_BATCH = 500

# What --metrics chooses from: the test losses (with the discriminator's class accuracy,
# measured in the same pass, seconds) and each quality metric. The four quality metrics
# share one pass of generated digits through the judge (~20 s for 1,000 per class on
# two CPU cores), so choosing among them saves little; choosing `losses` alone saves it.
LOSSES = "losses"
CHOICES = (LOSSES, *quality.METRICS)
# Generated digits per class for the quality metrics: docs/metrics.md's calibration.
SAMPLES = 1000
# Below this the judge misreads too many real digits for its numbers to say much
# (MNIST's gets 98.9%, Fashion-MNIST's about 90%).
JUDGE_TRUST = 0.8


@dataclass(frozen=True)
class Metric:
    """One named number per epoch: its key in evaluation.json and its table column."""

    key: str
    group: str  # the table's column group
    header: str
    better: str  # "lower" or "higher"
    about: str
    percent: bool = False
    choice: str = LOSSES  # the --metrics name that computes it
    decimals: int = 3

    def format(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return "n/a"
        return f"{value:.1%}" if self.percent else f"{value:.{self.decimals}f}"

    @property
    def is_quality(self) -> bool:
        return self.choice != LOSSES


_ON_FAKES = "on 2N fresh fakes through the discriminator, target real"
_ON_BOTH = "on the N test images (target real) and N fresh fakes (target fake)"
_QUALITY = "generated digits (judge)"

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
    Metric(
        "accuracy", _QUALITY, "accuracy", "higher",
        "share of generated digits that the judge sees as the class they were drawn for", percent=True, choice="accuracy",
    ),
    Metric(
        "fid", _QUALITY, "FD", "lower",
        "Frechet distance in judge features between generated digits and the real test split", choice="fid", decimals=2,
    ),
    Metric(
        "score", _QUALITY, "score", "higher",
        "classifier score exp E[KL(p(y|x) || p(y))] of generated digits under the judge, at most 10",
        choice="score", decimals=2,
    ),
    Metric(
        "diversity", _QUALITY, "diversity", "higher",
        "within-class spread of generated digits' judge features, relative to real digits (1 = as varied)",
        choice="diversity", decimals=2,
    ),
)


def parse_choices(text: str | Iterable[str]) -> tuple[str, ...]:
    """--metrics: "all", "quality" (the four quality metrics) or names from CHOICES -> CHOICES' order."""
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [n.strip().lower() for n in names if n.strip()]
    if "all" in names:
        return CHOICES
    if "quality" in names:
        names += quality.METRICS
    unknown = [n for n in names if n not in CHOICES and n != "quality"]
    if unknown or not names:
        raise ConfigError(
            f"unknown metric {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(CHOICES)}, quality (the last four) or all"
        )
    return tuple(c for c in CHOICES if c in names)


@dataclass(frozen=True)
class JudgeReady:
    """The judge is there: loaded from the cache, or trained just now (`seconds`); emitted once per get."""

    test_accuracy: float
    test_images: int
    cached: bool
    seconds: float | None
    folder: Path


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    metrics: dict[str, float | None]
    data: dict[str, Any]
    evaluated: str = ""
    quality: dict[str, Any] | None = None  # metrics.quality_report's report, when quality was measured

    def to_json(self) -> dict[str, Any]:
        doc = {"epoch": self.epoch, "evaluated": self.evaluated, "data": self.data, "metrics": self.metrics}
        if self.quality is not None:
            doc["quality"] = self.quality
        return doc


@dataclass(frozen=True)
class Evaluation:
    run: Path
    info: RunInfo
    path: Path  # evaluation.json
    data: dict[str, Any]
    epochs: list[EpochResult] = field(default_factory=list)
    chosen: tuple[str, ...] = CHOICES
    judge: JudgeReady | None = None

    @property
    def columns(self) -> list[Metric]:
        """The metrics this evaluation computed, in table order."""
        return [m for m in METRICS if m.choice in self.chosen]

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
    """Earlier results with `result` in its place: its metrics replace those of the same name only.

    The quality details merge the same way: a metric's entry is replaced when it was
    measured again; the alarms, judge and sample size are the latest measurement's.
    """
    key = str(result.epoch)
    record = result.to_json()
    old = earlier.get(key)
    if isinstance(old, dict) and isinstance(old.get("metrics"), dict):
        record["metrics"] = {**old["metrics"], **result.metrics}
    old_quality = old.get("quality") if isinstance(old, dict) else None
    if isinstance(old_quality, dict):
        merged_quality = {**old_quality, **(result.quality or {})}
        merged_quality["metrics"] = [m for m in quality.METRICS if isinstance(merged_quality.get(m), dict)]
        record["quality"] = merged_quality
    merged = {**earlier, key: record}
    return dict(sorted(merged.items(), key=lambda kv: _epoch_key(kv[0])))


def _epoch_key(key: str) -> float:
    return float(key) if key.isdigit() else math.inf


def write_results(run: RunDir, info: RunInfo, epochs: dict[str, Any]) -> Path:
    path = run.path / EVALUATION
    atomic.write_json(path, _document(info, epochs))
    return path


# --- the measurements -------------------------------------------------------------------

def class_accuracy(discriminator: Any, x_test: np.ndarray, y_test: np.ndarray) -> float:
    """Share of real images whose argmax of the auxiliary head is their label (inference mode)."""
    _, classes = discriminator.predict(x_test, batch_size=PREDICT_BATCH, verbose=0)
    return float(np.mean(np.argmax(classes, axis=1) == y_test))


def measure(model: Any, x_test: np.ndarray, y_test: np.ndarray, rng: np.random.Generator) -> dict[str, float | None]:
    """The losses and class accuracy (the `losses` choice) for the weights now in `model` (a gan.ACGAN)."""
    losses = model.test_losses(x_test, y_test, rng)
    metrics: dict[str, float | None] = {}
    for network in ("generator", "discriminator"):
        for column, value in zip(("total", "generation", "auxiliary"), losses[network]):
            metrics[f"{network}_{column}"] = finite_or_none(value)
    metrics["class_accuracy"] = class_accuracy(model.discriminator, x_test, y_test)
    return metrics


# --- the judge and the quality metrics -----------------------------------------------------
# One judge per data set and cache folder in a process: training asks every K epochs.
_JUDGES: dict[tuple[str, str], Any] = {}


def get_judge(dataset: data.Dataset, cache_dir: str | Path | None = None,
              on_progress: Callable[[Any], None] | None = None) -> Any:
    """judge.get_judge, kept for the process; emits JudgeStep events while training, then JudgeReady."""
    from acgan_cli import judge as judges  # TensorFlow

    on_progress = on_progress or _ignore
    folder = Path(cache_dir).expanduser() if cache_dir is not None else judges.default_cache_dir()
    memo = (str(folder.resolve()), judges.data_key(dataset, epochs=judges.recipe_epochs()))
    found = _JUDGES.get(memo)
    if found is not None:
        on_progress(JudgeReady(found.test_accuracy, len(dataset.x_test), True, None, folder))
        return found
    found = _JUDGES[memo] = judges.get_judge(dataset, folder, on_progress)
    seconds = None if found.cached else found.train_seconds
    on_progress(JudgeReady(found.test_accuracy, len(dataset.x_test), found.cached, seconds, folder))
    return found


def _ignore(_: Any) -> None:
    pass


def _rounded(value: Any) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def history_record(report: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
    """A quality_report shortened for history.json's epoch record (one line per epoch in `history --json`).

    Headline values at the top (`.quality.fid`), real data's beside them under "real",
    the judge's own test accuracy, the per-class accuracy and every alarm.
    """
    chosen = [m for m in quality.METRICS if m in report]
    record: dict[str, Any] = {m: _rounded(report[m]["value"]) for m in chosen}
    if "accuracy" in report:
        record["accuracy_per_class"] = [_rounded(v) for v in report["accuracy"]["per_class"]]
    if "diversity" in report:
        record["diversity_min"] = _rounded(report["diversity"]["min"])
    record["real"] = {m: _rounded(report[m]["real"]) for m in chosen}
    record["judge_accuracy"] = _rounded(report["judge"]["test_accuracy"])
    record["n_per_class"] = report["n_per_class"]
    record["alarms"] = list(report["alarms"])
    if seconds is not None:
        record["seconds"] = round(seconds, 1)
    return record


def quality_for_history(
    model: Any,
    dataset: data.Dataset,
    seed: int,
    metrics: str | Iterable[str] = quality.METRICS,
    n_per_class: int = SAMPLES,
    judge_cache: str | Path | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """The quality of `model`'s generator now, as history.json's epoch record keeps it under "quality".

    `model` is a gan.ACGAN (any precision), `dataset` the run's data, `seed` the run's
    seed: the noise is numpy's default_rng(seed) for every epoch, as `acgan evaluate`
    draws it, so the same epoch evaluated later gives the same numbers. The judge is
    trained on the first call for a data set (about a minute on MNIST, JudgeStep events),
    then comes from the cache; each call then takes ~20 s for 1,000 digits per class.
    Raises ConfigError for unknown metric names or n_per_class under 2.
    """
    started = time.monotonic()
    chosen = quality.parse_metrics(metrics)
    if n_per_class < 2:
        raise ConfigError(f"need at least 2 samples per class to measure quality, got {n_per_class}")
    judge = get_judge(dataset, judge_cache, on_progress)
    report = quality.quality_report(
        quality.from_acgan(model), judge, n_per_class=n_per_class, metrics=chosen, seed=seed, on_progress=on_progress
    )
    return history_record(report, time.monotonic() - started)


# --- the command's core ---------------------------------------------------------------------
def evaluate(
    run_path: str | Path,
    epochs: int | str | None = None,
    on_epoch: Callable[[int, int, int], None] | None = None,
    *,
    metrics: str | Iterable[str] = CHOICES,
    n_per_class: int = SAMPLES,
    judge_cache: str | Path | None = None,
    on_progress: Callable[[Any], None] | None = None,
) -> Evaluation:
    """Measure the chosen epochs (None: the latest; "all"; N) and merge them into evaluation.json.

    `metrics` names entries of CHOICES ("all", "losses,fid", ...). The test split comes
    from the run's own config.json; so does the judge's training data. Each epoch's
    results are written as soon as they exist, so an interrupted `--epoch all` keeps
    what it did. `on_epoch(epoch, index, count)` is called before each epoch's work,
    `on_progress` with the judge's and the quality report's progress events.
    Deterministic: the loss noise of epoch E comes from numpy's default_rng([seed, E, 3]);
    the quality noise from default_rng(seed), the same for every epoch (as training's).
    """
    chosen = parse_choices(metrics)
    measured = [m for m in quality.METRICS if m in chosen]
    if measured and n_per_class < 2:
        raise ConfigError(f"need at least 2 samples per class to measure quality, got {n_per_class}")
    run = RunDir(run_path)
    info = run.read_config()
    picked = choose_epochs(run, epochs)
    if LOSSES in chosen:  # the quality metrics need the generator alone
        complete = [e for e in run.saved_epochs() if run.discriminator_weights(e).is_file()]
        missing = [e for e in picked if e not in complete]
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

    def load(epoch: int) -> None:
        load_weights(model.generator, run.generator_weights(epoch), f"a generator with latent size {config.latent_size}")
        if LOSSES in chosen:
            load_weights(model.discriminator, run.discriminator_weights(epoch), f"a discriminator for {config.num_classes} classes")

    judge, ready = None, []
    if measured:
        for epoch in picked:  # a damaged file fails now, not after the judge's minute of training
            load(epoch)
        judge = get_judge(dataset, judge_cache, _tee(on_progress, ready.append))
        judge.reference(on_progress)  # real data's values: once per judge, before the first epoch
    result = Evaluation(run=run.path, info=info, path=run.path / EVALUATION, data=dataset.summary(), chosen=chosen,
                        judge=next((e for e in ready if isinstance(e, JudgeReady)), None))
    for index, epoch in enumerate(picked):
        if on_epoch is not None:
            on_epoch(epoch, index, len(picked))
        load(epoch)
        values: dict[str, float | None] = {}
        report = None
        if LOSSES in chosen:
            values.update(measure(model, x_test, y_test, np.random.default_rng([config.seed, epoch, STREAM])))
        if measured:
            report = quality.quality_report(
                quality.from_acgan(model), judge, n_per_class=n_per_class, metrics=measured, seed=config.seed,
                on_progress=on_progress,
            )
            values.update({m: report[m]["value"] for m in measured})
        record = EpochResult(
            epoch=epoch,
            metrics={m.key: values[m.key] for m in METRICS if m.key in values},
            data=dataset.summary(),
            evaluated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            quality=report,
        )
        result.epochs.append(record)
        earlier = merge(earlier, record)
        write_results(run, info, earlier)
    return result


def _tee(*targets: Callable[[Any], None] | None) -> Callable[[Any], None]:
    def call(event: Any) -> None:
        for target in targets:
            if target is not None:
                target(event)

    return call
