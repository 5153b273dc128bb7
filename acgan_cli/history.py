"""A run's loss history, read from history.json or the reference's pickle, in one shape.

Both files hold, per epoch, a [total, generation, auxiliary] loss triple for each of
the generator and the discriminator, on the train and the test split (see
docs/run-directory.md). `load_history` reads either, checks it, and returns a
`History`; nothing here imports TensorFlow, so `acgan history` answers at once.

An epoch of history.json may also carry "quality": the quality of the generated
digits measured during training (`acgan train --eval-every K`, made by
evaluate.quality_for_history); it is kept as it is, non-finite numbers as null.

A history pickle is untrusted input: unpickling runs whatever callables the file
names. `_HistoryUnpickler` hands out only the handful of builtins, collections and
numpy constructors that the reference program's pickle needs and refuses the rest
before anything of them runs.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import pickle
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from acgan_cli.errors import RunError
from acgan_cli.runs import COLUMNS, HISTORY_PICKLE, finite_or_none
from acgan_cli.runs import HISTORY as HISTORY_JSON
from acgan_cli.runs import HISTORY_FORMAT as FORMAT
SPLITS = ("train", "test")
NETWORKS = ("generator", "discriminator")

# Binary cross-entropy when the discriminator answers 0.5 for every image: -log(0.5).
# The generation losses of both networks hover around it when neither one wins.
NASH_LOSS = math.log(2.0)

# What "best" means. A GAN's adversarial (generation) loss is measured against a
# discriminator that changes every epoch, so a low value often means a weak
# discriminator (typically epoch 1), not good digits. The generator's auxiliary loss
# on fresh noise says how well the discriminator's classifier, itself getting better
# on real digits, recognises each fake as the class it was asked to be: the
# AC-GAN-specific signal that rises with quality. A hint for `sample --epoch`, not a
# verdict: look at plot_epoch_NNN_generated.png.
BEST_BY = ("test", "generator", "auxiliary")
BEST_BY_TEXT = "lowest generator test auxiliary loss"

# The quality record's headline numbers (evaluate.history_record), in table order.
QUALITY_KEYS = ("accuracy", "fid", "score", "diversity")


class Losses(NamedTuple):
    """One [total, generation, auxiliary] triple; NaN where the file had no number."""

    total: float
    generation: float
    auxiliary: float


@dataclass(frozen=True)
class Epoch:
    number: int
    train: dict[str, Losses]
    test: dict[str, Losses]
    steps: int | None = None
    seconds: float | None = None
    # evaluate.history_record's dict when quality was measured after this epoch, else None.
    quality: dict[str, Any] | None = None

    def losses(self, split: str, network: str) -> Losses:
        return getattr(self, split)[network]

    def quality_value(self, key: str, real: bool = False) -> float:
        """A headline quality number (QUALITY_KEYS), real data's with `real`; NaN when not measured."""
        record = self.quality or {}
        value = (record.get("real") or {}).get(key) if real else record.get(key)
        return math.nan if value is None else float(value)

    @property
    def alarms(self) -> list[dict[str, Any]]:
        return list((self.quality or {}).get("alarms") or [])

    def to_json(self) -> dict[str, Any]:
        """history.json's shape, with null where a loss is not finite (strict JSON has no NaN)."""
        seconds = None if self.seconds is None else finite_or_none(self.seconds)
        doc: dict[str, Any] = {"epoch": self.number, "steps": self.steps, "seconds": seconds}
        for split in SPLITS:
            doc[split] = {net: [finite_or_none(v) for v in self.losses(split, net)] for net in NETWORKS}
        if self.quality is not None:
            doc["quality"] = self.quality
        return doc


