"""The run directory: what `train` writes and every other command reads back.

docs/run-directory.md is the user-facing description of this layout; keep them in step.
"""

from __future__ import annotations

import json
import math
import pickle
import platform
import re
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from acgan_cli import __version__, atomic
from acgan_cli.config import TrainConfig
from acgan_cli.errors import RunError

RUN_FORMAT = "acgan-run/1"
HISTORY_FORMAT = "acgan-history/1"
COLUMNS = ("total", "generation", "auxiliary")
COMPONENTS = ("generator", "discriminator")
CONFIG = "config.json"
HISTORY = "history.json"
HISTORY_PICKLE = "acgan-history.pkl"
CHECKPOINT = "checkpoint.h5"
EVALUATION = "evaluation.json"
_TEMPORARY = re.compile(r"^\.(params_|plot_epoch_|config|history|acgan-history|checkpoint|evaluation|sample).*\.tmp")
_EPOCH_FILE = re.compile(
    r"^(params_generator_epoch_|params_discriminator_epoch_|plot_epoch_)(\d{3,})"
    # acgan sample's default names (sampling.default_out)
    r"|^(sample|interpolate)_(all|digit\d)_epoch\d{3,}\.png$|^styles_epoch\d{3,}\.png$"
)


def finite_or_none(value: float) -> float | None:
    """Strict JSON has no NaN: a diverged network's number is stored as null."""
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class RunInfo:
    """What config.json holds."""

    config: TrainConfig
    resolved: dict[str, Any]
    environment: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    created: str = ""


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # --- names -----------------------------------------------------------------------
    def generator_weights(self, epoch: int) -> Path:
        return self.path / f"params_generator_epoch_{epoch:03d}.weights.h5"

    def discriminator_weights(self, epoch: int) -> Path:
        return self.path / f"params_discriminator_epoch_{epoch:03d}.weights.h5"

    def plot(self, epoch: int) -> Path:
        return self.path / f"plot_epoch_{epoch:03d}_generated.png"

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def history_path(self) -> Path:
        return self.path / HISTORY

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def pickle_path(self) -> Path:
        return self.path / HISTORY_PICKLE

    # --- state -----------------------------------------------------------------------
    def acgan_files(self) -> list[Path]:
        """Files in the directory that a run of acgan writes."""
        if not self.path.is_dir():
            return []
        fixed = {CONFIG, HISTORY, HISTORY_PICKLE, CHECKPOINT, EVALUATION}
        return sorted(p for p in self.path.iterdir() if p.name in fixed or _EPOCH_FILE.match(p.name))

    def saved_epochs(self) -> list[int]:
        """Epochs whose generator weights are on disk, ascending."""
        if not self.path.is_dir():
            return []
        pattern = re.compile(r"^params_generator_epoch_(\d{3,})\.weights\.h5$")
        return sorted(int(m.group(1)) for p in self.path.iterdir() if (m := pattern.match(p.name)))

    def completed_epochs(self) -> int:
        """Epochs recorded in history.json, which is written last at the end of an epoch."""
        try:
            return len(json.loads(self.history_path.read_text(encoding="utf-8"))["epochs"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def remove_abandoned_temporaries(self) -> list[Path]:
        """Temporaries a killed writer left (see atomic.py); no other process writes here."""
        if not self.path.is_dir():
            return []
        stale = [p for p in self.path.iterdir() if _TEMPORARY.match(p.name)]
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    def prepare_new(self, overwrite: bool) -> list[Path]:
        """Make the directory ready for a new run; refuse to mix two runs in one.

        With `overwrite`, the previous run's files (and only those) are removed and
        returned, so the caller can say what went.
        """
        existing = self.acgan_files()
        if existing and not overwrite:
            raise RunError(
                f"{self.path} already holds a run ({len(existing)} acgan files); "
                "choose another --out, or pass --overwrite to replace it"
            )
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path} is a file, not a directory; choose another --out")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            for p in existing:
                p.unlink()
            self.remove_abandoned_temporaries()
        except OSError as exc:
            raise RunError(f"cannot prepare {self.path}: {exc.strerror or exc}; choose a writable --out") from exc
        return existing

    # --- config.json -----------------------------------------------------------------
    def write_config(self, info: RunInfo) -> None:
        atomic.write_json(
            self.config_path,
            {
                "format": RUN_FORMAT,
                "acgan_version": __version__,
                "created": info.created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "config": info.config.to_dict(),
                "resolved": info.resolved,
                "environment": info.environment,
                "data": info.data,
            },
        )

    def read_config(self) -> RunInfo:
        if not self.path.is_dir():
            raise RunError(f"run directory not found: {self.path}; pass --run to a directory written by `acgan train`")
        if not self.config_path.is_file():
            raise RunError(f"{self.path} holds no {CONFIG}; is it a directory written by `acgan train`?")
        try:
            raw = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"{self.config_path} is not valid JSON ({exc}); the run's config is damaged") from exc
        if not isinstance(raw, dict) or raw.get("format") != RUN_FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise RunError(f"{self.config_path} has format {found!r}; this acgan reads {RUN_FORMAT!r}")
        return RunInfo(
            config=TrainConfig.from_dict(raw.get("config")),
            resolved=raw.get("resolved") or {},
            environment=raw.get("environment") or {},
            data=raw.get("data") or {},
            created=raw.get("created", ""),
        )

    # --- history ---------------------------------------------------------------------
    def write_history(self, epochs: list[dict[str, Any]]) -> None:
        """history.json (acgan's own) and acgan-history.pkl (the reference's structure)."""
        atomic.write_json(self.history_path, {"format": HISTORY_FORMAT, "columns": list(COLUMNS), "epochs": epochs})
        legacy = {
            split: {comp: [np.array(e[split][comp], np.float64) for e in epochs] for comp in COMPONENTS}
            for split in ("train", "test")
        }
        atomic.write_bytes(self.pickle_path, pickle.dumps(legacy, protocol=4))


