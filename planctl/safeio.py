"""Crash-safe file writes and the project lock.

Every file planctl writes goes through :func:`atomic_write_text`, so a reader (or a crash) sees the
old content or the new one, never half of it. Read-modify-write sequences over plans, attempt
records and ledgers run under :func:`project_lock` so concurrent processes serialise; a process
waiting for it says what it waits for, and Ctrl-C stops the wait.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from planctl.errors import PlanctlError
from planctl.process import STOP_SIGNALS, signals_deferred

_LOCK_POLL_S = 0.1


def atomic_write_text(path: Path, text: str) -> bool:
    """Replace ``path`` with ``text`` atomically; return False (and touch nothing) if unchanged."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    atomic_write_bytes(path, text.encode("utf-8"))
    return True


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically: a reader or a crash sees the old file or the new one."""
    with atomic_writer(path, durable=durable) as handle:
        handle.write(data)


@contextlib.contextmanager
def atomic_writer(path: Path, *, durable: bool = True) -> Iterator[BinaryIO]:
    """A file to write ``path``'s new content into, streamed; it replaces ``path`` (keeping its
    permissions) only when the block ends without an error. ``durable`` flushes the file and its
    folder to disk first; files that are rebuilt at will (the HTML report) skip that."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename is only durable once the directory entry is flushed.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def project_lock(lock_path: Path, *, give_up_on_signal: bool = True) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``lock_path`` (created if missing) for the block, with
    SIGINT/SIGTERM held back inside it (a pending one arrives once the block is over).

    Convention: one lock per project (``fcntl.flock``, released by the kernel if the process dies);
    every read-modify-write of plans, records and derived files holds it, commands run outside it.
    While another process holds the lock this says so on stderr, once, naming the holder (the lock
    file holds the pid and command line of the process that has it).

    Args:
        lock_path: the lock file (the project's ``.planctl.lock``); its folder is created if missing.
        give_up_on_signal: a Ctrl-C (or SIGTERM) during the wait gives up waiting, and the signal is
            then delivered as usual. False (recording an attempt that already ran): the wait goes on
            and the signal is acted on afterwards.

    Raises:
        LockWaitAbandoned: a stop signal came during the wait (with ``give_up_on_signal``).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder, project_lock(Path(folder) / ".planctl.lock"):
        ...     pass  # plans and records may be read, changed and written here
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with signals_deferred(), open(lock_path, "a+b") as handle:
        _wait_for(handle, lock_path, give_up_on_signal)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()} {' '.join(sys.argv)}\n".encode(errors="replace"))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class LockWaitAbandoned(PlanctlError):
    """A stop signal came while waiting for the project lock (it is delivered next, as usual)."""

    def __init__(self) -> None:
        super().__init__("gave up waiting for the project lock", exit_code=130)


def _wait_for(handle: BinaryIO, lock_path: Path, give_up_on_signal: bool) -> None:
    told = False
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if not told:
            holder = lock_path.read_text(errors="replace").strip() or "another process"
            then = "Ctrl-C gives up" if give_up_on_signal else "the attempt is recorded first, Ctrl-C acts after"
            print(f"planctl: waiting for the project lock {lock_path} (held by pid {holder}); {then}", file=sys.stderr)
            told = True
        if give_up_on_signal and signal.sigpending() & set(STOP_SIGNALS):
            raise LockWaitAbandoned()
        time.sleep(_LOCK_POLL_S)
