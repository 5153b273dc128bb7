"""Digits from a saved run: samples per class, latent walks and style grids, as PNG or .npz.

The run's config.json rebuilds the generator and the epoch's weights file fills it;
no full model is ever loaded from a file. Everything random follows from one seed,
so the same seed gives the same digits. Nothing here prints: `acgan sample` shows
what these functions return. TensorFlow is imported only when a generator is loaded,
so a bad --out fails at once.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from acgan_cli import __version__, atomic
from acgan_cli.errors import AcganError, RunError
from acgan_cli.runs import RunDir, RunInfo, load_weights, saved_epoch

TILE = 28
ROW_TILES = 10  # tiles per row unless --columns says otherwise
DEFAULT_SAMPLES = 40  # per digit, as many as a column of the training plot
DEFAULT_WALKS = 1  # walks per digit with --interpolate
GUTTER = 2  # white pixels around every tile
BLOCK_GAP = 8  # white pixels between two digits' blocks of rows
SUFFIXES = (".png", ".npz")
GENERATE_BATCH = 500
SEED_LIMIT = 2**31  # seeds are drawn below this, like training's

# A sheet's layout: blocks (one per digit, or one in all) of rows of indices into the images.
Layout = list[list[list[int]]]


@dataclass(frozen=True)
class Plan:
    """What to generate, before any network runs: noise, classes and where each tile goes."""

    kind: str  # "samples", "interpolate" or "styles"
    about: str  # what the sheet shows, in words
    noise: np.ndarray  # float32 (N, latent_size), uniform in [-1, 1] as in training
    labels: np.ndarray  # int32 (N,)
    layout: Layout
    seed: int

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Sheet:
    """Generated digits in reading order, with their noise, classes and layout."""

    plan: Plan
    images: np.ndarray  # uint8 (N, 28, 28); 0 black, 255 white, as MNIST
    epoch: int
    run: Path

    @property
    def labels(self) -> np.ndarray:
        return self.plan.labels

    def pixels(self) -> np.ndarray:
        return grid_pixels(self.images, self.plan.layout)


def draw_seed() -> int:
    """A fresh seed, to be shown to the user so the same digits can be drawn again."""
    return secrets.randbelow(SEED_LIMIT)


# --- plans: numpy only ------------------------------------------------------------------
def _digits(digit: int | None, num_classes: int) -> list[int]:
    if digit is not None and not 0 <= digit < num_classes:
        # numpy would take -1 as the last class' noise; the CLI's range check comes first
        raise ValueError(f"digit must be 0-{num_classes - 1}, got {digit}")
    return list(range(num_classes)) if digit is None else [digit]


def _chunks(indices: list[int], size: int) -> list[list[int]]:
    return [indices[i : i + size] for i in range(0, len(indices), size)]


def plan_samples(
    latent_size: int, seed: int, digit: int | None = None, n: int = DEFAULT_SAMPLES,
    columns: int | None = None, num_classes: int = 10,
) -> Plan:
    """`n` digits of each class (or of `digit`), a block of rows of `columns` per class.

    Noise is drawn for every class even when one is asked for, so that `--digit 7`
    gives exactly the sevens of the full sheet with the same seed and --n.
    """
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1, 1, (num_classes, n, latent_size)).astype(np.float32)
    digits = _digits(digit, num_classes)
    width = columns or min(n, ROW_TILES)
    layout = [_chunks(list(range(b * n, (b + 1) * n)), width) for b in range(len(digits))]
    which = f"digit {digit}" if digit is not None else f"each digit 0-{num_classes - 1}"
    return Plan(
        kind="samples",
        about=f"{n} sample{'s' if n != 1 else ''} of {which}",
        noise=noise[digits].reshape(-1, latent_size),
        labels=np.repeat(np.array(digits, np.int32), n),
        layout=layout,
        seed=seed,
    )


def plan_interpolation(
    latent_size: int, seed: int, steps: int, digit: int | None = None, walks: int = DEFAULT_WALKS,
    num_classes: int = 10,
) -> Plan:
    """Rows that walk in `steps` even steps from one noise vector to another, ends included.

    Every digit walks between the same pairs of vectors, so the rows of different
    classes share their styles. The walk is a straight line: the noise is uniform in
    the cube [-1, 1]^latent, which holds every point between two of its points
    (the spherical walk suits Gaussian noise, not this).
    """
    rng = np.random.default_rng(seed)
    ends = rng.uniform(-1, 1, (walks, 2, latent_size))
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    path = ((1 - t) * ends[:, :1] + t * ends[:, 1:]).astype(np.float32)  # (walks, steps, latent)
    digits = _digits(digit, num_classes)
    per_digit = walks * steps
    layout = [_chunks(list(range(b * per_digit, (b + 1) * per_digit)), steps) for b in range(len(digits))]
    which = f"digit {digit}" if digit is not None else f"each digit 0-{num_classes - 1}"
    return Plan(
        kind="interpolate",
        about=f"{walks} walk{'s' if walks != 1 else ''} of {steps} steps for {which}",
        noise=np.tile(path.reshape(-1, latent_size), (len(digits), 1)),
        labels=np.repeat(np.array(digits, np.int32), per_digit),
        layout=layout,
        seed=seed,
    )


def plan_styles(latent_size: int, seed: int, rows: int, num_classes: int = 10) -> Plan:
    """One noise vector per row, every class across it: as the training plot's rows.

    The generator conditions z on the class by a product with the class' embedding,
    so a row shows what one z means for every digit.
    """
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, (rows, latent_size)).astype(np.float32)
    return Plan(
        kind="styles",
        about=f"{rows} style{'s' if rows != 1 else ''} x digits 0-{num_classes - 1}",
        noise=np.repeat(z, num_classes, axis=0),
        labels=np.tile(np.arange(num_classes, dtype=np.int32), rows),
        layout=[_chunks(list(range(rows * num_classes)), num_classes)],
        seed=seed,
    )


# --- the picture: numpy only ------------------------------------------------------------
def grid_size(layout: Layout) -> tuple[int, int]:
    """(width, height) in pixels of the sheet that `grid_pixels` draws for `layout`."""
    columns = max((len(row) for block in layout for row in block), default=0)
    rows = sum(len(block) for block in layout)
    step = TILE + GUTTER
    return columns * step + GUTTER, rows * step + GUTTER + max(len(layout) - 1, 0) * (BLOCK_GAP - GUTTER)


def grid_pixels(images: np.ndarray, layout: Layout) -> np.ndarray:
    """uint8 tiles on white: rows of the layout top to bottom, a wider gap between blocks."""
    width, height = grid_size(layout)
    canvas = np.full((height, width), 255, np.uint8)
    y = GUTTER
    for b, block in enumerate(layout):
        if b:
            y += BLOCK_GAP - GUTTER
        for row in block:
            for c, index in enumerate(row):
                x = GUTTER + c * (TILE + GUTTER)
                canvas[y : y + TILE, x : x + TILE] = images[index]
            y += TILE + GUTTER
    return canvas


# --- output files -----------------------------------------------------------------------
def default_out(run: RunDir, kind: str, digit: int | None, epoch: int) -> Path:
    """A PNG in the run directory named after what it shows: sample_digit7_epoch015.png..."""
    which = "all" if digit is None else f"digit{digit}"
    stem = {"samples": f"sample_{which}", "interpolate": f"interpolate_{which}", "styles": "styles"}[kind]
    return run.path / f"{stem}_epoch{epoch:03d}.png"


def check_out(out: str | Path) -> Path:
    """The output file, refused before any work when it could not be written."""
    out = Path(out)
    if out.suffix.lower() not in SUFFIXES:
        raise AcganError(f"cannot write samples to {out}: give a file name ending in .png (a grid) or .npz (arrays)")
    if out.is_dir():
        raise AcganError(f"cannot write samples to {out}: it is a directory; give a file name ending in .png or .npz")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise AcganError(f"cannot write {out}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AcganError(f"cannot write {out}: {parent} is not writable; choose another --out")
    return out


def save(sheet: Sheet, out: str | Path) -> Path:
    """Write the sheet as a PNG grid or as .npz arrays (by suffix), atomically."""
    out = check_out(out)
    about = {"run": str(sheet.run), "epoch": sheet.epoch, "seed": sheet.plan.seed, "kind": sheet.plan.kind}
    if out.suffix.lower() == ".png":
        image = Image.fromarray(sheet.pixels())
        info = PngInfo()
        info.add_text("Software", f"acgan {__version__}")
        # The picture explains itself: which run, epoch and seed drew it.
        info.add_text("acgan", json.dumps(about))
        atomic.write_with(out, lambda tmp: image.save(tmp, format="PNG", pnginfo=info))
    else:
        arrays: dict[str, Any] = {
            "images": sheet.images,
            "labels": sheet.labels.astype(np.uint8),  # MNIST's label dtype
            "noise": sheet.plan.noise,
            "epoch": np.int64(sheet.epoch),
            "seed": np.int64(sheet.plan.seed),
        }
        atomic.write_with(out, lambda tmp: np.savez_compressed(tmp, **arrays))
    return out


def load_generator(run: RunDir, info: RunInfo, epoch: int) -> Any:
    """The run's generator, rebuilt from config.json and filled with the epoch's weights."""
    from acgan_cli.backend import import_tensorflow

    import_tensorflow()
    from acgan_cli.models import build_generator

    config = info.config
    generator = build_generator(config.latent_size, config.num_classes)
    load_weights(generator, run.generator_weights(epoch), f"a generator with latent size {config.latent_size}")
    return generator


def generate(generator: Any, plan: Plan) -> np.ndarray:
    """uint8 images (N, 28, 28) for the plan, in inference mode, as the reference rounds."""
    from acgan_cli.grid import to_uint8

    out = [
        np.asarray(
            generator([plan.noise[i : i + GENERATE_BATCH], plan.labels[i : i + GENERATE_BATCH, None]], training=False)
        )
        for i in range(0, len(plan), GENERATE_BATCH)
    ]
    return to_uint8(np.concatenate(out)) if out else np.zeros((0, TILE, TILE), np.uint8)


def plan(
    latent_size: int, seed: int, *, digit: int | None = None, n: int | None = None, columns: int | None = None,
    interpolate: int | None = None, styles: int | None = None, num_classes: int = 10,
) -> Plan:
    """The plan that `acgan sample`'s options ask for: a style grid, latent walks or samples."""
    if styles:
        return plan_styles(latent_size, seed, styles, num_classes)
    if interpolate:
        return plan_interpolation(latent_size, seed, interpolate, digit, n or DEFAULT_WALKS, num_classes)
    return plan_samples(latent_size, seed, digit, n or DEFAULT_SAMPLES, columns, num_classes)


def sample(
    run_path: str | Path, *, epoch: int | None = None, out: str | Path | None = None, seed: int | None = None,
    digit: int | None = None, n: int | None = None, columns: int | None = None,
    interpolate: int | None = None, styles: int | None = None,
) -> tuple[Sheet, Path]:
    """Draw from the run's generator at `epoch` (None: the latest saved) into `out`.

    `out` defaults to a PNG in the run directory (see `default_out`); `seed` to a
    fresh one, kept in the returned sheet's plan. Everything that can be checked
    without TensorFlow is checked first.
    """
    run = RunDir(run_path)
    info = run.read_config()
    epoch = saved_epoch(run, epoch)
    kind = "styles" if styles else "interpolate" if interpolate else "samples"
    out = check_out(default_out(run, kind, digit, epoch) if out is None else out)
    config = info.config
    chosen = plan(
        config.latent_size, draw_seed() if seed is None else seed, digit=digit, n=n, columns=columns,
        interpolate=interpolate, styles=styles, num_classes=config.num_classes,
    )
    generator = load_generator(run, info, epoch)
    sheet = Sheet(plan=chosen, images=generate(generator, chosen), epoch=epoch, run=run.path)
    return sheet, save(sheet, out)