def environment(device: str) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "device": device,
        "platform": platform.platform(),
        "argv": sys.argv,
    }


# --- a saved epoch's weights (sample and evaluate) ---------------------------------------
def saved_epoch(run: RunDir, epoch: int | None) -> int:
    """`epoch` when its weights are on disk, the latest saved one for None."""
    saved = run.saved_epochs()
    if not saved:
        raise RunError(f"{run.path} holds no saved epoch yet; train first, or wait for `acgan train` to finish an epoch")
    if epoch is None:
        return saved[-1]
    if epoch not in saved:
        raise RunError(f"epoch {epoch} is not saved in {run.path}; saved epochs: {describe_epochs(saved)}")
    return epoch


def describe_epochs(epochs: list[int]) -> str:
    """1-15, or 1, 3, 5: ranges of consecutive epochs."""
    parts: list[str] = []
    start = prev = epochs[0]
    for e in [*epochs[1:], None]:
        if e is not None and e == prev + 1:
            prev = e
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if e is not None:
            start = prev = e
    return ", ".join(parts)


def load_weights(model: Any, path: Path, fits: str) -> None:
    """Fill `model` from a .weights.h5 file; one line naming the file when it cannot.

    `fits` completes "does not fit ...", e.g. "a generator with latent size 100".
    """
    if not path.is_file():
        raise RunError(f"{path} is missing; the run's weights for this epoch are incomplete")
    try:
        with warnings.catch_warnings():
            # Keras warns about every layer it skips before it raises; the error says it all.
            warnings.simplefilter("ignore")
            model.load_weights(str(path))
    except ValueError as exc:
        raise RunError(
            f"weights {path} do not fit {fits} (from config.json); "
            "was config.json edited, or the file copied from another run?"
        ) from exc
    except OSError as exc:
        raise RunError(f"cannot read weights {path}: not a complete HDF5 weights file (truncated or damaged?)") from exc
