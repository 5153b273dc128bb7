"""The `acgan` command line: thin commands over the library.

TensorFlow is imported inside the commands that need a model, never at module level,
so `acgan --help` and `acgan history` answer at once.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from acgan_cli import __version__, ui
from acgan_cli.errors import AcganError

app = typer.Typer(
    name="acgan",
    help="Train an Auxiliary Classifier GAN on MNIST-like digits, then sample, evaluate and explain it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def command(**kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command whose AcganError becomes one red line and exit code 1."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kw: Any) -> Any:
            try:
                return fn(*args, **kw)
            except AcganError as exc:
                ui.error(str(exc))
                raise typer.Exit(code=1) from None

        return app.command(**kwargs)(wrapper)

    return decorator


def _version(value: bool) -> None:
    if value:
        ui.console.print(f"acgan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Train an Auxiliary Classifier GAN on MNIST-like digits, then sample, evaluate and explain it."""


# --- train ---------------------------------------------------------------------------
class Precision(str, Enum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class Jit(str, Enum):
    auto = "auto"
    on = "on"
    off = "off"


class Strategy(str, Enum):
    auto = "auto"
    default = "default"
    mirrored = "mirrored"
    multi_worker = "multi-worker"


class DatasetName(str, Enum):
    mnist = "mnist"
    fashion_mnist = "fashion-mnist"


@command(rich_help_panel="Training")
def train(
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training set.")] = 15,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory: weights, pictures, history, config.")] = Path("runs"),
    dataset: Annotated[DatasetName, typer.Option(help="Data set downloaded through Keras (cached in ~/.keras/datasets).")] = DatasetName.mnist,
    data: Annotated[
        Optional[Path],
        typer.Option(help="Local data instead: a Keras-layout .npz (x_train, y_train, x_test, y_test) or a folder of the four IDX files."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Real images per step (as many fakes join them).")] = 100,
    latent_size: Annotated[int, typer.Option(min=1, help="Size of the noise vector z.")] = 100,
    lr: Annotated[float, typer.Option(help="Adam learning rate, both networks.")] = 2e-4,
    beta1: Annotated[float, typer.Option(help="Adam beta_1, both networks.")] = 0.5,
    seed: Annotated[Optional[int], typer.Option(help="Random seed; drawn at random and saved in config.json when omitted.")] = None,
    steps_per_epoch: Annotated[Optional[int], typer.Option(min=1, help="Cap on steps per epoch, for quick runs.")] = None,
    eval_every: Annotated[
        int,
        typer.Option(min=0, help="Judge the digits' quality every K epochs (and the last) into history.json; 0: never."),
    ] = 0,
    eval_samples: Annotated[
        int, typer.Option(min=2, help="Generated digits per class for each --eval-every measurement.")
    ] = 1000,
    precision: Annotated[Precision, typer.Option(help="Compute precision; auto: float32 on CPU, mixed float16 on GPU.")] = Precision.auto,
    jit: Annotated[Jit, typer.Option(help="XLA compilation of the step; auto: on for GPU, off for CPU (slower there).")] = Jit.auto,
    strategy: Annotated[
        Strategy,
        typer.Option(
            help="tf.distribute strategy; auto: mirrored over every local GPU when there are several, else default "
            "(one device). multi-worker: one process per host, cluster from TF_CONFIG (docs/distributed.md). "
            "--batch-size stays the global batch.",
        ),
    ] = Strategy.auto,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a run already in --out (its acgan files are deleted).")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last complete epoch, with its saved settings.")
    ] = False,
    ctx: typer.Context = typer.Option(None, hidden=True),
) -> None:
    """Train the ACGAN, writing weights, a picture and the losses after every epoch."""
    from acgan_cli.config import TrainConfig

    if resume and overwrite:
        raise typer.BadParameter("--resume continues the run in --out, --overwrite replaces it: choose one")

    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        latent_size=latent_size,
        lr=lr,
        beta1=beta1,
        seed=seed,
        steps_per_epoch=steps_per_epoch,
        dataset=dataset.value,
        data=None if data is None else str(data.expanduser().resolve()),
        precision=precision.value,
        jit=jit.value,
        strategy=strategy.value,
        eval_every=eval_every,
        eval_samples=eval_samples,
    ).validate()
    from acgan_cli import training

    given = frozenset(name for name in TrainConfig.__dataclass_fields__ if _given(ctx, name))
    display = ui.TrainDisplay()
    try:
        with _terminate_as_interrupt():
            history = training.train(config, out, overwrite=overwrite, resume=resume, given=given, on_event=display)
    except Interrupted as stop:
        display.close()
        from acgan_cli.runs import RunDir

        ui.error(
            f"{stop.reason}; {RunDir(out).completed_epochs()} complete epoch(s) saved in {out}; "
            f"continue with: acgan train --out {out} --resume"
        )
        raise typer.Exit(code=stop.code) from None
    finally:
        display.close()
    ui.console.print(
        f"[green]Done:[/] {len(history)} epoch{'s' if len(history) != 1 else ''} in [bold]{out}[/]: "
        "config.json, history.json, acgan-history.pkl, weights and plots"
    )

