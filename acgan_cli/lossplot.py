"""Loss curves of a run as a PNG, drawn with Pillow alone (no matplotlib, no TensorFlow).

Three panels share the epoch axis: total, generation (real/fake) and auxiliary (class)
loss. Blue is the generator, orange the discriminator; train is solid, test dashed. The
generation panel carries a dotted line at -log(0.5), where both networks' real/fake
losses sit when the discriminator cannot tell real from fake. When quality was
measured during training, two more panels follow: the Fréchet distance (log scale when
it spans a lot) and accuracy, diversity and score / 10, each with real digits' value
dotted and the epochs with alarms marked in red.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from acgan_cli import atomic
from acgan_cli.errors import AcganError
from acgan_cli.history import BEST_BY_TEXT, NASH_LOSS, NETWORKS, SPLITS, Epoch, History

# Layout in final pixels: title, subtitle and legend, then three panels, each titled above.
_LEFT, _RIGHT, _TOP = 78, 24, 112
_PANEL_H, _PANEL_GAP, _BOTTOM = 238, 58, 58
WIDTH, HEIGHT = 1000, _TOP + 3 * _PANEL_H + 2 * _PANEL_GAP + _BOTTOM
# With quality records: two panels more.
QUALITY_HEIGHT = HEIGHT + 2 * (_PANEL_H + _PANEL_GAP)
_SCALE = 2  # drawn twice as large and shrunk: Pillow's lines have no anti-aliasing

_PANELS = (
    ("total", "Total loss"),
    ("generation", "Generation loss (real / fake)"),
    ("auxiliary", "Auxiliary loss (class)"),
)
_COLOURS = {"generator": (31, 119, 180), "discriminator": (255, 127, 14)}  # colour-blind safe pair
_INK, _GRID, _MUTED, _NASH, _BEST = (40, 40, 40), (226, 226, 226), (110, 110, 110), (120, 120, 120), (44, 160, 44)
# Okabe-Ito colours for the quality panels; red for alarms.
_QUALITY_COLOURS = {"fid": (213, 94, 0), "accuracy": (0, 158, 115), "diversity": (204, 121, 167), "score": (86, 180, 233)}
_ALARM = (214, 39, 40)


def check_target(target: str | Path) -> Path:
    """The plot's path, refused before any work when Pillow would not write a PNG there."""
    target = Path(target)
    if target.suffix.lower() != ".png":
        raise AcganError(f"cannot draw the loss plot into {target}: give a file name ending in .png")
    if target.is_dir():
        raise AcganError(f"cannot draw the loss plot into {target}: it is a directory; give a file name ending in .png")
    return target


def save_loss_plot(history: History, target: str | Path) -> Path:
    """Draw `history` into the PNG file `target`, atomically; return the path."""
    target = check_target(target)
    image = draw_loss_plot(history)
    atomic.write_with(target, lambda tmp: image.save(tmp, format="PNG"))
    return target


def draw_loss_plot(history: History) -> Image.Image:
    measured = history.quality_epochs
    height = QUALITY_HEIGHT if measured else HEIGHT
    canvas = _Canvas(WIDTH * _SCALE, height * _SCALE)
    title = canvas.fit(f"Losses per epoch: {history.source}", size=19, width=WIDTH - 40)
    canvas.text((WIDTH / 2, 12), title, size=19, anchor="mt", bold=True)
    best = history.best
    note = f"best epoch {best.number} ({BEST_BY_TEXT})" if best else "no best epoch: no finite loss to compare"
    canvas.text((WIDTH / 2, 40), f"{note} · last epoch {history.last.number}", size=14, anchor="mt", fill=_MUTED)
    _legend(canvas, y=68)
    xs = [float(e.number) for e in history.epochs]
    best_x = float(best.number) if best else None
    for i, (column, panel_title) in enumerate(_PANELS):
        top = _TOP + i * (_PANEL_H + _PANEL_GAP)
        box = (_LEFT, top, WIDTH - _RIGHT, top + _PANEL_H)
        series = {(s, n): history.series(s, n, column) for s in SPLITS for n in NETWORKS}
        _panel(canvas, box, panel_title, xs, series, nash=column == "generation", best_x=best_x, label_best=i == 0)
    if measured:
        boxes = [(_LEFT, top, WIDTH - _RIGHT, top + _PANEL_H)
                 for top in (_TOP + i * (_PANEL_H + _PANEL_GAP) for i in (3, 4))]
        _quality_panels(canvas, boxes, xs, measured, best_x)
    canvas.text((_LEFT + (WIDTH - _LEFT - _RIGHT) / 2, height - 10), "epoch", size=15, anchor="mb")
    return canvas.image.resize((WIDTH, height), Image.Resampling.LANCZOS)


