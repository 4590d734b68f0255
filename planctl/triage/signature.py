"""A failure's signature: what makes two failures the same problem.

The signature is the exception type, the first line of its message with everything that varies
between runs of the same cause normalised (tensors, memory addresses, absolute paths, numbers),
and the innermost stack frame that lies inside the project (``path::function``), so that one cause
failing under many test names or parameters is one cluster.

Standard library only: the pytest plugin imports this module into every test process.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MESSAGE_LIMIT = 240  # characters of the normalised message kept in the signature

_TENSOR_START = re.compile(r"\b(tensor|array|Parameter containing:\s*tensor)\(")
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")
# An absolute path: after the start or a separator-like character, "/" (or "C:\") and name parts.
_PATH = re.compile(r"""(?<![^\s'"(\[{=,:<])(?:[A-Za-z]:)?[\\/](?:[^\s'"\\/:,;()\[\]{}<>]+[\\/]?)+""")
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d+|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\w|\.\d)")
_SPACES = re.compile(r"\s+")
# A frame line of a faulthandler dump or a Python traceback.
_DUMPED_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+),? in (?P<function>\S+)')
_THREAD_HEADER = re.compile(r"^\s*(?:Current thread|Thread) 0x[0-9a-fA-F]+")


def normalise(message: str) -> str:
    """The first non-empty line of ``message`` with tensors, addresses, paths and numbers replaced
    by ``<tensor>``, ``<addr>``, ``<path>`` and ``<n>``, whitespace collapsed."""
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "")
    line = _ADDRESS.sub("<addr>", _without_tensors(line))
    line = _NUMBER.sub("<n>", _PATH.sub("<path>", line))
    line = _SPACES.sub(" ", line)
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def _without_tensors(text: str) -> str:
    """``tensor(...)`` and ``array(...)`` (to their balanced closing parenthesis) as ``<tensor>``."""
    out, position = [], 0
    while (found := _TENSOR_START.search(text, position)) is not None:
        out.append(text[position : found.start()])
        depth, end = 0, len(text)
        for index in range(found.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[index], 0)
            if depth == 0:
                end = index + 1
                break
        out.append("<tensor>")
        position = end
    return "".join(out) + text[position:]


def library_roots() -> list[Path]:
    """Folders whose files are never project code: the interpreter's and the environment's."""
    roots = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return sorted(roots)


def is_project_file(path: str, rootdir: Path, libraries: list[Path]) -> bool:
    """Whether ``path`` is a source file of the project under test: inside its root directory,
    outside the Python installation and virtual environment, and not an installed package."""
    candidate = Path(path)
    if not candidate.is_absolute():
        return False  # <string>, <frozen ...> and the like
    candidate = candidate.resolve()
    if "site-packages" in candidate.parts or "dist-packages" in candidate.parts:
        return False
    if any(candidate.is_relative_to(root) for root in libraries):
        return False
    return candidate.is_relative_to(rootdir)


def frame_name(path: str, function: str, rootdir: Path) -> str:
    """``tests/test_x.py::TestA.test_b``: the path relative to the root directory."""
    shown = path
    if Path(path).is_absolute() and Path(path).resolve().is_relative_to(rootdir):
        shown = Path(path).resolve().relative_to(rootdir).as_posix()
    return f"{shown}::{function}"


def dumped_frames(text: str) -> list[tuple[str, int, str]]:
    """(path, line, function) of the thread that ran the test in a faulthandler dump (or a fatal
    error report), innermost first.

    faulthandler lists each thread under a ``Thread 0x...`` or ``Current thread 0x...`` header,
    its frames as ``File "path", line N in function``, most recent first. The thread that ran the
    test is the one with pytest's frames; failing that, the current thread, then the first."""
    threads: list[tuple[str, list[tuple[str, int, str]]]] = []
    for line in text.splitlines():
        found = _DUMPED_FRAME.match(line)
        if found and threads:
            threads[-1][1].append((found["path"], int(found["line"]), found["function"]))
        elif _THREAD_HEADER.match(line):
            threads.append((line, []))
    for wanted in (
        lambda header, frames: any("_pytest" in Path(path).parts for path, _, _ in frames),
        lambda header, frames: header.lstrip().startswith("Current thread"),
        lambda header, frames: True,
    ):
        for header, frames in threads:
            if frames and wanted(header, frames):
                return frames
    return []
