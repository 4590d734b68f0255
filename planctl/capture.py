"""A command's output as planctl keeps it: redacted, echoed live, and bounded on disk.

Output is redacted line by line as it arrives (planctl.redact), and the redacted bytes are what
the console shows and what ``output.log`` holds: no secret reaches the disk. ``output.log`` grows
live up to ``limits.log_bytes``. Longer output keeps the first and last halves of that size in
``output.log``, with a line saying how much was left out and where it is, and the whole redacted
output goes to ``output.log.gz`` up to ``limits.log_archive_bytes`` (then a final line says how
much more there was). Memory stays bounded: the tail is a rolling buffer, the head is on disk.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from planctl.readback import human_size
from planctl.redact import Redactor
from planctl.safeio import atomic_write_bytes

LOG_NAME = "output.log"
ARCHIVE_NAME = "output.log.gz"


@dataclass(frozen=True)
class Captured:
    total_bytes: int
    cut: bool  # output.log holds only the head and tail
    archived_bytes: int  # of the output, how much output.log.gz holds


class OutputCapture:
    def __init__(
        self, folder: Path, redactor: Redactor, log_bytes: int, archive_bytes: int, echo: Callable[[bytes], None]
    ) -> None:
        self.log_path, self.archive_path = folder / LOG_NAME, folder / ARCHIVE_NAME
        self.stream = redactor.stream()
        self.log_bytes, self.archive_bytes = log_bytes, archive_bytes
        self.head_bytes = log_bytes // 2
        self.echo = echo
        self.total = 0
        self.archived = 0
        self.tail = bytearray()
        self.log = open(self.log_path, "wb")  # noqa: SIM115  (kept open for the run's duration)
        self.archive: gzip.GzipFile | None = None
        self.cut = False

    def feed(self, chunk: bytes) -> None:
        self._keep(self.stream.feed(chunk))

    def close(self) -> Captured:
        self._keep(self.stream.flush())
        self.log.close()
        if self.cut:
            self._finish_archive()
            with open(self.log_path, "rb") as log:
                head = log.read(self.head_bytes)
            left_out = self.total - len(head) - len(self.tail)
            where = (
                f"the whole output is in {ARCHIVE_NAME}"
                if self.archived == self.total
                else f"{ARCHIVE_NAME} holds its first {human_size(self.archived)} (limits.log_archive_bytes)"
                if self.archived
                else "no compressed copy is kept (limits.log_archive_bytes is 0)"
            )
            note = (
                f"\n[planctl: {left_out} bytes of output left out here: the log is longer than limits.log_bytes "
                f"({human_size(self.log_bytes)}), so only its head and tail are kept; {where}]\n"
            )
            atomic_write_bytes(self.log_path, head + note.encode() + bytes(self.tail))
        return Captured(self.total, self.cut, self.archived)

    def _keep(self, data: bytes) -> None:
        if not data:
            return
        self.echo(data)
        if not self.cut:
            room = self.log_bytes - self.total
            self.log.write(data[:room])
            self.log.flush()
            self.total += min(room, len(data))
            if len(data) <= room:
                return
            data = data[room:]
            self._start_cut()
        self.total += len(data)
        self._archive(data)
        self.tail += data
        del self.tail[: max(0, len(self.tail) - (self.log_bytes - self.head_bytes))]

    def _start_cut(self) -> None:
        """The log just outgrew its limit: from now on the head stays, the tail rolls, and the
        archive gets everything, starting with what the log already holds."""
        self.cut = True
        self.log.flush()
        if self.archive_bytes > 0:
            self.archive = gzip.GzipFile(self.archive_path, "wb", mtime=0)
            with open(self.log_path, "rb") as log:
                self._archive(log.read())
        with open(self.log_path, "rb") as log:  # the tail starts with the log's own end
            log.seek(max(0, log.seek(0, 2) - (self.log_bytes - self.head_bytes)))
            self.tail = bytearray(log.read())

    def _archive(self, data: bytes) -> None:
        if self.archive is None:
            return
        room = self.archive_bytes - self.archived
        if room > 0:
            self.archive.write(data[:room])
            self.archived += min(room, len(data))

    def _finish_archive(self) -> None:
        if self.archive is None:
            return
        if self.archived < self.total:
            self.archive.write(
                f"\n[planctl: output cut here at limits.log_archive_bytes ({human_size(self.archive_bytes)}); "
                f"{self.total - self.archived} more bytes were not kept]\n".encode()
            )
        self.archive.close()