def _panel(
    canvas: _Canvas,
    box: tuple[float, float, float, float],
    title: str,
    xs: list[float],
    series: dict[tuple[str, str], list[float]],
    nash: bool,
    best_x: float | None,
    label_best: bool,
) -> None:
    left, top, right, bottom = box
    values = [v for ys in series.values() for v in ys if math.isfinite(v)]
    if nash:
        values.append(NASH_LOSS)
    y_lo, y_hi = _y_range(min(values, default=0.0), max(values, default=1.0))
    to_px = _frame(canvas, box, title, xs, y_lo, y_hi, best_x, label_best)
    x_lo = _x_range(xs)[0]

    if nash:
        _, py = to_px(x_lo, NASH_LOSS)
        canvas.dashed([(left, py), (right, py)], _NASH, 1.5, on=3, off=4)
        canvas.text((left + 8, py - 4), "-log(0.5) = 0.693", size=12, anchor="lb", fill=_MUTED)

    markers = len(xs) <= 40  # single epochs and short runs need visible points
    for (split, network), ys in series.items():
        colour = _COLOURS[network]
        for run in _finite_runs(xs, ys):
            points = [to_px(x, y) for x, y in run]
            if split == "train":
                canvas.line(points, colour, 2.2)
            else:
                canvas.dashed(points, colour, 2.2, on=9, off=6)
            if markers or len(points) == 1:
                for point in points:
                    canvas.dot(point, colour, 3.2 if split == "train" else 2.6, hollow=split == "test")


def _frame(
    canvas: _Canvas,
    box: tuple[float, float, float, float],
    title: str,
    xs: list[float],
    y_lo: float,
    y_hi: float,
    best_x: float | None,
    label_best: bool,
    log: bool = False,
) -> Callable[[float, float], tuple[float, float]]:
    """A panel's grid, ticks, frame, title and best-epoch line; returns data -> pixel coordinates.

    With `log`, y_lo and y_hi are positive and the axis is logarithmic.
    """
    left, top, right, bottom = box
    x_lo, x_hi = _x_range(xs)
    x_ticks = _epoch_ticks(xs[0], xs[-1])
    scale = (lambda v: math.log10(max(v, 1e-12))) if log else (lambda v: v)
    s_lo, s_hi = scale(y_lo), scale(y_hi)

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x_lo) / (x_hi - x_lo) * (right - left),
            bottom - (scale(y) - s_lo) / (s_hi - s_lo) * (bottom - top),
        )

    y_ticks = _log_ticks(y_lo, y_hi) if log else _nice_ticks(y_lo, y_hi)
    for y in y_ticks:
        _, py = to_px(x_lo, y)
        canvas.line([(left, py), (right, py)], _GRID, 1)
        canvas.line([(left - 5, py), (left, py)], _INK, 1)
        canvas.text((left - 9, py), f"{y:g}" if log else _tick_label(y, y_ticks), size=13, anchor="rm")
    for x in x_ticks:
        px, _ = to_px(x, y_lo)
        canvas.line([(px, bottom), (px, bottom + 5)], _INK, 1)
        canvas.text((px, bottom + 9), f"{x:g}", size=13, anchor="mt")
    canvas.rectangle(box, _INK)
    canvas.text((left, top - 7), title, size=15, anchor="lb", bold=True)

    if best_x is not None:
        px, _ = to_px(best_x, y_lo)
        canvas.dashed([(px, top + 1), (px, bottom - 1)], _BEST, 1.5, on=2, off=3)
        if label_best:
            near_right = px > right - 60
            at = (px - 5, top + 5) if near_right else (px + 5, top + 5)
            canvas.text(at, "best", size=12, anchor="rt" if near_right else "lt", fill=_BEST)
    return to_px


