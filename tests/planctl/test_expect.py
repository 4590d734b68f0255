"""The expectations language: selectors, thresholds, junit counts and file checks."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from planctl.bundle import junit_counts
from planctl.confine import Confinement
from planctl.errors import PlanctlError
from planctl.expect import RunFacts, judge, select
from planctl.records import Check
from planctl.schema import Expectations
from tests.planctl.planctl_testkit import write

DOC = {"grads": {"a": 0.5, "b": [-2e-3, 0.0]}, "loss": 0, "ok": True, "runs": [{"g": 1}, {"g": 2}]}


@pytest.mark.parametrize(
    ("selector", "nodes"),
    [
        ("loss", [0]),
        ("$.loss", [0]),
        ("grads.a", [0.5]),
        ("grads.*", [0.5, [-2e-3, 0.0]]),
        ("grads.b.1", [0.0]),
        ("grads.b.-1", [0.0]),
        ("runs.*.g", [1, 2]),
        ("missing.*", []),
        ("grads.b.7", []),
    ],
)
def test_selectors(selector, nodes):
    assert list(select(DOC, selector)) == nodes


def facts(tmp_path: Path, **overrides) -> RunFacts:
    write(tmp_path / "bundle" / "m.json", json.dumps(DOC))
    base = {
        "exit_code": 0,
        "junit": None,
        "cwd": tmp_path,
        "env": {"PLANCTL_BUNDLE": str(tmp_path / "bundle")},
        "confinement": Confinement(tmp_path.resolve()),
    }
    return RunFacts(**base | overrides)


def metric(**fields) -> Expectations:
    return Expectations.model_validate({"metrics": [{"file": "$PLANCTL_BUNDLE/m.json", **fields}]})


@pytest.mark.parametrize(
    ("fields", "passed", "detail"),
    [
        (
            {"select": "grads", "op": ">", "value": 1e-6, "abs": True},
            False,
            "3 values, 1 outside the threshold (e.g. 0)",
        ),
        (
            {"select": "grads", "op": ">", "value": 1e-6, "abs": True, "quantifier": "any"},
            True,
            "3 values, 1 outside the threshold (e.g. 0)",
        ),
        ({"select": "grads.a", "op": "<=", "value": 0.5}, True, "1 values, 0 outside the threshold"),
        ({"select": "loss", "op": "==", "value": 0}, True, "1 values, 0 outside the threshold"),
        ({"select": "ok", "op": "==", "value": 1}, False, "the selector matched no numbers"),
        ({"select": "nothing", "op": "==", "value": 0}, False, "the selector matched no numbers"),
    ],
)
def test_metric_thresholds(tmp_path, fields, passed, detail):
    [exit_check, check], _ = judge(metric(**fields), facts(tmp_path))
    assert exit_check.passed and (check.passed, check.detail) == (passed, detail)


def test_unreadable_metric_files_fail_with_a_reason(tmp_path):
    write(tmp_path / "bundle" / "bad.json", "probe: not json\n")
    expect = Expectations.model_validate(
        {
            "metrics": [
                {"file": "$PLANCTL_BUNDLE/bad.json", "select": "x", "op": "==", "value": 0},
                {"file": "nowhere.json", "select": "x", "op": "==", "value": 0},
            ]
        }
    )
    _, bad, missing = judge(expect, facts(tmp_path))[0]
    assert not bad.passed and "is not readable JSON" in bad.detail
    assert not missing.passed and missing.detail.endswith("nowhere.json does not exist")


def test_exit_code_junit_files_and_artifacts(tmp_path):
    write(tmp_path / "src" / "x.py", "default_F = 100\n")
    expect = Expectations.model_validate(
        {
            "exit_code": 0,
            "junit": {"passed": 1, "failed": 0},
            "files": [
                {"path": "src/x.py", "contains": "default_F = 100", "regex": r"^default_F\s*=\s*\d+$"},
                {"path": "src/gone.py", "exists": False},
                {"path": "src/x.py", "contains": "nope"},
            ],
        }
    )
    junit = {"tests": 2, "passed": 1, "failed": 1, "errors": 0, "skipped": 0}
    missing = Check(name="artifact out/*.png", passed=False, detail="the run produced no such file")
    checks, metrics = judge(expect, facts(tmp_path, exit_code=3, junit=junit, artifact_problems=[missing]))
    assert [(c.name, c.passed) for c in checks] == [
        ("exit code", False),
        ("junit passed", True),
        ("junit failed", False),
        ("src/x.py contains 'default_F = 100' and matches /^default_F\\s*=\\s*\\d+$/", True),
        ("src/gone.py is absent", True),
        ("src/x.py contains 'nope'", False),
        ("artifact out/*.png", False),
    ]
    assert metrics == {"junit": junit}
    [no_xml] = judge(Expectations(exit_code=None, junit={"passed": 1}), facts(tmp_path))[0]
    assert (no_xml.passed, no_xml.detail) == (False, "no junit XML was written (is the command pytest?)")


def test_junit_counts_sum_test_suites(tmp_path):
    xml = write(
        tmp_path / "junit.xml",
        """\
        <testsuites>
          <testsuite name="a" tests="4" failures="1" errors="0" skipped="1"/>
          <testsuite name="b" tests="2" failures="0" errors="1" skipped="0"/>
        </testsuites>
        """,
    )
    assert junit_counts(xml, 1 << 20) == {"tests": 6, "failed": 1, "errors": 1, "skipped": 1, "passed": 3}
    assert junit_counts(tmp_path / "absent.xml", 1 << 20) is None


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ('<testsuite tests="abc" failures="0"/>', "testsuite tests='abc' is not a whole number"),
        ('<testsuite tests="1" failures="-1"/>', "testsuite failures='-1' is not a whole number"),
        ("<testsuite", "is not junit XML: unclosed token"),
        ("<testsuite tests='1'/>" + " " * 2048, "is larger than limits.read_bytes (1 KiB)"),
    ],
)
def test_junit_files_that_cannot_be_counted_say_why(tmp_path, xml, message):
    path = write(tmp_path / "junit.xml", xml)
    with pytest.raises(PlanctlError, match=re.escape(message)):
        junit_counts(path, 1024)
    [check] = judge(Expectations(exit_code=None, junit={"passed": 1}), facts(tmp_path, junit="why"))[0]
    assert (check.name, check.passed, check.detail) == ("junit counts", False, "why")


def metric_on(path: str) -> Expectations:
    return Expectations.model_validate({"metrics": [{"file": path, "select": "x", "op": "==", "value": 0}]})


def test_metric_files_are_read_back_within_limits(tmp_path):
    write(tmp_path / "big.json", json.dumps({"x": [0] * 1000}))
    write(tmp_path / "deep.json", "[" * 100_000 + "]" * 100_000)
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # opened for reading, a FIFO without a writer would wait for ever
    outside = Confinement(tmp_path.resolve(), (Path("/dev"),))
    details = {
        name: judge(metric_on(name), facts(tmp_path, read_limit=1024, confinement=outside))[0][1].detail
        for name in ("big.json", "deep.json", "pipe.json", "/dev/zero")
    }
    assert details["big.json"] == f"{tmp_path}/big.json is larger than limits.read_bytes (1 KiB)"
    assert details["deep.json"].endswith("is larger than limits.read_bytes (1 KiB)")
    assert details["pipe.json"] == f"{tmp_path}/pipe.json is not a regular file"
    assert details["/dev/zero"] == "/dev/zero is not a regular file"
    deep = judge(metric_on("deep.json"), facts(tmp_path))[0][1]
    assert deep.detail == "deep.json is not readable JSON: nested too deeply"


def test_paths_outside_the_project_fail_their_checks(tmp_path):
    root = tmp_path / "project"
    write(root / "link.json", "")
    (root / "link.json").unlink()
    (root / "link.json").symlink_to("/etc/hostname")
    expect = Expectations.model_validate(
        {
            "metrics": [{"file": "/dev/zero", "select": "x", "op": "==", "value": 0}],
            "files": [{"path": "link.json", "contains": "x"}, {"path": "../elsewhere", "exists": False}],
        }
    )
    checks = judge(expect, facts(root, confinement=Confinement(root.resolve())))[0][1:]  # after the exit code
    assert [c.passed for c in checks] == [False] * 3
    assert checks[0].detail == (
        "metrics file '/dev/zero' outside the project; "
        "list a folder that holds it under the plan's outside_paths to allow it"
    )
    assert checks[1].detail.startswith("file check 'link.json' resolves to /etc/hostname, outside the project")
    assert checks[2].detail.startswith("file check '../elsewhere' resolves to")


def test_recorded_metrics_name_each_value_by_its_path(tmp_path):
    _, metrics = judge(metric(select="grads.*", op=">=", value=-1), facts(tmp_path))
    assert metrics["$PLANCTL_BUNDLE/m.json:grads.*"] == {
        "count": 3,
        "min": -2e-3,
        "max": 0.5,
        "values": [0.5, -2e-3, 0.0],
        "labels": ["grads.a", "grads.b.0", "grads.b.1"],
    }
    _, metrics = judge(metric(select="runs.-1", op=">=", value=0), facts(tmp_path))
    assert metrics["$PLANCTL_BUNDLE/m.json:runs.-1"]["labels"] == ["runs.1.g"]
