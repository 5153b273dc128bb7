"""The judge: a small CNN trained once on a data set's own digits, then cached.

Inception-based metrics need a network from the internet and 299x299 colour
images; acgan's digits are 28x28 and grey. So acgan trains its own classifier on
the run's train split (a few minutes on two CPU cores), keeps its weights under a
sha256 of the data, and reports its accuracy on the real test split beside every
metric, so a user sees how far to trust it. Its 128 penultimate activations are
the features that Fréchet distance and diversity are measured in (metrics.py).

Prints nothing: training reports `JudgeStep` events, real-data features
`metrics.Progress` events, to `on_progress`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from acgan_cli import atomic, data, metrics
from acgan_cli.backend import import_tensorflow, native_stderr_hushed
from acgan_cli.errors import AcganError

import_tensorflow()

import keras  # noqa: E402 - after the quiet import above
from keras import layers  # noqa: E402

# Bump when the network or its training changes: old cache entries then stop matching.
RECIPE_VERSION = 1
# Measured on real MNIST with two CPU cores (docs/metrics.md): 3 epochs of batch 128
# with Adam 1e-3 clear 98.5% test accuracy in a few minutes.
EPOCHS = 3
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
FEATURES = 128
PREDICT_BATCH = 1000
REFERENCE_CHUNK = 5000
# One cache entry: its description (written last), the weights, real data's reference values.
CACHE_SUFFIXES = (".json", ".weights.h5", ".reference.npz")


@dataclass(frozen=True)
class JudgeStep:
    """One training batch of the judge done; `loss` and `accuracy` are the epoch's running means."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    accuracy: float

    @property
    def done(self) -> int:
        return (self.epoch - 1) * self.steps + self.step

    @property
    def total(self) -> int:
        return self.epochs * self.steps


ProgressFn = Callable[[Any], None]


