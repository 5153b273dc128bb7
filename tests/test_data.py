"""Loading MNIST-like data: .npz, IDX folders, Keras' download, and every way they go wrong."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from acgan_cli import data
from acgan_cli.errors import DataError
from tests.conftest import make_arrays, write_idx


def test_npz_loads_checked_uint8_and_int_labels(tiny_npz, arrays):
    d = data.load(path=tiny_npz)
    assert d.x_train.shape == (48, 28, 28) and d.x_train.dtype == np.uint8
    np.testing.assert_array_equal(d.x_train, arrays["x_train"])
    np.testing.assert_array_equal(d.y_test, arrays["y_test"])
    assert d.summary() == {"source": str(tiny_npz), "train": 48, "test": 16}


def test_idx_folder_with_gz_and_plain_files_equals_npz(tiny_idx, arrays):
    d = data.load(path=tiny_idx)
    for key in data.NPZ_KEYS:
        np.testing.assert_array_equal(getattr(d, key), arrays[key])


def test_scale_matches_reference_formula():
    x = np.array([[[0, 127, 255] + [0] * 25] * 28], np.uint8)
    s = data.scale(x)
    assert s.shape == (1, 28, 28, 1) and s.dtype == np.float32
    np.testing.assert_allclose(s[0, 0, :3, 0], [-1.0, (127 - 127.5) / 127.5, 1.0])


def save(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.pop("y_test"), "lacks y_test"),
        (lambda a: a.update(x_train=a["x_train"][:, :27]), "x_train has shape (48, 27, 28), expected (N, 28, 28)"),
        (lambda a: a.update(y_train=a["y_train"] + 5), "y_train has labels from 5 to 14, expected 0-9"),
        (lambda a: a.update(y_train=a["y_train"][:-1]), "x_train has 48 images but y_train has 47 labels"),
        (lambda a: a.update(x_test=a["x_test"].astype(np.float32) * 2), "x_test has values outside whole numbers 0-255"),
        (lambda a: a.update(x_test=a["x_test"].astype(str)), "x_test has dtype <U3, expected uint8"),
        (lambda a: a.update(x_test=a["x_test"][:0], y_test=a["y_test"][:0]), "x_test holds no images"),
    ],
)
def test_bad_npz_names_the_key_and_what_was_expected(tmp_path, change, message):
    a = make_arrays()
    change(a)
    with pytest.raises(DataError) as err:
        data.load(path=save(tmp_path, **a))
    assert message in str(err.value)


def test_convertible_dtypes_are_accepted(tmp_path):
    a = make_arrays()
    a["x_train"] = a["x_train"].astype(np.float64)
    a["y_train"] = a["y_train"].astype(np.int64)
    a["x_test"] = a["x_test"][..., None]  # (N, 28, 28, 1) too
    d = data.load(path=save(tmp_path, **a))
    assert d.x_train.dtype == np.uint8 and d.x_test.shape == (16, 28, 28)


def test_missing_truncated_and_foreign_files(tmp_path):
    with pytest.raises(DataError, match="data not found"):
        data.load(path=tmp_path / "nope.npz")
    good = save(tmp_path, **make_arrays())
    truncated = tmp_path / "t.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(DataError, match="cannot read .* as a .npz archive"):
        data.load(path=truncated)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(DataError, match="cannot read"):
        data.load(path=text)


def test_idx_errors(tmp_path, tiny_idx):
    folder = tmp_path / "idx"
    folder.mkdir()
    with pytest.raises(DataError, match="lacks train-images-idx3-ubyte"):
        data.load(path=folder)
    bad = folder / "bad-idx"
    bad.write_bytes(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"\x00\x01\x02")
    with pytest.raises(DataError, match="bad magic number 12340801"):
        data.read_idx(bad)
    short = write_idx(folder / "short", np.zeros((4, 28, 28), np.uint8), gz=False)
    short.write_bytes(short.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"header promises \(4, 28, 28\) \(3136 bytes of data\) but the file holds 3126"):
        data.read_idx(short)
    gz = folder / "broken.gz"
    gz.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05abcde")[:-6])
    with pytest.raises(DataError, match="cannot read"):
        data.read_idx(gz)


def test_download_failure_points_at_data(monkeypatch):
    from keras import datasets

    def offline():
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(datasets.mnist, "load_data", offline)
    with pytest.raises(DataError) as err:
        data.load("mnist")
    assert "could not download mnist through Keras" in str(err.value)
    assert "pass --data PATH" in str(err.value)


def test_download_uses_keras_loader(monkeypatch, arrays):
    from keras import datasets

    a = arrays
    monkeypatch.setattr(
        datasets.fashion_mnist, "load_data", lambda: ((a["x_train"], a["y_train"]), (a["x_test"], a["y_test"]))
    )
    d = data.load("fashion-mnist")
    assert d.source == "fashion-mnist" and len(d.x_train) == 48
