"""Run one command in its own session and process group, and leave nothing of it behind.

The command runs with ``bash -c`` as the leader of a new session (so its process group is its
own); its combined output goes to a callback as it arrives. Whatever way it ends — by itself, at
the timeout, or because planctl was told to stop — the whole group is ended: SIGTERM, a grace
period, then SIGKILL, and background children of a command that passed are gone too. While it is
ended the leader is left unreaped, so the group's id cannot be given to another process.

A command starts only once its caller has written down who it is (:class:`Mark`: pid, start time
and boot), so a planctl killed outright (SIGKILL) never leaves a group nobody knows about: the next
run ends it with :func:`end_leftovers`. A mark, not a bare pid, is what identifies a process, so a
recycled pid is never taken for it. (A process that starts its own session leaves the group and
is out of reach, as with any process-group supervisor.)

planctl installs :func:`interruptible` around a run: SIGINT and SIGTERM then raise
:class:`Interrupted` in the main thread, wherever it is. Sections that must not be cut in half
(writing records, committing) run inside :func:`signals_deferred`, and while a command runs,
:func:`run_command` only notes the signal (:func:`signals_noted`), stops the command's group, then
raises. A caller that runs several commands at once (a triage run's chunks) uses the same pieces:
:class:`RunningCommand` and :func:`signals_noted`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
KILL_GRACE_S = 3.0  # between SIGTERM and SIGKILL to the command's process group
_POLL_S = 0.05
_PROC = Path("/proc")
T = TypeVar("T")


class Interrupted(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell convention: 130 for SIGINT, 143 for SIGTERM


TIMEOUT = "timeout"


@dataclass(frozen=True)
class Finished:
    exit_code: int
    duration_s: float
    stopped_by: str | None  # None: it ended by itself; TIMEOUT, or the signal that stopped planctl
    leftovers: int  # processes of its group still running after it ended, which planctl ended


@dataclass(frozen=True)
class Mark:
    """A process as the kernel knows it: a pid is recycled, a pid with its start time is not."""

    pid: int
    started: int  # clock ticks after boot (field 22 of /proc/PID/stat)
    boot: str  # /proc/sys/kernel/random/boot_id


def mark_of(pid: int) -> Mark | None:
    """The mark of a running process, or None (gone, or no /proc to read it from)."""
    stat = _stat(pid)
    boot = _boot_id()
    if stat is None or boot is None:
        return None
    return Mark(pid, stat.started, boot)


def is_running(mark: Mark) -> bool:
    """Whether the very process ``mark`` names still runs (a zombie does not)."""
    stat = _stat(mark.pid)
    return stat is not None and stat.state != "Z" and stat.started == mark.started and _boot_id() == mark.boot


def pid_alive(pid: int) -> bool:
    """Whether some process has this pid (what can be said without a mark)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    def raise_interrupted(signum: int, _frame: object) -> None:
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, raise_interrupted) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM until the block is over; a signal that came meanwhile arrives then.
    Nested blocks restore what they found, so only the outermost one lets signals through."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


# The command waits at this gate until planctl has recorded its process group (fd 3 of the gate
# is the read end of a pipe): should planctl die first, the pipe closes and the command never runs.
_GATE = 'IFS= read -r -u {fd} _ || exit 125; exec {fd}<&-; exec bash -c "$1"'


