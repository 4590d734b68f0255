"""The report's output folder: files written atomically, unchanged ones left alone, and those a
previous report wrote but this one does not removed. ``.planctl-report.json`` lists what planctl
wrote, so a rebuild never touches anything else, and a folder holding other files is refused."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from pathlib import Path

from planctl.errors import PlanctlError
from planctl.safeio import atomic_write_bytes

MANIFEST = ".planctl-report.json"


class Site:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: set[str] = set()
        self._folders: set[str] = set()  # made during this build
        self.previous = self._previous_files()

    def _previous_files(self) -> set[str]:
        if self.out.exists() and not self.out.is_dir():
            raise PlanctlError(f"--out {self.out}: not a folder")
        manifest = self.out / MANIFEST
        if manifest.is_file():
            try:
                files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
                return {str(f) for f in files}
            except (OSError, ValueError, KeyError, TypeError):
                raise PlanctlError(f"{manifest}: damaged; remove the folder and build the report again") from None
        if self.out.is_dir() and any(self.out.iterdir()):
            raise PlanctlError(f"--out {self.out}: the folder holds other files; choose a new or empty folder")
        return set()

    def path(self, relative: str) -> Path:
        return self.out / relative

    def write(self, relative: str, data: str | bytes) -> None:
        """Replace the file atomically unless it already holds ``data``; not flushed to disk, since
        the report is rebuilt from the records at any time."""
        content = data.encode("utf-8") if isinstance(data, str) else data
        target = self.path(relative)
        self.written.add(relative)
        with contextlib.suppress(OSError):
            if target.stat().st_size == len(content) and target.read_bytes() == content:
                return
        atomic_write_bytes(target, content, durable=False)

    def link(self, relative: str, source: str) -> bool:
        """``source`` at ``relative``: a hard link where the file system allows (evidence files are
        never rewritten, and a large log costs nothing to link), else a copy; redone only when the
        file there is not ``source`` (or a copy of the same size and time). False, and nothing
        written, when ``source`` is not a regular file."""
        try:
            want = os.stat(source)
        except OSError:
            return False
        if not stat.S_ISREG(want.st_mode):
            return False
        target = os.path.join(self.out, relative)
        self.written.add(relative)
        if relative in self.previous:
            with contextlib.suppress(OSError):
                have = os.stat(target)
                if (have.st_ino, have.st_dev) == (want.st_ino, want.st_dev) or (
                    (have.st_size, have.st_mtime_ns) == (want.st_size, want.st_mtime_ns)
                ):
                    return True
        folder = os.path.dirname(target)
        if folder not in self._folders:  # thousands of evidence files: one mkdir per folder, not per file
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        if relative not in self.previous:  # most often nothing is there yet: link straight in
            with contextlib.suppress(OSError):
                os.link(source, target)
                return True
        tmp = f"{folder}/.{os.path.basename(target)}.{os.getpid()}.tmp"
        try:
            try:
                os.link(source, tmp)
            except OSError:  # another file system, or links not allowed: copy
                shutil.copy2(source, tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return True

    def finish(self) -> list[str]:
        """Remove what the previous report wrote and this one did not; record what this one wrote."""
        gone = sorted(self.previous - self.written)
        for relative in gone:
            with contextlib.suppress(FileNotFoundError):
                self.path(relative).unlink()
        for folder in sorted({self.path(r).parent for r in gone}, key=lambda p: len(p.parts), reverse=True):
            while folder != self.out and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                folder = folder.parent
        self.write(MANIFEST, json.dumps({"files": sorted(self.written - {MANIFEST})}, indent=0))
        return gone
