"""Digits as PNG grids, with numpy and Pillow only (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from acgan_cli import atomic

TILE = 28
PLOT_ROWS = 40  # the reference shows 40 noise vectors per class


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats (any trailing channel of 1) -> uint8 (N, 28, 28), as the reference rounds."""
    images = np.asarray(images, np.float32).reshape(-1, TILE, TILE)
    return np.clip(images * 127.5 + 127.5, 0, 255).astype(np.uint8)


def columns_image(columns: list[np.ndarray]) -> np.ndarray:
    """Stack each column's digits top to bottom, columns left to right (uint8 tiles)."""
    return np.concatenate([col.reshape(-1, TILE) for col in columns], axis=1)


def reference_plot(generated: np.ndarray, real: np.ndarray, real_labels: np.ndarray) -> np.ndarray:
    """The reference's per-epoch picture, uint8 of shape (40*28, 21*28) = 1120 x 588.

    `generated`: 10 * 40 images in [-1, 1], class-major (all 40 zeros, then all ones...),
    row r of every class made from the same noise vector. `real`: 400 real images in
    [-1, 1], shown sorted by `real_labels` in ten columns of 40, after a white column.
    """
    gen = to_uint8(generated)
    n_classes = len(gen) // PLOT_ROWS
    order = np.argsort(real_labels, kind="stable")
    real_sorted = to_uint8(real)[order]
    white = np.full((PLOT_ROWS, TILE, TILE), 255, np.uint8)
    cols = [gen[c * PLOT_ROWS : (c + 1) * PLOT_ROWS] for c in range(n_classes)]
    cols.append(white)
    cols += [real_sorted[c * PLOT_ROWS : (c + 1) * PLOT_ROWS] for c in range(len(real_sorted) // PLOT_ROWS)]
    return columns_image(cols)


def save_png(pixels: np.ndarray, path: str | Path) -> None:
    """Write a greyscale uint8 array as PNG, atomically."""
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8))  # 2-D uint8 is "L"
    atomic.write_with(path, lambda tmp: image.save(tmp, format="PNG"))