@contextlib.contextmanager
def signals_noted() -> Iterator[list[int]]:
    """While the block runs, SIGINT/SIGTERM are only appended to the yielded list: the caller acts
    on them between short waits, once what it started can be ended in order."""
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class RunningCommand:
    """A command started as :func:`run_command` starts it (new session, gate, output pump), left
    for its caller to watch: :func:`run_command` waits for one; a triage run watches several."""

    def __init__(self, process: subprocess.Popen[bytes], pump: threading.Thread) -> None:
        self.process, self.pump = process, pump

    @classmethod
    def start(
        cls,
        command: str,
        cwd: Path,
        env: dict[str, str],
        on_output: Callable[[bytes], None],
        on_start: Callable[[Mark | None], None],
        received: list[int],
    ) -> RunningCommand:
        """Start ``command``; it begins once ``on_start`` has had the group leader's mark, unless a
        signal was noted in ``received`` meanwhile (then it never runs)."""
        gate_read, gate_write = os.pipe()
        try:
            process = subprocess.Popen(
                ["bash", "-c", _GATE.format(fd=gate_read), "planctl-gate", command],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(gate_read,),
                start_new_session=True,  # its own session and group: an end reaches everything it started
            )
        except BaseException:
            os.close(gate_write)
            raise
        finally:
            os.close(gate_read)
        running = cls(process, threading.Thread(target=_pump, args=(process.stdout, on_output), daemon=True))
        running.pump.start()
        try:
            with os.fdopen(gate_write, "wb") as gate:
                on_start(mark_of(process.pid))
                if not received:
                    gate.write(b"go\n")
        except BaseException:
            running.end()
            raise
        return running

    def exited(self) -> bool:
        """Whether the command (its group's leader) has ended; its group may still have members."""
        return _exited(self.process.pid)

    def end(self) -> int:
        """End the whole group (see :func:`_end_group`) and let the last output through; return how
        many processes other than the leader were still running. The exit status is then in
        ``self.process.returncode``."""
        try:
            return _end_group(self.process)
        finally:
            self.pump.join(timeout=KILL_GRACE_S)


def run_command(
    command: str,
    cwd: Path,
    env: dict[str, str],
    deadline: float,
    on_output: Callable[[bytes], None],
    on_start: Callable[[Mark | None], None] = lambda _mark: None,
) -> Finished:
    """Run ``command`` with bash in a new session; its combined output goes to ``on_output``.

    ``deadline`` is a :func:`time.monotonic` time. ``on_start`` receives the group leader's mark
    before the command may begin. Raises
    :class:`Interrupted` after ending the group when planctl receives SIGINT/SIGTERM. While the
    command runs a signal is only noted, and acted on between short waits: an exception raised at
    an arbitrary point (say, while the process is being started) could leave it running unobserved.
    """
    start = time.monotonic()
    with signals_noted() as received:
        running = RunningCommand.start(command, cwd, env, on_output, on_start, received)
        try:
            exit_code, stopped_by, leftovers = _wait(running.process, deadline, received)
        except BaseException:
            running.end()
            raise
        finally:
            running.pump.join(timeout=KILL_GRACE_S)
    if received:
        raise Interrupted(received[0])
    return Finished(exit_code, round(time.monotonic() - start, 3), stopped_by, leftovers)


def _wait(process: subprocess.Popen[bytes], deadline: float, received: list[int]) -> tuple[int, str | None, int]:
    """Exit status, why the command was stopped (None: it ended by itself), and how many of its
    group's processes outlived it. Ends the group in every case."""
    while True:
        if received:
            _end_group(process)
            return process.wait(), f"{signal.Signals(received[0]).name} received", 0
        if time.monotonic() >= deadline:
            _end_group(process)
            return process.wait(), TIMEOUT, 0
        if _exited(process.pid):
            leftovers = _end_group(process)
            return process.wait(), None, leftovers
        time.sleep(_POLL_S)


def _exited(pid: int) -> bool:
    """Whether the leader has exited, leaving it unreaped (its pid, the group id, stays taken)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # already reaped


def _end_group(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM the command's group, SIGKILL what is left after the grace period, reap the leader;
    return how many processes other than the leader were still running."""
    pgid = process.pid
    members = _running_members(pgid)
    if members or not _exited(pgid):
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < deadline and (_running_members(pgid) or not _exited(pgid)):
            time.sleep(_POLL_S)
        if _running_members(pgid) or not _exited(pgid):
            _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        process.wait()
    return len(members)


