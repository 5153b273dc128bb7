"""MNIST-like data: Keras' download, a Keras-layout `.npz`, or a folder of IDX files.

Everything comes back as uint8 images (N, 28, 28) and int labels 0-9, checked before
any training starts; `scale` maps pixels to [-1, 1] as the reference does.
"""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acgan_cli.errors import DataError

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The four standard file names (LeCun's MNIST page); `.gz` or not.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# IDX type codes (third byte of the magic number) -> numpy dtype, big-endian.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def summary(self) -> dict[str, object]:
        return {"source": self.source, "train": int(len(self.x_train)), "test": int(len(self.x_test))}


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [-1, 1], exactly as the reference."""
    return ((images.astype(np.float32) - 127.5) / 127.5)[..., np.newaxis]


def load(dataset: str = "mnist", path: str | Path | None = None) -> Dataset:
    """Load and check the data named by `--dataset` or `--data`."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.exists():
            raise DataError(f"data not found: {path}; give a Keras-layout .npz file or a folder of IDX files")
        arrays = _read_idx_folder(path) if path.is_dir() else _read_npz(path)
        source = str(path)
    else:
        arrays = _download(dataset)
        source = dataset
    return check(arrays, source)


def check(arrays: dict[str, np.ndarray], source: str) -> Dataset:
    """Validate shapes, dtypes, label range and counts; one message per problem."""
    out = {}
    for split in ("train", "test"):
        x_key, y_key = f"x_{split}", f"y_{split}"
        x, y = arrays[x_key], arrays[y_key]
        if x.ndim == 4 and x.shape[-1] == 1:
            x = x[..., 0]
        if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
            raise DataError(f"{source}: {x_key} has shape {x.shape}, expected (N, 28, 28) images")
        if len(x) == 0:
            raise DataError(f"{source}: {x_key} holds no images")
        out[x_key] = _as_pixels(x, x_key, source)
        y = np.squeeze(y) if y.ndim == 2 and 1 in y.shape else y
        if y.ndim != 1:
            raise DataError(f"{source}: {y_key} has shape {y.shape}, expected (N,) class labels")
        if len(y) != len(x):
            raise DataError(f"{source}: {x_key} has {len(x)} images but {y_key} has {len(y)} labels; they must agree")
        out[y_key] = _as_labels(y, y_key, source)
    return Dataset(source=source, **out)


def _as_pixels(x: np.ndarray, key: str, source: str) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{source}: {key} has dtype {x.dtype}, expected uint8 pixels 0-255")
    if x.size and (x.min() < 0 or x.max() > 255 or not np.all(np.mod(x, 1) == 0)):
        raise DataError(f"{source}: {key} has values outside whole numbers 0-255; expected uint8 pixels")
    return x.astype(np.uint8)


def _as_labels(y: np.ndarray, key: str, source: str) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise DataError(f"{source}: {key} has dtype {y.dtype}, expected integer class labels 0-9")
    if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise DataError(f"{source}: {key} has labels from {y.min()} to {y.max()}, expected 0-9")
    return y.astype(np.int32)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise DataError(f"{path} is a single .npy array, expected a .npz archive with keys {', '.join(NPZ_KEYS)}")
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise DataError(
                    f"{path} lacks {', '.join(missing)}; expected keys {', '.join(NPZ_KEYS)} "
                    f"(found {', '.join(npz.files) or 'none'})"
                )
            return {k: npz[k] for k in NPZ_KEYS}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path} as a .npz archive ({exc}); give a Keras-layout .npz or an IDX folder") from exc


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz"]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise DataError(f"{folder} lacks {stem}[.gz]; an IDX folder needs the four files {', '.join(IDX_FILES.values())}")
        arrays[key] = read_idx(found)
    return arrays


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (LeCun's format: magic 0x0000TTDD, DD big-endian int32 sizes, data)."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: IDX header is truncated")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: header promises {shape} ({expected} bytes of data) but the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _download(dataset: str) -> dict[str, np.ndarray]:
    """Keras' own download, cached in ~/.keras/datasets."""
    from acgan_cli.backend import import_tensorflow

    import_tensorflow()
    from keras import datasets  # imported here: it pulls in TensorFlow

    loader = {"mnist": datasets.mnist, "fashion-mnist": datasets.fashion_mnist}[dataset]
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as exc:  # noqa: BLE001 - urllib, socket, SSL and Keras' own errors all mean "no download"
        raise DataError(
            f"could not download {dataset} through Keras ({type(exc).__name__}: {exc}); "
            "without network, pass --data PATH to a local .npz or IDX folder"
        ) from exc
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
