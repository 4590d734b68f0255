"""planctl run as real processes: two at once, and runs stopped by signals or killed outright."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planctl import process
from planctl.project import Project
from planctl.records import load_records, records_path
from planctl.store import read_plan
from tests.planctl.planctl_testkit import git, init_repo

# C1 and C2 each wait for the other to have started: the two runs provably overlap.
BARRIER = "touch out/{me}.ready; for i in $(seq 400); do [ -e out/{other}.ready ] && exit 0; sleep 0.05; done; exit 1"
PLAN = f"""\
initiative: {{id: PROC-001, title: processes}}
guard_env: {{CUDA_VISIBLE_DEVICES: '-1'}}
phases:
  - id: C
    title: concurrent
    tasks:
      - id: C1
        description: meets C2
        run: {{command: '{BARRIER.format(me="c1", other="c2")}'}}
      - id: C2
        description: meets C1
        run: {{command: '{BARRIER.format(me="c2", other="c1")}'}}
      - id: Q1
        description: quick
        run: {{command: 'echo quick'}}
      - id: H1
        description: hangs
        run:
          command: echo $$ > $PLANCTL_BUNDLE/child.pid; echo started; exec sleep 120
          timeout: 300
      - id: K1
        description: hangs with a child in the background
        run:
          command: sleep 300 & echo $! > $PLANCTL_BUNDLE/background.pid; echo $$ > $PLANCTL_BUNDLE/child.pid; wait
          timeout: 600
      - id: BG
        description: passes, leaving a child in the background
        run:
          command: sleep 300 & echo $! > $PLANCTL_BUNDLE/background.pid; echo passed