def _quality_panels(
    canvas: _Canvas,
    boxes: list[tuple[float, float, float, float]],
    xs: list[float],
    measured: tuple[Epoch, ...],
    best_x: float | None,
) -> None:
    """FD (with its real floor) and accuracy / diversity / score / 10 (with real values), over the measured epochs."""
    qx = [float(e.number) for e in measured]
    latest = measured[-1]

    # Fréchet distance: from hundreds down to about one over a healthy run, so a log axis when it spans that much.
    fid = [e.quality_value("fid") for e in measured]
    floor = latest.quality_value("fid", real=True)
    known = [v for v in (*fid, floor) if math.isfinite(v) and v > 0]
    log = bool(known) and max(known) / min(known) > 20
    if log:
        y_lo, y_hi = min(known) / 1.4, max(known) * 1.4
    else:
        y_lo, y_hi = _y_range(min(known, default=0.0), max(known, default=1.0))
    title = "Frechet distance to real test digits (judge features; lower is better)"  # the font has no é
    to_px = _frame(canvas, boxes[0], title, xs, y_lo, y_hi, best_x, label_best=False, log=log)
    _dotted_level(canvas, boxes[0], to_px, floor, _QUALITY_COLOURS["fid"], f"real digits: {floor:.2f}")
    _series(canvas, to_px, qx, fid, _QUALITY_COLOURS["fid"], log)
    _alarm_marks(canvas, boxes[0], to_px, measured)

    # Shares of 1: accuracy, diversity (which can pass 1), score / 10.
    rates = {key: [e.quality_value(key) / (10.0 if key == "score" else 1.0) for e in measured]
             for key in ("accuracy", "diversity", "score")}
    top = max([1.0, *(v for ys in rates.values() for v in ys if math.isfinite(v))])
    to_px = _frame(canvas, boxes[1], "", xs, 0.0, top * 1.08, best_x, label_best=False)
    x = _LEFT
    for key, label in (("accuracy", "accuracy"), ("diversity", "diversity"), ("score", "score / 10")):
        colour = _QUALITY_COLOURS[key]
        real = latest.quality_value(key, real=True) / (10.0 if key == "score" else 1.0)
        _dotted_level(canvas, boxes[1], to_px, real, colour, None)
        _series(canvas, to_px, qx, rates[key], colour, False)
        canvas.line([(x, boxes[1][1] - 13), (x + 26, boxes[1][1] - 13)], colour, 2.2)
        canvas.text((x + 32, boxes[1][1] - 13), label, size=14, anchor="lm")
        x += 32 + canvas.text_width(label, 14) + 24
    canvas.text((x, boxes[1][1] - 13), "of generated digits (judge) · dotted: real digits · red: alarms",
                size=14, anchor="lm", fill=_MUTED)
    _alarm_marks(canvas, boxes[1], to_px, measured)


def _series(canvas: _Canvas, to_px: Callable[[float, float], tuple[float, float]], xs: list[float],
            ys: list[float], colour: tuple[int, int, int], log: bool) -> None:
    points = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y) and (y > 0 or not log)]
    pixels = [to_px(x, y) for x, y in points]
    canvas.line(pixels, colour, 2.2)
    for point in pixels:
        canvas.dot(point, colour, 3.2)


def _dotted_level(canvas: _Canvas, box: tuple[float, float, float, float],
                  to_px: Callable[[float, float], tuple[float, float]], level: float,
                  colour: tuple[int, int, int], label: str | None) -> None:
    if not math.isfinite(level):
        return
    left, top, right, bottom = box
    _, py = to_px(0.0, level)
    if not top <= py <= bottom:
        return
    canvas.dashed([(left, py), (right, py)], colour, 1.5, on=3, off=4)
    if label:
        canvas.text((right - 8, py - 4), label, size=12, anchor="rb", fill=colour)


def _alarm_marks(canvas: _Canvas, box: tuple[float, float, float, float],
                 to_px: Callable[[float, float], tuple[float, float]], measured: tuple[Epoch, ...]) -> None:
    """A red triangle on the bottom edge at every epoch with an alarm."""
    bottom = box[3]
    for epoch in measured:
        if epoch.alarms:
            px, _ = to_px(float(epoch.number), 1.0)
            canvas.polygon([(px, bottom - 12), (px - 6, bottom - 2), (px + 6, bottom - 2)], _ALARM)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5 times powers of ten inside [lo, hi]; only the powers when that makes too many."""
    ticks = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in (1, 2, 5)]
    inside = [t for t in ticks if lo <= t <= hi]
    return inside if len(inside) <= 8 else [t for t in inside if math.log10(t).is_integer()]


def _legend(canvas: _Canvas, y: float) -> None:
    entries = [(n, s) for n in NETWORKS for s in SPLITS]
    x = _LEFT
    for network, split in entries:
        colour = _COLOURS[network]
        if split == "train":
            canvas.line([(x, y), (x + 34, y)], colour, 2.2)
        else:
            canvas.dashed([(x, y), (x + 34, y)], colour, 2.2, on=9, off=6)
        canvas.dot((x + 17, y), colour, 3.2 if split == "train" else 2.6, hollow=split == "test")
        label = f"{network} {split}"
        canvas.text((x + 42, y), label, size=14, anchor="lm")
        x += 42 + canvas.text_width(label, 14) + 30
    canvas.dashed([(x, y), (x + 34, y)], _NASH, 1.5, on=3, off=4)
    canvas.text((x + 42, y), "Nash equilibrium", size=14, anchor="lm")


def _finite_runs(xs: Sequence[float], ys: Sequence[float]) -> list[list[tuple[float, float]]]:
    """Consecutive finite points: a NaN (a diverged or missing loss) breaks the curve."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys):
        if math.isfinite(y):
            runs[-1].append((x, y))
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _x_range(xs: list[float]) -> tuple[float, float]:
    lo, hi = xs[0], xs[-1]
    pad = max(0.5, (hi - lo) * 0.02)  # keep the first and last points off the frame
    return lo - pad, hi + pad


