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


def quality_line(q: dict[str, Any]) -> str:
    """One line of --eval-every results: headline metrics with real data's values, alarms in red."""
    real = q.get("real", {})
    parts = []
    for key, label, fmt in (("accuracy", "class accuracy", "{:.1%}"), ("fid", "FD", "{:.2f}"),
                            ("score", "score", "{:.2f}"), ("diversity", "diversity", "{:.2f}")):
        if q.get(key) is not None:
            ref = f" (real {fmt.format(real[key])})" if real.get(key) is not None else ""
            parts.append(f"{label} {fmt.format(q[key])}{ref}")
    line = "  quality: " + ", ".join(parts)
    if q.get("judge_accuracy") is not None:
        line += f"; judge {q['judge_accuracy']:.1%} on real test digits"
    reasons: dict[Any, list[str]] = {}
    for alarm in q.get("alarms", []):
        reasons.setdefault(alarm["class"], []).append(str(alarm["reason"]))
    if reasons:
        named = ", ".join(f"class {c} ({', '.join(r)})" for c, r in reasons.items())
        line += f"\n  [bold red]alarm: {escape(named)}[/]"
    return line


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
        elif isinstance(event, training.Judging):
            self._judging(event)
        else:
            self._quality_progress(event)

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
        # One bar for the run and one for the epoch at work; finished epochs live on in their tables.
        if getattr(self, "epoch_task", None) is not None:
            self.progress.remove_task(self.epoch_task)
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

    def _judging(self, e: Any) -> None:
        self._judge_note = ""
        if self.progress is not None:
            self.progress.update(self.epoch_task, losses="judging the digits' quality...")
        else:
            self.console.print(f"epoch {e.epoch}: judging the digits' quality")

    def _quality_progress(self, e: Any) -> None:
        """Judge training and metric passes (--eval-every): a note on the epoch's bar, or a few log lines."""
        name = type(e).__name__
        if name == "JudgeStep":
            note = f"training the judge: epoch {e.epoch}/{e.epochs}, accuracy {e.accuracy:.1%}"
        elif name == "Progress":
            note = f"judging {e.task}: {e.done:,}/{e.total:,}"
        elif name == "JudgeReady":
            how = "from the cache" if e.cached else f"trained in {_fmt_seconds(e.seconds or 0)}"
            self.console.print(f"  judge {how}: {e.test_accuracy:.2%} on {e.test_images:,} real test digits")
            return
        else:
            return
        if self.progress is not None:
            self.progress.update(self.epoch_task, losses=note)
        elif note.split(":")[0] != getattr(self, "_judge_note", ""):
            self._judge_note = note.split(":")[0]
            self.console.print(f"  {note}")

    def _epoch_end(self, e: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.epoch_task, losses=f"done in {_fmt_seconds(e.record['seconds'])}")
        self.console.print(loss_table(e.epoch, e.record))
        quality = e.record.get("quality")
        if quality:
            self.console.print(quality_line(quality))
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
    always gets all twelve, unwrapped. Epochs whose quality was measured during
    training add the quality columns, a "real" row and the alarms, in red.
    """
    from rich.console import Group
    from rich.measure import Measurement
    from rich.text import Text

    from acgan_cli.history import BEST_BY_TEXT

    def width(grid: Table) -> int:
        return Measurement.get(console, console.options.update_width(10_000), grid).maximum

    grid = _history_grid(history, narrow=False)
    needed = width(grid)
    narrow = console.is_terminal and needed > console.width
    if narrow:
        grid = _history_grid(history, narrow=True)
        left_out = "totals"
        if history.quality_epochs and width(grid) > console.width:
            # The quality columns matter more than the train losses.
            grid, left_out = _history_grid(history, narrow=True, test_only=True), "totals and train losses"
        notes = [
            "G generator, D discriminator · gen: real/fake loss, aux: class loss",
            f"best: {BEST_BY_TEXT} · {left_out} need {needed} columns",
        ]
    else:
        notes = [
            "gen: real/fake (generation) loss · aux: class (auxiliary) loss · total = gen + aux",
            f"best: {BEST_BY_TEXT}",
        ]
    measured = history.quality_epochs
    if measured:
        latest = measured[-1].quality or {}
        notes += _quality_notes(latest.get("n_per_class"), latest.get("judge_accuracy"), None, "measured in training")
    alarms = [line for e in measured for line in _alarm_lines(e.number, e.alarms)]
    view = Group(
        Text(f"Losses per epoch: {history.source}", style="bold"),
        grid,
        *(Text(note, style="dim") for note in notes),
        *alarms,
    )
    _print_wide(view, needed)


def _history_grid(history: History, narrow: bool, test_only: bool = False) -> Table:
    """One small table per component side by side: Rich has no column spans, so each
    group gets its own title; single-line cells keep the rows aligned across them.
    `test_only` leaves out the train losses."""
    columns = ("generation", "auxiliary") if narrow else ("total", "generation", "auxiliary")
    shown = [(n, s) for n, s in _HISTORY_GROUPS if not (test_only and s == "train")]
    headers = {"total": "total", "generation": "gen", "auxiliary": "aux"}

    def title(network: str, split: str) -> str:
        return f"{network[0].upper()} {split}" if narrow else f"{network} {split}"

    epochs = _part(" ", None, ["epoch"])
    groups = [_part(title(n, s), f"bold {_HISTORY_COLOURS[n]}", [headers[c] for c in columns]) for n, s in shown]
    measured = history.quality_epochs
    quality = _part("quality" if narrow else "quality (judge)", "bold green", _quality_heads(narrow)) if measured else None
    marks = _part(" ", None, [""])
    best, last = history.best, history.last
    for epoch in history.epochs:
        style = "bold green" if epoch is best else None
        epochs.add_row(str(epoch.number), style=style)
        for (network, split), table in zip(shown, groups):
            losses = epoch.losses(split, network)
            table.add_row(*(_loss_text(getattr(losses, c)) for c in columns), style=style)
        if quality is not None:
            values = {k: epoch.quality_value(k) for k in _QUALITY_COLUMNS}
            quality.add_row(*_quality_cells(values, epoch.alarms if epoch.quality is not None else None), style=style)
        marks.add_row(", ".join(name for name, marked in (("best", best), ("last", last)) if marked is epoch), style=style)
    if quality is not None:
        # What real digits get, from the latest measurement: the yardstick of the columns above.
        epochs.add_row("real", style="dim")
        for table in groups:
            table.add_row(*("" for _ in columns))
        quality.add_row(*_quality_cells({k: measured[-1].quality_value(k, real=True) for k in _QUALITY_COLUMNS}),
                        style="dim")
        marks.add_row("")
    parts = [epochs, *groups, *([quality] if quality is not None else []), marks]
    grid = Table.grid(padding=(0, 2))
    for _ in parts:
        grid.add_column(no_wrap=True)
    grid.add_row(*parts)
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
    """`acgan evaluate`'s table: a row per epoch, a column per metric, grouped; what real data gets below.

    The columns come from evaluate.METRICS (those computed this time), so a new metric
    needs no change here. With quality metrics: an alarms column, a "real" row (the
    judge's own test accuracy under accuracy), per-class accuracy and the alarms in red.
    """
    from rich.console import Group
    from rich.measure import Measurement
    from rich.text import Text

    from acgan_cli.evaluate import STREAM

    columns = evaluation.columns
    reports = [r.quality for r in evaluation.epochs if r.quality is not None]
    grid = _evaluation_grid(evaluation, narrow=False)
    needed = Measurement.get(console, console.options.update_width(10_000), grid).maximum
    notes = []
    if console.is_terminal and needed > console.width:
        grid = _evaluation_grid(evaluation, narrow=True)
        notes.append(f"G generator, D discriminator, acc accuracy, div diversity · the whole table needs {needed} columns")

    seed = evaluation.info.config.seed
    data = evaluation.data
    losses = any(not m.is_quality for m in columns)
    if losses:
        notes.append(
            f"losses on {data['test']:,} test images ({data['source']}) and fresh fakes; total = gen + aux; "
            f"accuracy: class head on the real test images"
        )
    if reports:
        judge = evaluation.judge
        notes += _quality_notes(reports[-1]["n_per_class"], reports[-1]["judge"]["test_accuracy"], data["test"],
                                "judge from the cache" if judge is None or judge.cached else "judge trained just now")
    noise = [f"loss noise of epoch E from numpy default_rng([{seed}, E, {STREAM}])"] if losses else []
    if reports:
        noise.append(f"digits from default_rng({seed}) for every epoch")
    notes.append(f"{'; '.join(noise)}; saved in {evaluation.path}")
    per_class, alarms = [], []
    for result in evaluation.epochs:
        report = result.quality or {}
        if report.get("accuracy"):
            per_class.append(_per_class_line(result.epoch, report["accuracy"]["per_class"]))
        alarms += _alarm_lines(result.epoch, report.get("alarms") or [])
    view = Group(
        Text(f"Test evaluation: {evaluation.run}", style="bold"), grid, *per_class,
        *(Text(n, style="dim") for n in notes), *alarms,
    )
    _print_wide(view, needed)


def _evaluation_grid(evaluation: Evaluation, narrow: bool) -> Table:
    """A column group per metric group; `narrow` (a terminal too narrow for the rest): losses
    without their totals (the sum of the other two) and shorter headers."""
    short = {"total": None, "accuracy": "acc", "diversity": "div"} if narrow else {}
    groups: dict[str, list[Any]] = {}
    for metric in evaluation.columns:
        if not (short.get(metric.header, "") is None and not metric.is_quality):
            groups.setdefault(metric.group, []).append(metric)
    reports = [r.quality for r in evaluation.epochs if r.quality is not None]
    epochs = _part(" ", None, ["epoch"])
    tables = []
    for name, metrics in groups.items():
        heads = [short.get(m.header) or m.header for m in metrics] + (["alarms"] if metrics[0].is_quality else [])
        title = {"generator": "G", "discriminator": "D", "classes": "class"}.get(name, name) if narrow else name
        tables.append(_part(title, f"bold {_HISTORY_COLOURS.get(name, 'green')}", heads))
    for result in evaluation.epochs:
        epochs.add_row(str(result.epoch))
        for table, metrics in zip(tables, groups.values()):
            cells: list[Any] = [m.format(result.metrics.get(m.key)) for m in metrics]
            if metrics[0].is_quality:
                cells.append(_alarm_cell((result.quality or {}).get("alarms") or []))
            table.add_row(*cells)
    if reports:
        # What real digits get: the yardstick of the column above; under accuracy, the judge's own.
        epochs.add_row("real", style="dim")
        for table, metrics in zip(tables, groups.values()):
            if metrics[0].is_quality:
                table.add_row(*(m.format((reports[-1].get(m.key) or {}).get("real")) for m in metrics), "", style="dim")
            else:
                table.add_row(*("" for _ in metrics))
    grid = Table.grid(padding=(0, 2))
    for _ in range(len(tables) + 1):
        grid.add_column(no_wrap=True)
    grid.add_row(epochs, *tables)
    return grid


# --- quality of generated digits: shared by evaluate and history ---------------------------
_QUALITY_COLUMNS = ("accuracy", "fid", "score", "diversity")
# Under half of a class's digits recognised as that class: the generator has not learnt it.
_WEAK_CLASS = 0.5


def _part(title: str, style: str | None, heads: list[str]) -> Table:
    """One titled column group of a table made of groups side by side (Rich has no column spans)."""
    from rich import box

    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
        title=title, title_style=style, header_style="bold",
    )
    for head in heads:
        table.add_column(head, justify="right", no_wrap=True)
    return table


def _print_wide(view: Any, needed: int) -> None:
    # Rich never prints wider than its console, so a pipe gets a console as wide as the table.
    if console.is_terminal:
        console.print(view)
    else:
        Console(file=console.file, width=max(needed, console.width), highlight=False).print(view, soft_wrap=True)


def _quality_heads(narrow: bool = False) -> list[str]:
    return ["acc", "FD", "score", "div", "alarms"] if narrow else ["accuracy", "FD", "score", "diversity", "alarms"]


def _quality_text(key: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.1%}" if key == "accuracy" else f"{value:.2f}"


def _quality_cells(values: dict[str, float], alarms: list[dict[str, Any]] | None = None) -> list[Any]:
    """The quality columns of one row; `alarms` None: a row without alarms (real data, or nothing measured)."""
    if alarms is None and all(math.isnan(v) for v in values.values()):
        return ["" for _ in (*_QUALITY_COLUMNS, "alarms")]
    cells: list[Any] = [_quality_text(k, values[k]) for k in _QUALITY_COLUMNS]
    return [*cells, "" if alarms is None else _alarm_cell(alarms)]


def _alarm_cell(alarms: list[dict[str, Any]]) -> Any:
    """The classes with an alarm, in red; "none" when every class is alive."""
    from rich.text import Text

    from acgan_cli.runs import describe_epochs  # "1-3, 7": ranges of consecutive numbers

    classes = sorted({int(a["class"]) for a in alarms})
    if not classes:
        return Text("none", style="dim")
    return Text(describe_epochs(classes).replace(" ", ""), style="bold red")


def _alarm_lines(epoch: int, alarms: list[dict[str, Any]]) -> list[Any]:
    """One red line per epoch and class: the reasons and their numbers."""
    from rich.text import Text

    by_class: dict[int, list[str]] = {}
    for alarm in alarms:
        detail = f" — {alarm['detail']}" if alarm.get("detail") else ""
        by_class.setdefault(int(alarm["class"]), []).append(f"{alarm['reason']}{detail}")
    return [
        Text(f"alarm: epoch {epoch}, class {digit}: {'; '.join(reasons)}", style="bold red")
        for digit, reasons in sorted(by_class.items())
    ]


def _per_class_line(epoch: int, per_class: list[float | None]) -> Any:
    """The judge's accuracy on each class of generated digits; classes under half in yellow."""
    from rich.text import Text

    line = Text(f"epoch {epoch} accuracy per class:")
    for digit, value in enumerate(per_class):
        weak = value is not None and value < _WEAK_CLASS
        line.append(f"  {digit} ")
        line.append("n/a" if value is None else f"{value:.0%}", style="bold yellow" if weak else None)
    return line


def _quality_notes(n_per_class: int | None, judge_accuracy: float | None, n_test: int | None, how: str) -> list[str]:
    digits = f"{n_per_class:,} generated digits per class" if n_per_class else "generated digits"
    trust = "n/a" if judge_accuracy is None else f"{judge_accuracy:.1%}"
    test = f"the {n_test:,} real test digits" if n_test else "the real test digits"
    return [
        f"quality: {digits} ({how}), judged by a CNN trained on the run's train split; it recognises {trust} of {test}",
        "real: what real digits get (accuracy: the judge's own; FD: real train digits against the test split) · "
        "FD lower is better · score at most 10 · diversity 1 = as varied as real digits",
    ]


class QualityProgress:
    """`acgan evaluate`'s progress on stderr: a spinner for the epoch at work, bars for the
    judge's training (once per data set), its pass over real digits and each epoch's
    generated digits. Transient on a terminal, silent in a log, except for two lines
    that stay: that the judge was trained (and how well), and a low-trust warning."""

    def __init__(self, out: Console | None = None) -> None:
        from rich.progress import SpinnerColumn, TaskProgressColumn

        self.console = out or err_console
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
            console=self.console, transient=True,
        )
        self.tasks: dict[str, Any] = {}
        self.label = ""

    def __enter__(self) -> QualityProgress:
        # Only a terminal sees the bars (Rich's Progress ends a log's output with an empty line).
        self.live = self.console.is_terminal
        if self.live:
            self.progress.start()
        self.status = self.progress.add_task("loading the run and its test data...", total=None, info="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live:
            self.progress.stop()

    def epoch(self, epoch: int, index: int, count: int) -> None:
        self.label = f"epoch {epoch}" + (f" ({index + 1} of {count})" if count > 1 else "")
        self.progress.update(self.status, description=f"evaluating {self.label}...")

    def _bar(self, name: str, description: str, total: int, done: int, info: str = "") -> None:
        task = self.tasks.get(name)
        if task is None:
            task = self.tasks[name] = self.progress.add_task(description, total=total, info=info)
        self.progress.update(task, description=description, total=total, completed=done, info=info)

    def _drop(self, name: str) -> None:
        task = self.tasks.pop(name, None)
        if task is not None:
            self.progress.remove_task(task)

    def __call__(self, event: Any) -> None:
        from acgan_cli.evaluate import JUDGE_TRUST, JudgeReady
        from acgan_cli.metrics import Progress as Done

        kind = type(event).__name__
        if kind == "JudgeStep" or (isinstance(event, Done) and event.task == "reference"):
            self.progress.update(self.status, description="preparing the quality metrics...")
        if kind == "JudgeStep":  # judge.py imports TensorFlow; its events are told by name
            self._bar("judge", "training the judge (once per data set)", event.total, event.done,
                      f"epoch {event.epoch}/{event.epochs} · accuracy {event.accuracy:.1%}")
        elif isinstance(event, JudgeReady):
            self._drop("judge")
            if not event.cached:
                self.console.print(
                    f"Trained the judge in {event.seconds or 0:.0f} s: it recognises {event.test_accuracy:.1%} of the "
                    f"{event.test_images:,} real test digits; kept in {escape(str(event.folder))}"
                )
            if event.test_accuracy < JUDGE_TRUST:
                warn(f"the judge recognises only {event.test_accuracy:.1%} of the {event.test_images:,} real test "
                     "digits: its quality numbers say little (too few or too hard training digits?)")
        elif isinstance(event, Done) and event.task == "reference":
            self._bar("reference", "judging the real digits (once per judge)", event.total, event.done)
            if event.done >= event.total:
                self._drop("reference")
        elif isinstance(event, Done) and event.task == "samples":
            self._drop("reference")
            if event.done == 0:
                self._drop("samples")  # a fresh bar, and clock, for each epoch
            self._bar("samples", "judging generated digits", event.total, event.done)
