"""Reading input files with clear errors, and all-or-nothing file output.

Every file nanobrag writes is first written to a hidden temporary file in the target directory and
moved into place with :func:`os.replace` only once everything else has succeeded, so a failure
never leaves a half-written file (or, for a group of outputs, a partial set of files) behind.
A target that exists and is not a regular file (``/dev/null``, a named pipe) is written to in place
instead: replacing it would destroy the device or pipe. Such data cannot be taken back once sent,
so special files are written first at commit, and regular files are moved into place only after
all of them took their data (``-intfile /dev/full`` leaves no float image behind).

Targets are checked when they are claimed, before any work is done: the directory exists and is
writable, the target is not a directory or a block device, a device opens for writing, and no two
outputs name the same regular file. A named pipe whose reader has not come yet is waited for at
commit, as nanoBragg waits for it.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from ..config import OutputConfig, SimulationConfig
from ..errors import InputError

# An input that is a device or pipe is read up to this many bytes: /dev/zero would never end.
STREAM_READ_LIMIT = 256 * 2**20

# A file's content: bytes-like (a memoryview of an array is written without a copy), or parts in order.
Data = bytes | memoryview | Iterable[bytes | memoryview]


def size_text(n: int) -> str:
    """A byte count for people: three significant digits in the largest fitting binary unit."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def read_input_bytes(path: str | os.PathLike[str], what: str = "", limit: int | None = None) -> bytes:
    """The content of an input file; a missing, unreadable or oversized file is an InputError naming it.

    ``limit`` bounds the size of any file; without it a regular file is read whole and a device or
    pipe up to :data:`STREAM_READ_LIMIT`. A named pipe without a writer reads as empty (no hang).

    Args:
        path: the file, a device or a pipe.
        what: what the file is, for messages (a flag such as ``-hkl``).
        limit: the most bytes accepted, or None (regular files: no limit; devices and pipes: a cap).

    Returns:
        The file's bytes.

    Raises:
        InputError: the file is missing, unreadable, a directory, or larger than allowed.
    """
    name = f"{what} {path}" if what else str(path)
    try:
        # O_NONBLOCK: opening a named pipe for reading would otherwise wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise InputError(f"cannot read {name}: {err.strerror}") from err
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"cannot read {name}: Is a directory")
        os.set_blocking(fd, True)
        regular = stat.S_ISREG(info.st_mode)
        cap = limit if limit is not None else (None if regular else STREAM_READ_LIMIT)
        if cap is not None and regular and info.st_size > cap:
            data = None
        else:
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read() if cap is None else handle.read(cap + 1)
    except OSError as err:
        raise InputError(f"cannot read {name}: {err.strerror}") from err
    finally:
        os.close(fd)
    if cap is not None and (data is None or len(data) > cap):  # data is None: a regular file larger than cap
        source = "" if regular else " from a device or pipe"
        raise InputError(f"cannot read {name}: more than {size_text(cap)}{source}")
    assert data is not None  # without a cap the whole file was read
    return data


def read_input_text(path: str | os.PathLike[str], what: str = "", limit: int | None = None) -> str:
    """An input text file (ASCII; stray bytes are replaced, and then fail to parse where they matter)."""
    return read_input_bytes(path, what, limit).decode("ascii", errors="replace")


# Temporary files are named ".<final name>.<12 hex digits>.tmp" beside their target.
_TOKEN_BYTES = 6
_TEMPORARY_NAME = re.compile(rf"\..+\.[0-9a-f]{{{2 * _TOKEN_BYTES}}}\.tmp")


def is_staged_temporary(name: str) -> bool:
    """Whether ``name`` is a StagedOutputs temporary file's name (left behind by a killed writer)."""
    return _TEMPORARY_NAME.fullmatch(name) is not None


def _chunks(data: Data) -> Iterable[bytes | memoryview]:
    return (data,) if isinstance(data, bytes | bytearray | memoryview) else data


