"""A cache of parsed plan files, so that reading a large plan costs a file read, not a parse.

Even libyaml (planctl.plainyaml) needs about half a second of CPU for a 5,000-task plan, and
ruamel.yaml's pure-Python parser, which reads what libyaml refuses, ten times that. Plans are read
far more often than they change, so the plain data of each parsed text (dicts, lists, scalars) is
kept under the user's cache folder, keyed by a hash of the text and of the installed parsers. A hit
is exact by construction; a miss, an unreadable entry or a folder that cannot be written only costs
the parse.

The folder is ``$PLANCTL_CACHE_DIR``, else ``$XDG_CACHE_HOME/planctl``, else ``~/.cache/planctl``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import marshal
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planctl.safeio import atomic_write_bytes

_FORMAT = "planctl-plan-data-3"  # bumped when what a parse gives changes
MAX_ENTRIES = 256  # the oldest entries beyond this are removed when one is added


def cache_dir() -> Path:
    explicit = os.environ.get("PLANCTL_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "planctl"


class TooLarge(ValueError):
    """A document that expands to more values than allowed once its YAML aliases are followed."""


def cached_data(text: str, parse: Callable[[str], Any], max_values: int) -> Any:
    """``parse(text)`` as plain data, from the cache when this very text was parsed before.
    Raises :class:`TooLarge` when the data holds more than ``max_values`` values."""
    digest = hashlib.sha256(f"{_FORMAT}\0{_parsers()}\0{max_values}\0{text}".encode()).hexdigest()
    entry = cache_dir() / f"{digest}.marshal"
    with contextlib.suppress(OSError, EOFError, ValueError, TypeError):
        return marshal.loads(entry.read_bytes())
    data = plain(parse(text), max_values)
    with contextlib.suppress(OSError, ValueError):  # ValueError: a value marshal cannot hold (a date)
        atomic_write_bytes(entry, marshal.dumps(data))
        _prune(entry.parent)
    return data


@functools.cache
def _parsers() -> str:
    """Which YAML libraries are installed, and when (file, size and time of each package): an
    upgrade or a reinstall starts a fresh cache, and a hit needs neither library imported."""
    found = []
    for name in ("yaml", "ruamel.yaml"):
        origin = getattr(importlib.util.find_spec(name), "origin", None) or name
        try:
            stat = os.stat(origin)
        except OSError:  # not installed as files (a zip, a frozen build)
            found.append(origin)
        else:
            found.append(f"{origin} {stat.st_size} {stat.st_mtime_ns}")
    return "\n".join(found)


def plain(document: Any, max_values: int) -> Any:
    """A copy of a loaded YAML document made of built-in types only (no ruamel subclasses).

    Iterative, and bounded: aliases are copied where they are used, so a few nested aliases
    ("billion laughs") would otherwise expand without end."""
    holder: list[Any] = [None]
    stack: list[tuple[Any, Any, Any]] = [(document, holder, 0)]
    while stack:
        max_values -= 1
        if max_values < 0:
            raise TooLarge("expands to too many values (YAML aliases?)")
        node, container, key = stack.pop()
        if isinstance(node, dict):
            copy: Any = {}
            for k, v in node.items():
                copy[_scalar(k)] = None  # keeps the key order; the value is filled in below
                stack.append((v, copy, _scalar(k)))
        elif isinstance(node, list):
            copy = [None] * len(node)
            stack.extend((v, copy, i) for i, v in enumerate(node))
        else:
            copy = _scalar(node)
        container[key] = copy
    return holder[0]


_PLAIN_SCALARS: tuple[type, ...] = (bool, int, float, str, bytes)


def _scalar(node: Any) -> Any:
    """A plain Python value for a parsed scalar (ruamel's own subclasses of int, float, str)."""
    for kind in _PLAIN_SCALARS:
        if isinstance(node, kind):
            return kind(node)
    return node


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.marshal"), key=lambda p: p.stat().st_mtime)
    for stale in entries[:-MAX_ENTRIES]:
        with contextlib.suppress(OSError):
            stale.unlink()
