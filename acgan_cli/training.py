"""`train(config, out) -> history`: data, models, step, checkpoints, wired together.

It prints nothing: it reports progress as events to `on_event`, and the CLI's
display (ui.py) decides how they look.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acgan_cli import atomic, data, grid
from acgan_cli.config import TrainConfig
from acgan_cli.errors import ConfigError, RunError, TrainingError
from acgan_cli.runs import RunDir, RunInfo, environment


@dataclass(frozen=True)
class Started:
    run: Path
    config: TrainConfig
    resolved: dict[str, Any]
    data: dict[str, Any]
    steps_per_epoch: int
    removed: list[Path] = field(default_factory=list)
    resumed_after: int = 0


@dataclass(frozen=True)
class Step:
    epoch: int
    step: int
    steps: int
    discriminator: np.ndarray
    generator: np.ndarray


@dataclass(frozen=True)
class Evaluating:
    epoch: int


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    record: dict[str, Any]
    files: list[Path]


Event = Started | Step | Evaluating | EpochEnd


def _ignore(_: Event) -> None:
    pass


def train(
    config: TrainConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    given: frozenset[str] = frozenset(),
    on_event: Callable[[Event], None] = _ignore,
) -> list[dict[str, Any]]:
    """Train into `out`; with `resume`, continue the run there from its checkpoint.

    `given` names the settings the user stated explicitly: on resume they must agree
    with the run's saved config, except `epochs`, which may extend the run.
    """
    run = RunDir(out)
    if resume:
        info = run.read_config()
        run.remove_abandoned_temporaries()
        config = _resumed_config(info.config, config, given)
    else:
        config = config.validate().with_seed()
    # Data first: a bad file must fail before anything in --out is touched.
    dataset = data.load(config.dataset, config.data)
    removed = [] if resume else run.prepare_new(overwrite)

    from acgan_cli import checkpoint, gan  # TensorFlow, imported quietly

    gan.keras.utils.set_random_seed(config.seed)
    device = gan.device_kind()
    if device == "CPU":
        # Bit-identical resumes; costs nothing measurable on a CPU (docs/performance.md).
        gan.tf.config.experimental.enable_op_determinism()
    resolved = info.resolved if resume else {
        "seed": config.seed,
        "precision": gan.resolve_precision(config.precision, device),
        "jit": gan.resolve_jit(config.jit, device),
    }
    model = gan.ACGAN(
        latent_size=config.latent_size,
        num_classes=config.num_classes,
        lr=config.lr,
        beta1=config.beta1,
        seed=config.seed,
        precision=resolved["precision"],
        jit=resolved["jit"],
    )
    history: list[dict[str, Any]] = []
    if resume:
        done, history = checkpoint.restore(model, run.checkpoint_path)
        if done >= config.epochs:
            raise RunError(
                f"{run.path} already holds {done} epochs; pass --epochs with more than {done} to extend it"
            )
        # A kill between the checkpoint and history.json leaves the checkpoint ahead: it wins.
        run.write_history(history)
        info = RunInfo(config=config, resolved=resolved, environment=info.environment, data=info.data, created=info.created)
    else:
        done = 0
        info = RunInfo(config=config, resolved=resolved, environment=environment(device), data=dataset.summary())
    run.write_config(info)

    x_train, y_train = data.scale(dataset.x_train), dataset.y_train
    x_test, y_test = data.scale(dataset.x_test), dataset.y_test
    steps = math.ceil(len(x_train) / config.batch_size)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    on_event(Started(run.path, config, resolved, dataset.summary(), steps, removed, resumed_after=done))

    for epoch in range(done + 1, config.epochs + 1):
        started = time.monotonic()
        train_losses = _train_epoch(model, x_train, y_train, config, epoch, steps, on_event)
        on_event(Evaluating(epoch))
        test_losses = model.test_losses(x_test, y_test, np.random.default_rng([config.seed, epoch, 1]))
        record = {
            "epoch": epoch,
            "steps": steps,
            "seconds": round(time.monotonic() - started, 3),
            "train": {k: [float(v) for v in train_losses[k]] for k in ("generator", "discriminator")},
            "test": {k: [float(v) for v in test_losses[k]] for k in ("generator", "discriminator")},
        }
        history.append(record)
        files = _save_epoch(model, run, epoch, config, dataset.x_train, dataset.y_train)
        checkpoint.save(model, run.checkpoint_path, epoch, history)
        # history.json last: it is what says the epoch is complete.
        run.write_history(history)
        on_event(EpochEnd(epoch, config.epochs, record, [*files, run.history_path, run.pickle_path]))
    return history


# Settings that may differ on --resume: how long to train, and where the run is.
_RESUMABLE = {"epochs"}


def _resumed_config(saved: TrainConfig, asked: TrainConfig, given: frozenset[str]) -> TrainConfig:
    changes = {}
    for name in sorted(given):
        old, new = getattr(saved, name), getattr(asked, name)
        if name in _RESUMABLE:
            changes[name] = new
        elif new != old:
            flag = "--" + name.replace("_", "-")
            raise ConfigError(
                f"{flag} {new} differs from the run's saved {old}; a resumed run keeps its settings "
                "(only --epochs may change); drop the option or start a new run"
            )
    return dataclasses.replace(saved, **changes).validate()


def _train_epoch(model, x_train, y_train, config: TrainConfig, epoch: int, steps: int, on_event) -> dict[str, np.ndarray]:
    # The reference never shuffles; acgan shuffles every epoch, reproducibly from the seed.
    order = np.random.default_rng([config.seed, epoch]).permutation(len(x_train))
    sums = {"discriminator": np.zeros(3), "generator": np.zeros(3)}
    for step in range(steps):
        idx = order[step * config.batch_size : (step + 1) * config.batch_size]
        losses = model.train_step(x_train[idx], y_train[idx])
        if not (np.all(np.isfinite(losses.discriminator)) and np.all(np.isfinite(losses.generator))):
            raise TrainingError(
                f"losses became non-finite at epoch {epoch}, batch {step + 1} "
                f"(D {losses.discriminator[0]:.4g}, G {losses.generator[0]:.4g}); "
                f"epochs before {epoch} are saved; try a lower --lr or --precision float32"
            )
        sums["discriminator"] += losses.discriminator
        sums["generator"] += losses.generator
        on_event(Step(epoch, step + 1, steps, losses.discriminator, losses.generator))
    return {k: v / steps for k, v in sums.items()}


def _save_epoch(model, run: RunDir, epoch: int, config: TrainConfig, x_raw: np.ndarray, y_raw: np.ndarray) -> list[Path]:
    gen_path, disc_path, plot_path = run.generator_weights(epoch), run.discriminator_weights(epoch), run.plot(epoch)
    atomic.write_with(gen_path, lambda tmp: model.generator.save_weights(str(tmp)))
    atomic.write_with(disc_path, lambda tmp: model.discriminator.save_weights(str(tmp)))
    grid.save_png(epoch_plot(model, epoch, config, x_raw, y_raw), plot_path)
    return [gen_path, disc_path, plot_path]


def epoch_plot(model, epoch: int, config: TrainConfig, x_raw: np.ndarray, y_raw: np.ndarray) -> np.ndarray:
    """The reference's picture: 40 noise vectors x 10 classes, a white column, 400 real digits."""
    rows, classes = grid.PLOT_ROWS, config.num_classes
    noise = np.random.default_rng([config.seed, epoch, 2]).uniform(-1, 1, (rows, config.latent_size))
    noise = np.tile(noise, (classes, 1)).astype(np.float32)
    labels = np.repeat(np.arange(classes), rows).astype(np.int32)
    generated = model.generate(noise, labels)
    # A new slice of the training set each epoch, in file order, wrapping on small sets.
    idx = (np.arange(rows * classes) + (epoch - 1) * rows * classes) % len(x_raw)
    real = data.scale(x_raw[idx])
    return grid.reference_plot(generated, real, y_raw[idx])
