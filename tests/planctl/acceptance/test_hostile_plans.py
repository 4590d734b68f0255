"""Hostile plans: what reaches a shell or the file system is refused when the plan is read, by
`validate` and `run` alike, with the file, line and column, and nothing is written."""

from __future__ import annotations

import re
import shlex

import pytest

from planctl.ledger import Entry
from planctl.project import Project
from planctl.store import read_plan
from tests.planctl.planctl_testkit import git, init_repo, write

PLAN = """\
initiative: {id: HOSTILE-1, title: hostile}
guard_env: {CUDA_VISIBLE_DEVICES: '-1'}
phases:
  - id: A
    title: a
    tasks:
      - id: A1
        description: runs
        run:
          command: echo ok
"""

CLIMB = "../../../../../../../../../../../../../../etc/passwd"  # deeper than any temporary folder

# (what to change in PLAN, the text the error points at, the message)
REPRODUCTIONS = {
    "shell in a guard_env name": (
        ("guard_env: {CUDA_VISIBLE_DEVICES: '-1'}", "guard_env: {CUDA_VISIBLE_DEVICES: '-1', 'A$(touch X)': '1'}"),
        "'1'}",
        "guard_env.A$(touch X): environment variable name 'A$(touch X)' is not a shell name "
        "(letters, digits and _, not starting with a digit)",
    ),
    "'=' in a guard_env name": (
        ("guard_env: {CUDA_VISIBLE_DEVICES: '-1'}", "guard_env: {CUDA_VISIBLE_DEVICES: '-1', 'B=C': x}"),
        "x}",
        "guard_env.B=C: environment variable name 'B=C' is not a shell name "
        "(letters, digits and _, not starting with a digit)",
    ),
    "a PLANCTL_ variable": (
        ("command: echo ok", "command: echo ok\n          env: {PLANCTL_BUNDLE: /tmp}"),
        "/tmp}",
        "phases[A].tasks[A1].run.env.PLANCTL_BUNDLE: environment variable PLANCTL_BUNDLE: "
        "PLANCTL_* variables are set by planctl for each run",
    ),
    "a NUL byte in a command": (
        ("command: echo ok", 'command: "echo \\0ok"'),
        '"echo',
        "phases[A].tasks[A1].run.command: contains a NUL byte, which no command line, path or environment "
        "value can carry",
    ),
    "a NUL byte in an environment value": (
        ("command: echo ok", 'command: echo ok\n          env: {V: "a\\0b"}'),
        '"a\\0b"',
        "phases[A].tasks[A1].run.env.V: contains a NUL byte, which no command line, path or environment "
        "value can carry",
    ),
    "artifacts climbing out": (
        (
            "command: echo ok",
            f"command: echo ok\n          artifacts: ['{CLIMB}']",
        ),
        f"'{CLIMB}'",
        f"task A1: artifact '{CLIMB}' resolves to /etc/passwd, outside the project; "
        "list a folder that holds it under the plan's outside_paths to allow it",
    ),
    "an absolute artifact": (
        ("command: echo ok", "command: echo ok\n          artifacts: [/etc/hostname]"),
        "/etc/hostname]",
        "task A1: artifact '/etc/hostname' outside the project; "
        "list a folder that holds it under the plan's outside_paths to allow it",
    ),
    "artifacts_root outside": (
        ("guard_env:", "artifacts_root: ../../x\nguard_env:"),
        "../../x",
        "artifacts_root '../../x' must be a folder inside the project (bundles are committed with it), "
        "without $VARIABLES",
    ),
    "cwd outside": (
        ("command: echo ok", "command: echo ok\n          cwd: /etc"),
        "/etc\n",
        "task A1: cwd '/etc' outside the project; list a folder that holds it under the plan's outside_paths "
        "to allow it",
    ),
    "a metrics file outside": (
        (
            "command: echo ok",
            "command: echo ok\n          expect: {metrics: [{file: /dev/zero, select: x, op: '==', value: 0}]}",
        ),
        "/dev/zero,",
        "task A1: metrics file '/dev/zero' outside the project; "
        "list a folder that holds it under the plan's outside_paths to allow it",
    ),
    "a file check in .git": (
        ("command: echo ok", "command: echo ok\n          expect: {files: [{path: .git/config, contains: url}]}"),
        ".git/config,",
        "task A1: file check '.git/config' inside the project's .git folder; "
        "list a folder that holds it under the plan's outside_paths to allow it",
    ),
    "a relative outside_paths entry": (
        ("guard_env:", "outside_paths: [data]\nguard_env:"),
        "data]",
        "outside_paths entry 'data' must be an absolute path",
    ),
}


def at(text: str, needle: str) -> str:
    before = text[: text.index(needle)]
    return f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


