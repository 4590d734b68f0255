"""Judging a finished run against its task's expectations.

Paths in expectations are read as the command sees them: ``$PLANCTL_BUNDLE`` and the other run
variables are expanded, and relative paths start at the run's working directory.

A metric selector is a dotted path into a JSON document; ``*`` stands for every key of an object or
every item of a list, a number for one list item. Every number *under* the selected nodes counts,
so ``gradients`` selects all the numbers inside ``{"gradients": {"a": 0.1, "b": [0.2]}}``. A
selector that reaches no number fails the check rather than passing vacuously.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planctl.confine import expand
from planctl.records import Check
from planctl.schema import Expectations, FileCheck, MetricThreshold

_COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_SHOWN_VALUES = 20  # metric values kept in the attempt record; beyond that, only a summary


@dataclass(frozen=True)
class RunFacts:
    exit_code: int | None  # None when the task has no command
    junit: dict[str, int] | None
    cwd: Path
    env: dict[str, str]
    missing_artifacts: list[str]


def judge(expect: Expectations, facts: RunFacts) -> tuple[list[Check], dict[str, Any]]:
    checks: list[Check] = []
    metrics: dict[str, Any] = {}
    if facts.exit_code is not None and expect.exit_code is not None:
        checks.append(
            Check(
                name="exit code",
                passed=facts.exit_code == expect.exit_code,
                detail=f"expected {expect.exit_code}, got {facts.exit_code}",
            )
        )
    if facts.junit is not None:
        metrics["junit"] = facts.junit
    if expect.junit is not None:
        checks += _junit_checks(expect, facts.junit)
    for threshold in expect.metrics:
        check, values = _metric_check(threshold, facts)
        checks.append(check)
        if values is not None:
            metrics[f"{threshold.file}:{threshold.select}"] = _summary(values)
    checks += [_file_check(spec, facts) for spec in expect.files]
    checks += [
        Check(name=f"artifact {pattern}", passed=False, detail="the run produced no such file")
        for pattern in facts.missing_artifacts
    ]
    return checks, metrics


def _junit_checks(expect: Expectations, counts: dict[str, int] | None) -> list[Check]:
    assert expect.junit is not None
    wanted = expect.junit.model_dump(exclude_none=True)
    if counts is None:
        return [Check(name="junit counts", passed=False, detail="no junit XML was written (is the command pytest?)")]
    return [
        Check(name=f"junit {key}", passed=counts[key] == value, detail=f"expected {value}, got {counts[key]}")
        for key, value in wanted.items()
    ]


def _metric_check(threshold: MetricThreshold, facts: RunFacts) -> tuple[Check, list[float] | None]:
    magnitude = "|x|" if threshold.abs else "x"
    name = (
        f"{threshold.quantifier} {magnitude} {threshold.op} {threshold.value:g}"
        f" for {threshold.select} in {threshold.file}"
    )
    path = facts.cwd / expand(threshold.file, facts.env)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Check(name=name, passed=False, detail=f"{path} does not exist"), None
    except (OSError, ValueError) as err:
        return Check(name=name, passed=False, detail=f"{path} is not readable JSON: {err}"), None
    values = list(_numbers(select(document, threshold.select)))
    if not values:
        return Check(name=name, passed=False, detail="the selector matched no numbers"), values
    compare = _COMPARE[threshold.op]
    results = [compare(abs(v) if threshold.abs else v, threshold.value) for v in values]
    passed = all(results) if threshold.quantifier == "all" else any(results)
    failing = [v for v, ok in zip(values, results, strict=True) if not ok]
    detail = f"{len(values)} values, {len(failing)} outside the threshold"
    if failing:
        detail += f" (e.g. {failing[0]:g})"
    return Check(name=name, passed=passed, detail=detail), values


def select(document: Any, selector: str) -> Iterator[Any]:
    """The nodes a dotted selector reaches (see the module docstring)."""
    nodes = [document]
    for part in [p for p in re.sub(r"^\$\.?", "", selector).split(".") if p]:
        found = []
        for node in nodes:
            if part == "*":
                found += list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
            elif isinstance(node, dict) and part in node:
                found.append(node[part])
            elif isinstance(node, list) and re.fullmatch(r"-?\d+", part) and -len(node) <= int(part) < len(node):
                found.append(node[int(part)])
        nodes = found
    yield from nodes


def _numbers(nodes: Iterator[Any]) -> Iterator[float]:
    for node in nodes:
        if isinstance(node, bool):
            continue
        if isinstance(node, (int, float)):
            yield float(node)
        elif isinstance(node, dict):
            yield from _numbers(iter(node.values()))
        elif isinstance(node, list):
            yield from _numbers(iter(node))


def _summary(values: list[float]) -> dict[str, Any]:
    summary: dict[str, Any] = {"count": len(values)}
    if values:
        summary |= {"min": min(values), "max": max(values)}
    if len(values) <= _SHOWN_VALUES:
        summary["values"] = values
    return summary


def _file_check(spec: FileCheck, facts: RunFacts) -> Check:
    path = facts.cwd / expand(spec.path, facts.env)
    if not spec.exists:
        return Check(name=f"{spec.path} is absent", passed=not path.exists(), detail=f"{path}")
    what = [f"contains {spec.contains!r}"] * (spec.contains is not None) + [f"matches /{spec.regex}/"] * (
        spec.regex is not None
    )
    name = f"{spec.path} " + (" and ".join(what) if what else "exists")
    if not path.is_file():
        return Check(name=name, passed=False, detail=f"{path} does not exist")
    text = path.read_text(encoding="utf-8", errors="replace")
    if spec.contains is not None and spec.contains not in text:
        return Check(name=name, passed=False, detail=f"{spec.contains!r} not found")
    if spec.regex is not None and not re.search(spec.regex, text, re.MULTILINE):
        return Check(name=name, passed=False, detail="no match")
    return Check(name=name, passed=True)
