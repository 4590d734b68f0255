"""Per-test outcomes from a junit XML file, matched to pytest node ids: what a task's run shows
about a cluster's tests ("cluster C19 passes")."""

from __future__ import annotations

import re
from pathlib import Path

from planctl.bundle import read_junit


def junit_name(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml writes a node id: the file path dotted without .py,
    classes appended, parameters kept on the name."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def junit_outcomes(path: Path, limit: int) -> dict[tuple[str, str], str] | None:
    """(classname, name) -> passed, failed, error or skipped; None when there is no such file. A file
    over ``limit`` bytes or not XML is a PlanctlError saying so. A test reported twice (a call that
    passes and a teardown that errors) keeps its worst."""
    root = read_junit(path, limit)
    if root is None:
        return None
    worst = ["error", "failed", "skipped", "passed"]
    found: dict[tuple[str, str], str] = {}
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        outcome = next((o for tag, o in _OUTCOMES if tag in tags), "passed")
        key = (case.get("classname", ""), case.get("name", ""))
        if key not in found or worst.index(outcome) < worst.index(found[key]):
            found[key] = outcome
    return found


_OUTCOMES = (("error", "error"), ("failure", "failed"), ("skipped", "skipped"))