def _running_members(pgid: int) -> list[int]:
    return [pid for pid in group_members(pgid) if pid != pgid]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def end_leftovers(leader: Mark, marker: str) -> int:
    """End what is left of the process group that ``leader`` led, after its planctl died; return
    how many processes were ended.

    A process is taken for a member when its group id is the leader's pid and either the leader
    itself still runs (same start time: the group never went away, so its id was never reused) or
    its environment holds ``marker`` (the ``PLANCTL_BUNDLE=...`` of that attempt). Anything else
    with that group id belongs to someone else and is left alone.
    """
    if _boot_id() != leader.boot:
        return 0  # the machine restarted since: nothing of that run survives
    genuine_group = is_running(leader)
    members = [pid for pid in group_members(leader.pid) if genuine_group or _environ_holds(pid, marker)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < deadline and any(_still_running(pid) for pid in members):
            time.sleep(_POLL_S)
    return len(members)


def group_members(pgid: int) -> list[int]:
    """Running (not zombie) processes whose process group is ``pgid``, read from /proc."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(_PROC):
            if entry.name.isdigit():
                stat = _stat(int(entry.name))
                if stat is not None and stat.pgrp == pgid and stat.state != "Z":
                    found.append(int(entry.name))
    return found


def _still_running(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat.state != "Z"


@dataclass(frozen=True)
class _Stat:
    state: str
    pgrp: int
    started: int


def _stat(pid: int) -> _Stat | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ... starttime": comm may hold spaces and parentheses.
    try:
        fields = text[text.rindex(")") + 2 :].split()
        return _Stat(state=fields[0], pgrp=int(fields[2]), started=int(fields[19]))
    except (ValueError, IndexError):
        return None


def _boot_id() -> str | None:
    try:
        return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return None


def _environ_holds(pid: int, marker: str) -> bool:
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return False
    return marker.encode() in environ.split(b"\0")


def _pump(stream: IO[bytes], on_output: Callable[[bytes], None]) -> None:
    """Hand the command's output on as it arrives."""
    try:
        for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
            on_output(chunk)
    except (OSError, ValueError):
        pass  # the output went away: the group was ended while a chunk was on its way
    finally:
        stream.close()


class DeadlinePassed(Exception):
    """A call in a child process did not finish by its deadline; the child was killed."""


def call_in_child(fn: Callable[[], T], deadline: float) -> T:
    """``fn()`` computed in a forked child that is killed at ``deadline`` (a monotonic time).

    What planctl does after a command (render templates, copy artifacts, judge checks) reads
    files the command left; a deadline must hold however those turn out, and only a process can be
    stopped from outside. The result (or the exception) comes back pickled. Raises
    :class:`DeadlinePassed` at the deadline and :class:`Interrupted` on SIGINT/SIGTERM, after
    killing the child either way.
    """
    received: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in STOP_SIGNALS}
    try:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compute, send, and leave without running the parent's cleanup
            os.close(read_end)
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            status = 0
            try:
                try:
                    result = pickle.dumps((True, fn()))
                except BaseException as err:  # sent back and raised in the parent
                    result = pickle.dumps((False, err))
                with os.fdopen(write_end, "wb") as out:
                    out.write(result)
            except BaseException:
                status = 70
            finally:
                os._exit(status)
        os.close(write_end)
        try:
            payload = _read_until(read_end, deadline, received)
        finally:
            os.close(read_end)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise Interrupted(received[0])
    if payload is None:
        raise DeadlinePassed()
    try:
        ok, value = pickle.loads(payload)
    except Exception as err:
        raise RuntimeError(f"the child process ended without a result ({err})") from None
    if not ok:
        raise value
    return value


def _read_until(fd: int, deadline: float, received: list[int]) -> bytes | None:
    """Everything written to ``fd`` until its end; None when the deadline or a signal came first."""
    chunks: list[bytes] = []
    while not received:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], min(remaining, _POLL_S * 2))
        if ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    return None
