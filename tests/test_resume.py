"""Resume and crash safety: exact continuation, refused mismatches, SIGKILL at any moment."""

from __future__ import annotations

import json
import pickle
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.runs import RunDir
from tests.conftest import TINY, h5_arrays

runner = CliRunner()


def tiny_args(npz, out, epochs):
    args = ["train", "--data", str(npz), "--out", str(out), "--epochs", str(epochs)]
    for key, value in TINY.items():
        if key != "epochs":
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args



def losses(run):
    return [{k: e[k] for k in ("epoch", "steps", "train", "test")} for e in json.loads((run / "history.json").read_text())["epochs"]]


def test_one_epoch_then_resume_is_bit_identical_to_two_in_one_go(trained_run, tiny_npz, tmp_path):
    out = tmp_path / "split"
    assert runner.invoke(app, tiny_args(tiny_npz, out, 1)).exit_code == 0
    assert RunDir(out).completed_epochs() == 1
    result = runner.invoke(app, ["train", "--out", str(out), "--resume", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "Resuming" in result.stdout and "after epoch 1" in result.stdout
    assert losses(out) == losses(trained_run)
    for name in ("params_generator_epoch_002.weights.h5", "params_discriminator_epoch_002.weights.h5", "checkpoint.h5"):
        a, b = h5_arrays(trained_run / name), h5_arrays(out / name)
        assert a.keys() == b.keys() and len(a) > 10
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}")
    assert json.loads((out / "config.json").read_text())["config"]["epochs"] == 2


def test_resume_refuses_changed_settings_and_finished_runs(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    changed = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3", "--batch-size", "16"])
    assert changed.exit_code == 1
    assert "--batch-size 16 differs from the run's saved 8" in changed.stderr and "Traceback" not in changed.output
    finished = runner.invoke(app, ["train", "--out", str(run), "--resume"])
    assert finished.exit_code == 1
    assert "already holds 2 epochs; pass --epochs with more than 2" in finished.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    both = runner.invoke(app, ["train", "--out", str(run), "--resume", "--overwrite"])
    assert both.exit_code == 2 and "choose one" in both.stderr
    empty = runner.invoke(app, ["train", "--out", str(tmp_path / "nothing"), "--resume"])
    assert empty.exit_code == 1 and "run directory not found" in empty.stderr


def test_resume_with_same_settings_given_again_is_accepted(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoint.h5").unlink()
    result = runner.invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3", "--batch-size", "8", "--seed", "7"])
    assert result.exit_code == 1  # settings agree; the missing checkpoint is what stops it
    assert "has no checkpoint to resume from" in result.stderr


def check_every_file_loads(run):
    from acgan_cli.history import load_history

    for p in run.iterdir():
        assert ".tmp" not in p.name or p.name.startswith("."), p
        if p.name.startswith("."):
            continue  # a temporary the kill left; never a file acgan reads
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".h5":
            assert h5_arrays(p)
        elif p.suffix == ".png":
            with Image.open(p) as im:
                im.load()
        elif p.suffix == ".pkl":
            pickle.loads(p.read_bytes())
    if (run / "history.json").exists():
        load_history(run)


@pytest.mark.parametrize("moment", ["mid-batch", "end-of-epoch-writes"])
def test_sigkill_leaves_loadable_files_and_resume_continues(tmp_path, tiny_npz, moment):
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "acgan_cli", *tiny_args(tiny_npz, out, 50)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            names = [p.name for p in out.iterdir()] if out.exists() else []
            if moment == "mid-batch" and "history.json" in names:
                time.sleep(0.3)
                break
            if moment == "end-of-epoch-writes" and "history.json" in names and any(".tmp" in n for n in names):
                break
            time.sleep(0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    check_every_file_loads(out)
    done = RunDir(out).completed_epochs()
    assert done >= 1
    result = runner.invoke(app, ["train", "--out", str(out), "--resume", "--epochs", str(done + 1)])
    assert result.exit_code == 0, result.output
    assert f"after epoch {done}" in result.stdout
    hist = json.loads((out / "history.json").read_text())["epochs"]
    assert [e["epoch"] for e in hist] == list(range(1, done + 2))
    assert not [p for p in out.iterdir() if ".tmp" in p.name], "resume clears abandoned temporaries"
    check_every_file_loads(out)


def test_sigterm_exits_143_with_resume_hint(tmp_path, tiny_npz):
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "acgan_cli", *tiny_args(tiny_npz, out, 50)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "history.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "terminated (SIGTERM);" in stderr and f"acgan train --out {out} --resume" in stderr
    assert "Traceback" not in stderr
