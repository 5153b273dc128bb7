"""`train(config, out) -> history`: data, models, step, checkpoints, wired together.

It prints nothing: it reports progress as events to `on_event`, and the CLI's
display (ui.py) decides how they look.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acgan_cli import atomic, data, distribute, grid
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
class Judging:
    """Quality metrics of this epoch are being computed (--eval-every); judge and metric
    progress events (judge.JudgeStep, evaluate.JudgeReady, metrics.Progress) follow."""

    epoch: int


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    record: dict[str, Any]
    files: list[Path]


Event = Started | Step | Evaluating | Judging | EpochEnd


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
    with the run's saved config, except `epochs` (which may extend the run) and
    `strategy`. Under `--strategy multi-worker` every worker calls this; only the chief
    writes `out` (docs/distributed.md).
    """
    run = RunDir(out)
    info = None
    if resume:
        info = run.read_config()
        config = _resumed_config(info.config, config, given)
    else:
        config = config.validate().with_seed()
    me = distribute.task(config.strategy)
    if resume and me.chief:
        run.remove_abandoned_temporaries()
    # Data first: a bad file must fail before anything in --out is touched.
    dataset = data.load(config.dataset, config.data)

    from acgan_cli import gan  # noqa: F401 - TensorFlow and Keras, imported quietly

    # Before any other TensorFlow operation: multi-worker sets up the runtime's collectives
    # and waits here for every worker. One that fails after this point (an occupied --out)
    # makes the others fail too (their health checks), instead of leaving them waiting.
    strategy = distribute.create(config.strategy)
    if strategy is not None and config.jit == "on":
        raise ConfigError(f"--jit on: XLA does not run under --strategy {config.strategy}; use --jit auto or off")
    removed = run.prepare_new(overwrite) if me.chief and not resume else []
    with distribute.peers_watched(me):
        return _train(config, run, info, dataset, strategy, me, removed, on_event)


def _train(config: TrainConfig, run: RunDir, info: RunInfo | None, dataset: data.Dataset, strategy: Any,
           me: distribute.Task, removed: list[Path], on_event) -> list[dict[str, Any]]:
    """Everything after the strategy exists: every worker runs it, collective for collective."""
    from acgan_cli import checkpoint, gan

    gan.keras.utils.set_random_seed(config.seed)
    device = gan.device_kind()
    if device == "CPU":
        # Bit-identical resumes; costs nothing measurable on a CPU (docs/performance.md).
        gan.tf.config.experimental.enable_op_determinism()
    resolved = _resolved(config, info, device, distribute.describe(strategy, config.strategy, me))
    model = gan.ACGAN(
        latent_size=config.latent_size,
        num_classes=config.num_classes,
        lr=config.lr,
        beta1=config.beta1,
        seed=config.seed,
        precision=resolved["precision"],
        jit=resolved["jit"],
        strategy=strategy,
    )
    history: list[dict[str, Any]] = []
    done = 0
    if info is not None:
        with model.scope():  # assigns every replica's copy of a mirrored variable
            done, history = checkpoint.restore(model, run.checkpoint_path)
    steps = math.ceil(len(dataset.x_train) / config.batch_size)
    if config.steps_per_epoch:
        steps = min(steps, config.steps_per_epoch)
    if me.workers > 1:
        seed = distribute.agree(
            strategy, config.seed,
            {"training images": len(dataset.x_train), "test images": len(dataset.x_test),
             "steps per epoch": steps, "epochs": config.epochs, "completed epochs": done},
        )
        config, resolved["seed"] = dataclasses.replace(config, seed=seed), seed
    if done >= config.epochs:
        raise RunError(f"{run.path} already holds {done} epochs; pass --epochs with more than {done} to extend it")

    with distribute.writable(run, me) as writes:
        if info is not None:
            # A kill between the checkpoint and history.json leaves the checkpoint ahead: it wins.
            writes.write_history(history)
            info = RunInfo(config=config, resolved=resolved, environment=info.environment, data=info.data, created=info.created)
        else:
            info = RunInfo(config=config, resolved=resolved, environment=environment(device), data=dataset.summary())
        writes.write_config(info)
        on_event(Started(writes.path, config, resolved, dataset.summary(), steps, removed, resumed_after=done))
        return _epochs(model, dataset, config, writes, done, steps, history, on_event)


