"""Run one command in its own process group: output streamed live and logged, a timeout, and
Ctrl-C/SIGTERM turned into an orderly stop of the whole group.

planctl installs :func:`interruptible` around a run: SIGINT and SIGTERM then raise
:class:`Interrupted` in the main thread, wherever it is. Sections that must not be cut in half
(writing records, committing) run inside :func:`signals_deferred`, and while a command runs,
:func:`run_command` only notes the signal, stops the command's group, then raises.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
KILL_GRACE_S = 3.0  # between SIGTERM and SIGKILL to the command's process group


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell convention: 130 for SIGINT, 143 for SIGTERM


@dataclass(frozen=True)
class Finished:
    exit_code: int
    duration_s: float
    stopped_by: str | None  # None when the command ended by itself; else why it was stopped


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    def raise_interrupted(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, raise_interrupted) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block is over; a signal that came meanwhile arrives then."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def run_command(command: str, cwd: Path, env: dict[str, str], timeout_s: float, log_path: Path) -> Finished:
    """Run ``command`` with bash; its combined output goes to the console and to ``log_path``.

    Raises :class:`Interrupted` after stopping the command when planctl receives SIGINT/SIGTERM.
    While the command runs a signal is only noted, and acted on between short waits: an exception
    raised at an arbitrary point (say, while the process is being started) could leave the command
    running unobserved.
    """
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in _STOP_SIGNALS}
    start = time.monotonic()
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["bash", "-c", command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: a stop reaches everything it started
            )
            pump = threading.Thread(target=_pump, args=(process.stdout, log), daemon=True)
            pump.start()
            try:
                exit_code, stopped_by = _wait(process, timeout_s, received)
            finally:
                pump.join(timeout=KILL_GRACE_S)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise Interrupted(received[0])
    return Finished(exit_code, round(time.monotonic() - start, 3), stopped_by)


def _wait(process: subprocess.Popen[bytes], timeout_s: float, received: list[int]) -> tuple[int, str | None]:
    """The command's exit status, and why it was stopped: at the timeout, or once a signal was noted."""
    deadline = time.monotonic() + timeout_s
    while True:
        if received:
            return _stop(process), f"{signal.Signals(received[0]).name} received"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _stop(process), f"timeout after {timeout_s:g} s"
        try:
            return process.wait(timeout=min(0.1, remaining)), None
        except subprocess.TimeoutExpired:
            continue


def _stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM the process group, then SIGKILL what is left after a grace period."""
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            return process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return process.wait()


def _pump(stream, log) -> None:  # type: ignore[no-untyped-def]
    """Copy the command's output to the log and the console as it arrives."""
    out = getattr(sys.stdout, "buffer", None)
    try:
        for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
            log.write(chunk)
            log.flush()
            if out is not None:
                out.write(chunk)
                out.flush()
            else:
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
    except (OSError, ValueError):
        pass  # the log was closed: a stray grandchild kept the pipe open past the stop
    finally:
        stream.close()
