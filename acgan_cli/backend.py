"""Import TensorFlow quietly, once, only where a model is needed."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


def _verbose() -> bool:
    """A user who sets TF_CPP_MIN_LOG_LEVEL to 0 or 1 gets everything, as TensorFlow prints it."""
    return os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3") in ("0", "1")


@contextlib.contextmanager
def native_stderr_hushed() -> Iterator[None]:
    """Hold back what TensorFlow's C++ side writes to file descriptor 2 meanwhile.

    TensorFlow writes some lines (oneDNN notes, "could not find cuda drivers", grappler's
    "remapper failed" on the first trace) straight to the descriptor, past
    TF_CPP_MIN_LOG_LEVEL. They are shown only if the block fails.
    """
    if _verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow() -> None:
    if "tensorflow" in sys.modules:
        return
    with native_stderr_hushed():
        import tensorflow  # noqa: F401