"""


@pytest.fixture
def proc_repo(tmp_path: Path) -> Path:
    root = init_repo(tmp_path / "repo", PLAN)
    (root / "out").mkdir()
    return root


def planctl_process(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "planctl", "--root", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def records(root: Path):
    return load_records(records_path(Project(root), "run"), "PROC-001")


def ledgers_consistent(root: Path) -> bool:
    check = subprocess.run(
        [sys.executable, "-m", "planctl", "--root", str(root), "ledger", "--check"],
        capture_output=True,
        text=True,
    )
    return check.returncode == 0


def wait_for_child(root: Path, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = list((root / "reports").rglob("child.pid"))
        if found and found[0].read_text().strip():
            return int(found[0].read_text())
        time.sleep(0.05)
    raise AssertionError("the command never started")


def assert_gone(pid: int) -> None:
    """No process with this pid runs (a zombie waiting for a parent that never reaps it is not running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return
    assert state == "Z", f"process {pid} is still running (state {state})"


def test_two_concurrent_runs_lose_nothing(proc_repo):
    first, second = (
        planctl_process(proc_repo, "run", "run", "C1"),
        planctl_process(proc_repo, "run", "run", "C2"),
    )
    outputs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    attempts = records(proc_repo).attempts
    assert sorted(a.number for a in attempts) == [1, 2]
    assert sorted((a.task, a.outcome) for a in attempts) == [("C1", "passed"), ("C2", "passed")]
    assert len({a.bundle for a in attempts}) == 2
    assert len(records(proc_repo).transitions) == 2
    plan = read_plan(Project(proc_repo), proc_repo / "plans" / "run.yaml").plan
    assert [t.state.value for t in plan.phases[0].tasks[:2]] == ["[D]", "[D]"]
    subjects = git(proc_repo, "log", "--format=%s", "-2").splitlines()
    assert sorted(subjects) == sorted(f"planctl: PROC-001 {a.task} attempt #{a.number} passed" for a in attempts)
    assert ledgers_consistent(proc_repo)
    assert git(proc_repo, "status", "--porcelain") == ""


def test_many_runs_of_one_task_get_distinct_attempts_and_commits(proc_repo):
    runs = [planctl_process(proc_repo, "run", "run", "Q1") for _ in range(4)]
    outputs = [p.communicate(timeout=120)[0] for p in runs]
    assert [p.returncode for p in runs] == [0] * 4, outputs
    attempts = records(proc_repo).attempts
    assert sorted(a.number for a in attempts) == [1, 2, 3, 4]
    assert all(a.outcome == "passed" for a in attempts) and len({a.bundle for a in attempts}) == 4
    trailers = git(proc_repo, "log", "-4", "--format=%(trailers:key=Attempt,valueonly)").split()
    assert sorted(trailers) == ["1", "2", "3", "4"]
    assert ledgers_consistent(proc_repo)
    assert git(proc_repo, "status", "--porcelain") == ""


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_records_an_interrupted_attempt(proc_repo, signum, exit_code):
    run = planctl_process(proc_repo, "run", "run", "H1")
    child = wait_for_child(proc_repo)
    run.send_signal(signum)
    output = run.communicate(timeout=60)[0]
    assert run.returncode == exit_code, output
    assert_gone(child)
    [attempt] = records(proc_repo).attempts
    assert (attempt.outcome, attempt.reason) == ("interrupted", f"{signal.Signals(signum).name} received")
    assert "started" in (proc_repo / attempt.bundle / "output.log").read_text()
    assert "Attempt #1: interrupted" in (proc_repo / attempt.bundle / "summary.md").read_text()
    assert read_plan(Project(proc_repo), proc_repo / "plans" / "run.yaml").task("H1").state.value == "[ ]"
    assert git(proc_repo, "log", "-1", "--format=%s").strip() == "planctl: PROC-001 H1 attempt #1 interrupted"
    assert ledgers_consistent(proc_repo)


def test_a_killed_run_leaves_consistent_files_and_the_next_run_ends_its_command(proc_repo):
    plan_before = (proc_repo / "plans" / "run.yaml").read_text()
    run = planctl_process(proc_repo, "run", "run", "K1")
    child = wait_for_child(proc_repo)
    [background_file] = list((proc_repo / "reports").rglob("background.pid"))
    background = int(background_file.read_text())
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    [attempt] = records(proc_repo).attempts
    assert (attempt.number, attempt.outcome, attempt.pid) == (1, "running", run.pid)
    assert attempt.group is not None and attempt.group.pid == child  # recorded before the command began
    assert os.getpgid(background) == child  # still running, in the command's group
    assert (proc_repo / "plans" / "run.yaml").read_text() == plan_before
    assert ledgers_consistent(proc_repo)
    assert "#1 K1 running" in (proc_repo / "ledgers" / "fix_plan.md").read_text()

    again = planctl_process(proc_repo, "run", "run", "Q1", "--no-commit")
    again.communicate(timeout=120)
    assert_gone(child)
    assert_gone(background)
    first, second = records(proc_repo).attempts
    assert (first.outcome, first.reason) == (
        "interrupted",
        f"planctl process {run.pid} ended before recording an outcome; "
        "2 process(es) of its command were still running and were ended",
    )
    assert (second.number, second.outcome) == (2, "passed")
    assert ledgers_consistent(proc_repo)


def test_a_background_child_of_a_passing_command_is_gone_when_planctl_exits(proc_repo):
    run = planctl_process(proc_repo, "run", "run", "BG", "--no-commit")
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 0, output
    assert "planctl: ended 1 process(es) that the command left running" in output
    [background] = list((proc_repo / "reports").rglob("background.pid"))
    assert_gone(int(background.read_text()))


def test_a_recycled_group_id_is_never_ended(tmp_path):
    """A group whose leader is alive but started at another time is someone else's."""
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        mark = process.mark_of(stranger.pid)
        assert mark is not None
        recycled = process.Mark(stranger.pid, mark.started - 1, mark.boot)
        assert process.end_leftovers(recycled, f"PLANCTL_BUNDLE={tmp_path}") == 0
        assert stranger.poll() is None
        assert process.end_leftovers(mark, f"PLANCTL_BUNDLE={tmp_path}") == 1
        assert stranger.wait(timeout=10) == -signal.SIGTERM
    finally:
        stranger.kill()
        stranger.wait()


def hold_lock(root: Path):
    handle = open(root / ".planctl.lock", "a+b")  # noqa: SIM115
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    handle.write(b"4242 planctl run held-by-the-test\n")
    handle.flush()
    return handle


def wait_for_line(process_: subprocess.Popen[str], text: str) -> str:
    assert process_.stdout is not None
    line = ""
    while text not in line:
        line = process_.stdout.readline()
        assert line, "the process ended before saying it waits"
    return line


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["set", "run", "Q1", "--state", "D"], "planctl: stopped by SIGINT\n"),
        (["run", "run", "Q1"], "planctl: stopped by SIGINT\n"),
    ],
)
def test_waiting_for_the_lock_says_so_and_ctrl_c_gives_up(proc_repo, args, said):
    plan_before = (proc_repo / "plans" / "run.yaml").read_text()
    lock = hold_lock(proc_repo)
    try:
        waiting = planctl_process(proc_repo, *args)
        line = wait_for_line(waiting, "waiting for the project lock")
        assert "(held by pid 4242 planctl run held-by-the-test); Ctrl-C gives up" in line
        waiting.send_signal(signal.SIGINT)
        rest = waiting.communicate(timeout=60)[0]
    finally:
        lock.close()
    assert waiting.returncode == 130 and rest.endswith(said) and "Traceback" not in rest
    assert (proc_repo / "plans" / "run.yaml").read_text() == plan_before
    assert records(proc_repo).attempts == []


def test_a_failing_pre_commit_hook_is_reported_and_leaves_nothing_staged(proc_repo):
    hook = proc_repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'lint: trailing whitespace in reports/' >&2\nexit 1\n")
    hook.chmod(0o755)
    head = git(proc_repo, "rev-parse", "HEAD")
    run = subprocess.run(
        [sys.executable, "-m", "planctl", "--root", str(proc_repo), "run", "run", "Q1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert run.stderr == (
        "planctl: error: git commit failed (exit 1, a git hook may have refused it): "
        "lint: trailing whitespace in reports/; the attempt is recorded but not committed, "
        "and none of its files is staged\n"
    )
    assert git(proc_repo, "rev-parse", "HEAD") == head
    assert git(proc_repo, "diff", "--cached", "--name-only") == ""
    [attempt] = records(proc_repo).attempts
    assert attempt.outcome == "passed"
