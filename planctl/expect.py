"""Judging a finished run against its task's expectations.

Paths in expectations are read as the command sees them: ``$PLANCTL_BUNDLE`` and the other run
variables are expanded, and relative paths start at the run's working directory. Each must stay
where the plan may go (planctl.confine) and is read back within ``limits.read_bytes``
(planctl.readback); a path that breaks either rule fails its check, saying why.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planctl.confine import Confinement
from planctl.errors import PlanctlError
from planctl.readback import read_bounded
from planctl.records import Check
from planctl.schema import Expectations, FileCheck, Limits, MetricThreshold
from planctl.triage.junit import junit_name

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
    junit: dict[str, int] | str | None  # the counts, why the junit XML could not be read, or None: no XML
    cwd: Path
    env: dict[str, str]
    confinement: Confinement
    artifact_problems: list[Check] = field(default_factory=list)
    read_limit: int = Limits().read_bytes
    cluster_tests: dict[str, list[str]] = field(default_factory=dict)  # the tests of each cluster it names
    # per-test outcomes of the junit XML, why it could not be read, or None: no XML
    junit_tests: dict[tuple[str, str], str] | str | None = None

    def path(self, what: str, text: str) -> Path:
        return self.confinement.resolve(what, text, self.cwd, self.env)

    def read(self, what: str, text: str) -> bytes:
        """The bytes of a file named in the plan; FileNotFoundError, or a PlanctlError saying why not."""
        return read_bounded(self.path(what, text), self.read_limit)


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
    if isinstance(facts.junit, dict):
        metrics["junit"] = facts.junit
    if expect.junit is not None:
        checks += _junit_checks(expect, facts.junit)
    for threshold in expect.metrics:
        check, values = _metric_check(threshold, facts)
        checks.append(check)
        if values is not None:
            metrics[f"{threshold.file}:{threshold.select}"] = _summary(values)
    checks += [_file_check(spec, facts) for spec in expect.files]
    checks += facts.artifact_problems
    checks += [_cluster_check(cluster, facts) for cluster in expect.clusters]
    return checks, metrics


def _junit_checks(expect: Expectations, counts: dict[str, int] | str | None) -> list[Check]:
    assert expect.junit is not None
    wanted = expect.junit.model_dump(exclude_none=True)
    if counts is None:
        return [Check(name="junit counts", passed=False, detail="no junit XML was written (is the command pytest?)")]
    if isinstance(counts, str):
        return [Check(name="junit counts", passed=False, detail=counts)]
    return [
        Check(name=f"junit {key}", passed=counts[key] == value, detail=f"expected {value}, got {counts[key]}")
        for key, value in wanted.items()
    ]


def _metric_check(threshold: MetricThreshold, facts: RunFacts) -> tuple[Check, list[tuple[str, float]] | None]:
    magnitude = "|x|" if threshold.abs else "x"
    name = (
        f"{threshold.quantifier} {magnitude} {threshold.op} {threshold.value:g}"
        f" for {threshold.select} in {threshold.file}"
    )
    try:
        document = json.loads(facts.read("metrics file", threshold.file))
    except FileNotFoundError as err:
        return Check(name=name, passed=False, detail=f"{err.filename} does not exist"), None
    except PlanctlError as err:
        return Check(name=name, passed=False, detail=str(err)), None
    except (ValueError, RecursionError) as err:
        why = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        return Check(name=name, passed=False, detail=f"{threshold.file} is not readable JSON: {why}"), None
    labelled = list(_numbers(_located(document, threshold.select)))
    if not labelled:
        return Check(name=name, passed=False, detail="the selector matched no numbers"), labelled
    values = [value for _, value in labelled]
    compare = _COMPARE[threshold.op]
    results = [compare(abs(v) if threshold.abs else v, threshold.value) for v in values]
    passed = all(results) if threshold.quantifier == "all" else any(results)
    failing = [v for v, ok in zip(values, results, strict=True) if not ok]
    detail = f"{len(values)} values, {len(failing)} outside the threshold"
    if failing:
        detail += f" (e.g. {failing[0]:g})"
    return Check(name=name, passed=passed, detail=detail), labelled


def select(document: Any, selector: str) -> Iterator[Any]:
    """The nodes a dotted selector reaches (see the module docstring)."""
    for _, node in _located(document, selector):
        yield node


def _located(document: Any, selector: str) -> list[tuple[str, Any]]:
    """The nodes a selector reaches, each with its dotted path from the document's root."""
    nodes: list[tuple[str, Any]] = [("", document)]
    for part in [p for p in re.sub(r"^\$\.?", "", selector).split(".") if p]:
        found = []
        for path, node in nodes:
            if part == "*":
                items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
                found += [(_join(path, key), item) for key, item in items]
            elif isinstance(node, dict) and part in node:
                found.append((_join(path, part), node[part]))
            elif isinstance(node, list) and re.fullmatch(r"-?\d+", part) and -len(node) <= int(part) < len(node):
                found.append((_join(path, int(part) % len(node)), node[int(part)]))
        nodes = found
    return nodes


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _numbers(located: list[tuple[str, Any]]) -> Iterator[tuple[str, float]]:
    """Every number under the located nodes, in document order, labelled with its dotted path
    (``results.0.gradients.cell_a``). Iterative: JSON may nest deeply."""
    stack = located[::-1]
    while stack:
        path, node = stack.pop()
        if isinstance(node, bool):
            continue
        if isinstance(node, (int, float)):
            yield path, float(node)
        elif isinstance(node, dict):
            stack.extend(reversed([(_join(path, key), item) for key, item in node.items()]))
        elif isinstance(node, list):
            stack.extend(reversed([(_join(path, index), item) for index, item in enumerate(node)]))