class Interrupted(BaseException):
    """Ctrl-C or SIGTERM during training; BaseException so no `except Exception` swallows it."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turn Ctrl-C (exit 130) and SIGTERM (exit 143) into Interrupted while training."""

    def on_term(signum: int, frame: Any) -> None:
        raise Interrupted("terminated (SIGTERM)", 128 + signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted("interrupted", 128 + signal.SIGINT) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _given(ctx: typer.Context | None, name: str) -> bool:
    """Whether the user typed this option (rather than taking its default)."""
    if ctx is None or name not in ctx.params:
        return False
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


# --- history -------------------------------------------------------------------------
@command(name="history", rich_help_panel="Inspecting")
def history_command(
    path: Annotated[
        Path,
        typer.Argument(
            help="A run directory (its history.json, else its acgan-history.pkl), a history.json, "
            "or an acgan-history.pkl, the reference program's included.",
            show_default=False,
        ),
    ],
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the history as JSON on stdout, and nothing else (see docs/history.md)."),
    ] = False,
    plot: Annotated[
        Optional[Path],
        typer.Option(metavar="FILE.png", help="Also draw the loss curves into this PNG file."),
    ] = None,
) -> None:
    """Show the losses of every epoch (and the quality measured in training), the best and the last marked."""
    from acgan_cli.history import load_history, to_json_text

    if plot is not None:
        from acgan_cli import lossplot

        lossplot.check_target(plot)
    run_history = load_history(path)
    if plot is not None:
        lossplot.save_loss_plot(run_history, plot)
    if as_json:
        ui.console.out(to_json_text(run_history))
    else:
        ui.print_history(run_history)
    if plot is not None:
        # With --json, stdout carries the JSON alone.
        (ui.err_console if as_json else ui.console).print(f"Wrote the loss plot to {plot}", markup=False)


# --- sample, evaluate ----------------------------------------------------------------
RunOption = Annotated[Path, typer.Option("--run", "-r", help="Run directory written by `acgan train`.")]


def _epoch_parser(*words: str) -> Callable[[Optional[str]], Any]:
    """--epoch's value: a saved epoch's number, or one of `words` (latest, all)."""

    def parse(value: Optional[str]) -> Any:
        if value is None:
            return None
        text = value.strip().lower()
        if text in words:
            return text
        try:
            number = int(text)
        except ValueError:
            raise typer.BadParameter(f"give an epoch number or {' or '.join(words)}, not {value!r}") from None
        if number < 1:
            raise typer.BadParameter(f"epochs count from 1, got {number}")
        return number

    return parse