@dataclass(frozen=True)
class History:
    source: Path
    epochs: tuple[Epoch, ...]

    @property
    def last(self) -> Epoch:
        return self.epochs[-1]

    @property
    def best(self) -> Epoch | None:
        """The epoch with the lowest BEST_BY loss (the first if tied); None if none is finite."""
        finite = [e for e in self.epochs if math.isfinite(_best_score(e))]
        return min(finite, key=_best_score, default=None)

    def series(self, split: str, network: str, column: str) -> list[float]:
        return [getattr(e.losses(split, network), column) for e in self.epochs]

    @property
    def quality_epochs(self) -> tuple[Epoch, ...]:
        """The epochs whose quality was measured."""
        return tuple(e for e in self.epochs if e.quality is not None)

    def to_json(self) -> dict[str, Any]:
        """A valid history.json (acgan reads it back) plus where it came from and the marked epochs."""
        best = self.best
        return {
            "format": FORMAT,
            "columns": list(COLUMNS),
            "source": str(self.source),
            "best_epoch": best.number if best else None,
            "best_by": ".".join(BEST_BY),
            "last_epoch": self.last.number,
            "epochs": [e.to_json() for e in self.epochs],
        }


def _best_score(epoch: Epoch) -> float:
    split, network, column = BEST_BY
    return getattr(epoch.losses(split, network), column)


def to_json_text(history: History) -> str:
    """`History.to_json()` as strict JSON text, one epoch per line: diffable and greppable."""
    doc = history.to_json()
    epochs = doc.pop("epochs")
    head = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in doc.items())
    rows = ",\n".join(f"    {json.dumps(e, allow_nan=False)}" for e in epochs)
    return f'{{\n{head},\n  "epochs": [\n{rows}\n  ]\n}}'


def load_history(path: str | Path) -> History:
    """Read a history.json, an acgan-history.pkl, or a run directory holding either."""
    path = Path(path)
    if path.is_dir():
        return _load_from_directory(path)
    if not path.exists():
        raise RunError(f"{path} does not exist: give a run directory, its history.json or an acgan-history.pkl")
    data = _read_bytes(path)
    if _looks_like_pickle(path, data):
        return _from_pickle(path, _unpickle(path, data))
    return _from_json(path, _parse_json(path, data))


def _load_from_directory(directory: Path) -> History:
    json_path, pickle_path = directory / HISTORY_JSON, directory / HISTORY_PICKLE
    if json_path.is_file():
        try:
            return load_history(json_path)
        except RunError as exc:
            if pickle_path.is_file():
                raise RunError(f"{exc} ({pickle_path} is there too: pass it to read that instead)") from None
            raise
    if pickle_path.is_file():
        return load_history(pickle_path)
    raise RunError(
        f"{directory} has no {HISTORY_JSON} or {HISTORY_PICKLE}: is it a run directory? "
        "(`acgan train` writes them after each epoch)"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror or exc}") from None


def _looks_like_pickle(path: Path, data: bytes) -> bool:
    # The name decides; for other names, every pickle since protocol 2 starts with 0x80.
    suffix = path.suffix.lower()
    if suffix == ".json":
        return False
    return suffix in {".pkl", ".pickle"} or data[:1] == b"\x80"


# --- history.json ---------------------------------------------------------------------


