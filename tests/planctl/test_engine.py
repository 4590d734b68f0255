"""planctl run on temporary git repositories: bundles, states, attempts, ledgers and commits."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from planctl.project import Project
from planctl.records import load_records, records_path
from planctl.store import read_plan
from tests.planctl.planctl_testkit import git, write


def bundle_of(repo: Path, attempt: int) -> Path:
    record = load_records(records_path(Project(repo), "run"), "RUN-001").attempt(attempt)
    return repo / record.bundle


def state(repo: Path, task: str) -> str:
    return read_plan(Project(repo), repo / "plans" / "run.yaml").task(task).state.value


def trailers(repo: Path, rev: str = "HEAD") -> dict[str, str]:
    text = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in text.splitlines() if line)


def test_a_passing_pytest_run_fills_the_bundle_and_closes_the_task(repo, planctl):
    source = git(repo, "rev-parse", "HEAD").strip()
    result = planctl("run", "run", "A1", root=repo)
    assert result.code == 0, result.err
    assert "pass output" not in result.out and "1 passed" in result.out  # streamed live
    bundle = bundle_of(repo, 3)  # prior_attempts: 2, so planctl's first attempt is #3
    assert re.fullmatch(r"reports/run-demo/phase_a/\d{8}T\d{6}Z", str(bundle.relative_to(repo)))
    assert sorted(p.name for p in bundle.iterdir()) == [
        "commands.txt",
        "env.json",
        "exit_code.txt",
        "git.json",
        "inputs.json",
        "junit.xml",
        "output.log",
        "summary.md",
    ]
    assert (bundle / "exit_code.txt").read_text() == "0\n"
    assert "1 passed" in (bundle / "output.log").read_text()
    commands = (bundle / "commands.txt").read_text()
    assert "export CUDA_VISIBLE_DEVICES=-1\nexport RUN_GUARD=on\n" in commands
    assert f"export PLANCTL_BUNDLE={bundle}\n" in commands and "--junitxml=" in commands
    env = json.loads((bundle / "env.json").read_text())
    assert env["guard_env"] == {"CUDA_VISIBLE_DEVICES": "-1", "RUN_GUARD": "on"}
    assert env["device"].startswith("cpu") and env["torch"] and env["python"] and env["platform"]
    assert json.loads((bundle / "git.json").read_text()) | {"diff_stat": ""} == {
        "commit": source,
        "branch": "main",
        "dirty": False,
        "diff_stat": "",
    }
    summary = (bundle / "summary.md").read_text()
    assert summary.startswith("# RUN-001 A1 — Attempt #3: passed")
    assert "| junit passed | pass | expected 1, got 1 |" in summary

    assert state(repo, "A1") == "[D]"
    assert "state: '[D]'   # comment kept" in (repo / "plans" / "run.yaml").read_text()
    records = load_records(records_path(Project(repo), "run"), "RUN-001")
    [attempt] = records.attempts
    assert (attempt.number, attempt.task, attempt.outcome, attempt.exit_code) == (3, "A1", "passed", 0)
    assert attempt.metrics["junit"] == {"tests": 1, "passed": 1, "failed": 0, "errors": 0, "skipped": 0}
    assert attempt.git == {"commit": source, "branch": "main", "dirty": False}
    assert [(t.task, t.before.value, t.after.value, t.by) for t in records.transitions] == [
        ("A1", "[ ]", "[D]", "attempt #3")
    ]

    assert git(repo, "log", "-1", "--format=%s").strip() == "planctl: RUN-001 A1 attempt #3 passed"
    assert trailers(repo) == {
        "Plan": "plans/run.yaml",
        "Task": "A1",
        "Attempt": "3",
        "Stamp": bundle.name,
        "Exit-Code": "0",
        "Source-Commit": source,
    }
    committed = set(git(repo, "show", "--name-only", "--format=", "HEAD").split())
    bundle_files = {f"{bundle.relative_to(repo)}/{p.name}" for p in bundle.iterdir()}
    assert committed == bundle_files | {
        "plans/run.yaml",
        "attempts/run.yaml",
        "ledgers/fix_plan.md",
        "ledgers/remediation_tracker.md",
        "docs/plans/run.md",
    }
    assert git(repo, "status", "--porcelain") == ""


def test_a_failing_run_keeps_the_task_open_and_records_why(repo, planctl):
    result = planctl("run", "RUN-001", "A2", root=repo)
    assert result.code == 1
    assert "attempt #3 A2: failed" in result.out and "failed: junit passed: expected 1, got 0" in result.out
    assert state(repo, "A2") == "[ ]"
    assert (bundle_of(repo, 3) / "exit_code.txt").read_text() == "1\n"
    assert git(repo, "log", "-1", "--format=%s").strip() == "planctl: RUN-001 A2 attempt #3 failed"
    assert trailers(repo)["Exit-Code"] == "1"
    ledger = (repo / "ledgers" / "fix_plan.md").read_text()
    assert "[Attempt #3]" in ledger and "**failed** — exit 1 — junit 0 passed, 1 failed" in ledger
    assert "  - failed check: junit passed (expected 1, got 0)" in ledger


def test_attempts_are_numbered_per_initiative(repo, planctl):
    for task in ("A2", "A1", "A2"):
        planctl("run", "run", task, root=repo)
    records = load_records(records_path(Project(repo), "run"), "RUN-001")
    assert [(a.number, a.task, a.outcome) for a in records.attempts] == [
        (3, "A2", "failed"),
        (4, "A1", "passed"),
        (5, "A2", "failed"),
    ]
    subjects = git(repo, "log", "--format=%s", "-3").splitlines()
    assert subjects == [
        "planctl: RUN-001 A2 attempt #5 failed",
        "planctl: RUN-001 A1 attempt #4 passed",
        "planctl: RUN-001 A2 attempt #3 failed",
    ]
    listing = planctl("attempts", "run", root=repo).out
    assert re.search(r"RUN-001\s+4\s+A1\s+\d{8}T\d{6}Z\s+passed\s+0\s+3/3", listing)
    assert [a["number"] for a in json.loads(planctl("attempts", "--json", root=repo).out)] == [3, 4, 5]


def test_json_metrics_templates_artifacts_and_file_checks(repo, planctl):
    result = planctl("run", "run", "A3", root=repo)
    assert result.code == 0, result.out
    bundle = bundle_of(repo, 3)
    # What the command prints goes to the log, never into the JSON it writes.
    assert json.loads((bundle / "gradients.json").read_text())["control"] == {"a": 0.25, "b": -3e-4}
    assert "chatter on stdout" in (bundle / "output.log").read_text()
    assert (bundle / "artifacts" / "out" / "extra.txt").read_text() == "extra artifact"
    design = (bundle / "design.md").read_text()
    assert design.startswith("# Design packet — RUN-001 A3")
    assert "Which fixture keeps gradients alive?" in design and "default_F=100" in design
    attempt = load_records(records_path(Project(repo), "run"), "RUN-001").attempt(3)
    assert [c.passed for c in attempt.checks] == [True] * 5
    assert attempt.metrics["$PLANCTL_BUNDLE/gradients.json:control.*"] == {
        "count": 2,
        "min": -3e-4,
        "max": 0.25,
        "values": [0.25, -3e-4],
        "labels": ["control.a", "control.b"],
    }
    assert attempt.metrics["$PLANCTL_BUNDLE/gradients.json:zero"]["values"] == [0.0, 0.0]


def test_a_template_that_cannot_render_fails_the_attempt_and_says_why(repo, planctl):
    plan = repo / "plans" / "run.yaml"
    plan.write_text(plan.read_text().replace("template: design.md.j2", "template: missing.md.j2"))
    result = planctl("run", "run", "A3", root=repo)
    assert result.code == 1
    attempt = load_records(records_path(Project(repo), "run"), "RUN-001").attempt(3)
    [check] = attempt.checks
    assert (attempt.outcome, check.name, check.passed) == ("failed", "run", False)
    assert check.detail == "template missing.md.j2 not found in templates or planctl's defaults"
    assert "Attempt #3: failed" in (bundle_of(repo, 3) / "summary.md").read_text()
    assert planctl("show", "run", "A3", root=repo).out.splitlines()[-1].startswith("Attempt #3 ")


def test_a_threshold_that_does_not_hold_fails_the_attempt(repo, planctl):
    result = planctl("run", "run", "A4", "--force", root=repo)
    assert result.code == 1
    [check] = [c for c in load_records(records_path(Project(repo), "run"), "RUN-001").attempt(3).checks if not c.passed]
    assert check.name == "any x == 0 for control in $PLANCTL_BUNDLE/gradients.json"
    assert check.detail == "2 values, 2 outside the threshold (e.g. 0.25)"
    assert state(repo, "A4") == "[ ]"


def test_a_timeout_stops_the_command_and_records_an_interrupted_attempt(repo, planctl):
    result = planctl("run", "run", "A5", root=repo)
    assert result.code == 1
    bundle = bundle_of(repo, 3)
    attempt = load_records(records_path(Project(repo), "run"), "RUN-001").attempt(3)
    assert (attempt.outcome, attempt.reason, attempt.exit_code) == ("interrupted", "timeout after 1 s", -15)
    with pytest.raises(ProcessLookupError):
        os.kill(int((bundle / "child.pid").read_text()), 0)
    assert state(repo, "A5") == "[ ]"
    assert git(repo, "log", "-1", "--format=%s").strip() == "planctl: RUN-001 A5 attempt #3 interrupted"


def test_ledgers_and_doc_blocks_are_regenerated_and_stable(repo, planctl):
    doc = write(
        repo / "docs" / "status.md",
        """\
        # Status
        <!-- planctl:attempts RUN-001 -->
        stale text
        <!-- planctl:end -->
        ```
        <!-- planctl:index -->
        example, left alone
        <!-- planctl:end -->
        ```
        <!-- planctl:index -->
        <!-- planctl:end -->
        """,
    )
    git(repo, "add", "docs/status.md")
    git(repo, "commit", "-q", "-m", "status doc")
    assert planctl("run", "run", "A1", root=repo).code == 0
    text = doc.read_text()
    assert "stale text" not in text and "- [Attempt #3]" in text and "example, left alone" in text
    assert "| [RUN-001] | Runs for real | in progress | 1/6 | 1 |" in text
    assert "docs/status.md" in git(repo, "show", "--name-only", "--format=", "HEAD")
    tracker = (repo / "ledgers" / "remediation_tracker.md").read_text()
    assert "- Attempts recorded by planctl: 1 (1 passed, 0 failed, 0 interrupted)." in tracker
    fix_plan = (repo / "ledgers" / "fix_plan.md").read_text()
    assert "- Reproduction: `CUDA_VISIBLE_DEVICES=-1 RUN_GUARD=on " in fix_plan
    assert "- Artifacts root: `reports/run-demo/`" in fix_plan
    assert "  - A2 — A failing pytest — `planctl run RUN-001 A2`" in fix_plan

    first = planctl("ledger", root=repo)
    assert first.out.strip() == "ledgers and views are up to date"
    assert planctl("ledger", "--check", root=repo).code == 0
    (repo / "ledgers" / "fix_plan.md").write_text("hand edit\n")
    check = planctl("ledger", "--check", root=repo)
    assert (check.code, check.out.strip()) == (1, "out of date: ledgers/fix_plan.md")
    assert planctl("ledger", root=repo).out.strip() == "wrote ledgers/fix_plan.md"
    assert (repo / "ledgers" / "fix_plan.md").read_text() == fix_plan


def test_only_planctl_paths_are_committed(repo, planctl):
    write(repo / "notes.txt", "staged by the user\n")
    git(repo, "add", "notes.txt")
    write(repo / "tests" / "test_pass.py", "def test_pass():\n    pass  # edited, not staged\n")
    assert planctl("run", "run", "A1", root=repo).code == 0
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert "notes.txt" not in committed and "tests/test_pass.py" not in committed
    assert git(repo, "diff", "--cached", "--name-only").split() == ["notes.txt"]
    assert git(repo, "diff", "--name-only").split() == ["tests/test_pass.py"]
    assert load_records(records_path(Project(repo), "run"), "RUN-001").attempt(3).git["dirty"] is True


def test_no_commit_and_no_repository(repo, planctl, tmp_path):
    head = git(repo, "rev-parse", "HEAD")
    assert planctl("run", "run", "A1", "--no-commit", root=repo).code == 0
    assert git(repo, "rev-parse", "HEAD") == head and state(repo, "A1") == "[D]"
    plain = tmp_path / "plain"
    write(
        plain / "plans" / "p.yaml",
        "initiative: {id: P-1, title: p}\nguard_env: {CUDA_VISIBLE_DEVICES: '-1'}\n"
        "phases:\n  - id: A\n    title: a\n"
        "    tasks:\n      - {id: A1, description: d, run: {command: 'true'}}\n",
    )
    result = planctl("run", "p", "A1", root=plain)
    assert result.code == 0
    assert "is not inside a git repository; the attempt is recorded but not committed" in result.out
    assert json.loads(next((plain / "reports").rglob("git.json")).read_text()) == {"repository": None}


def test_all_ready_follows_unblocked_tasks_and_phase_runs_one_phase(tmp_path, planctl):
    plan = """\
        initiative: {id: CHAIN-1, title: chain}
        guard_env: {CUDA_VISIBLE_DEVICES: '-1'}
        phases:
          - id: A
            title: first
            tasks:
              - {id: A1, description: one, run: {command: 'true'}}
              - {id: A2, description: two, depends_on: [A1], run: {command: 'true'}}
              - {id: A3, description: manual}
          - id: B
            title: second
            requires: [A]
            tasks:
              - {id: B1, description: three, run: {command: 'true'}}
        """
    root = tmp_path / "chain"
    write(root / "plans" / "chain.yaml", plan)
    result = planctl("run", "chain", "--phase", "A", "--no-commit", root=root)
    assert result.code == 0
    assert [a.task for a in load_records(records_path(Project(root), "chain"), "CHAIN-1").attempts] == [
        "A1",
        "A2",
    ]
    assert planctl("run", "chain", "--all-ready", "--no-commit", root=root).out.strip() == "nothing to run"
    assert planctl("set", "chain", "A3", "--state", "S", "--why", "manual step dropped", root=root).code == 0
    assert planctl("run", "chain", "--all-ready", "--no-commit", root=root).code == 0
    assert [a.task for a in load_records(records_path(Project(root), "chain"), "CHAIN-1").attempts] == [
        "A1",
        "A2",
        "B1",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "run"], "name the tasks to run, or pass --phase X or --all-ready (exactly one of them)"),
        (
            ["run", "run", "A1", "--all-ready"],
            "name the tasks to run, or pass --phase X or --all-ready (exactly one of them)",
        ),
        (
            ["run", "run", "B1"],
            "plans/run.yaml: task B1 is not ready: waiting for A1 [ ], A2 [ ], A3 [ ], A4 [ ], A5 [ ] "
            "(--force runs it anyway)",
        ),
        (["run", "run", "Z1"], "plans/run.yaml: unknown task 'Z1' (tasks: A1, A2, A3, A4, A5, B1)"),
        (["run", "run", "--phase", "Q"], "plans/run.yaml: unknown phase 'Q'"),
    ],
)
def test_run_refuses_bad_requests_without_touching_anything(repo, planctl, args, message):
    head = git(repo, "rev-parse", "HEAD")
    result = planctl(*args, root=repo)
    assert (result.code, result.err) == (2, f"planctl: error: {message}\n")
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""


def test_a_check_only_task_passes_once_the_file_holds_the_pattern(tmp_path, planctl):
    write(
        tmp_path / "plans" / "p.yaml",
        """\
        initiative: {id: P-1, title: p}
        guard_env: {CUDA_VISIBLE_DEVICES: '-1'}
        phases:
          - id: D
            title: d
            tasks:
              - id: D1
                description: Apply the fixture update
                run: {expect: {files: [{path: tests/test_x.py, contains: default_F=100}]}}
        """,
    )
    write(tmp_path / "tests" / "test_x.py", "default_F=0\n")
    first = planctl("run", "p", "D1", root=tmp_path)
    assert (
        first.code == 1 and "failed: tests/test_x.py contains 'default_F=100': 'default_F=100' not found" in first.out
    )
    write(tmp_path / "tests" / "test_x.py", "default_F=100\n")
    assert planctl("run", "p", "D1", root=tmp_path).code == 0
    assert read_plan(Project(tmp_path), tmp_path / "plans" / "p.yaml").task("D1").state.value == "[D]"
    outcomes = [a.outcome for a in load_records(records_path(Project(tmp_path), "p"), "P-1").attempts]
    assert outcomes == ["failed", "passed"]


def test_working_directory_and_environment_layers(tmp_path, planctl):
    write(
        tmp_path / "plans" / "p.yaml",
        """\
        initiative: {id: P-1, title: p}
        guard_env: {CUDA_VISIBLE_DEVICES: '-1', GUARD: plan, SHARED: plan}
        phases:
          - id: A
            title: a
            tasks:
              - id: A1
                description: where and with what
                run:
                  command: >-
                    pwd > $PLANCTL_BUNDLE/where.txt;
                    echo "$GUARD $SHARED $PLANCTL_TASK" >> $PLANCTL_BUNDLE/where.txt
                  cwd: sub
                  env: {SHARED: task}
        """,
    )
    (tmp_path / "sub").mkdir()
    assert planctl("run", "p", "A1", root=tmp_path).code == 0
    [where] = (tmp_path / "reports").rglob("where.txt")
    assert where.read_text() == f"{tmp_path / 'sub'}\nplan task A1\n"
    env = json.loads((where.parent / "env.json").read_text())
    assert (env["guard_env"]["SHARED"], env["task_env"]) == ("plan", {"SHARED": "task"})


def test_a_task_without_a_run_spec_cannot_run(tmp_path, planctl):
    write(
        tmp_path / "plans" / "p.yaml",
        "initiative: {id: P-1, title: p}\nphases:\n  - id: A\n    title: a\n"
        "    tasks:\n      - {id: A1, description: by hand}\n",
    )
    result = planctl("run", "p", "A1", root=tmp_path)
    assert (result.code, result.err) == (
        2,
        "planctl: error: plans/p.yaml: task A1 has no run spec: nothing to run\n",
    )
    assert not (tmp_path / "attempts").exists()


def test_a_template_can_quote_the_json_its_command_wrote(repo, planctl):
    (repo / "templates").mkdir(exist_ok=True)
    (repo / "templates" / "quote.md.j2").write_text(
        "control gradients: {{ data.probe.control.a }}, {{ data.probe.control.b }}\n"
    )
    plan = repo / "plans" / "run.yaml"
    plan.write_text(
        plan.read_text().replace(
            "            - template: design.md.j2\n              output: design.md\n",
            "            - template: quote.md.j2\n              output: quote.md\n"
            "              data: {probe: $PLANCTL_BUNDLE/gradients.json}\n"
            "            - template: design.md.j2\n              output: design.md\n",
        )
    )
    assert planctl("run", "run", "A3", root=repo).code == 0
    assert (bundle_of(repo, 3) / "quote.md").read_text() == "control gradients: 0.25, -0.0003\n"


def test_missing_template_data_fails_the_attempt_naming_the_file(repo, planctl):
    plan = repo / "plans" / "run.yaml"
    plan.write_text(
        plan.read_text().replace(
            "              output: design.md\n",
            "              output: design.md\n              data: {probe: $PLANCTL_BUNDLE/absent.json}\n",
            1,
        )
    )
    assert planctl("run", "run", "A3", root=repo).code == 1
    attempt = load_records(records_path(Project(repo), "run"), "RUN-001").attempt(3)
    [check] = attempt.checks
    assert (check.name, check.passed) == ("run", False)
    assert "template data" in check.detail and "absent.json" in check.detail