def build_judge(seed: int = 0) -> keras.Model:
    """image in [-1, 1] (28, 28, 1) -> class probabilities; its layer "features" is the penultimate.

    Two conv blocks and a dense layer: Keras' MNIST convnet example, widened by a
    128-unit feature layer. Every random initialiser is seeded, so a seed fixes the judge.
    """
    def init(i: int) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=seed * 100 + i)

    image = keras.Input(shape=(28, 28, 1), name="image")
    x = image
    for i, filters in enumerate((32, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init(i), dtype="float32",
                          name=f"conv_{i + 1}")(x)
        x = layers.MaxPooling2D(2, dtype="float32", name=f"pool_{i + 1}")(x)
    x = layers.Flatten(dtype="float32", name="flatten")(x)
    features = layers.Dense(FEATURES, activation="relu", kernel_initializer=init(10), dtype="float32",
                            name="features")(x)
    x = layers.Dropout(0.3, seed=seed * 100 + 20, dtype="float32", name="dropout")(features)
    probs = layers.Dense(10, activation="softmax", kernel_initializer=init(11), dtype="float32", name="classes")(x)
    return keras.Model(image, probs, name="judge")


class Judge:
    """A trained judge and the data set it judges against."""

    def __init__(self, model: keras.Model, dataset: data.Dataset, test_accuracy: float, key: str,
                 reference_path: Path | None = None, cached: bool = False, train_seconds: float | None = None) -> None:
        self.model = model
        self.dataset = dataset
        self.test_accuracy = test_accuracy
        self.key = key
        self.cached = cached
        self.train_seconds = train_seconds
        self._reference_path = reference_path
        self._reference: metrics.Reference | None = None
        self._both = keras.Model(model.input, [model.output, model.get_layer("features").output], name="judge_outputs")
        self._traced = False

    def outputs(self, images_m11: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, 10), features (N, 128)) for images in [-1, 1], (N, 28, 28[, 1])."""
        x = np.asarray(images_m11, np.float32)
        if x.ndim == 3:
            x = x[..., np.newaxis]
        if len(x) == 0:
            return np.zeros((0, 10), np.float32), np.zeros((0, FEATURES), np.float32)
        if self._traced:
            probs, feats = self._both.predict(x, batch_size=PREDICT_BATCH, verbose=0)
        else:
            with native_stderr_hushed():  # the first call traces the graph
                probs, feats = self._both.predict(x, batch_size=PREDICT_BATCH, verbose=0)
            self._traced = True
        return probs, feats

    def predict_proba(self, images_m11: np.ndarray) -> np.ndarray:
        return self.outputs(images_m11)[0]

    def features(self, images_m11: np.ndarray) -> np.ndarray:
        return self.outputs(images_m11)[1]

    def reference(self, on_progress: ProgressFn | None = None) -> metrics.Reference:
        """Real digits' values of every metric; computed once (a pass over train + test), then cached."""
        if self._reference is None:
            self._reference = self._load_reference() or self._compute_reference(on_progress or _ignore)
        return self._reference

    def _load_reference(self) -> metrics.Reference | None:
        if self._reference_path is None or not self._reference_path.is_file():
            return None
        try:
            with np.load(self._reference_path, allow_pickle=False) as npz:
                return metrics.Reference.from_arrays({k: npz[k] for k in npz.files})
        except Exception:  # noqa: BLE001 - any unreadable cache file is simply recomputed
            return None

    def _compute_reference(self, on_progress: ProgressFn) -> metrics.Reference:
        ds = self.dataset
        total, done = len(ds.x_train) + len(ds.x_test), 0
        on_progress(metrics.Progress("reference", 0, total))
        outputs: dict[str, list[np.ndarray]] = {"train": [], "test_probs": [], "test": []}
        for split, x in (("train", ds.x_train), ("test", ds.x_test)):
            for start in range(0, len(x), REFERENCE_CHUNK):
                probs, feats = self.outputs(data.scale(x[start : start + REFERENCE_CHUNK]))
                outputs[split].append(feats)
                if split == "test":
                    outputs["test_probs"].append(probs)
                done += len(feats)
                on_progress(metrics.Progress("reference", done, total))
        reference = metrics.Reference.from_outputs(
            np.concatenate(outputs["train"]), ds.y_train, np.concatenate(outputs["test"]),
            np.concatenate(outputs["test_probs"]), ds.y_test, data.scale(ds.x_test),
        )
        if self._reference_path is not None:
            atomic.write_with(self._reference_path, lambda tmp: np.savez(tmp, **reference.to_arrays()))
        return reference


def _ignore(_: Any) -> None:
    pass


def recipe_epochs() -> int:
    """EPOCHS, or $ACGAN_JUDGE_EPOCHS: fewer for a quick look or a test suite (a cache entry of its own)."""
    text = os.environ.get("ACGAN_JUDGE_EPOCHS", "").strip()
    if not text:
        return EPOCHS
    if not text.isdigit() or int(text) < 1:
        raise AcganError(f"ACGAN_JUDGE_EPOCHS must be a whole number from 1, not {text!r}")
    return int(text)