def _parse_json(path: Path, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise RunError(f"{path} is not JSON: it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise RunError(f"{path} is not a history: its JSON is nested too deeply") from None


def _from_json(path: Path, doc: Any) -> History:
    if not isinstance(doc, dict):
        raise RunError(f"{path} is not an acgan history: expected a JSON object, found {_describe(doc)}")
    fmt = doc.get("format")
    if fmt is not None and fmt != FORMAT:
        raise RunError(f"{path} has format {fmt!r}, not {FORMAT!r}: it is not an acgan history this version reads")
    columns = doc.get("columns", list(COLUMNS))
    if columns != list(COLUMNS):
        raise RunError(f"{path}: 'columns' must be {list(COLUMNS)}, found {columns!r}")
    entries = doc.get("epochs")
    if not isinstance(entries, list):
        raise RunError(f"{path} is not an acgan history: its 'epochs' key is missing or not a list")
    epochs = tuple(_json_epoch(path, i, entry) for i, entry in enumerate(entries))
    for before, after in zip(epochs, epochs[1:]):
        if after.number <= before.number:
            raise RunError(f"{path}: epoch {after.number} follows epoch {before.number}; epochs must increase")
    return _checked(path, epochs)


def _json_epoch(path: Path, index: int, entry: Any) -> Epoch:
    where = f"epochs[{index}]"
    if not isinstance(entry, dict):
        raise RunError(f"{path}: {where} must be an object, found {_describe(entry)}")
    number = entry.get("epoch")
    if not _is_int(number) or number < 1:
        raise RunError(f"{path}: {where}.epoch must be a whole number from 1, found {number!r}")
    steps, seconds = entry.get("steps"), entry.get("seconds")
    if steps is not None and not _is_int(steps):
        raise RunError(f"{path}: {where}.steps must be a whole number or null, found {steps!r}")
    if seconds is not None and not _is_number(seconds):
        raise RunError(f"{path}: {where}.seconds must be a number or null, found {seconds!r}")
    splits = {}
    for split in SPLITS:
        group = entry.get(split)
        if not isinstance(group, dict):
            raise RunError(f"{path}: {where}.{split} is missing or not an object")
        splits[split] = {net: _triple(path, f"{where}.{split}.{net}", group.get(net)) for net in NETWORKS}
    quality = _quality(path, f"{where}.quality", entry.get("quality"))
    return Epoch(number, splits["train"], splits["test"], steps, None if seconds is None else _as_float(seconds), quality)


def _quality(path: Path, where: str, value: Any) -> dict[str, Any] | None:
    """An epoch's quality record, checked where the table reads it; other keys are kept as they are."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RunError(f"{path}: {where} must be an object or null, found {_describe(value)}")
    for key in (*QUALITY_KEYS, "judge_accuracy", "diversity_min"):
        if value.get(key) is not None and not _is_number(value[key]):
            raise RunError(f"{path}: {where}.{key} must be a number or null, found {_describe(value[key])}")
    real = value.get("real")
    if real is not None:
        if not isinstance(real, dict):
            raise RunError(f"{path}: {where}.real must be an object, found {_describe(real)}")
        for key, number in real.items():
            if number is not None and not _is_number(number):
                raise RunError(f"{path}: {where}.real.{key} must be a number or null, found {_describe(number)}")
    alarms = value.get("alarms")
    if alarms is not None:
        if not isinstance(alarms, list):
            raise RunError(f"{path}: {where}.alarms must be a list, found {_describe(alarms)}")
        for i, alarm in enumerate(alarms):
            if not (isinstance(alarm, dict) and _is_int(alarm.get("class")) and isinstance(alarm.get("reason"), str)):
                raise RunError(f"{path}: {where}.alarms[{i}] must be an object with a whole-number class and a reason")
    return _strict(value)


def _strict(value: Any) -> Any:
    """A copy with every non-finite number as None: `--json` output is strict JSON."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- acgan-history.pkl ----------------------------------------------------------------


class _Refused(pickle.UnpicklingError):
    def __init__(self, wanted: str) -> None:
        super().__init__(wanted)
        self.wanted = wanted


def _latin1_bytes(text: Any, encoding: str = "latin1", errors: str = "strict") -> bytes:
    # Python 3 writes bytes as _codecs.encode(text, "latin1") in protocols 0-2; any other
    # codec is not something numpy's array data needs.
    if not isinstance(text, str) or encoding not in {"latin1", "latin-1"} or errors != "strict":
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    """(module, name) -> callable, for every global the reference's pickle can name.

    numpy 1.x writes numpy.core.*, numpy 2.x numpy._core.*; either is served by the
    installed numpy's own functions. Python 2 and protocols below 3 write __builtin__.
    """
    import collections

    import numpy as np

    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric

    allowed: dict[tuple[str, str], Callable[..., Any]] = {
        ("collections", "defaultdict"): collections.defaultdict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_bytes,
    }
    for module in ("builtins", "__builtin__"):
        for kind in (dict, list, float, int):
            allowed[module, kind.__name__] = kind
    for core in ("numpy.core", "numpy._core"):
        allowed[f"{core}.multiarray", "_reconstruct"] = multiarray._reconstruct
        allowed[f"{core}.multiarray", "scalar"] = multiarray.scalar
        allowed[f"{core}.numeric", "_frombuffer"] = numeric._frombuffer  # protocol 5 arrays
    return allowed


# Python 2 spellings that protocols 0-2 still write, shown the way a reader knows them.
_PY3_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}


class _HistoryUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO) -> None:
        # latin1: Python 2 pickles keep numpy's raw bytes in str objects (numpy's advice).
        super().__init__(file, encoding="latin1")
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[module, name]
        except KeyError:
            raise _Refused(f"{_PY3_MODULES.get(module, module)}.{name}") from None


