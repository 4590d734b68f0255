"""How many cores this process may use, and torch's thread pools sized to match.

torch sizes its intra-op pool from the machine's cores, which oversubscribes a container or a
batch job limited to fewer (a cgroup CPU quota, or an affinity mask from taskset or SLURM): two
threads on one allowed core are slower than one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def available_cores() -> int:
    """Cores this process may run on: its affinity mask, capped by a cgroup CPU quota if one is set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cgroup_quota() -> float | None:
    """The CPU quota in cores (cgroup v2 ``cpu.max`` or v1 ``cfs_quota_us``), or None when unlimited."""
    try:
        if _CGROUP_V2.is_file():
            quota, period = _CGROUP_V2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota_file, period_file = _CGROUP_V1
        if quota_file.is_file() and period_file.is_file():
            quota_us = int(quota_file.read_text())
            return None if quota_us <= 0 else quota_us / int(period_file.read_text())
    except (OSError, ValueError):
        return None
    return None


def configure_threads(requested: int | None = None) -> int:
    """Size torch's intra-op pool: ``requested``, else $OMP_NUM_THREADS if set, else the available cores."""
    import torch  # callers decide when torch is imported

    if requested is None:
        from_env = os.environ.get("OMP_NUM_THREADS", "")
        requested = int(from_env) if from_env.isdigit() and int(from_env) > 0 else available_cores()
    torch.set_num_threads(requested)
    return requested
