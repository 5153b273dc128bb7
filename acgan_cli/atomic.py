"""Write files so that a crash leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from acgan_cli.errors import AcganError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp makes files private (0600); a finished file gets the usual permissions.
_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it over `target` on success.

    The temporary file lives in the same directory (rename is atomic only within a
    file system) and keeps `target`'s suffix by default, because some writers
    (Keras' `save_weights`, Pillow) choose the format from the name.
    """
    target = Path(target)
    suffix = "".join(target.suffixes) if suffix is None else suffix
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{suffix}", dir=target.parent)
        os.close(fd)
        os.chmod(tmp, _FILE_MODE)
    except OSError as exc:
        raise AcganError(f"cannot write {target}: {exc.strerror or exc}; choose a writable location") from exc
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, target)
    except OSError as exc:
        raise AcganError(f"cannot write {target}: {exc.strerror or exc}; check free space and permissions") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: object) -> None:
    write_text(target, json.dumps(obj, indent=2) + "\n")


def write_with(target: str | os.PathLike, writer: Callable[[Path], None]) -> None:
    """Call `writer(tmp_path)` and move the result into place."""
    with atomic_path(target) as tmp:
        writer(tmp)
