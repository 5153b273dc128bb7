"""Rich consoles, progress bars and tables: everything acgan prints goes through here."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    """One red line on stderr; soft_wrap keeps it one line in logs and narrow terminals."""
    err_console.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    err_console.print(f"[yellow]Warning:[/] {escape(message)}", soft_wrap=True)


def _fmt_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def loss_table(epoch: int, record: dict[str, Any]) -> Table:
    """The reference's end-of-epoch table: four rows x total / generation / auxiliary loss."""
    table = Table(title=f"Epoch {epoch} losses", title_justify="left", show_edge=False)
    table.add_column("component")
    for col in ("total", "generation", "auxiliary"):
        table.add_column(col, justify="right")
    for comp in ("generator", "discriminator"):
        for split in ("train", "test"):
            table.add_row(f"{comp} ({split})", *(f"{v:.4f}" for v in record[split][comp]))
    return table


class TrainDisplay:
    """Shows training events: live bars on a terminal, periodic lines in a log."""

    def __init__(self, out: Console | None = None) -> None:
        self.console = out or console
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.epochs = 0
        self.steps = 0
        self.resumed_after = 0
        self.started = time.monotonic()
        self._last_line = 0.0

    def __call__(self, event: Any) -> None:
        from acgan_cli import training  # events only; no TensorFlow

        if isinstance(event, training.Started):
            self._started(event)
        elif isinstance(event, training.Step):
            self._step(event)
        elif isinstance(event, training.Evaluating):
            self._evaluating(event)
        elif isinstance(event, training.EpochEnd):
            self._epoch_end(event)

    def _started(self, e: Any) -> None:
        c, r = e.config, e.resolved
        self.epochs, self.steps, self.resumed_after = c.epochs, e.steps_per_epoch, e.resumed_after
        if e.removed:
            self.console.print(f"[yellow]removed[/] the previous run's {len(e.removed)} files from {escape(str(e.run))} (--overwrite)")
        if e.resumed_after:
            self.console.print(f"Resuming [bold]{escape(str(e.run))}[/] after epoch {e.resumed_after}")
        self.console.print(
            f"Training ACGAN on [bold]{escape(str(e.data['source']))}[/] "
            f"({e.data['train']:,} train / {e.data['test']:,} test images) into [bold]{escape(str(e.run))}[/]"
        )
        self.console.print(
            f"{c.epochs} epochs x {e.steps_per_epoch} steps, batch {c.batch_size}, latent {c.latent_size}, "
            f"lr {c.lr:g}, beta1 {c.beta1:g}, seed {c.seed}, precision {r['precision']}, "
            f"XLA {'on' if r['jit'] else 'off'}"
        )
        self.started = time.monotonic()
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[losses]}"),
                console=self.console,
                transient=False,
            )
            self.progress.start()
            self.run_task = self.progress.add_task(
                "run", total=(self.epochs - e.resumed_after) * self.steps, losses=""
            )

    def _new_epoch_task(self, epoch: int) -> None:
        assert self.progress is not None
        self.epoch_task = self.progress.add_task(f"epoch {epoch}/{self.epochs}", total=self.steps, losses="")

    def _step(self, e: Any) -> None:
        losses = f"D {e.discriminator[0]:.3f}  G {e.generator[0]:.3f}"
        if self.progress is not None:
            if e.step == 1:
                self._new_epoch_task(e.epoch)
            self.progress.update(self.epoch_task, completed=e.step, losses=losses)
            self.progress.advance(self.run_task)
            return
        # In a log: one line every 10% of an epoch or 30 s, whichever comes first.
        now = time.monotonic()
        every = max(1, e.steps // 10)
        if e.step == e.steps or e.step % every == 0 or now - self._last_line > 30:
            self._last_line = now
            done = (e.epoch - 1 - self.resumed_after) * e.steps + e.step
            elapsed = now - self.started
            eta = elapsed / done * ((self.epochs - self.resumed_after) * self.steps - done)
            self.console.print(
                f"epoch {e.epoch}/{self.epochs} step {e.step}/{e.steps}  {losses}  "
                f"elapsed {_fmt_seconds(elapsed)}  eta {_fmt_seconds(eta)}"
            )

    def _evaluating(self, e: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.epoch_task, losses="computing test losses...")
        else:
            self.console.print(f"epoch {e.epoch}: computing test losses")

    def _epoch_end(self, e: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.epoch_task, losses=f"done in {_fmt_seconds(e.record['seconds'])}")
        self.console.print(loss_table(e.epoch, e.record))
        plot = next((p for p in e.files if p.suffix == ".png"), None)
        if plot is not None:
            self.console.print(f"  saved weights, history and [bold]{escape(str(plot))}[/]")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


# --- history ---------------------------------------------------------------------------
# Appended as a section; its imports stay with it.
import math  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from acgan_cli.history import History

_HISTORY_GROUPS = (("generator", "train"), ("generator", "test"), ("discriminator", "train"), ("discriminator", "test"))
_HISTORY_COLOURS = {"generator": "cyan", "discriminator": "magenta"}


def print_history(history: History) -> None:
    """`acgan history`'s table: one row per epoch, the best and the last marked.

    The twelve loss columns need about 100 characters; a narrower terminal gets the
    generation and auxiliary columns only (their sum is the total). A pipe or a log
    always gets all twelve, unwrapped.
    """
    from rich.console import Group
    from rich.measure import Measurement
    from rich.text import Text

    from acgan_cli.history import BEST_BY_TEXT

    grid = _history_grid(history, narrow=False)
    needed = Measurement.get(console, console.options.update_width(10_000), grid).maximum
    narrow = console.is_terminal and needed > console.width
    if narrow:
        grid = _history_grid(history, narrow=True)
        notes = [
            "G generator, D discriminator · gen: real/fake loss, aux: class loss",
            f"best: {BEST_BY_TEXT} · totals need {needed} columns",
        ]
    else:
        notes = [
            "gen: real/fake (generation) loss · aux: class (auxiliary) loss · total = gen + aux",
            f"best: {BEST_BY_TEXT}",
        ]
    view = Group(
        Text(f"Losses per epoch: {history.source}", style="bold"),
        grid,
        *(Text(note, style="dim") for note in notes),
    )
    # Rich never prints wider than its console, so a pipe gets a console as wide as the table.
    out = console if console.is_terminal else Console(file=console.file, width=max(needed, console.width), highlight=False)
    out.print(view)


def _history_grid(history: History, narrow: bool) -> Table:
    """One small table per component side by side: Rich has no column spans, so each
    group gets its own title; single-line cells keep the rows aligned across them."""
    from rich import box

    columns = ("generation", "auxiliary") if narrow else ("total", "generation", "auxiliary")
    headers = {"total": "total", "generation": "gen", "auxiliary": "aux"}

    def part(title: str, style: str | None, heads: list[str]) -> Table:
        table = Table(
            box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
            title=title, title_style=style, header_style="bold",
        )
        for head in heads:
            table.add_column(head, justify="right", no_wrap=True)
        return table

    def title(network: str, split: str) -> str:
        return f"{network[0].upper()} {split}" if narrow else f"{network} {split}"

    epochs = part(" ", None, ["epoch"])
    groups = [part(title(n, s), f"bold {_HISTORY_COLOURS[n]}", [headers[c] for c in columns]) for n, s in _HISTORY_GROUPS]
    marks = part(" ", None, [""])
    best, last = history.best, history.last
    for epoch in history.epochs:
        style = "bold green" if epoch is best else None
        epochs.add_row(str(epoch.number), style=style)
        for (network, split), table in zip(_HISTORY_GROUPS, groups):
            losses = epoch.losses(split, network)
            table.add_row(*(_loss_text(getattr(losses, c)) for c in columns), style=style)
        marks.add_row(", ".join(name for name, marked in (("best", best), ("last", last)) if marked is epoch), style=style)
    grid = Table.grid(padding=(0, 2))
    for _ in range(len(groups) + 2):
        grid.add_column(no_wrap=True)
    grid.add_row(epochs, *groups, marks)
    return grid


def _loss_text(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else str(value)  # nan, inf: a diverged epoch


# --- sample ----------------------------------------------------------------------------
if TYPE_CHECKING:
    import numpy as np

# Beyond half size a 28-pixel digit stops being readable; taller than this scrolls away.
PREVIEW_MAX_SHRINK = 2
PREVIEW_MAX_LINES = 60
# Without colours, brightness as characters, dark to light (MNIST draws light on dark).
_SHADES = " .:-=+*#%@"


def preview_text(pixels: np.ndarray, max_width: int, colour: bool, max_shrink: int | None = None) -> Any:
    """A greyscale uint8 picture as terminal text, or None when it would need shrinking more than `max_shrink`.

    Each character is two pixels, one above the other: '▀' in the top pixel's colour on
    the bottom pixel's, which keeps the picture's proportions in a terminal cell.
    """
    import numpy as np
    from PIL import Image
    from rich.color import Color
    from rich.style import Style
    from rich.text import Text

    height, width = pixels.shape
    shrink = max(1, -(-width // max(max_width, 1)))
    if max_shrink is not None and shrink > max_shrink:
        return None
    if shrink > 1:
        size = (-(-width // shrink), -(-height // shrink))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BOX))
    if len(pixels) % 2:
        pixels = np.vstack([pixels, np.full((1, pixels.shape[1]), 255, np.uint8)])
    styles: dict[tuple[int, int], Style] = {}
    text = Text(no_wrap=True, overflow="ignore")
    for top, bottom in zip(pixels[0::2].tolist(), pixels[1::2].tolist()):
        if colour:
            for a, b in zip(top, bottom):
                style = styles.get((a, b))
                if style is None:
                    style = styles[(a, b)] = Style(color=Color.from_rgb(a, a, a), bgcolor=Color.from_rgb(b, b, b))
                text.append("▀", style)
        else:
            text.append("".join(_SHADES[(a + b) * len(_SHADES) // 511] for a, b in zip(top, bottom)))
        text.append("\n")
    text.rstrip()
    return text


def print_preview(pixels: np.ndarray, show: bool | None = None) -> bool:
    """Show a sample grid in the terminal: when asked (`show` True), or by default when
    stdout is a terminal and the grid is readable there (at least half size, not too
    tall). Returns whether it was shown."""
    if show is False or (show is None and not console.is_terminal):
        return False
    text = preview_text(pixels, console.width, console.color_system is not None, None if show else PREVIEW_MAX_SHRINK)
    if text is None or (show is None and len(text.plain.splitlines()) > PREVIEW_MAX_LINES):
        return False
    console.print(text, soft_wrap=True)
    return True


# --- evaluate --------------------------------------------------------------------------
if TYPE_CHECKING:
    from acgan_cli.evaluate import Evaluation


def print_evaluation(evaluation: Evaluation) -> None:
    """`acgan evaluate`'s table: a row per epoch, a column per metric, grouped by network.

    The columns come from evaluate.METRICS, so a new metric needs no change here.
    """
    from rich import box
    from rich.console import Group
    from rich.text import Text

    from acgan_cli.evaluate import METRICS, STREAM

    def part(title: str, style: str | None, heads: list[str]) -> Table:
        table = Table(
            box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
            title=title, title_style=style, header_style="bold",
        )
        for head in heads:
            table.add_column(head, justify="right", no_wrap=True)
        return table

    groups: dict[str, list[Any]] = {}
    for metric in METRICS:
        groups.setdefault(metric.group, []).append(metric)
    epochs = part(" ", None, ["epoch"])
    tables = [
        part(name, f"bold {_HISTORY_COLOURS.get(name, 'green')}", [m.header for m in metrics])
        for name, metrics in groups.items()
    ]
    for result in evaluation.epochs:
        epochs.add_row(str(result.epoch))
        for table, metrics in zip(tables, groups.values()):
            table.add_row(*(m.format(result.metrics.get(m.key)) for m in metrics))
    grid = Table.grid(padding=(0, 2))
    for _ in range(len(tables) + 1):
        grid.add_column(no_wrap=True)
    grid.add_row(epochs, *tables)
    seed = evaluation.info.config.seed
    data = evaluation.data
    console.print(
        Group(
            Text(f"Test evaluation: {evaluation.run}", style="bold"),
            grid,
            Text(
                f"losses on {data['test']:,} test images ({data['source']}) and fresh fakes; total = gen + aux; "
                f"accuracy: class head on the real test images",
                style="dim",
            ),
            Text(f"noise of epoch E from numpy default_rng([{seed}, E, {STREAM}]); saved in {evaluation.path}", style="dim"),
        )
    )