def _summary(labelled: list[tuple[str, float]]) -> dict[str, Any]:
    """What the attempt record keeps of a metric: count and range, and up to _SHOWN_VALUES values
    with their paths in the JSON document (``labels``), so reports can plot each one by name."""
    values = [value for _, value in labelled]
    summary: dict[str, Any] = {"count": len(values)}
    if values:
        summary |= {"min": min(values), "max": max(values)}
    if len(values) <= _SHOWN_VALUES:
        summary["values"] = values
        summary["labels"] = [label for label, _ in labelled]
    return summary


def _cluster_check(cluster: str, facts: RunFacts) -> Check:
    """Every test of the cluster ran in this run and passed (read from its junit XML)."""
    name = f"cluster {cluster} passes"
    tests = facts.cluster_tests.get(cluster)
    if tests is None:
        return Check(name=name, passed=False, detail="no triage run or historical declaration knows this cluster")
    if facts.junit_tests is None:
        return Check(name=name, passed=False, detail="no junit XML was written (is the command pytest?)")
    if isinstance(facts.junit_tests, str):
        return Check(name=name, passed=False, detail=facts.junit_tests)
    outcomes = {test: facts.junit_tests.get(junit_name(test)) for test in tests}
    missing = [t for t, o in outcomes.items() if o is None]
    failing = [t for t, o in outcomes.items() if o not in (None, "passed")]
    detail = f"{len(tests) - len(missing) - len(failing)} of {len(tests)} tests passed"
    detail += f"; not passing: {', '.join(failing)}" if failing else ""
    detail += f"; did not run: {', '.join(missing)}" if missing else ""
    return Check(name=name, passed=not missing and not failing, detail=detail)


def _file_check(spec: FileCheck, facts: RunFacts) -> Check:
    if not spec.exists:
        name = f"{spec.path} is absent"
        try:
            path = facts.path("file check", spec.path)
        except PlanctlError as err:
            return Check(name=name, passed=False, detail=str(err))
        return Check(name=name, passed=not path.exists(), detail=f"{path}")
    what = [f"contains {spec.contains!r}"] * (spec.contains is not None) + [f"matches /{spec.regex}/"] * (
        spec.regex is not None
    )
    name = f"{spec.path} " + (" and ".join(what) if what else "exists")
    try:
        text = facts.read("file check", spec.path).decode("utf-8", errors="replace")
    except FileNotFoundError as err:
        return Check(name=name, passed=False, detail=f"{err.filename} does not exist")
    except PlanctlError as err:
        return Check(name=name, passed=False, detail=str(err))
    if spec.contains is not None and spec.contains not in text:
        return Check(name=name, passed=False, detail=f"{spec.contains!r} not found")
    if spec.regex is not None and not re.search(spec.regex, text, re.MULTILINE):
        return Check(name=name, passed=False, detail="no match")
    return Check(name=name, passed=True)
