"""Reading back what a run left: only regular files, and only up to a size limit.

Every file planctl reads after a command (JSON metrics, junit XML, file checks, template data) is
written by that command or named by the plan, so none is trusted to be small or even a file:
``/dev/zero`` never ends and a FIFO never opens. Each is opened without blocking, must be a
regular file, and is read only up to the plan's ``limits.read_bytes``; the error names the limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from planctl.errors import PlanctlError

READ_LIMIT_NAME = "limits.read_bytes"


def human_size(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


def read_bounded(path: Path, limit: int, limit_name: str = READ_LIMIT_NAME) -> bytes:
    """The bytes of the regular file ``path`` if it holds at most ``limit`` of them.

    FileNotFoundError passes through (callers say "does not exist" their own way); any other
    problem is a PlanctlError naming the file and, for size, the limit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise PlanctlError(f"{path}: cannot read: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PlanctlError(f"{path} is not a regular file")
        too_big = f"{path} is larger than {limit_name} ({human_size(limit)})"
        if info.st_size > limit:
            raise PlanctlError(too_big)
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # it grew while being read
            raise PlanctlError(too_big)
        return b"".join(chunks)
    except OSError as err:
        raise PlanctlError(f"{path}: cannot read: {err.strerror}") from None
    finally:
        os.close(fd)
