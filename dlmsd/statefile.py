"""Durable writes of the small state files (invocation counters, profile positions,
the MQTT spool): the whole file or nothing, even across a power cut.

The bytes go to ``NAME.tmp`` (mode 0600), which is flushed to the disk (fsync) and
renamed over the file; then the directory is flushed too, since on POSIX an fsync of
the file does not make its new directory entry durable.  A failure leaves the old file
as it was, removes the temporary one and raises the ``OSError`` for the caller to turn
into its own error.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["json_bytes", "write_durably"]


def json_bytes(doc: Any) -> bytes:
    """``doc`` as the state files write it: indented JSON, UTF-8, a final newline."""
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def write_durably(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically and durably (see the module)."""
    temp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
