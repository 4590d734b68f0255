"""The pre-commit hook definitions other repositories use: planctl validate and planctl ledger --check."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from tests.planctl.planctl_testkit import GUIDE, SMALL_PLAN, write

REPO = Path(__file__).resolve().parents[3]


def hooks() -> dict[str, dict]:
    return {hook["id"]: hook for hook in YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())}


def run_hook(hook: dict, cwd: Path) -> subprocess.CompletedProcess:
    """The hook's entry as pre-commit runs it (no file names, from the repository's root), with the
    planctl of this environment. Without PLANCTL_ROOT: under `planctl run` or a triage chunk it names
    the outer project, and planctl would check that one instead of ``cwd``."""
    command, *args = shlex.split(hook["entry"])
    executable = Path(sys.executable).parent / command
    env = {name: value for name, value in os.environ.items() if name != "PLANCTL_ROOT"}
    return subprocess.run([executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_each_hook_runs_planctl_without_file_names():
    found = hooks()
    assert set(found) == {
        "planctl-validate",
        "planctl-ledger-check",
        "planctl-validate-system",
        "planctl-ledger-check-system",
    }
    for hook_id, hook in found.items():
        assert hook["pass_filenames"] is False and hook["name"] and hook["description"]
        assert hook["language"] == ("system" if hook_id.endswith("-system") else "python")
        plain = found[hook_id.removesuffix("-system")]
        assert (hook["entry"], hook.get("files"), hook.get("always_run")) == (
            plain["entry"],
            plain.get("files"),
            plain.get("always_run"),
        )
    ledger_files = re.compile(found["planctl-ledger-check"]["files"])
    for path in ("plans/x.yaml", "attempts/x.yaml", "ledgers/fix_plan.md", "docs/plans/x.md", "README.md"):
        assert ledger_files.search(path), path
    assert not ledger_files.search("nanobrag/cli.py") and not ledger_files.search("tests/notes.md")


def test_the_hooks_pass_a_consistent_project_and_fail_a_broken_one(tmp_path):
    write(tmp_path / "plans" / "demo.yaml", SMALL_PLAN)
    write(tmp_path / "docs" / "guide.md", GUIDE)
    validate, ledger_check = hooks()["planctl-validate"], hooks()["planctl-ledger-check"]
    assert run_hook(ledger_check, tmp_path).returncode == 1  # no ledgers yet
    planctl = Path(sys.executable).parent / "planctl"
    subprocess.run([planctl, "--root", tmp_path, "ledger"], check=True, capture_output=True)
    assert run_hook(validate, tmp_path).returncode == 0
    assert run_hook(ledger_check, tmp_path).returncode == 0

    ledger = tmp_path / "ledgers" / "fix_plan.md"
    ledger.write_text(ledger.read_text() + "edited by hand\n")
    failed = run_hook(ledger_check, tmp_path)
    assert failed.returncode == 1 and "out of date: ledgers/fix_plan.md" in failed.stdout
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n")  # the plan's reference to §2 now fails
    failed = run_hook(validate, tmp_path)
    assert failed.returncode == 1 and "docs/guide.md §2" in failed.stdout
