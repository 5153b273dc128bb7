"""`acgan train` end to end on tiny data: the run directory, its contents, options and errors."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from acgan_cli.cli import app
from acgan_cli.runs import RunDir
from tests.conftest import TINY, assert_one_line_error, tensorflow_modules_after

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result



def test_run_directory_holds_every_file_per_epoch(trained_run):
    names = sorted(p.name for p in trained_run.iterdir())
    assert names == sorted(
        ["config.json", "history.json", "acgan-history.pkl", "checkpoint.h5"]
        + [f"params_{net}_epoch_{e:03d}.weights.h5" for net in ("generator", "discriminator") for e in (1, 2)]
        + [f"plot_epoch_{e:03d}_generated.png" for e in (1, 2)]
    )


def test_config_json_records_settings_seed_versions_and_data(trained_run, tiny_npz):
    raw = json.loads((trained_run / "config.json").read_text())
    assert raw["format"] == "acgan-run/1"
    for key, value in TINY.items():
        assert raw["config"][key] == value
    assert raw["config"]["data"] == str(tiny_npz.resolve())
    assert raw["config"]["lr"] == 2e-4 and raw["config"]["beta1"] == 0.5
    assert raw["resolved"] == {"seed": 7, "precision": "float32", "jit": False, "strategy": "default", "replicas": 1, "workers": 1}
    assert raw["environment"]["device"] == "CPU"
    assert raw["environment"]["tensorflow"].startswith("2.")
    assert raw["environment"]["keras"].startswith("3.")
    assert raw["data"] == {"source": str(tiny_npz.resolve()), "train": 48, "test": 16}
    info = RunDir(trained_run).read_config()
    assert info.config.latent_size == 8 and info.config.seed == 7


def test_history_json_and_reference_pickle_agree(trained_run):
    hist = json.loads((trained_run / "history.json").read_text())
    assert hist["format"] == "acgan-history/1" and hist["columns"] == ["total", "generation", "auxiliary"]
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2]
    for e in hist["epochs"]:
        assert e["steps"] == 3 and e["seconds"] > 0
        for split in ("train", "test"):
            for comp in ("generator", "discriminator"):
                total, gen, aux = e[split][comp]
                assert np.isfinite([total, gen, aux]).all() and gen > 0 and aux > 0
                assert total == pytest.approx(gen + aux)
    with open(trained_run / "acgan-history.pkl", "rb") as f:
        legacy = pickle.load(f)
    assert set(legacy) == {"train", "test"}
    for split in ("train", "test"):
        assert set(legacy[split]) == {"generator", "discriminator"}
        for comp in ("generator", "discriminator"):
            assert len(legacy[split][comp]) == 2
            np.testing.assert_array_equal(np.array(legacy[split][comp]), [e[split][comp] for e in hist["epochs"]])


def test_weights_load_into_models_built_from_config(trained_run):
    from acgan_cli.models import build_generator

    info = RunDir(trained_run).read_config()
    g1, g2 = build_generator(info.config.latent_size), build_generator(info.config.latent_size)
    g1.load_weights(trained_run / "params_generator_epoch_001.weights.h5")
    g2.load_weights(trained_run / "params_generator_epoch_002.weights.h5")
    z = np.random.default_rng(0).uniform(-1, 1, (4, 8)).astype(np.float32)
    c = np.arange(4).reshape(-1, 1).astype(np.int32)
    a, b = g1([z, c], training=False).numpy(), g2([z, c], training=False).numpy()
    assert a.shape == (4, 28, 28, 1) and np.abs(a).max() <= 1
    assert not np.allclose(a, b), "epoch 2 must have changed the generator"


def test_epoch_plot_has_reference_size_and_white_column(trained_run, tiny_npz):
    with Image.open(trained_run / "plot_epoch_001_generated.png") as im:
        assert im.size == (588, 1120) and im.mode == "L"
        px = np.asarray(im)
    assert np.all(px[:, 280:308] == 255)
    # real digits: the first 400 training images (wrapping on 48), sorted by class
    raw = np.load(tiny_npz)
    idx = np.arange(400) % 48
    order = np.argsort(raw["y_train"][idx], kind="stable")
    np.testing.assert_array_equal(px[0:28, 308:336], raw["x_train"][idx][order][0])
    assert px[:, :280].std() > 0  # generated columns are not blank


def test_same_seed_same_first_epoch(trained_run, tiny_npz, tmp_path):
    args = ["train", "--data", tiny_npz, "--out", tmp_path / "again", "--epochs", 1]
    for key, value in TINY.items():
        if key != "epochs":
            args += [f"--{key.replace('_', '-')}", value]
    assert invoke(*args).exit_code == 0
    first = json.loads((trained_run / "history.json").read_text())["epochs"][0]
    again = json.loads((tmp_path / "again" / "history.json").read_text())["epochs"][0]
    assert first["train"] == again["train"] and first["test"] == again["test"]


def test_output_names_where_things_went(tiny_npz, tmp_path):
    out = tmp_path / "r"
    result = invoke("train", "--data", tiny_npz, "--out", out, "--epochs", 1, "--batch-size", 8,
                    "--latent-size", 8, "--steps-per-epoch", 2, "--seed", 1)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "48 train / 16 test images" in text
    assert "1 epochs x 2 steps, batch 8, latent 8" in text and "seed 1, precision float32, XLA off" in text
    assert "epoch 1/1 step 2/2" in text
    assert "generator (train)" in text and "discriminator (test)" in text
    assert str(out / "plot_epoch_001_generated.png") in text
    assert "Done: 1 epoch in" in text

    # a second run into the same directory is refused, and nothing there changes
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    refused = invoke("train", "--data", tiny_npz, "--out", out, "--epochs", 1)
    assert_one_line_error(refused, 1, "already holds a run", "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    replaced = invoke("train", "--data", tiny_npz, "--out", out, "--epochs", 1, "--batch-size", 8,
                      "--latent-size", 8, "--steps-per-epoch", 1, "--seed", 2, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert "removed" in replaced.stdout
    assert json.loads((out / "config.json").read_text())["config"]["seed"] == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--epochs", "0"], "Invalid value for '--epochs'"),
        (["--batch-size", "-3"], "Invalid value for '--batch-size'"),
        (["--precision", "float8"], "Invalid value for '--precision'"),
        (["--jit", "maybe"], "Invalid value for '--jit'"),
        (["--dataset", "cifar"], "Invalid value for '--dataset'"),
    ],
)
def test_usage_errors_exit_2(args, fragment, tmp_path):
    result = invoke("train", "--out", tmp_path / "x", *args)
    assert result.exit_code == 2
    assert fragment in result.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--lr", "0"], ["--lr must be between 0 and 1"]),
        (["--beta1", "1.5"], ["--beta1 must be in [0, 1)"]),
        (["--data", "missing.npz"], ["data not found", "missing.npz"]),
    ],
)
def test_bad_values_one_line_exit_1_and_nothing_written(args, fragments, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--out", tmp_path / "x", *args)
    assert_one_line_error(result, 1, *fragments)
    assert not (tmp_path / "x").exists()


def test_bad_data_file_fails_before_touching_out(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((4, 28, 28), np.uint8))
    result = invoke("train", "--data", bad, "--out", tmp_path / "x")
    assert_one_line_error(result, 1, "lacks y_train, x_test, y_test")
    assert not (tmp_path / "x").exists()


def test_unwritable_out_is_one_line(tmp_path, tiny_npz):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = invoke("train", "--data", tiny_npz, "--out", blocker / "run", "--epochs", 1)
    assert_one_line_error(result, 1, "cannot prepare", "choose a writable --out")


def test_ctrl_c_exits_130_and_says_what_is_saved(tmp_path, tiny_npz, monkeypatch):
    from acgan_cli import gan

    calls = {"n": 0}
    real_step = gan.ACGAN.train_step

    def interrupted(self, x, y):
        calls["n"] += 1
        if calls["n"] == 3:  # during epoch 2 (2 steps per epoch)
            raise KeyboardInterrupt
        return real_step(self, x, y)

    monkeypatch.setattr(gan.ACGAN, "train_step", interrupted)
    out = tmp_path / "r"
    result = invoke("train", "--data", tiny_npz, "--out", out, "--epochs", 3, "--batch-size", 8,
                    "--latent-size", 8, "--steps-per-epoch", 2, "--seed", 1)
    assert result.exit_code == 130
    assert "interrupted; 1 complete epoch(s) saved in" in result.stderr
    assert RunDir(out).saved_epochs() == [1]
    assert len(json.loads((out / "history.json").read_text())["epochs"]) == 1


def test_non_finite_loss_stops_with_epoch_and_batch(tmp_path, tiny_npz, monkeypatch):
    from acgan_cli import gan

    real_step = gan.ACGAN.train_step

    def diverging(self, x, y):
        losses = real_step(self, x, y)
        if self.d_optimizer.iterations.numpy() >= 3:
            losses.generator[1] = np.nan
        return losses

    monkeypatch.setattr(gan.ACGAN, "train_step", diverging)
    out = tmp_path / "r"
    result = invoke("train", "--data", tiny_npz, "--out", out, "--epochs", 3, "--batch-size", 8,
                    "--latent-size", 8, "--steps-per-epoch", 2, "--seed", 1)
    assert_one_line_error(result, 1, "non-finite at epoch 2, batch 1")
    assert RunDir(out).saved_epochs() == [1]


def test_help_does_not_import_tensorflow():
    assert tensorflow_modules_after((["--help"], 0), (["train", "--help"], 0)) == []


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "acgan_cli", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip().startswith("acgan 0.")


def test_sigint_in_a_real_process_keeps_complete_epochs(tmp_path, tiny_npz):
    """Ctrl-C as a user presses it: exit 130, one line saying what is saved, no TensorFlow noise."""
    import signal
    import time

    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "acgan_cli", "train", "--data", str(tiny_npz), "--out", str(out), "--epochs", "50",
           "--batch-size", "8", "--latent-size", "8", "--steps-per-epoch", "4", "--seed", "1"]
    # A shell's background job (CI may be one) ignores SIGINT, and children inherit that:
    # give the child the default disposition, as a terminal's foreground process has.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / "history.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert [l for l in stderr.splitlines() if l.strip()] == [l for l in stderr.splitlines() if "interrupted;" in l]
    assert "Traceback" not in stderr and "oneDNN" not in stderr
    saved = RunDir(out).saved_epochs()
    hist = json.loads((out / "history.json").read_text())["epochs"]
    assert saved and [e["epoch"] for e in hist] == saved[: len(hist)]
    assert f"interrupted; {len(hist)} complete epoch(s) saved in {out}" in stderr
    assert "Training ACGAN on" in stdout


def test_eval_every_records_quality_in_history(tmp_path, tiny_npz, monkeypatch):
    monkeypatch.setenv("ACGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ACGAN_JUDGE_EPOCHS", "1")
    out = tmp_path / "r"
    result = invoke("train", "--data", tiny_npz, "--out", out, "--epochs", 3, "--batch-size", 8, "--latent-size", 8,
                    "--steps-per-epoch", 1, "--seed", 1, "--eval-every", 2, "--eval-samples", 5)
    assert result.exit_code == 0, result.output
    epochs = json.loads((out / "history.json").read_text())["epochs"]
    # every 2nd epoch, and always the last
    assert ["quality" in e for e in epochs] == [False, True, True]
    q = epochs[1]["quality"]
    assert q["n_per_class"] == 5 and 0 <= q["accuracy"] <= 1 and q["fid"] >= 0 and 1 <= q["score"] <= 10
    assert len(q["accuracy_per_class"]) == 10 and 0 <= q["judge_accuracy"] <= 1
    assert result.stdout.count("quality: class accuracy") == 2
    assert "judge trained in" in result.stdout and "judge from the cache" in result.stdout
    shown = invoke("history", out)
    assert shown.exit_code == 0 and "quality (judge)" in shown.stdout


def test_eval_options_are_checked(tmp_path):
    result = invoke("train", "--out", tmp_path / "x", "--eval-every", "-1")
    assert result.exit_code == 2 and "Invalid value for '--eval-every'" in result.stderr
    result = invoke("train", "--out", tmp_path / "x", "--eval-samples", "1")
    assert result.exit_code == 2 and "Invalid value for '--eval-samples'" in result.stderr
