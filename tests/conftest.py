"""Shared fixtures: tiny generated data sets and one trained tiny run for the session.

Nothing here downloads or reads real MNIST: the suite runs anywhere.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# Small but real: the reference networks, a few steps, a tiny latent vector.
TINY = dict(epochs=2, batch_size=8, latent_size=8, seed=7, steps_per_epoch=3)


def make_arrays(n_train: int = 48, n_test: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Digit-like blobs: class c is a bright bar at row 2 + 2c, so classes differ visibly."""
    rng = np.random.default_rng(seed)

    def images(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            x[i, 2 + 2 * c : 4 + 2 * c, 4:24] = 255
        return x, labels.astype(np.uint8)

    x_train, y_train = images(n_train)
    x_test, y_test = images(n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def assert_one_line_error(result, code, *fragments):
    """The CLI's error contract: this exit code, one line on stderr naming the problem, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def tensorflow_modules_after(*invocations: tuple[list[str], int]) -> list[str]:
    """Run CLI invocations (args, expected exit code) in a fresh process; list the
    TensorFlow and Keras modules they imported (none, for commands that need no model)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from acgan_cli.cli import app\n"
        f"for args, code in {list(invocations)!r}:\n"
        "    r = CliRunner().invoke(app, args)\n"
        "    assert r.exit_code == code, (args, r.output)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip())  # a list of module names printed just above


def h5_arrays(path) -> dict:
    """Every dataset in an HDF5 file, by its path inside the file."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.fixture(scope="session")
def arrays() -> dict[str, np.ndarray]:
    return make_arrays()


@pytest.fixture(scope="session")
def tiny_npz(tmp_path_factory, arrays) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="session")
def tiny_idx(tmp_path_factory, arrays) -> Path:
    folder = tmp_path_factory.mktemp("idx")
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for key, name in names.items():
        write_idx(folder / name, arrays[key], gz=key.startswith("x"))
    return folder


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_npz) -> Path:
    """One tiny run, trained once through the CLI in-process, shared by every test that reads a run."""
    from typer.testing import CliRunner

    from acgan_cli.cli import app

    out = tmp_path_factory.mktemp("runs") / "tiny"
    args = ["train", "--data", str(tiny_npz), "--out", str(out)]
    for key, value in TINY.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out
