"""The resume checkpoint: every variable a run needs to continue exactly.

One HDF5 file, `checkpoint.h5`, replaced atomically after every epoch. It holds both
networks (BatchNorm statistics and dropout seed states included), both optimizers'
state, the step's noise seed state, the epoch number and the history so far. Arrays
are stored by position within each group, not by variable name, because Keras numbers
some names per process (`seed_generator_3`) and a resumed process may number them
differently; shapes are checked on restore.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from acgan_cli import atomic
from acgan_cli.errors import RunError

FORMAT = "acgan-checkpoint/1"


def _groups(model) -> dict[str, list]:
    return {
        "generator": model.generator.variables,
        "discriminator": model.discriminator.variables,
        "g_optimizer": model.g_optimizer.variables,
        "d_optimizer": model.d_optimizer.variables,
        "noise_seed": [model.noise_seed.state],
    }


def save(model, path: str | Path, epoch: int, history: list[dict[str, Any]]) -> None:
    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["epoch"] = epoch
            f.attrs["history"] = json.dumps(history)
            for group, variables in _groups(model).items():
                g = f.create_group(group)
                g.attrs["paths"] = json.dumps([v.path for v in variables])
                for i, v in enumerate(variables):
                    g.create_dataset(str(i), data=np.asarray(v.numpy()))

    atomic.write_with(path, write)


def restore(model, path: str | Path) -> tuple[int, list[dict[str, Any]]]:
    """Load the checkpoint into `model` (built from the run's config); return (epoch, history)."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path.parent} has no checkpoint to resume from; start a new run instead of --resume")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise RunError(f"{path} is not an acgan checkpoint ({FORMAT}); cannot resume from it")
            epoch = int(f.attrs["epoch"])
            history = json.loads(f.attrs["history"])
            values = {}
            for group, variables in _groups(model).items():
                stored = f[group]
                if len(stored) != len(variables):
                    raise RunError(
                        f"{path} holds {len(stored)} {group} arrays, the run's config builds {len(variables)}; "
                        "the checkpoint does not belong to this run"
                    )
                for i, v in enumerate(variables):
                    array = stored[str(i)][()]
                    if tuple(array.shape) != tuple(v.shape):
                        raise RunError(
                            f"{path}: {group} array {i} has shape {array.shape}, the run's {v.path} needs "
                            f"{tuple(v.shape)}; the checkpoint does not fit the run's config"
                        )
                    values[id(v)] = (v, array)
    except RunError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise RunError(f"cannot read {path} ({exc}); the checkpoint is damaged") from exc
    # Assign only once everything has been read and checked: never half a restore.
    for v, array in values.values():
        v.assign(array)
    return epoch, history
