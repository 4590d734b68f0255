"""Reading input files with clear errors, and all-or-nothing file output.

Every file nanobrag writes is first written to a hidden temporary file in the target directory and
moved into place with :func:`os.replace` only once everything else has succeeded, so a failure
never leaves a half-written file (or, for a group of outputs, a partial set of files) behind.
A target that exists and is not a regular file (``/dev/null``, a named pipe) is written to in place
at that moment instead: replacing it would destroy the device or pipe.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import TracebackType

from ..errors import InputError


def read_input_bytes(path: str | os.PathLike[str], what: str = "") -> bytes:
    """The content of an input file; a missing or unreadable file is an InputError naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {what + ' ' if what else ''}{path}: {err.strerror}") from err


def read_input_text(path: str | os.PathLike[str], what: str = "") -> str:
    """An input text file (ASCII; stray bytes are replaced, and then fail to parse where they matter)."""
    return read_input_bytes(path, what).decode("ascii", errors="replace")


class StagedOutputs:
    """A group of files that appear together or not at all.

    Use as a context manager: :meth:`stage` writes each file's bytes to a temporary file beside its
    target; leaving the block normally moves them all into place, an exception removes them.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary, final)
        self._in_place: list[tuple[Path, bytes]] = []  # special files, written at commit

    def stage(self, path: str | os.PathLike[str], data: bytes) -> None:
        final = Path(path)
        if final.is_dir():  # refused now: found at commit, the files moved in before it would stay
            raise InputError(f"cannot write {final}: Is a directory")
        if final.exists() and not final.is_file():
            self._in_place.append((final, data))
            return
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")
        try:
            # 0o666 lets the umask decide permissions, like any ordinary new file.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as err:
            raise InputError(f"cannot write {final}: {err.strerror}") from err
        self._staged.append((temporary, final))
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as err:
            raise InputError(f"cannot write {final}: {err.strerror}") from err

    def commit(self) -> None:
        try:
            for temporary, final in self._staged:
                os.replace(temporary, final)
            for final, data in self._in_place:
                with final.open("wb") as handle:
                    handle.write(data)
        except OSError as err:
            raise InputError(f"cannot write {final}: {err.strerror}") from err
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove any temporary file not yet moved into place."""
        for temporary, _ in self._staged:
            temporary.unlink(missing_ok=True)
        self._staged.clear()
        self._in_place.clear()

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


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write one file all at once (temporary file + os.replace)."""
    with StagedOutputs() as outputs:
        outputs.stage(path, data)