def _y_range(lo: float, hi: float) -> tuple[float, float]:
    pad = (hi - lo) * 0.06 if hi > lo else max(0.05, abs(hi) * 0.1)
    # Losses are never negative: do not waste the panel below zero.
    return (max(0.0, lo - pad) if lo >= 0 else lo - pad), hi + pad


def _nice_step(span: float, max_ticks: int) -> float:
    raw = span / max(1, max_ticks - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _nice_ticks(lo: float, hi: float, max_ticks: int = 7) -> list[float]:
    """Round tick values inside [lo, hi]: multiples of 1, 2, 2.5 or 5 times a power of ten."""
    step = _nice_step(hi - lo, max_ticks)
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)]


def _epoch_ticks(lo: float, hi: float, max_ticks: int = 11) -> list[float]:
    step = max(1.0, _nice_step(max(hi - lo, 1.0), max_ticks))
    step = float(math.ceil(step))  # whole epochs only
    start = math.ceil(lo / step) * step
    return [start + k * step for k in range(int((hi - start) // step) + 1)]


def _tick_label(value: float, ticks: list[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = next(d for d in range(7) if abs(round(step, d) - step) < 1e-9 * step or d == 6)
    return f"{value:.{decimals}f}"


class _Canvas:
    """An RGB image addressed in final pixels while drawing at _SCALE times the size."""

    def __init__(self, width: int, height: int) -> None:
        self.image = Image.new("RGB", (width, height), "white")
        self._draw = ImageDraw.Draw(self.image)
        self._fonts: dict[int, ImageFont.ImageFont | ImageFont.FreeTypeFont] = {}

    def _font(self, size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
        if size not in self._fonts:
            self._fonts[size] = ImageFont.load_default(size=size * _SCALE)
        return self._fonts[size]

    @staticmethod
    def _px(point: tuple[float, float]) -> tuple[float, float]:
        return point[0] * _SCALE, point[1] * _SCALE

    def line(self, points: list[tuple[float, float]], fill: tuple[int, int, int], width: float) -> None:
        if len(points) > 1:
            self._draw.line([self._px(p) for p in points], fill=fill, width=round(width * _SCALE), joint="curve")

    def dashed(self, points: list[tuple[float, float]], fill: tuple[int, int, int], width: float, on: float, off: float) -> None:
        """A polyline drawn as dashes of `on` pixels every `on + off`, continuing across corners."""
        period, phase = on + off, 0.0
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            length = math.hypot(x1 - x0, y1 - y0)
            pos = 0.0
            while pos < length:
                in_dash = phase < on
                step = min(length - pos, (on - phase) if in_dash else (period - phase))
                if in_dash:
                    a, b = pos / length, (pos + step) / length
                    self.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill, width)
                pos += step
                phase = (phase + step) % period

    def dot(self, centre: tuple[float, float], fill: tuple[int, int, int], radius: float, hollow: bool = False) -> None:
        x, y = self._px(centre)
        r = radius * _SCALE
        self._draw.ellipse((x - r, y - r, x + r, y + r), fill="white" if hollow else fill, outline=fill, width=round(1.4 * _SCALE))

    def polygon(self, points: list[tuple[float, float]], fill: tuple[int, int, int]) -> None:
        self._draw.polygon([self._px(p) for p in points], fill=fill)

    def rectangle(self, box: tuple[float, float, float, float], outline: tuple[int, int, int]) -> None:
        left, top = self._px(box[:2])
        right, bottom = self._px(box[2:])
        self._draw.rectangle((left, top, right, bottom), outline=outline, width=_SCALE)

    def text(
        self,
        at: tuple[float, float],
        text: str,
        size: int,
        anchor: str,
        fill: tuple[int, int, int] = _INK,
        bold: bool = False,
    ) -> None:
        # Pillow's default font has no bold face; a hairline stroke thickens it.
        stroke = round(0.35 * _SCALE) if bold else 0
        self._draw.text(self._px(at), text, font=self._font(size), fill=fill, anchor=anchor, stroke_width=stroke, stroke_fill=fill)

    def text_width(self, text: str, size: int) -> float:
        return self._draw.textlength(text, font=self._font(size)) / _SCALE

    def fit(self, text: str, size: int, width: float) -> str:
        """`text`, shortened from the left with an ellipsis until it is at most `width` wide."""
        while len(text) > 1 and self.text_width(text, size) > width:
            text = "…" + text[2:]
        return text