def _unpickle(path: Path, data: bytes) -> Any:
    try:
        return _HistoryUnpickler(io.BytesIO(data)).load()
    except _Refused as exc:
        raise RunError(f"refusing to load {path}: it asks for {exc.wanted}, which a history file never contains") from None
    except Exception as exc:  # noqa: BLE001 - any failure of a damaged pickle is the same news
        detail = " ".join(str(exc).split()) or type(exc).__name__
        detail = detail if len(detail) <= 100 else detail[:97] + "..."
        raise RunError(f"{path} is not a readable pickle ({detail}): it is empty, truncated or damaged") from None


def _from_pickle(path: Path, obj: Any) -> History:
    shape = "{'train': {'generator': [...], 'discriminator': [...]}, 'test': {...}}"
    if not isinstance(obj, dict):
        raise RunError(f"{path} is not a history pickle: expected {shape}, found {_describe(obj)}")
    columns: dict[tuple[str, str], list[Any]] = {}
    for split in SPLITS:
        group = obj.get(split)  # .get: a defaultdict's factory must not run on a missing key
        if not isinstance(group, dict):
            raise RunError(f"{path} is not a history pickle: key {split!r} is missing or not a dict (expected {shape})")
        for net in NETWORKS:
            entries = group.get(net)
            if entries is None and isinstance(group, defaultdict) and group.default_factory is list:
                entries = []  # the reference's defaultdict(list) before its first epoch
            if not isinstance(entries, (list, tuple)):
                raise RunError(f"{path}: [{split!r}][{net!r}] is missing or not a list of loss triples")
            columns[split, net] = list(entries)
    lengths = {f"{s}.{n}": len(v) for (s, n), v in columns.items()}
    if len(set(lengths.values())) > 1:
        counts = ", ".join(f"{k} {v}" for k, v in lengths.items())
        raise RunError(f"{path}: the four loss lists must have one entry per epoch, but have {counts}")
    epochs = []
    for i in range(len(columns["train", "generator"])):
        splits = {
            split: {net: _triple(path, f"{split}.{net}[{i}]", columns[split, net][i]) for net in NETWORKS}
            for split in SPLITS
        }
        epochs.append(Epoch(i + 1, splits["train"], splits["test"]))
    return _checked(path, tuple(epochs))


# --- shared checks --------------------------------------------------------------------


def _checked(path: Path, epochs: tuple[Epoch, ...]) -> History:
    if not epochs:
        raise RunError(f"{path} holds no epochs yet: losses are recorded when an epoch ends")
    return History(path, epochs)


def _triple(path: Path, where: str, value: Any) -> Losses:
    """Three numbers from a list, tuple or numpy array; None (JSON null) stands for NaN."""
    items = value
    if not isinstance(value, (list, tuple)) and callable(getattr(value, "tolist", None)):
        items = value.tolist()  # numpy array -> nested Python lists of Python numbers
    if not isinstance(items, (list, tuple)) or len(items) != 3:
        raise RunError(f"{path}: {where} must be 3 numbers [total, generation, auxiliary], found {_describe(value)}")
    numbers_ = []
    for item in items:
        if item is None:
            numbers_.append(math.nan)
        elif _is_number(item):
            numbers_.append(_as_float(item))
        else:
            raise RunError(f"{path}: {where} must hold numbers, found {_describe(item)}")
    return Losses(*numbers_)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float range
        return math.copysign(math.inf, value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and shape:
        return f"an array of shape {shape}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    if value is None:
        return "null"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
