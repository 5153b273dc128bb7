"""`acgan sample`: the files it writes (PNG grids, .npz arrays), seeds, walks, style grids and errors.

Every test reads the session's tiny trained run (latent size 8, epochs 1 and 2); tests
that write into the run or damage it work on a copy.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from acgan_cli import runs, sampling
from acgan_cli.cli import app
from tests.conftest import assert_one_line_error, tensorflow_modules_after

runner = CliRunner()
LATENT = 8  # conftest.TINY


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def sample(run, *args):
    result = invoke("sample", "--run", run, *args)
    assert result.exit_code == 0, result.output
    return result



def assert_usage_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    # Typer draws usage errors in a box whose width depends on the terminal: unwrap it.
    text = " ".join(result.stderr.replace("│", " ").split())
    for fragment in fragments:
        assert fragment in text, result.stderr


def leftovers(folder: Path) -> list[str]:
    """Temporary files an interrupted atomic write would leave."""
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "L"
        return np.asarray(im)


def size(columns: int, rows: int, blocks: int) -> tuple[int, int]:
    """docs/sample.md's formula: 30 pixels a tile and a 2-pixel edge; 6 more between blocks."""
    return 30 * columns + 2, 30 * rows + 2 + 6 * (blocks - 1)


# --- the default PNG --------------------------------------------------------------------


def test_default_png_lands_in_the_run_named_after_digit_and_epoch(run_copy):
    result = sample(run_copy, "--seed", 1)
    out = run_copy / "sample_all_epoch002.png"
    assert f"Wrote 40 samples of each digit 0-9 to {out}" in result.stdout
    assert "Epoch 2 of" in result.stdout and "seed 1" in result.stdout and "repeat" not in result.stdout
    # 40 per digit in rows of 10: four rows a digit, ten blocks
    assert png(out).shape[::-1] == size(10, 40, 10)
    assert result.stderr == ""

    sample(run_copy, "--digit", 7, "--epoch", 1, "--seed", 1)
    assert png(run_copy / "sample_digit7_epoch001.png").shape[::-1] == size(10, 4, 1)
    sample(run_copy, "--interpolate", 4, "--seed", 1)
    sample(run_copy, "--styles", 2, "--seed", 1)
    names = {p.name for p in run_copy.iterdir()}
    assert {"interpolate_all_epoch002.png", "styles_epoch002.png"} <= names
    assert leftovers(run_copy) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--n", 7, "--columns", 3, "--digit", 2], size(3, 3, 1)),
        (["--n", 12], size(10, 20, 10)),
        (["--n", 5], size(5, 10, 10)),
        (["--n", 1, "--digit", 0], size(1, 1, 1)),
        (["--n", 4, "--columns", 8], size(4, 10, 10)),  # a row never holds more than the digit's samples
        (["--interpolate", 6, "--n", 2], size(6, 20, 10)),
        (["--interpolate", 3, "--digit", 5], size(3, 1, 1)),
        (["--styles", 3], size(10, 3, 1)),
    ],
)
def test_png_size_follows_n_columns_and_mode(trained_run, tmp_path, args, expected):
    out = tmp_path / "grid.png"
    sample(trained_run, "--out", out, "--seed", 3, *args)
    assert png(out).shape[::-1] == expected