def _resolved(config: TrainConfig, info: RunInfo | None, device: str, placement: dict[str, Any]) -> dict[str, Any]:
    """What `auto` became: kept from the run on resume, except where it runs."""
    from acgan_cli import gan

    if info is not None:
        # The strategy may change on resume: the checkpoint holds plain arrays.
        resolved = {**info.resolved, **placement}
    else:
        resolved = {
            "seed": config.seed,
            "precision": gan.resolve_precision(config.precision, device),
            "jit": gan.resolve_jit(config.jit, device),
            **placement,
        }
    if placement["strategy"] != "default":
        resolved["jit"] = False  # no XLA under tf.distribute, as Keras' fit decides
    return resolved


def _epochs(model, dataset: data.Dataset, config: TrainConfig, run: RunDir, done: int, steps: int,
            history: list[dict[str, Any]], on_event) -> list[dict[str, Any]]:
    from acgan_cli import checkpoint

    if model.distributed:
        batches = distribute.Batches(model.strategy, dataset.x_train, dataset.y_train)
        x_train = None  # the pipeline scales the uint8 images itself
    else:
        batches, x_train = None, data.scale(dataset.x_train)
    x_test, y_test = data.scale(dataset.x_test), dataset.y_test
    for epoch in range(done + 1, config.epochs + 1):
        started = time.monotonic()
        # The reference never shuffles; acgan shuffles every epoch, reproducibly from the seed.
        order = np.random.default_rng([config.seed, epoch]).permutation(len(dataset.x_train))
        if batches is not None:
            feed = batches.epoch(order, config.batch_size, steps)
        else:
            feed = ((x_train[idx], dataset.y_train[idx]) for idx in _batch_indices(order, config.batch_size, steps))
        train_losses = _train_epoch(model, feed, epoch, steps, on_event)
        on_event(Evaluating(epoch))
        test_losses = model.test_losses(x_test, y_test, np.random.default_rng([config.seed, epoch, 1]))
        record = {
            "epoch": epoch,
            "steps": steps,
            "seconds": round(time.monotonic() - started, 3),
            "train": {k: [float(v) for v in train_losses[k]] for k in ("generator", "discriminator")},
            "test": {k: [float(v) for v in test_losses[k]] for k in ("generator", "discriminator")},
        }
        if config.eval_every and (epoch % config.eval_every == 0 or epoch == config.epochs):
            from acgan_cli.evaluate import quality_for_history

            on_event(Judging(epoch))
            record["quality"] = quality_for_history(
                model, dataset, config.seed, n_per_class=config.eval_samples, on_progress=on_event
            )
        history.append(record)
        files = _save_epoch(model, run, epoch, config, dataset.x_train, dataset.y_train)
        checkpoint.save(model, run.checkpoint_path, epoch, history)
        # history.json last: it is what says the epoch is complete.
        run.write_history(history)
        on_event(EpochEnd(epoch, config.epochs, record, [*files, run.history_path, run.pickle_path]))
    return history


# Settings that may differ on --resume: how long to train, and where it runs (the
# checkpoint holds plain arrays, whatever the strategy that wrote it).
_RESUMABLE = {"epochs", "strategy", "eval_every", "eval_samples"}


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
                "(only --epochs and --strategy may change); drop the option or start a new run"
            )
    return dataclasses.replace(saved, **changes).validate()


def _batch_indices(order: np.ndarray, batch_size: int, steps: int) -> Iterator[np.ndarray]:
    for step in range(steps):
        yield order[step * batch_size : (step + 1) * batch_size]


def _train_epoch(model, feed: Iterator[tuple[Any, Any]], epoch: int, steps: int, on_event) -> dict[str, np.ndarray]:
    sums = {"discriminator": np.zeros(3), "generator": np.zeros(3)}
    for step in range(steps):
        losses = model.train_step(*next(feed))
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
