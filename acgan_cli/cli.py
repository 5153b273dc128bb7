"""The `acgan` command line: thin commands over the library.

TensorFlow is imported inside the commands that need a model, never at module level,
so `acgan --help` and `acgan history` answer at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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
    precision: Annotated[Precision, typer.Option(help="Compute precision; auto: float32 on CPU, mixed float16 on GPU.")] = Precision.auto,
    jit: Annotated[Jit, typer.Option(help="XLA compilation of the step; auto: on for GPU, off for CPU (slower there).")] = Jit.auto,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a run already in --out (its acgan files are deleted).")] = False,
) -> None:
    """Train the ACGAN, writing weights, a picture and the losses after every epoch."""
    from acgan_cli.config import TrainConfig

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
    ).validate()
    from acgan_cli import training

    display = ui.TrainDisplay()
    try:
        history = training.train(config, out, overwrite=overwrite, on_event=display)
    except KeyboardInterrupt:
        display.close()
        done = len(_saved_epochs(out))
        ui.error(f"interrupted; {done} complete epoch(s) saved in {out}")
        raise typer.Exit(code=130) from None
    finally:
        display.close()
    ui.console.print(
        f"[green]Done:[/] {len(history)} epoch{'s' if len(history) != 1 else ''} in [bold]{out}[/]: "
        "config.json, history.json, acgan-history.pkl, weights and plots"
    )


def _saved_epochs(out: Path) -> list[int]:
    from acgan_cli.runs import RunDir

    return RunDir(out).saved_epochs()

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
    """Show the losses of every epoch, the best and the last marked; as a table, JSON or a plot."""
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


def main() -> None:
    app()