@command(name="sample", rich_help_panel="Inspecting")
def sample_command(
    run: RunOption = Path("runs"),
    epoch: Annotated[
        str, typer.Option(metavar="N|latest", callback=_epoch_parser("latest"), help="Saved epoch whose generator draws.")
    ] = "latest",
    digit: Annotated[
        Optional[int], typer.Option("--digit", "-d", min=0, max=9, help="Only this digit; every digit 0-9 without it.")
    ] = None,
    n: Annotated[
        Optional[int],
        typer.Option("--n", "-n", min=1, help="Samples per digit (default 40); walks per digit with --interpolate (default 1)."),
    ] = None,
    seed: Annotated[
        Optional[int],
        typer.Option(min=0, help="Noise seed: the same seed draws the same digits. Drawn at random and printed when omitted."),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", "-o", metavar="FILE.png|FILE.npz",
            help="A .png grid, or a .npz of uint8 images (N, 28, 28) and labels (N,). Default: a PNG in the run directory.",
        ),
    ] = None,
    columns: Annotated[
        Optional[int], typer.Option(min=1, help="Digits per row of the grid (default: up to 10 per digit).")
    ] = None,
    interpolate: Annotated[
        Optional[int],
        typer.Option(
            metavar="STEPS", min=2,
            help="Walk the noise in STEPS steps from one random vector to another, a row per walk and digit.",
        ),
    ] = None,
    styles: Annotated[
        Optional[int],
        typer.Option(
            metavar="ROWS", min=1,
            help="A style grid instead: ROWS noise vectors, each drawn as every digit 0-9 across its row.",
        ),
    ] = None,
    preview: Annotated[
        Optional[bool],
        typer.Option(
            "--preview/--no-preview",
            help="Draw the grid in the terminal too. Default: when stdout is a terminal and the grid is readable there.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Draw digits from a saved generator: a grid per digit, latent walks or a style grid."""
    if styles is not None:
        if interpolate is not None:
            raise typer.BadParameter("draws a style grid, --interpolate latent walks: choose one", param_hint="'--styles'")
        for given, name in ((digit, "--digit"), (n, "--n"), (columns, "--columns")):
            if given is not None:
                raise typer.BadParameter(
                    f"ROWS rows of every digit 0-9 make the style grid; leave out {name}", param_hint="'--styles'"
                )
    if interpolate is not None and columns is not None:
        raise typer.BadParameter("each walk is one row of STEPS digits; leave out --columns", param_hint="'--interpolate'")
    from acgan_cli import sampling

    sheet, path = sampling.sample(
        run, epoch=None if epoch == "latest" else int(epoch), out=out, seed=seed,
        digit=digit, n=n, columns=columns, interpolate=interpolate, styles=styles,
    )
    repeat = "" if seed is not None else f" (drawn at random; repeat with --seed {sheet.plan.seed})"
    ui.console.print(f"Epoch {sheet.epoch} of {run}, seed {sheet.plan.seed}{repeat}", markup=False)
    ui.print_preview(sheet.pixels(), preview)
    ui.console.print(f"Wrote {sheet.plan.about} to {path}", markup=False)


def _metrics_choice(value: Optional[str]) -> Any:
    """--metrics: names checked before any work, as a usage error that lists the choices."""
    if value is None:
        return None
    from acgan_cli.errors import ConfigError
    from acgan_cli.evaluate import parse_choices

    try:
        return ",".join(parse_choices(value))
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None


@command(name="evaluate", rich_help_panel="Inspecting")
def evaluate_command(
    run: RunOption = Path("runs"),
    epoch: Annotated[
        str,
        typer.Option(metavar="N|latest|all", callback=_epoch_parser("latest", "all"), help="Saved epoch(s) to evaluate."),
    ] = "latest",
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics", "-m", metavar="LIST", callback=_metrics_choice,
            help="What to measure, comma-separated: losses (test losses and the discriminator's class accuracy), "
            "accuracy, fid, score, diversity (quality of generated digits, judged by a classifier trained once per "
            "data set, about a minute on MNIST, then cached), quality (those four) or all.",
        ),
    ] = "all",
    samples: Annotated[
        int,
        typer.Option(
            "--samples", "-n", metavar="N", min=2,
            help="Generated digits per class for the quality metrics; fewer is faster but noisier (FD grows).",
        ),
    ] = 1000,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the results as JSON on stdout, and nothing else (see docs/evaluate.md).")
    ] = False,
) -> None:
    """Test losses, class accuracy and quality of the generated digits of saved epochs; kept in evaluation.json."""
    import json

    from acgan_cli import evaluate

    with ui.QualityProgress() as progress:
        result = evaluate.evaluate(run, epoch, on_epoch=progress.epoch, metrics=metrics, n_per_class=samples,
                                   on_progress=progress)
    if as_json:
        ui.console.out(json.dumps(result.to_json(), indent=2))
    else:
        ui.print_evaluation(result)


def main() -> None:
    app(prog_name="acgan")
