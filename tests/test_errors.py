"""Bad input through the CLI: one clear line, the right exit code, nothing lost.

Each case asserts the message, the exit code, that no traceback reaches the user, and
that files which existed before are unchanged.
"""

from __future__ import annotations

import errno
import gzip
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from acgan_cli.cli import app
from tests.conftest import make_arrays, write_idx, assert_one_line_error

runner = CliRunner()


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}



def bad_npz(tmp_path, name, **changes):
    a = make_arrays()
    for key, value in changes.items():
        if value is None:
            a.pop(key)
        else:
            a[key] = value
    path = tmp_path / name
    np.savez(path, **a)
    return path


def idx_folder(tmp_path, corrupt):
    folder = tmp_path / "idx"
    folder.mkdir()
    a = make_arrays()
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for key, name in names.items():
        write_idx(folder / name, a[key], gz=False)
    corrupt(folder / "train-images-idx3-ubyte")
    return folder


def make_bad_magic(path):
    raw = bytearray(path.read_bytes())
    raw[2] = 0x42
    path.write_bytes(bytes(raw))


def make_short(path):
    path.write_bytes(path.read_bytes()[:-28])


DATA_CASES = {
    "missing": (lambda t: t / "absent.npz", ["data not found", "absent.npz"]),
    "empty": (lambda t: written(t / "empty.npz", b""), ["cannot read", "empty.npz"]),
    "truncated": (lambda t: _truncated(t), ["cannot read", "as a .npz archive"]),
    "not npz": (lambda t: written(t / "notes.npz", b"x,y\n1,2\n"), ["cannot read", "notes.npz"]),
    "wrong keys": (lambda t: bad_npz(t, "k.npz", x_test=None), ["lacks x_test", "expected keys x_train, y_train, x_test, y_test"]),
    "wrong shape": (lambda t: bad_npz(t, "s.npz", x_train=np.zeros((48, 32, 32), np.uint8)), ["x_train has shape (48, 32, 32)"]),
    "wrong dtype": (lambda t: bad_npz(t, "d.npz", x_train=np.full((48, 28, 28), 0.5)), ["x_train has values outside whole numbers 0-255"]),
    "labels outside": (lambda t: bad_npz(t, "l.npz", y_test=np.full(16, 10)), ["y_test has labels from 10 to 10, expected 0-9"]),
    "idx magic": (lambda t: idx_folder(t, make_bad_magic), ["train-images-idx3-ubyte is not an IDX file"]),
    "idx count": (lambda t: idx_folder(t, make_short), ["header promises (48, 28, 28)", "file holds"]),
}


def written(path, data):
    path.write_bytes(data)
    return path


def _truncated(tmp_path):
    good = bad_npz(tmp_path, "good.npz")
    path = tmp_path / "trunc.npz"
    path.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    return path


@pytest.mark.parametrize("case", DATA_CASES, ids=list(DATA_CASES))
def test_bad_training_data(case, tmp_path):
    make, fragments = DATA_CASES[case]
    path = make(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["train", "--data", str(path), "--out", str(out), "--epochs", "1"])
    assert_one_line_error(result, 1, *fragments)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        (lambda c: c.write_text("{not json"), ["config.json is not valid JSON"]),
        (lambda c: c.write_text(json.dumps({**json.loads(c.read_text()), "format": "acgan-run/9"})),
         ["has format 'acgan-run/9'; this acgan reads 'acgan-run/1'"]),
        (lambda c: c.write_text(json.dumps({**json.loads(c.read_text()), "config": {"epochs": 2, "depth": 4}})),
         ["unknown setting(s) in the run's config: depth"]),
        (lambda c: c.unlink(), ["holds no config.json"]),
    ],
    ids=["not-json", "unknown-version", "unknown-setting", "missing"],
)
@pytest.mark.parametrize("command", ["sample", "evaluate", "resume"])
def test_damaged_config_json(trained_run, tmp_path, damage, fragments, command):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    damage(run / "config.json")
    before = snapshot(run)
    args = {
        "sample": ["sample", "--run", str(run), "--seed", "1"],
        "evaluate": ["evaluate", "--run", str(run)],
        "resume": ["train", "--out", str(run), "--resume", "--epochs", "3"],
    }[command]
    assert_one_line_error(runner.invoke(app, args), 1, *fragments)
    assert snapshot(run) == before


@pytest.mark.parametrize("command", ["sample", "evaluate"])
@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:5000]), "params_generator_epoch_002.weights.h5"),
        (lambda p: p.write_text("not hdf5"), "params_generator_epoch_002.weights.h5"),
    ],
    ids=["truncated", "not-hdf5"],
)
def test_damaged_weights(trained_run, tmp_path, command, damage, fragment):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    damage(run / "params_generator_epoch_002.weights.h5")
    before = snapshot(run)
    args = ["sample", "--run", str(run), "--seed", "1"] if command == "sample" else ["evaluate", "--run", str(run)]
    assert_one_line_error(runner.invoke(app, args), 1, fragment)
    assert snapshot(run) == before


def test_weights_from_a_run_with_another_latent_size(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["config"]["latent_size"] = 16
    (run / "config.json").write_text(json.dumps(cfg))
    before = snapshot(run)
    assert_one_line_error(runner.invoke(app, ["sample", "--run", str(run), "--seed", "1"]), 1, "latent size 16")
    assert snapshot(run) == before


def test_damaged_checkpoint_refuses_resume_and_keeps_files(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoint.h5").write_bytes((run / "checkpoint.h5").read_bytes()[:4096])
    before = snapshot(run)
    assert_one_line_error(runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3"]), 1,
          "checkpoint.h5", "the checkpoint is damaged")
    assert snapshot(run) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["train", "--epochs", "0"], "Invalid value for '--epochs'"),
        (["train", "--latent-size", "-1"], "Invalid value for '--latent-size'"),
        (["train", "--steps-per-epoch", "0"], "Invalid value for '--steps-per-epoch'"),
        (["sample", "--digit", "12"], "Invalid value for '--digit'"),
        (["sample", "--n", "0"], "Invalid value for '--n'"),
    ],
)
def test_usage_errors_exit_2(args, fragment):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_full_disk_keeps_the_old_file(trained_run, tmp_path, monkeypatch):
    from acgan_cli import atomic

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    plot = tmp_path / "losses.png"
    plot.write_bytes(b"an older plot")

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "_fsync", full)
    before = snapshot(tmp_path)
    assert_one_line_error(runner.invoke(app, ["history", str(run), "--plot", str(plot)]), 1,
          "cannot write", "losses.png", "No space left on device")
    assert_one_line_error(runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3"]), 1,
          "No space left on device")
    assert snapshot(tmp_path) == before
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name], "temporaries are cleaned up"


def test_gzip_idx_that_is_not_gzip(tmp_path):
    folder = idx_folder(tmp_path, lambda p: None)
    bad = folder / "t10k-labels-idx1-ubyte"
    bad.rename(folder / "t10k-labels-idx1-ubyte.gz.bak")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"plain bytes, not gzip")
    result = runner.invoke(app, ["train", "--data", str(folder), "--out", str(tmp_path / "r")])
    assert_one_line_error(result, 1, "t10k-labels-idx1-ubyte.gz")
    assert gzip  # the module under test reads .gz through gzip
