"""What this machine can give a run: memory available now, within any container limit."""

from __future__ import annotations

import contextlib
from pathlib import Path


def available_memory() -> int | None:
    """Bytes of memory a new allocation can take now, or None where the system does not say.

    The smaller of the kernel's MemAvailable and what the process's memory cgroup still allows, so
    a container's limit counts, not the host's memory.
    """
    candidates = [value for value in (_mem_available(), _cgroup_memory_free()) if value is not None]
    return min(candidates) if candidates else None


def _mem_available() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def _cgroup_memory_free() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, or v1's memory controller); None: no limit."""
    root = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, group = line.split(":", 2)
        if controllers == "":  # v2
            files = (root / group.lstrip("/") / "memory.max", root / group.lstrip("/") / "memory.current")
        elif "memory" in controllers.split(","):  # v1; in a container its own group is the mount's root
            files = (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes")
        else:
            continue
        with contextlib.suppress(OSError, ValueError):
            limit, usage = (path.read_text().strip() for path in files)
            if limit != "max" and int(limit) < 2**60:  # v1 writes "no limit" as a huge number
                return max(int(limit) - int(usage), 0)
    return None
