"""tf.distribute without GPUs: 2 logical CPU devices for MirroredStrategy, 2 local processes
for MultiWorkerMirroredStrategy.

Logical devices must be set before TensorFlow starts, and a multi-worker strategy before
any other TensorFlow operation, so both run in fresh subprocesses; this process only
compares what they report.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from acgan_cli import distribute
from acgan_cli.cli import app
from acgan_cli.errors import ConfigError
from tests.conftest import h5_arrays

ROOT = Path(__file__).resolve().parents[1]

# --- who is the chief ------------------------------------------------------------------


def tf_config(cluster, kind, index):
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})}


def test_task_follows_tensorflows_chief_rule_and_explains_bad_tf_config():
    workers = {"worker": ["h0:1", "h1:1", "h2:1"]}
    assert distribute.task("mirrored", {}).chief  # no cluster: this process is everything
    assert distribute.task("multi-worker", tf_config(workers, "worker", 0)) == distribute.Task("worker", 0, 3)
    assert distribute.task("multi-worker", tf_config(workers, "worker", 0)).chief
    assert not distribute.task("multi-worker", tf_config(workers, "worker", 2)).chief
    with_chief = {"chief": ["c:1"], "worker": ["h0:1"]}
    assert distribute.task("multi-worker", tf_config(with_chief, "chief", 0)).chief
    assert not distribute.task("multi-worker", tf_config(with_chief, "worker", 0)).chief
    assert distribute.task("multi-worker", tf_config(with_chief, "worker", 0)).workers == 2
    for environ, message in [
        ({}, "needs the TF_CONFIG environment variable"),
        ({"TF_CONFIG": "{not json"}, "TF_CONFIG is not valid"),
        ({"TF_CONFIG": '{"cluster": {}}'}, "TF_CONFIG is not valid"),
        (tf_config(workers, "worker", 3), "task is worker 3, but its cluster lists 3"),
        (tf_config({**workers, "evaluator": ["e:1"]}, "evaluator", 0), "does not train"),
    ]:
        with pytest.raises(ConfigError, match=message):
            distribute.task("multi-worker", environ)


def test_cli_refuses_multi_worker_without_tf_config_and_xla_under_a_strategy(tiny_npz, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    runner = CliRunner()
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(tiny_npz), "--out", str(out), "--strategy", "multi-worker"])
    assert result.exit_code == 1 and "needs the TF_CONFIG environment variable" in result.stderr, result.output
    result = runner.invoke(app, ["train", "--data", str(tiny_npz), "--out", str(out), "--strategy", "mirrored", "--jit", "on"])
    assert result.exit_code == 1 and "XLA does not run under --strategy mirrored" in result.stderr, result.output
    assert not out.exists() or not any(out.iterdir()), "a refused run writes nothing"


def test_auto_is_the_default_strategy_on_this_cpu_and_config_json_says_so(trained_run):
    resolved = json.loads((trained_run / "config.json").read_text())["resolved"]
    assert {k: resolved[k] for k in ("strategy", "replicas", "workers")} == {"strategy": "default", "replicas": 1, "workers": 1}


def test_a_run_resumes_under_another_strategy(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    result = CliRunner().invoke(app, ["train", "--out", str(run), "--resume", "--epochs", "3", "--strategy", "mirrored"])
    assert result.exit_code == 0, result.output
    raw = json.loads((run / "config.json").read_text())
    assert raw["config"]["strategy"] == "mirrored" and raw["config"]["epochs"] == 3
    assert {k: raw["resolved"][k] for k in ("seed", "strategy", "replicas")} == {"seed": 7, "strategy": "mirrored", "replicas": 1}
    assert [e["epoch"] for e in json.loads((run / "history.json").read_text())["epochs"]] == [1, 2, 3]


# --- MirroredStrategy over 2 logical CPU devices ------------------------------------------

MIRRORED = r'''
import json, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import h5py, keras, numpy as np
from acgan_cli import distribute, gan, training
from acgan_cli.config import TrainConfig
from acgan_cli.data import scale
from tests.conftest import make_arrays

report = {}
two_devices = distribute.create("mirrored")
report["replicas"] = two_devices.num_replicas_in_sync


# float64 for the comparison: in float32 the replicas' partial sums round differently,
# and a ReLU whose input lies within that rounding of 0 (one in ~10^6) can flip, which
# rightly changes the step but makes the test depend on the inputs. The heads stay
# float32, and CollectiveAllReduce cannot pack float32 and float64 gradients into one
# all-reduce: this strategy sums on one device instead.
gan.POLICIES["float64"] = "float64"
exact = tf.distribute.MirroredStrategy(two_devices.extended.worker_devices, cross_device_ops=tf.distribute.ReductionToOneDevice())


def build(strategy, precision="float64"):
    keras.utils.set_random_seed(3)
    model = gan.ACGAN(latent_size=8, seed=3, strategy=strategy, precision=precision)
    # Dropout masks are drawn per replica: with the same seed, 2 halves cannot draw the
    # 1-replica step's mask. The comparison is about the reductions, so no dropout.
    for layer in model.discriminator.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return model


def state(model):
    return [v.numpy() for part in (model.generator, model.discriminator, model.g_optimizer, model.d_optimizer)
            for v in part.variables]


# 1. One step, given inputs: 13 real images, so the replicas get unequal parts (7 and 6).
a = make_arrays(n_train=13, n_test=2, seed=3)
x, y = scale(a["x_train"]), a["y_train"].astype(np.int32)
rng = np.random.default_rng(0)
inputs = (x, y, rng.uniform(-1, 1, (13, 8)), rng.integers(0, 10, 13), rng.uniform(-1, 1, (26, 8)), rng.integers(0, 10, 26))
one, two = build(None), build(exact)
before = state(one)
report["same_start"] = all(np.array_equal(p, q) for p, q in zip(before, state(two)))
l1, l2 = one.train_step_with(*inputs), two.train_step_with(*inputs)
report["losses"] = [l1.discriminator.tolist() + l1.generator.tolist(), l2.discriminator.tolist() + l2.generator.tolist()]
report["state_diff"] = max(float(np.abs(p - q).max()) if p.size else 0.0 for p, q in zip(state(one), state(two)))
report["step_size"] = max(float(np.abs(p - q).max()) for p, q in zip(before, state(one)))

# 2. Drawn noise: each replica its own.
seed = tf.constant([5, 9], tf.int64)
two = build(two_devices, "float32")
drawn = tf.function(lambda: two_devices.run(two._replica_sample, args=(seed, 0, 4)))()
noise = [t.numpy() for t in two_devices.experimental_local_results(drawn[0])]
report["noise_differs"] = not np.array_equal(noise[0], noise[1])

# 3. The tf.data pipeline: each replica its part of the step's global batch, as array_split cuts it.
order = np.random.default_rng(0).permutation(13)
batches = distribute.Batches(two_devices, a["x_train"], a["y_train"])
pipeline_ok = []
for step, (bx, by) in enumerate(batches.epoch(order, 8, 2)):  # batches of 8, then the last 5
    idx = order[step * 8 : (step + 1) * 8]
    got = zip(two_devices.experimental_local_results(bx), two_devices.experimental_local_results(by),
              np.array_split(x[idx], 2), np.array_split(y[idx], 2))
    pipeline_ok.append(all(np.array_equal(gx.numpy(), ex) and np.array_equal(gy.numpy(), ey) for gx, gy, ex, ey in got))
    two.train_step(bx, by)  # drawn noise, per-replica batches
report["pipeline_ok"] = pipeline_ok
report["replicas_in_sync"] = all(
    all(np.array_equal(c.numpy(), v.value.values[0].numpy()) for c in v.value.values)
    for part in (two.generator, two.discriminator, two.g_optimizer, two.d_optimizer) for v in part.variables
)

# 4. Training, checkpoint and resume through training.train: 1 epoch + resume == 2 epochs.
tmp = sys.argv[2]  # a directory of pytest's
np.savez(f"{tmp}/d.npz", **make_arrays(n_train=45))
settings = dict(batch_size=8, latent_size=8, seed=7, steps_per_epoch=3, data=f"{tmp}/d.npz", strategy="mirrored")
full = training.train(TrainConfig(epochs=2, **settings), f"{tmp}/full")
training.train(TrainConfig(epochs=1, **settings), f"{tmp}/split")
split = training.train(TrainConfig(epochs=2, **settings), f"{tmp}/split", resume=True, given=frozenset({"epochs"}))
report["resumed_losses_equal"] = [(e["train"], e["test"]) for e in full] == [(e["train"], e["test"]) for e in split]


def arrays(path):
    out = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


full_ckpt, split_ckpt = arrays(f"{tmp}/full/checkpoint.h5"), arrays(f"{tmp}/split/checkpoint.h5")
report["resumed_checkpoint_equal"] = full_ckpt.keys() == split_ckpt.keys() and all(
    np.array_equal(full_ckpt[k], split_ckpt[k]) for k in full_ckpt)
report["resolved"] = json.load(open(f"{tmp}/full/config.json"))["resolved"]
json.dump(report, open(sys.argv[1], "w"))
'''


def python(code: str, *args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("mirrored") / "report.json"
    proc = python(MIRRORED, str(path), str(path.parent))
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    return json.loads(path.read_text())


def test_two_replicas_compute_the_one_replica_step(mirrored):
    assert mirrored["replicas"] == 2 and mirrored["same_start"]
    one, two = mirrored["losses"]
    np.testing.assert_allclose(two, one, rtol=1e-6)  # float32 heads and losses
    # Weights, BatchNorm statistics, Adam's moments: equal to the float32 heads' rounding,
    # a ten-thousandth of the step (Adam's first step moves weights by about lr, 2e-4).
    assert mirrored["step_size"] > 1e-4
    assert mirrored["state_diff"] < 1e-6, mirrored["state_diff"]


def test_replicas_draw_their_own_noise_from_their_part_of_the_batch_and_stay_in_sync(mirrored):
    assert mirrored["noise_differs"]
    assert mirrored["pipeline_ok"] == [True, True]
    assert mirrored["replicas_in_sync"]


def test_mirrored_training_resumes_exactly_and_records_the_strategy(mirrored):
    assert mirrored["resumed_losses_equal"] and mirrored["resumed_checkpoint_equal"]
    assert mirrored["resolved"] == {"seed": 7, "precision": "float32", "jit": False, "strategy": "mirrored", "replicas": 2, "workers": 1}


# --- MultiWorkerMirroredStrategy: 2 processes on 127.0.0.1 -------------------------------

# The acgan CLI as `python -m acgan_cli` runs it, plus a copy of every checkpoint the
# worker writes, wherever it writes it (the non-chief's is deleted at the end).
WORKER = r'''
import os, shutil, sys
from acgan_cli import checkpoint

save = checkpoint.save


def save_and_copy(model, path, epoch, history):
    save(model, path, epoch, history)
    shutil.copy(path, os.environ["ACGAN_TEST_COPY"])


checkpoint.save = save_and_copy
from acgan_cli.cli import app

app(sys.argv[1:], prog_name="acgan")
'''


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports



def test_two_workers_train_in_lockstep_and_only_the_chief_writes(tiny_npz, tmp_path):
    out = tmp_path / "run"  # one directory for both, as on a shared file system
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    args = ["train", "--data", str(tiny_npz), "--out", str(out), "--strategy", "multi-worker",
            "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--latent-size", "8"]
    workers = []
    for index in (0, 1):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir()
        env = {**tf_config(cluster, "worker", index), "TMPDIR": str(scratch),
               "ACGAN_TEST_COPY": str(tmp_path / f"checkpoint{index}.h5")}
        workers.append(python(WORKER, *args, env=env))  # no --seed: the chief's is used
    outputs = []
    try:
        for proc in workers:
            outputs.append(proc.communicate(timeout=240)[0])
    finally:
        for proc in workers:
            proc.kill()
    assert [p.returncode for p in workers] == [0, 0], "\n\n".join(outputs)

    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["config.json", "history.json", "acgan-history.pkl", "checkpoint.h5",
                            "params_generator_epoch_001.weights.h5", "params_discriminator_epoch_001.weights.h5",
                            "plot_epoch_001_generated.png"])
    assert not list((tmp_path / "tmp1").iterdir()), "the other worker's scratch directory is gone"
    resolved = json.loads((out / "config.json").read_text())["resolved"]
    assert {k: resolved[k] for k in ("strategy", "replicas", "workers")} == {"strategy": "multi-worker", "replicas": 2, "workers": 2}

    chief, other = h5_arrays(out / "checkpoint.h5"), h5_arrays(tmp_path / "checkpoint1.h5")
    assert chief.keys() == other.keys() and len(chief) > 80
    for key in chief:  # weights, BatchNorm statistics, Adam's moments, seed states
        np.testing.assert_array_equal(chief[key], other[key], err_msg=key)
    assert h5_arrays(tmp_path / "checkpoint0.h5").keys() == chief.keys()
