"""planctl triage on a throwaway project whose suite fails in known ways (triage_suite.py): counts,
clusters and their ids, a hung chunk, comparisons across runs, links to plans, the tracker, and a
run stopped with SIGINT. Every run is real: pytest processes, git commits, files on disk."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planctl.project import Project
from planctl.records import load_records, records_path
from planctl.triage.model import Totals
from tests.planctl.acceptance.triage_suite import MEAN_BROKEN, MEAN_FIXED, TRIAGE_PHASE, make_suite_project, set_mean
from tests.planctl.planctl_testkit import git, write

MEAN_TESTS = [f"tests/test_mean.py::test_mean[values{i}]" for i in range(3)]


def triage_records(root: Path):
    return load_records(records_path(Project(root), "triage"), "SUITE-TRIAGE")


def totals(attempt) -> dict[str, int]:
    return attempt.triage.totals.model_dump()


def signatures(root: Path) -> dict[str, tuple[str, str, str]]:
    return {c.id: (c.signature.type, c.signature.message, c.signature.frame) for c in triage_records(root).clusters}


def trailers(root: Path) -> dict[str, str]:
    body = git(root, "log", "-1", "--format=%(trailers:only,unfold)")
    return dict(line.split(": ", 1) for line in body.splitlines() if ": " in line)


def linked_files_exist(root: Path, markdown: Path) -> None:
    links = re.findall(r"\]\(([^)#]+)\)", markdown.read_text())
    assert links
    for link in links:
        assert (markdown.parent / link).resolve().is_file(), link


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    return make_suite_project(tmp_path / "suite")


@pytest.mark.slow
def test_three_runs_cluster_compare_and_track(suite, planctl):
    first = planctl("triage", "run", root=suite)
    assert first.code == 1, first.out + first.err  # failures: exit 1, like pytest
    [run1] = triage_records(suite).attempts
    assert (run1.kind, run1.number, run1.task, run1.outcome) == ("triage", 1, "O1", "failed")
    assert run1.bundle.startswith("reports/suite-triage/phase_o/")  # where the triage task's attempts go
    assert (
        totals(run1)
        == Totals(collected=15, passed=5, failed=5, errors=2, skipped=1, xfailed=1, xpassed=0, not_run=1).model_dump()
    )

    # The four causes are four clusters, numbered in collection order; the three parametrised
    # failures of mean() are one, their numbers and addresses normalised away.
    assert signatures(suite) == {
        "C1": ("ConnectionError", "database at <path> is not reachable", "conftest.py::database"),
        "C2": ("ValueError", "cannot average <n> values: total <n> at <addr>", "mylib/calc.py::mean"),
        "C3": ("AssertionError", "assert <n> == <n>", "tests/test_parse.py::test_parse_plus_one"),
        "C4": ("Timeout", "did not finish within the chunk timeout of <n> s", "tests/test_zz_hang.py::test_hangs"),
    }
    clusters = {c.id: c for c in triage_records(suite).clusters}
    assert clusters["C2"].tests == MEAN_TESTS
    assert clusters["C1"].tests == ["tests/test_db.py::test_query", "tests/test_db.py::test_insert"]

    # The hung chunk: stopped at the timeout, its test in progress failed, the test after it never ran.
    bundle = suite / run1.bundle
    [hung] = [c for c in run1.triage.chunks if c.outcome != "completed"]
    assert (hung.outcome, hung.stopped_in, hung.not_run) == ("timed out", "tests/test_zz_hang.py::test_hangs", 1)
    chunk = bundle / "chunks" / hung.name
    summary = (chunk / "summary.md").read_text()
    assert "## Tests that never ran (1)\n- `tests/test_zz_hang.py::test_after_hang`" in summary
    assert 'test_zz_hang.py", line' in (chunk / "stacks.txt").read_text()  # where it hung
    assert "tests/test_zz_hang.py ." in summary  # the last output, as pytest printed it
    assert not (chunk / "junit.xml").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(int((suite / "hang.pid").read_text()), 0)  # the stop reached the hanging test
    assert json.loads((suite / "hang.env").read_text()) == {
        "TRIAGE_GUARD": "on",
        "PLANCTL_PLAN": "SUITE-TRIAGE",
        "PLANCTL_TASK": "O1",
        "PLANCTL_ATTEMPT": "1",
        "PLANCTL_BUNDLE": str(bundle),
    }
    assert "export TRIAGE_GUARD=on\n" in (chunk / "commands.txt").read_text()  # how to rerun the chunk
    # Without a terminal, one line per chunk as it starts and ends.
    assert "collected 15 tests: 3 chunks, 2 at a time" in first.out
    assert f"{hung.name}: timed out, {hung.tests - hung.not_run}/{hung.tests} tests" in first.out
    for done in (c for c in run1.triage.chunks if c.outcome == "completed"):
        assert (bundle / "chunks" / done.name / "junit.xml").is_file()
        assert (bundle / "chunks" / done.name / "output.log").is_file()

    tags = trailers(suite)
    assert (tags["Kind"], tags["Attempt"], tags["Clusters"]) == ("triage", "1", "new C1, C2, C3, C4")
    assert tags["Totals"] == "15 collected, 5 passed, 5 failed, 2 errors, 1 skipped, 1 xfailed, 1 not run"
    assert git(suite, "status", "--porcelain") == ""
    assert planctl("ledger", "--check", root=suite).code == 0

    # The plan that fixes C2, and the task whose run proves it: recorded in the plan's YAML.
    assert planctl("triage", "link", "C2", "MEAN-FIX", "A2", root=suite).code == 0
    plan_text = (suite / "plans" / "mean-fix.yaml").read_text()
    assert "cluster: C2\n" in plan_text and "clusters: [C2]" in plan_text and "# kept by the link" in plan_text
    assert planctl("triage", "link", "C9", "MEAN-FIX", root=suite).err.startswith("planctl: error: unknown cluster")
    git(suite, "commit", "-q", "-am", "link C2 to MEAN-FIX")
    still_broken = planctl("run", "MEAN-FIX", "A2", root=suite)
    assert still_broken.code == 1 and "cluster C2 passes: 0 of 3 tests passed" in still_broken.out

    set_mean(suite, MEAN_FIXED, "fix mean()")
    assert planctl("run", "MEAN-FIX", "A2", root=suite).code == 0  # "cluster C2 passes" holds
    assert planctl("triage", "run", root=suite).code == 1
    run2 = triage_records(suite).attempts[-1]
    assert run2.triage.compared_with == 1
    # The three means pass, and so does the test that the hang used to cut off.
    assert totals(run2) == {
        "collected": 15, "passed": 9, "failed": 2, "errors": 2, "skipped": 1, "xfailed": 1, "xpassed": 0, "not_run": 0
    }  # fmt: skip
    # Balanced by recorded durations (all but the test the hang cut off were timed): the ten-second
    # test now has a chunk of its own.
    assert (run1.triage.timed, run2.triage.timed) == (0, 14)
    assert (
        "balanced by test count: no earlier run timed these tests" in (suite / run1.bundle / "summary.md").read_text()
    )
    assert (
        "balanced by the durations of earlier runs: 14 of 15 tests timed"
        in (suite / run2.bundle / "summary.md").read_text()
    )
    [alone] = [c for c in run2.triage.chunks if c.outcome == "timed out"]
    assert alone.tests == 1 and alone.stopped_in == "tests/test_zz_hang.py::test_hangs"
    shown = json.loads(planctl("triage", "show", "--json", root=suite).out)
    assert shown["runs"][-1]["clusters"] | {"unverified": []} == {
        "new": [],
        "persisting": ["C1", "C3", "C4"],
        "returning": [],
        "resolved": ["C2"],
        "unverified": [],
    }
    c2 = json.loads(planctl("triage", "show", "C2", "--json", root=suite).out)
    assert (c2["status"], c2["passing"], c2["plans"][0]["initiative"]) == ("resolved", MEAN_TESTS, "MEAN-FIX")

    set_mean(suite, MEAN_BROKEN, "mean() breaks again")
    assert planctl("triage", "run", root=suite).code == 1
    run3 = triage_records(suite).attempts[-1]
    shown = json.loads(planctl("triage", "show", "--json", root=suite).out)
    assert shown["runs"][-1]["clusters"] == {
        "new": [],
        "persisting": ["C1", "C3", "C4"],
        "returning": ["C2"],
        "resolved": [],
        "unverified": [],
    }
    assert sorted(signatures(suite)) == ["C1", "C2", "C3", "C4"]  # the same id came back, no new one
    assert [e.event for e in {c.id: c for c in triage_records(suite).clusters}["C2"].history] == [
        "new",
        "resolved",
        "returning",
    ]

    tracker = (suite / "ledgers" / "remediation_tracker.md").read_text()
    s1, s2, s3 = run1.stamp, run2.stamp, run3.stamp
    assert (
        f"- Baseline: triage #{run3.number} of [SUITE-TRIAGE] ({s3}, failed, "
        f"[summary](../{run3.bundle}/summary.md)): 15 collected — 6 passed (-3), 5 failed (+3), 2 errors (±0), "
        "1 skipped (±0), 1 xfailed (±0).\n"
        f"- Compared with triage #{run2.number} ({s2}): collected ±0; clusters new none, persisting C1, C3, C4, "
        "resolved none, returning C2.\n"
        "- Failure clusters: 4 open, 0 resolved; 3 open without a plan.\n"
    ) in tracker
    assert (
        "| [C2](#c2) | ValueError: cannot average <n> values: total <n> at <addr> — mylib/calc.py::mean "
        f"| 3 of 3 failing | #1 ({s1}) | #{run3.number} ({s3}) | open | [MEAN-FIX] | in progress, 1/2 tasks |"
    ) in tracker
    assert "- Proven by: [MEAN-FIX] A2 [D]\n" in tracker
    assert f"  - triage #{run2.number} ({s2}): resolved — [chunk_" in tracker
    assert f"  - triage #{run3.number} ({s3}): returning, 3 failing — [chunk_" in tracker
    linked_files_exist(suite, suite / "ledgers" / "remediation_tracker.md")
    linked_files_exist(suite, suite / run3.bundle / "summary.md")
    assert planctl("ledger", "--check", root=suite).code == 0
    assert git(suite, "status", "--porcelain") == ""


@pytest.mark.slow
def test_totals_match_a_plain_pytest_run(tmp_path, planctl, monkeypatch):
    suite = make_suite_project(tmp_path / "suite", hang=False)
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"], cwd=suite, capture_output=True, text=True, timeout=300
    ).stdout.splitlines()[-1]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", plain.split(" in ")[0])}
    # As inside a chunk of an outer triage run (planctl's own suite triaged): its selection is not ours.
    write(tmp_path / "outer.txt", "elsewhere/test_other.py::test_other\n")
    monkeypatch.setenv("PLANCTL_TRIAGE_SELECT", str(tmp_path / "outer.txt"))
    monkeypatch.setenv("PLANCTL_TRIAGE_OUT", str(tmp_path / "outer"))
    result = planctl("triage", "run", "--jobs", "2", "--chunks", "2", "--no-commit", root=suite)
    assert result.code == 1, result.out
    [run] = triage_records(suite).attempts
    expected = {"passed": 4, "failed": 4, "errors": 2, "skipped": 1, "xfailed": 1}
    assert {("errors" if k == "error" else k): v for k, v in counts.items()} == expected, plain
    assert totals(run) == {"collected": 12, "xpassed": 0, "not_run": 0, **expected}
    assert git(suite, "log", "--format=%s") == "a suite with known failures\n"  # --no-commit


@pytest.mark.slow
def test_a_crash_and_a_collection_error_are_recorded_by_file(tmp_path, planctl):
    root = tmp_path / "crashy"
    write(root / "pytest.ini", "[pytest]\naddopts = -p no:cacheprovider -p no:hypothesispytest\n")
    write(root / "plans" / "triage.yaml", "initiative: {id: CRASHY, title: crashes}\ntriage: {}\n" + TRIAGE_PHASE)
    write(
        root / "tests" / "test_crash.py",
        """\
        import os
        import signal


        def test_fine():
            pass


        def test_dies():
            os.kill(os.getpid(), signal.SIGKILL)


        def test_never_reached():
            pass
        """,
    )
    write(root / "tests" / "test_broken.py", "import not_a_module_anywhere\n\n\ndef test_x():\n    pass\n")
    write(root / "tests" / "test_ok.py", "def test_ok():\n    pass\n")
    result = planctl("triage", "run", "--by", "file", root=root)
    assert result.code == 1, result.out
    [run] = load_records(records_path(Project(root), "triage"), "CRASHY").attempts
    assert [(c.name, c.outcome, c.tests) for c in run.triage.chunks] == [
        ("chunk_01", "crashed", 3),
        ("chunk_02", "completed", 1),
    ]
    crashed = run.triage.chunks[0]
    assert crashed.reason == "pytest ended with signal SIGKILL"
    assert crashed.stopped_in == "tests/test_crash.py::test_dies"
    assert totals(run) == {
        "collected": 4, "passed": 2, "failed": 1, "errors": 1, "skipped": 0, "xfailed": 0, "xpassed": 0, "not_run": 1
    }  # fmt: skip
    clusters = {c.id: c for c in load_records(records_path(Project(root), "triage"), "CRASHY").clusters}
    assert (clusters["C1"].signature.type, clusters["C1"].tests) == ("ModuleNotFoundError", ["tests/test_broken.py"])
    assert clusters["C1"].signature.frame == "tests/test_broken.py::<module>"
    assert (clusters["C2"].signature.type, clusters["C2"].signature.message) == (
        "Crash",
        "the test process died during the test: signal SIGKILL",
    )
    # Once the module imports, its collection error is resolved; the crash persists.
    write(root / "tests" / "test_broken.py", "def test_x():\n    pass\n")
    assert planctl("triage", "run", "--by", "file", root=root).code == 1
    after = {c.id: c.status for c in load_records(records_path(Project(root), "triage"), "CRASHY").clusters}
    assert after == {"C1": "resolved", "C2": "open"}


@pytest.mark.slow
def test_an_interrupted_run_keeps_finished_chunks_and_the_next_run_works(suite):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "planctl", "--root", str(suite), "triage", "run", "--jobs", "1"]
    run = subprocess.Popen([*command, "--timeout-per-chunk", "300"], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (suite / "hang.pid").exists():  # chunk_01 has finished; chunk_02 is in the hanging test
        assert time.monotonic() < deadline and run.poll() is None, "the hanging test never started"
        time.sleep(0.1)
    run.send_signal(signal.SIGINT)
    output = run.communicate(timeout=60)[0]
    assert run.returncode == 130, output
    with pytest.raises(ProcessLookupError):
        os.kill(int((suite / "hang.pid").read_text()), 0)

    [attempt] = triage_records(suite).attempts
    assert (attempt.outcome, attempt.reason) == ("interrupted", "SIGINT received")
    assert [(c.name, c.outcome) for c in attempt.triage.chunks] == [
        ("chunk_01", "completed"),
        ("chunk_02", "interrupted"),
        ("chunk_03", "not started"),
    ]
    assert attempt.triage.chunks[1].stopped_in == "tests/test_zz_hang.py::test_hangs"
    # What finished counts; the test that was stopped and everything after it is "not run", never passed.
    assert totals(attempt) == {
        "collected": 15, "passed": 4, "failed": 1, "errors": 2, "skipped": 1, "xfailed": 1, "xpassed": 0, "not_run": 6
    }  # fmt: skip
    assert sorted(signatures(suite)) == ["C1", "C2"]  # the database fixture and parse; no timeout
    assert git(suite, "log", "-1", "--format=%s").strip() == (
        "planctl: SUITE-TRIAGE O1 triage attempt #1 interrupted: SIGINT received"
    )
    assert (suite / attempt.bundle / "chunks" / "chunk_01" / "summary.md").is_file()
    check = subprocess.run([*command[:5], "ledger", "--check"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert git(suite, "status", "--porcelain") == ""

    again = subprocess.run(
        [*command, "--jobs", "2", "--", "-k", "not hangs"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 1, again.stdout + again.stderr  # it ran to the end; failures remain
    _, second = triage_records(suite).attempts
    assert (second.number, second.outcome, second.triage.compared_with) == (2, "failed", 1)
    assert all(c.outcome == "completed" for c in second.triage.chunks)
    assert second.triage.totals.collected == 14 and second.triage.totals.not_run == 0
    assert sorted(signatures(suite)) == ["C1", "C2", "C3"]  # mean() ran this time: a new cluster


@pytest.mark.slow
def test_a_killed_triage_run_is_reaped_and_its_chunks_ended(suite):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "planctl", "--root", str(suite), "triage", "run"]
    run = subprocess.Popen([*command, "--jobs", "1", "--timeout-per-chunk", "300"], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (suite / "hang.pid").exists():
        assert time.monotonic() < deadline and run.poll() is None, "the hanging test never started"
        time.sleep(0.1)
    run.kill()  # SIGKILL: no chance to record anything, the chunk keeps running
    run.wait(timeout=30)
    hanging = int((suite / "hang.pid").read_text())
    os.kill(hanging, 0)
    [attempt] = triage_records(suite).attempts
    assert attempt.outcome == "running" and len(attempt.groups) == 3  # collection, chunk_01, chunk_02

    again = subprocess.run(
        [*command, "--jobs", "2", "--", "-k", "not hangs"], env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 1, again.stdout + again.stderr
    first, second = triage_records(suite).attempts
    assert first.outcome == "interrupted" and "were still running and were ended" in first.reason
    with pytest.raises(ProcessLookupError):
        os.kill(hanging, 0)
    assert second.triage.compared_with is None  # a run killed outright has nothing to compare with
