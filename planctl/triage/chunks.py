"""Splitting the collected suite into chunks that each run in a pytest process of their own.

``file``: one chunk per test file, in collection order. ``balanced``: the requested number of
chunks, balanced by the durations earlier triage runs recorded for each test (a test never timed
before counts as the median of those that were, or one second). Tests of one file stay together
(module fixtures and imports are paid once) unless the file alone is longer than a chunk's share,
in which case it is cut into consecutive runs of tests. Files are placed longest first, each on
the chunk with the least work so far; inside a chunk, tests keep their collection order.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from planctl.project import Project
from planctl.records import Records
from planctl.safeio import atomic_write_text

DEFAULT_TEST_S = 1.0
TESTS_FILE = "tests.json"  # in each run's bundle: every test's outcome, duration and chunk
_HISTORY_RUNS = 5  # earlier runs consulted for durations, newest first


@dataclass(frozen=True)
class Chunk:
    name: str  # chunk_01, chunk_02, ...
    tests: list[str]
    expected_s: float


def chunk_name(index: int, count: int) -> str:
    return f"chunk_{index + 1:0{max(2, len(str(count)))}d}"


def plan_chunks(tests: list[str], durations: dict[str, float], *, count: int, split: str) -> list[Chunk]:
    if not tests:
        return []
    known = [durations[t] for t in tests if t in durations]
    fallback = statistics.median(known) if known else DEFAULT_TEST_S
    cost = {t: durations.get(t, fallback) for t in tests}
    order = {t: i for i, t in enumerate(tests)}
    files: dict[str, list[str]] = {}
    for test in tests:
        files.setdefault(test.split("::", 1)[0], []).append(test)
    if split == "file":
        groups = list(files.values())
    else:
        groups = _balanced(list(files.values()), cost, min(count, len(tests)))
    groups = sorted((sorted(g, key=order.__getitem__) for g in groups if g), key=lambda g: order[g[0]])
    return [
        Chunk(chunk_name(i, len(groups)), group, round(sum(cost[t] for t in group), 3))
        for i, group in enumerate(groups)
    ]


def _balanced(files: list[list[str]], cost: dict[str, float], count: int) -> list[list[str]]:
    share = sum(cost.values()) / count
    units: list[list[str]] = []
    for tests in files:
        units += _cut(tests, cost, share) if sum(cost[t] for t in tests) > share else [tests]
    chunks: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    for unit in sorted(units, key=lambda u: -sum(cost[t] for t in u)):  # stable: ties keep collection order
        lightest = loads.index(min(loads))
        chunks[lightest] += unit
        loads[lightest] += sum(cost[t] for t in unit)
    return chunks


def _cut(tests: list[str], cost: dict[str, float], share: float) -> list[list[str]]:
    """Consecutive runs of ``tests``, each at most ``share`` long (or a single longer test)."""
    runs: list[list[str]] = [[]]
    total = 0.0
    for test in tests:
        if runs[-1] and total + cost[test] > share:
            runs.append([])
            total = 0.0
        runs[-1].append(test)
        total += cost[test]
    return runs


def recorded_durations(project: Project, records: Records) -> dict[str, float]:
    """Each test's duration in the newest earlier triage run that timed it (bundles that are not
    checked out are passed over)."""
    durations: dict[str, float] = {}
    runs = [a for a in reversed(records.attempts) if a.kind == "triage" and a.outcome != "running"]
    for attempt in runs[:_HISTORY_RUNS]:
        try:
            stored = json.loads((project.root / attempt.bundle / TESTS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for test in stored.get("tests", []):
            if isinstance(test, dict) and test.get("duration") is not None and test.get("outcome") != "not run":
                durations.setdefault(str(test["test"]), float(test["duration"]))
    return durations


def write_selection(chunk: Chunk, folder: Path) -> Path:
    """The chunk's node ids, one a line, where the pytest plugin reads them."""
    path = folder / "tests.txt"
    atomic_write_text(path, "".join(f"{t}\n" for t in chunk.tests))
    return path
