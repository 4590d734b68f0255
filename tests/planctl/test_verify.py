"""planctl verify on temporary git repositories: stale evidence re-checked, regressions reopened and
committed, unverifiable tasks never counted as passing."""

from __future__ import annotations

import json
from pathlib import Path

from planctl.project import Project
from planctl.records import load_records, records_path
from planctl.store import read_plan
from tests.planctl.planctl_testkit import git, write


def records(repo: Path, name: str = "run", initiative: str = "RUN-001"):
    return load_records(records_path(Project(repo), name), initiative)


def state(repo: Path, task: str, name: str = "run") -> str:
    return read_plan(Project(repo), repo / "plans" / f"{name}.yaml").task(task).state.value


def stale_tasks(planctl, repo: Path) -> list[str]:
    [summary] = json.loads(planctl("status", "run", "--json", root=repo).out)
    return [item["task"] for item in summary["stale"]]


def trailers(repo: Path) -> dict[str, str]:
    text = git(repo, "log", "-1", "--format=%(trailers:only,unfold)")
    return dict(line.split(": ", 1) for line in text.splitlines() if line)


def test_an_edited_input_makes_the_task_stale_and_verify_stale_passes_it_again(repo, planctl):
    assert planctl("run", "run", "A1", root=repo).code == 0
    test = repo / "tests" / "test_pass.py"
    test.write_text(test.read_text().replace("print('pass output')", "print('pass output, reworded')"))
    git(repo, "commit", "-qam", "reword the test's output")
    assert stale_tasks(planctl, repo) == ["A1"]

    result = planctl("verify", "run", "--stale", root=repo)
    assert result.code == 0, result.out + result.err
    assert "RUN-001 A1: verify attempt #4, bundle reports/run-demo/phase_a/" in result.out
    assert "verify attempt #4 A1: passed (3/3 checks passed)" in result.out
    assert "verified 1 task(s): 1 passed, 0 failed or stopped" in result.out
    attempt = records(repo).attempt(4)
    assert (attempt.kind, attempt.verifies, attempt.outcome) == ("verify", 3, "passed")
    assert attempt.inputs_digest != records(repo).attempt(3).inputs_digest
    assert state(repo, "A1") == "[D]" and len(records(repo).transitions) == 1  # no state change
    assert stale_tasks(planctl, repo) == []  # the pass refreshed the evidence
    assert git(repo, "log", "-1", "--format=%s").strip() == "planctl: RUN-001 A1 verify attempt #4 passed"
    assert trailers(repo) | {"Stamp": "", "Source-Commit": ""} == {
        "Plan": "plans/run.yaml",
        "Task": "A1",
        "Attempt": "4",
        "Kind": "verify",
        "Verifies": "3",
        "Stamp": "",
        "Exit-Code": "0",
        "Source-Commit": "",
    }
    assert "- Verifies: attempt #3\n" in (repo / attempt.bundle / "summary.md").read_text()
    assert planctl("verify", "run", "--stale", root=repo).out.strip() == "nothing to verify"


def test_an_edit_that_breaks_the_check_reopens_the_task_and_the_ledger_says_so(repo, planctl):
    assert planctl("run", "run", "A1", root=repo).code == 0
    test = repo / "tests" / "test_pass.py"
    test.write_text(test.read_text().replace("default_F=100", "default_F=100\n    assert False, 'broken'"))

    result = planctl("verify", "run", "A1", root=repo)
    assert result.code == 1
    assert "verify attempt #4 A1: failed (regressed since attempt #3)" in result.out
    assert "failed: junit passed: expected 1, got 0" in result.out
    assert "verified 1 task(s): 0 passed, 1 failed or stopped" in result.out

    attempt = records(repo).attempt(4)
    assert (attempt.kind, attempt.outcome, attempt.reason) == ("verify", "failed", "regressed since attempt #3")
    assert state(repo, "A1") == "[ ]"
    reopened = records(repo).transitions[-1]
    assert (reopened.task, reopened.before.value, reopened.after.value) == ("A1", "[D]", "[ ]")
    assert (reopened.why, reopened.by) == ("regressed since attempt #3", "attempt #4")

    ledger = (repo / "ledgers" / "fix_plan.md").read_text()
    assert "— A1 — verify — **failed** (regressed since attempt #3) — exit 1 — junit 0 passed, 1 failed" in ledger
    assert "  - failed check: junit passed (expected 1, got 0)" in ledger
    assert "- A1 — A passing pytest — `planctl run RUN-001 A1`" in ledger  # ready again
    summary = (repo / attempt.bundle / "summary.md").read_text()
    assert "- Verifies: attempt #3 — failed: the task reopens\n" in summary
    subject = git(repo, "log", "-1", "--format=%s").strip()
    assert subject == "planctl: RUN-001 A1 verify attempt #4 failed: regressed since attempt #3"
    assert git(repo, "status", "--porcelain") == " M tests/test_pass.py\n"  # everything else is committed
    assert planctl("ledger", "--check", root=repo).code == 0


MANUAL = """\
initiative: {id: MANUAL-001, title: Done by hand}
phases:
  - id: A
    title: Hand work
    tasks:
      - id: M1
        description: Reviewed by a person
        state: '[D]'
      - id: M2
        description: Done before planctl, with a command that proves it
        state: '[D]'
        run: {command: 'true'}
      - id: M3
        description: Still open
"""


def test_unverifiable_tasks_are_reported_and_never_pass(repo, planctl):
    write(repo / "plans" / "manual.yaml", MANUAL)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a plan done by hand")

    result = planctl("verify", "manual", root=repo)
    assert result.code == 1  # M2 passed, but M1 is not proven by anything
    assert "manual M1: unverifiable — done without a run spec\n" in result.out
    assert "verify attempt #1 M2: passed" in result.out
    assert "verified 1 task(s): 1 passed, 0 failed or stopped; 1 unverifiable" in result.out
    assert [a.task for a in records(repo, "manual", "MANUAL-001").attempts] == ["M2"]
    assert records(repo, "manual", "MANUAL-001").attempt(1).verifies is None

    result = planctl("verify", "manual", "M1", root=repo)
    assert (result.code, result.out.splitlines()[-1]) == (
        1,
        "verified 0 task(s): 0 passed, 0 failed or stopped; 1 unverifiable",
    )

    # --stale re-checks what is stale; a task without a run spec never is, and is named, not counted.
    result = planctl("verify", "manual", "--stale", root=repo)
    assert result.code == 0
    assert "manual M1: unverifiable — done without a run spec (not stale: nothing to compare)" in result.out

    refused = planctl("verify", "manual", "M3", root=repo)
    assert refused.code == 2
    assert refused.err.strip() == (
        "planctl: error: plans/manual.yaml: task M3 is [ ], not done: verify re-checks done tasks "
        "(planctl run proves open ones)"
    )
    assert planctl("verify", "manual", "M9", root=repo).code == 2


def test_a_task_done_by_hand_that_fails_verification_reopens_with_that_reason(repo, planctl):
    write(repo / "plans" / "manual.yaml", MANUAL.replace("run: {command: 'true'}", "run: {command: 'false'}"))
    result = planctl("verify", "manual", "M2", "--no-commit", root=repo)
    assert result.code == 1
    assert "(regressed since it was marked done (no passing attempt on record))" in result.out
    assert state(repo, "M2", "manual") == "[ ]"
