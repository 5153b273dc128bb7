"""Import TensorFlow quietly, once, only where a model is needed."""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow() -> None:
    """Import TensorFlow without its start-up banner on the user's terminal.

    TensorFlow's C++ side writes lines (oneDNN notes, "could not find cuda drivers")
    straight to file descriptor 2 before its logging honours TF_CPP_MIN_LOG_LEVEL, so
    they are caught in a temporary file and shown only if the import fails. A user
    who sets TF_CPP_MIN_LOG_LEVEL to 0 or 1 gets everything, as TensorFlow prints it.
    """
    if "tensorflow" in sys.modules:
        return
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if level in ("0", "1"):
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
