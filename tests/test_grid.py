"""The reference's per-epoch picture and PNG writing (no TensorFlow)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from acgan_cli import grid


def test_to_uint8_rounds_like_the_reference():
    x = np.array([-1.0, 0.0, 1.0, 2.0], np.float32)
    out = grid.to_uint8(np.resize(x, (1, 28, 28, 1)))
    assert out.shape == (1, 28, 28) and out.dtype == np.uint8
    assert list(out[0, 0, :4]) == [0, 127, 255, 255]


def test_reference_plot_layout_columns_rows_white_and_sorted_real():
    # generated: class c's digits are all value c/10 - 0.5; row r distinguishable by a pixel
    gen = np.zeros((400, 28, 28, 1), np.float32)
    for c in range(10):
        gen[c * 40 : (c + 1) * 40] = c / 10 - 0.5
        for r in range(40):
            gen[c * 40 + r, 0, 0, 0] = r / 40
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    real = (labels[:, None, None, None] / 10 - 0.9 + np.zeros((400, 28, 28, 1))).astype(np.float32)
    img = grid.reference_plot(gen, real, labels)
    assert img.shape == (1120, 588) and img.dtype == np.uint8
    tile = lambda row, col: img[row * 28 : (row + 1) * 28, col * 28 : (col + 1) * 28]
    for c in range(10):
        assert tile(5, c)[10, 10] == int((c / 10 - 0.5) * 127.5 + 127.5)
        assert tile(7, c)[0, 0] == int((7 / 40) * 127.5 + 127.5)  # same noise row across classes
    assert np.all(img[:, 280:308] == 255)  # the white column
    shown = [tile(r, 11 + col)[5, 5] for col in range(10) for r in range(40)]
    expected = grid.to_uint8(real[np.argsort(labels, kind="stable")])[:, 5, 5]
    assert shown == list(expected)
    assert shown == sorted(shown)  # sorted by class


def test_save_png_writes_greyscale_atomically(tmp_path):
    pixels = np.arange(28 * 56, dtype=np.uint32).reshape(28, 56) % 256
    path = tmp_path / "sub" / "g.png"
    grid.save_png(pixels.astype(np.uint8), path)
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (56, 28)
        np.testing.assert_array_equal(np.asarray(im), pixels)
    assert [p.name for p in path.parent.iterdir()] == ["g.png"]  # no temporary left behind