@pytest.mark.parametrize("case", REPRODUCTIONS, ids=list(REPRODUCTIONS))
def test_each_reproduction_is_a_located_error_and_nothing_runs(tmp_path, planctl, case):
    (old, new), needle, message = REPRODUCTIONS[case]
    text = PLAN.replace(old, new, 1)
    root = init_repo(tmp_path / "repo", text)
    head = git(root, "rev-parse", "HEAD")
    location = f"plans/run.yaml:{at(text, needle)}"

    checked = planctl("validate", root=root)
    assert checked.code == 1
    assert f"{location}: error: {message}\n" in checked.out

    ran = planctl("run", "run", "A1", root=root)
    assert (ran.code, ran.err) == (2, f"planctl: error: {location}: {message}\n")
    assert not (root / "attempts").exists() and not (root / "reports").exists() and not (root / "X").exists()
    assert git(root, "rev-parse", "HEAD") == head and git(root, "status", "--porcelain") == ""


def test_outside_paths_let_a_plan_use_a_folder_outside_the_project_by_name(tmp_path, planctl):
    shared = write(tmp_path / "shared" / "data.txt", "shared data\n").parent
    text = PLAN.replace("guard_env:", f"outside_paths: [{shared}]\nguard_env:").replace(
        "command: echo ok",
        f"command: echo ok\n          artifacts: [{shared}/data.txt]\n"
        f"          expect: {{files: [{{path: {shared}/data.txt, contains: shared}}]}}",
    )
    root = init_repo(tmp_path / "repo", text)
    assert planctl("validate", root=root).code == 0
    assert planctl("run", "run", "A1", root=root).code == 0
    [copied] = (root / "reports").rglob("data.txt")
    assert copied.read_text() == "shared data\n" and copied.parent.name == "artifacts"


def test_the_ledger_reproduction_line_quotes_everything(tmp_path):
    text = PLAN.replace("guard_env: {CUDA_VISIBLE_DEVICES: '-1'}", "guard_env: {CUDA_VISIBLE_DEVICES: '-1', Q: a b}")
    text = text.replace("command: echo ok", "command: echo \"$Q\" && touch 'a file'")
    root = init_repo(tmp_path / "repo", text)
    entry = Entry(read_plan(Project(root), root / "plans" / "run.yaml").plan, "run", "", "", None, "", [], [])  # type: ignore[arg-type]
    line = entry.reproduction
    assert line == "CUDA_VISIBLE_DEVICES=-1 Q='a b' bash -c 'echo \"$Q\" && touch '\"'\"'a file'\"'\"''"
    assert shlex.split(line)[-1] == "echo \"$Q\" && touch 'a file'"
    assert re.fullmatch(r"[A-Z_]+=\S+ Q='a b' bash -c .*", line)


def test_a_file_check_may_not_name_the_plan_folder_by_climbing(tmp_path, planctl):
    """'..' that stays inside the project is fine: confinement is about where a path lands."""
    text = PLAN.replace(
        "command: echo ok",
        "command: echo ok\n          cwd: sub\n"
        "          expect: {files: [{path: ../plans/run.yaml, contains: HOSTILE}]}",
    )
    root = init_repo(tmp_path / "repo", text)
    (root / "sub").mkdir()
    assert planctl("validate", root=root).code == 0
    assert planctl("run", "run", "A1", "--no-commit", root=root).code == 0


def test_a_plan_expanding_through_aliases_is_refused(tmp_path, planctl):
    bomb = "\n".join(
        ["x0: &x0 [a, a, a, a, a, a, a, a, a, a]"]
        + [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 9)]
    )
    write(tmp_path / "plans" / "bomb.yaml", bomb + "\n" + PLAN)
    result = planctl("status", root=tmp_path)  # a broken plan in a folder: reported, skipped, exit 1
    assert (result.code, result.err) == (
        1,
        "planctl: error: plans/bomb.yaml:1:1: expands to more than 2,000,000 values (YAML aliases); plan skipped\n",
    )


def test_deep_nesting_is_a_clean_error(tmp_path, planctl):
    write(tmp_path / "plans" / "deep.yaml", "a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    result = planctl("validate", root=tmp_path)
    assert result.code == 1
    assert re.fullmatch(r"plans/deep\.yaml:1:1: error: invalid YAML: nested too deeply\n.*", result.out, re.S)


def test_a_huge_plan_file_is_refused_before_parsing(tmp_path, planctl, monkeypatch):
    monkeypatch.setattr("planctl.store.MAX_PLAN_BYTES", 1024)
    write(tmp_path / "plans" / "big.yaml", PLAN + "#" * 2000 + "\n")
    assert planctl("status", root=tmp_path).err == (
        "planctl: error: plans/big.yaml:1:1: larger than 1 KiB, the limit for a plan; plan skipped\n"
    )