def test_png_tiles_are_the_npz_images_on_white(trained_run, tmp_path):
    sample(trained_run, "--out", tmp_path / "a.png", "--seed", 4, "--n", 3, "--columns", 2)
    sample(trained_run, "--out", tmp_path / "a.npz", "--seed", 4, "--n", 3, "--columns", 2)
    pixels, arrays = png(tmp_path / "a.png"), load_npz(tmp_path / "a.npz")
    images = arrays["images"]
    # digit d's three samples sit in two rows (2 + 1) of block d; blocks 8 pixels apart
    for d in range(10):
        top = 2 + d * (2 * 30 + 6)
        for k in range(3):
            y, x = top + (k // 2) * 30, 2 + (k % 2) * 30
            np.testing.assert_array_equal(pixels[y : y + 28, x : x + 28], images[3 * d + k])
        # the short row's empty place is white
        assert np.all(pixels[top + 30 : top + 58, 32:60] == 255)
    # gutters and edges are white
    assert np.all(pixels[0:2] == 255) and np.all(pixels[:, 0:2] == 255) and np.all(pixels[:, 30:32] == 255)


def test_png_says_which_run_epoch_and_seed_drew_it(trained_run, tmp_path):
    out = tmp_path / "s.png"
    sample(trained_run, "--out", out, "--seed", 9, "--epoch", 1, "--styles", 1)
    with Image.open(out) as im:
        about = json.loads(im.text["acgan"])
        assert im.text["Software"].startswith("acgan ")
    assert about == {"run": str(trained_run), "epoch": 1, "seed": 9, "kind": "styles"}


# --- the .npz ---------------------------------------------------------------------------


def test_npz_holds_uint8_images_and_their_labels(trained_run, tmp_path):
    out = tmp_path / "all.npz"
    result = sample(trained_run, "--out", out, "--n", 3, "--seed", 5)
    assert f"to {out}" in result.stdout
    arrays = load_npz(out)
    assert arrays["images"].shape == (30, 28, 28) and arrays["images"].dtype == np.uint8
    assert arrays["labels"].shape == (30,) and arrays["labels"].dtype == np.uint8
    np.testing.assert_array_equal(arrays["labels"], np.repeat(np.arange(10), 3))
    assert arrays["noise"].shape == (30, LATENT) and arrays["noise"].dtype == np.float32
    assert np.all(np.abs(arrays["noise"]) <= 1)
    assert int(arrays["epoch"]) == 2 and int(arrays["seed"]) == 5
    assert arrays["images"].std() > 0

    sample(trained_run, "--out", tmp_path / "seven.npz", "--digit", 7, "--n", 4, "--seed", 5)
    seven = load_npz(tmp_path / "seven.npz")
    assert seven["images"].shape == (4, 28, 28)
    np.testing.assert_array_equal(seven["labels"], [7, 7, 7, 7])


def test_images_are_the_generator_output_rounded_as_the_reference(trained_run, tmp_path):
    """The .npz's images are the generator built from config.json at that epoch, for its noise and labels."""
    from acgan_cli.grid import to_uint8
    from acgan_cli.models import build_generator

    out = tmp_path / "e1.npz"
    sample(trained_run, "--out", out, "--epoch", 1, "--n", 2, "--seed", 8)
    arrays = load_npz(out)
    generator = build_generator(LATENT)
    generator.load_weights(trained_run / "params_generator_epoch_001.weights.h5")
    raw = generator([arrays["noise"], arrays["labels"].astype(np.int32)[:, None]], training=False).numpy()
    assert raw.min() >= -1 and raw.max() <= 1
    np.testing.assert_array_equal(arrays["images"], to_uint8(raw))


# --- seeds ------------------------------------------------------------------------------


def test_same_seed_same_images_other_seed_other_images(trained_run, tmp_path):
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        sample(trained_run, "--out", tmp_path / f"{name}.npz", "--n", 2, "--seed", seed)
    a, b, c = (load_npz(tmp_path / f"{n}.npz") for n in "abc")
    np.testing.assert_array_equal(a["images"], b["images"])
    np.testing.assert_array_equal(a["noise"], b["noise"])
    assert not np.array_equal(a["noise"], c["noise"])
    assert not np.array_equal(a["images"], c["images"])
    # PNGs of the same seed are the same bytes' pixels too
    sample(trained_run, "--out", tmp_path / "a.png", "--n", 2, "--seed", 11)
    sample(trained_run, "--out", tmp_path / "b.png", "--n", 2, "--seed", 11)
    np.testing.assert_array_equal(png(tmp_path / "a.png"), png(tmp_path / "b.png"))


def test_one_digit_is_that_digit_of_the_full_sheet(trained_run, tmp_path):
    sample(trained_run, "--out", tmp_path / "all.npz", "--n", 3, "--seed", 21)
    sample(trained_run, "--out", tmp_path / "three.npz", "--n", 3, "--seed", 21, "--digit", 3)
    np.testing.assert_array_equal(load_npz(tmp_path / "all.npz")["images"][9:12], load_npz(tmp_path / "three.npz")["images"])


def test_without_seed_one_is_drawn_printed_and_repeats(trained_run, tmp_path):
    result = sample(trained_run, "--out", tmp_path / "r.npz", "--n", 2)
    match = re.search(r"drawn at random; repeat with --seed (\d+)", result.stdout)
    assert match, result.stdout
    sample(trained_run, "--out", tmp_path / "again.npz", "--n", 2, "--seed", match.group(1))
    np.testing.assert_array_equal(load_npz(tmp_path / "r.npz")["images"], load_npz(tmp_path / "again.npz")["images"])
    other = sample(trained_run, "--out", tmp_path / "other.npz", "--n", 2)
    assert re.search(r"--seed (\d+)", other.stdout).group(1) != match.group(1)


# --- walks and styles -------------------------------------------------------------------


def test_interpolation_walks_straight_between_two_vectors_for_every_digit(trained_run, tmp_path):
    out = tmp_path / "walk.npz"
    result = sample(trained_run, "--out", out, "--interpolate", 5, "--n", 2, "--seed", 6)
    assert "2 walks of 5 steps for each digit 0-9" in result.stdout
    arrays = load_npz(out)
    assert arrays["images"].shape == (100, 28, 28)
    np.testing.assert_array_equal(arrays["labels"], np.repeat(np.arange(10), 10))
    noise = arrays["noise"].reshape(10, 2, 5, LATENT)  # digit, walk, step
    for walk in noise[0]:
        start, end = walk[0], walk[-1]
        for k in range(5):
            np.testing.assert_allclose(walk[k], start + (end - start) * k / 4, atol=1e-6)
    assert not np.allclose(noise[0, 0], noise[0, 1])  # two different walks
    np.testing.assert_array_equal(noise, np.broadcast_to(noise[:1], noise.shape))  # the same walks for every digit
    # the ends are different digits' same styles, and the steps differ
    images = arrays["images"].reshape(10, 2, 5, 28, 28)
    assert not np.array_equal(images[0, 0, 0], images[0, 0, -1])


def test_style_grid_puts_one_vector_per_row_across_every_digit(trained_run, tmp_path):
    out = tmp_path / "styles.npz"
    result = sample(trained_run, "--out", out, "--styles", 3, "--seed", 6)
    assert "3 styles x digits 0-9" in result.stdout
    arrays = load_npz(out)
    np.testing.assert_array_equal(arrays["labels"], np.tile(np.arange(10), 3))
    rows = arrays["noise"].reshape(3, 10, LATENT)
    np.testing.assert_array_equal(rows, np.repeat(rows[:, :1], 10, axis=1))
    assert not np.allclose(rows[0, 0], rows[1, 0])


def test_plans_need_no_tensorflow():
    plan = sampling.plan(4, seed=1, n=3, columns=2)
    assert plan.layout[1] == [[3, 4], [5]] and len(plan) == 30
    assert sampling.grid_size(plan.layout) == size(2, 20, 10)
    walk = sampling.plan(4, seed=1, interpolate=3, digit=9)
    assert walk.layout == [[[0, 1, 2]]] and list(walk.labels) == [9, 9, 9]
    assert runs.describe_epochs([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8"


# --- the terminal preview ---------------------------------------------------------------


def test_preview_only_when_asked_outside_a_terminal(trained_run, tmp_path):
    plain = sample(trained_run, "--out", tmp_path / "p.png", "--digit", 1, "--n", 3, "--seed", 2)
    assert len(plain.stdout.splitlines()) == 2
    shown = sample(trained_run, "--out", tmp_path / "p.png", "--digit", 1, "--n", 3, "--seed", 2, "--preview")
    lines = shown.stdout.splitlines()
    art = lines[1:-1]
    # 3 tiles on 92 x 32 pixels, shrunk to fit the console, two pixel rows a line; no colours in a pipe
    from acgan_cli import ui

    shrink = -(-92 // ui.console.width)
    assert [len(line) for line in art] == [-(-92 // shrink)] * -(-(-(-32 // shrink)) // 2)
    assert set("".join(art)) <= set(" .:-=+*#%@") and "@" in "".join(art)
    none = sample(trained_run, "--out", tmp_path / "p.png", "--digit", 1, "--n", 3, "--seed", 2, "--no-preview")
    assert len(none.stdout.splitlines()) == 2


def test_preview_text_uses_half_blocks_and_refuses_to_shrink_too_far():
    from acgan_cli import ui

    pixels = np.zeros((5, 6), np.uint8)
    pixels[0] = 255
    text = ui.preview_text(pixels, max_width=80, colour=True)
    lines = text.plain.split("\n")
    assert lines == ["▀" * 6] * 3  # five rows, padded with a white one
    top_left = text.get_style_at_offset(ui.console, 0)
    assert top_left.color.triplet == (255, 255, 255) and top_left.bgcolor.triplet == (0, 0, 0)
    assert ui.preview_text(np.zeros((28, 302), np.uint8), max_width=100, colour=True, max_shrink=2) is None
    assert ui.preview_text(np.zeros((28, 302), np.uint8), max_width=160, colour=True, max_shrink=2) is not None


# --- errors: one line, exit 1 (2 for usage), nothing written ----------------------------


def test_missing_or_empty_run_directory(tmp_path):
    assert_one_line_error(invoke("sample", "--run", tmp_path / "nope"), 1, "run directory not found", "nope")
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("sample", "--run", tmp_path / "empty"), 1, "holds no config.json")
    assert list((tmp_path / "empty").iterdir()) == []


def test_run_without_saved_epochs(run_copy):
    for p in run_copy.glob("params_*"):
        p.unlink()
    assert_one_line_error(invoke("sample", "--run", run_copy), 1, "holds no saved epoch yet")


def test_epoch_not_saved_names_the_saved_ones(trained_run, tmp_path):
    result = invoke("sample", "--run", trained_run, "--epoch", 5, "--out", tmp_path / "x.png")
    assert_one_line_error(result, 1, "epoch 5 is not saved", "saved epochs: 1-2")
    assert not (tmp_path / "x.png").exists()


def test_weights_that_do_not_fit_the_config(run_copy, tmp_path):
    config = json.loads((run_copy / "config.json").read_text())
    config["config"]["latent_size"] = 16
    (run_copy / "config.json").write_text(json.dumps(config))
    result = invoke("sample", "--run", run_copy, "--out", tmp_path / "x.png")
    assert_one_line_error(result, 1, "params_generator_epoch_002.weights.h5", "do not fit a generator with latent size 16")
    assert not (tmp_path / "x.png").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_weights_file(run_copy, tmp_path, damage):
    weights = run_copy / "params_generator_epoch_002.weights.h5"
    raw = weights.read_bytes()
    weights.write_bytes({"truncate": raw[: len(raw) // 3], "garbage": b"not hdf5 at all\n" * 10, "empty": b""}[damage])
    result = invoke("sample", "--run", run_copy, "--out", tmp_path / "x.npz")
    assert_one_line_error(result, 1, "cannot read weights", "params_generator_epoch_002.weights.h5", "not a complete HDF5")
    assert not (tmp_path / "x.npz").exists()
    # the other epoch still samples
    sample(run_copy, "--epoch", 1, "--out", tmp_path / "ok.npz")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--digit", "10"], ["Invalid value for '--digit'"]),
        (["--digit", "-1"], ["Invalid value for '--digit'"]),
        (["--n", "0"], ["Invalid value for '--n'"]),
        (["--columns", "0"], ["Invalid value for '--columns'"]),
        (["--seed", "-4"], ["Invalid value for '--seed'"]),
        (["--interpolate", "1"], ["Invalid value for '--interpolate'"]),
        (["--epoch", "last"], ["Invalid value for '--epoch'", "give an epoch number or latest"]),
        (["--epoch", "0"], ["Invalid value for '--epoch'", "epochs count from 1"]),
        (["--styles", "2", "--digit", "3"], ["'--styles'", "leave out --digit"]),
        (["--styles", "2", "--n", "3"], ["'--styles'", "leave out --n"]),
        (["--styles", "2", "--interpolate", "3"], ["'--styles'", "choose one"]),
        (["--interpolate", "3", "--columns", "2"], ["'--interpolate'", "leave out --columns"]),
    ],
)
def test_usage_errors_exit_2(trained_run, tmp_path, args, fragments):
    result = invoke("sample", "--run", trained_run, "--out", tmp_path / "x.png", *args)
    assert_usage_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["x.jpg", "x", "x.png.bak"])
def test_unknown_suffix(trained_run, tmp_path, name):
    result = invoke("sample", "--run", trained_run, "--out", tmp_path / name)
    assert_one_line_error(result, 1, "give a file name ending in .png", ".npz")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_out(trained_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    result = invoke("sample", "--run", trained_run, "--out", blocker / "sub" / "x.png")
    assert_one_line_error(result, 1, "cannot write", "is a file, not a directory")
    (tmp_path / "dir.png").mkdir()
    assert_one_line_error(invoke("sample", "--run", trained_run, "--out", tmp_path / "dir.png"), 1, "it is a directory")


def test_failed_write_leaves_no_file(trained_run, tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full_disk)
    out = tmp_path / "x.npz"
    result = invoke("sample", "--run", trained_run, "--out", out)
    assert_one_line_error(result, 1, "cannot write", "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_folders_are_made(trained_run, tmp_path):
    out = tmp_path / "a" / "b" / "x.png"
    sample(trained_run, "--out", out, "--styles", 1, "--seed", 1)
    assert out.is_file()


def test_help_and_bad_out_need_no_tensorflow(trained_run, tmp_path):
    bad_out = ["sample", "--run", str(trained_run), "--out", str(tmp_path / "x.gif")]
    assert tensorflow_modules_after((["sample", "--help"], 0), (["evaluate", "--help"], 0), (bad_out, 1)) == []