def default_cache_dir() -> Path:
    """$ACGAN_CACHE_DIR/judges, else $XDG_CACHE_HOME/acgan/judges, else ~/.cache/acgan/judges."""
    root = os.environ.get("ACGAN_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "judges"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "acgan" / "judges"


def data_key(dataset: data.Dataset, *, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE, seed: int = 0) -> str:
    """sha256 of the four arrays and the training recipe: same data and recipe, same judge."""
    h = hashlib.sha256(f"acgan-judge v{RECIPE_VERSION} epochs={epochs} batch={batch_size} seed={seed}".encode())
    for name in ("x_train", "y_train", "x_test", "y_test"):
        a = np.ascontiguousarray(getattr(dataset, name))
        h.update(f"{name} {a.dtype.str} {a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def get_judge(
    dataset: data.Dataset,
    cache_dir: str | Path | None = None,
    on_progress: ProgressFn | None = None,
    *,
    epochs: int | None = None,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
) -> Judge:
    """The judge for `dataset`: from the cache when one was trained on the same data, else trained now.

    A missing, corrupt or foreign cache entry is trained over. Training emits JudgeStep events.
    `epochs` None: EPOCHS, or $ACGAN_JUDGE_EPOCHS when set (recipe_epochs).
    """
    on_progress = on_progress or _ignore
    epochs = recipe_epochs() if epochs is None else epochs
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    _check_writable(folder)
    key = data_key(dataset, epochs=epochs, batch_size=batch_size, seed=seed)
    info_path, weights_path, reference_path = (folder / f"{key[:32]}{suffix}" for suffix in CACHE_SUFFIXES)

    loaded = _load(info_path, weights_path, key, seed)
    if loaded is not None:
        model, info = loaded
        return Judge(model, dataset, info["test_accuracy"], key, reference_path, cached=True,
                     train_seconds=info.get("train_seconds"))

    started = time.monotonic()
    model = train_judge(dataset, epochs=epochs, batch_size=batch_size, seed=seed, on_progress=on_progress)
    seconds = round(time.monotonic() - started, 1)
    judge = Judge(model, dataset, math.nan, key, reference_path, cached=False, train_seconds=seconds)
    predicted = np.argmax(judge.predict_proba(data.scale(dataset.x_test)), axis=1)
    judge.test_accuracy = float(np.mean(predicted == dataset.y_test))
    # The reference from an older judge with this key no longer holds.
    reference_path.unlink(missing_ok=True)
    atomic.write_with(weights_path, lambda tmp: model.save_weights(str(tmp)))
    # The JSON last: it is what says the entry is complete.
    atomic.write_json(info_path, {
        "recipe_version": RECIPE_VERSION,
        "key": key,
        "test_accuracy": judge.test_accuracy,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "train_seconds": seconds,
        "source": dataset.source,
        "train": len(dataset.x_train),
        "test": len(dataset.x_test),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    return judge


def _check_writable(folder: Path) -> None:
    """Before minutes of training, not after."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AcganError(f"cannot create the judge cache {folder}: {exc.strerror or exc}; set ACGAN_CACHE_DIR") from exc
    if not os.access(folder, os.W_OK):
        raise AcganError(f"the judge cache {folder} is not writable; set ACGAN_CACHE_DIR to a writable folder")


def _load(info_path: Path, weights_path: Path, key: str, seed: int) -> tuple[keras.Model, dict[str, Any]] | None:
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        accuracy = info["test_accuracy"]
        if info.get("key") != key or info.get("recipe_version") != RECIPE_VERSION or not 0 <= accuracy <= 1:
            return None
        model = build_judge(seed)
        with native_stderr_hushed():
            model.load_weights(str(weights_path))
        return model, info
    except Exception:  # noqa: BLE001 - missing, torn or foreign files all mean "train again"
        return None


class _Steps(keras.callbacks.Callback):
    def __init__(self, epoch: int, epochs: int, steps: int, on_progress: ProgressFn) -> None:
        super().__init__()
        self.epoch, self.epochs, self.steps, self.on_progress = epoch, epochs, steps, on_progress

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self.on_progress(JudgeStep(self.epoch, self.epochs, batch + 1, self.steps,
                                   float(logs.get("loss", math.nan)), float(logs.get("accuracy", math.nan))))


def train_judge(
    dataset: data.Dataset, *, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE, seed: int = 0,
    on_progress: ProgressFn | None = None,
) -> keras.Model:
    """Train a fresh judge on the train split; shuffled every epoch from `seed`, so reproducible."""
    on_progress = on_progress or _ignore
    model = build_judge(seed)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    n = len(dataset.x_train)
    steps = math.ceil(n / batch_size)
    for epoch in range(1, epochs + 1):
        order = np.random.default_rng([seed, epoch]).permutation(n)
        x, y = data.scale(dataset.x_train[order]), dataset.y_train[order].astype(np.int32)
        model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
                  callbacks=[_Steps(epoch, epochs, steps, on_progress)])
    return model