class StagedOutputs:
    """A group of files that appear together or not at all.

    Use as a context manager: :meth:`claim` checks each target before the work that produces it
    (optional: :meth:`stage` claims what is not yet claimed); :meth:`stage` writes a file's bytes to a
    temporary file beside its target; leaving the block normally moves them all into place, an
    exception removes them.
    """

    def __init__(self) -> None:
        self._claims: dict[Path, str] = {}  # target -> what names it (a flag, or the path)
        self._regular: dict[tuple[object, ...], tuple[Path, str]] = {}  # identity -> (target, label): one writer each
        self._special: dict[Path, int | None] = {}  # device or pipe -> descriptor (None: open at commit)
        self._staged: list[tuple[Path, Path]] = []  # (temporary, final)
        self._in_place: list[tuple[Path, Data]] = []  # special files, written first at commit

    def claim(self, path: str | os.PathLike[str], label: str | None = None, *, written_elsewhere: bool = False) -> None:
        """Check now that ``path`` can be written, and that no other output of the group names it.

        ``label`` (a flag, say) prefixes error messages. A named pipe or device is opened here and kept
        open: that is the only honest test, and a pipe's reader must not see it closed in between.
        ``written_elsewhere``: a file written outside the group (nanoBragg's HKL cache), only kept
        distinct from the group's files.
        """
        final = Path(path)
        prefix = f"{label}: " if label else ""
        try:
            info = final.stat()
        except FileNotFoundError:
            info = None
        except OSError as err:
            raise InputError(f"{prefix}cannot write {final}: {err.strerror}") from None
        if written_elsewhere:
            if info is None or stat.S_ISREG(info.st_mode):
                self._claim_regular(final, info, label or "", prefix)
            return
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise InputError(f"{prefix}cannot write {final}: Is a directory")
        if info is not None and stat.S_ISBLK(info.st_mode):
            raise InputError(f"{prefix}cannot write {final}: it is a block device, and would be overwritten")
        if info is not None and not stat.S_ISREG(info.st_mode):
            if final not in self._special:  # a device may take several outputs, through one descriptor
                self._special[final] = self._open_special(final, prefix)
        else:
            self._check_directory(final, prefix)
            self._claim_regular(final, info, label or "", prefix)
        self._claims[final] = label or ""

    def _claim_regular(self, final: Path, info: os.stat_result | None, label: str, prefix: str) -> None:
        """Two outputs in one regular file would silently keep only the last; a device may take several."""
        identity: tuple[object, ...] = (
            ("inode", info.st_dev, info.st_ino) if info is not None else ("path", os.path.realpath(final))
        )
        if identity in self._regular:
            other, other_label = self._regular[identity]
            raise InputError(f"{prefix}{final} is the same file as {other_label + ' ' if other_label else ''}{other}")
        self._regular[identity] = (final, label)

    @staticmethod
    def _open_special(final: Path, prefix: str) -> int | None:
        """A descriptor for a device or pipe; None for a pipe whose reader has not come yet."""
        try:
            # O_NONBLOCK: a pipe without a reader answers ENXIO now instead of blocking the run.
            fd = os.open(final, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as err:
            if err.errno == errno.ENXIO and stat.S_ISFIFO(final.stat().st_mode):
                return None  # opened (and waited for, as nanoBragg does) at commit
            raise InputError(f"{prefix}cannot write {final}: {err.strerror}") from None
        os.set_blocking(fd, True)
        return fd

    @staticmethod
    def _check_directory(final: Path, prefix: str) -> None:
        directory = final.parent
        try:
            if not directory.is_dir():
                reason = "Not a directory" if directory.exists() else "No such file or directory"
                raise InputError(f"{prefix}cannot write {final}: {reason}")
        except OSError as err:
            raise InputError(f"{prefix}cannot write {final}: {err.strerror}") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise InputError(f"{prefix}cannot write {final}: Permission denied")

    def stage(self, path: str | os.PathLike[str], data: Data) -> None:
        """Write ``data`` (bytes, or an iterable of byte chunks) for ``path``; it appears at commit."""
        final = Path(path)
        if final not in self._claims:
            self.claim(final)
        if final in self._special:
            self._in_place.append((final, data))
            return
        fd = self._create_temporary(final)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in _chunks(data):
                    handle.write(chunk)
        except OSError as err:
            raise InputError(f"{self._prefix(final)}cannot write {final}: {err.strerror}") from err

    def temporary(self, path: str | os.PathLike[str]) -> Path:
        """An empty file beside ``path`` for a writer that needs a file name of its own (h5py); whatever
        it holds at commit is moved to ``path``. ``path`` must be a regular file or not exist yet."""
        final = Path(path)
        if final not in self._claims:
            self.claim(final)
        if final in self._special:
            raise InputError(f"{self._prefix(final)}cannot write {final}: not a regular file")
        os.close(self._create_temporary(final))
        return self._staged[-1][0]

    def _prefix(self, final: Path) -> str:
        label = self._claims[final]
        return f"{label}: " if label else ""

    def _create_temporary(self, final: Path) -> int:
        """A new temporary file beside ``final``, registered to replace it at commit; its descriptor."""
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(_TOKEN_BYTES)}.tmp")
        try:
            # 0o666 lets the umask decide permissions, like any ordinary new file.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as err:
            raise InputError(f"{self._prefix(final)}cannot write {final}: {err.strerror}") from err
        self._staged.append((temporary, final))
        return fd

    def commit(self) -> None:
        """Write the special files, then move every regular file into place; on failure remove the rest."""
        final = None
        try:
            for final, data in self._in_place:
                fd = self._special[final]
                if fd is None:
                    fd = self._special[final] = os.open(final, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
                for chunk in _chunks(data):
                    view = memoryview(chunk)
                    while view:  # os.write may take less than it is given (pipes)
                        view = view[os.write(fd, view) :]
            for temporary, final in self._staged:
                os.replace(temporary, final)
        except OSError as err:
            label = self._claims.get(final, "") if final is not None else ""
            raise InputError(f"{label + ': ' if label else ''}cannot write {final}: {err.strerror}") from err
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove any temporary file not yet moved into place, and close the special files."""
        for temporary, _ in self._staged:
            temporary.unlink(missing_ok=True)
        for fd in self._special.values():
            if fd is not None:
                os.close(fd)
        self._staged.clear()
        self._in_place.clear()
        self._special.clear()

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_bytes_atomic(path: str | os.PathLike[str], data: Data) -> None:
    """Write one file all at once (temporary file + os.replace).

    Args:
        path: the target; a temporary file beside it is moved into place.
        data: bytes, a memoryview, or an iterable of byte chunks.
    """
    with StagedOutputs() as outputs:
        outputs.stage(path, data)


def claim_outputs(staged: StagedOutputs, simulation: SimulationConfig, outputs: OutputConfig) -> None:
    """Claim every output file of a run, each named by its flag, and keep the HKL cache distinct from them."""
    for field, path in outputs:
        if isinstance(path, Path):
            staged.claim(path, f"-{field}")  # OutputConfig's file fields are named after their flags
    structure = simulation.structure
    if structure.hkl_path is not None and structure.dump_path is not None:
        # The cache is written while simulating and only warns when it cannot be: just no collision.
        staged.claim(structure.dump_path, "-dump", written_elsewhere=True)
