"""The seed plan GRADIENT-FLOW-001 runs end to end against nanobrag, in a temporary clone of this
repository: every runnable task passes, bundles and ledgers are written, one commit per task run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLAN = "GRADIENT-FLOW-001"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    target = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True)
    git(target, "config", "user.email", "tests@nanobrag.invalid")
    git(target, "config", "user.name", "nanobrag tests")
    return target


def planctl(clone: Path, *args: str) -> subprocess.CompletedProcess:
    # The clone's own code, with the tools of this interpreter's environment.
    env = {
        **os.environ,
        "PYTHONPATH": str(clone),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(
        [sys.executable, "-m", "planctl", "--root", str(clone), *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def status(clone: Path) -> dict:
    [summary] = json.loads(planctl(clone, "status", PLAN, "--json").stdout)
    return summary


@pytest.mark.slow
def test_all_ready_tasks_run_and_close_every_phase(clone):
    before = int(git(clone, "rev-list", "--count", "HEAD"))
    assert status(clone)["open"] == 6, "main carries the plan with phases C and D open, as in the markdown"
    result = planctl(clone, "run", PLAN, "--all-ready")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    summary = status(clone)
    assert (summary["done"] + summary["skipped"], summary["open"]) == (summary["total"], 0)
    assert all(phase["open"] == 0 for phase in summary["phases"])

    # One commit per task run (C1 C2 C3 D1 D2 D3), each with planctl's trailers.
    log = git(clone, "log", f"-{6}", "--format=%s%n%b%n--end--")
    subjects = [block.strip().splitlines()[0] for block in log.split("--end--") if block.strip()]
    assert int(git(clone, "rev-list", "--count", "HEAD")) == before + 6
    assert sorted(s.split()[2] for s in subjects) == ["C1", "C2", "C3", "D1", "D2", "D3"]
    assert all(s.startswith(f"planctl: {PLAN} ") and s.endswith(" passed") for s in subjects)
    assert log.count("Source-Commit: ") == 6 and log.count("Plan: plans/gradient-flow-001.yaml") == 6

    root = clone / "reports" / "2026-01-gradient-flow"
    [d2] = [b for b in (root / "phase_d").iterdir() if (b / "gradients.json").exists()]
    probe = json.loads((d2 / "gradients.json").read_text())
    gradients = probe["results"][0]["gradients"]
    assert len(gradients) == 6 and all(abs(g) > 1e-6 for g in gradients.values())
    assert "1 passed" in (d2 / "output.log").read_text()
    designs = sorted((root / "phase_c").glob("*/design.md"))
    assert len(designs) == 3
    assert "| default_F = 0.0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in designs[0].read_text()

    ledger = (clone / "ledgers" / "fix_plan.md").read_text()
    assert PLAN in ledger and "#8" in ledger
    assert planctl(clone, "ledger", "--check").returncode == 0
    assert git(clone, "status", "--porcelain") == ""


@pytest.mark.slow
def test_done_tasks_reproduce_their_evidence(clone):
    """A1, A2 and B0 are done in the markdown; their run specs re-create the baseline evidence."""
    result = planctl(clone, "run", PLAN, "A1", "A2", "B0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    root = clone / "reports" / "2026-01-gradient-flow"
    [a2] = [b for b in (root / "phase_a").iterdir() if (b / "gradients.json").exists()]
    baseline = json.loads((a2 / "gradients.json").read_text())["results"][0]
    assert baseline["loss"] == 0 and set(baseline["gradients"].values()) == {0.0}


def test_validate_passes_then_names_a_broken_section(clone):
    assert planctl(clone, "validate").returncode == 0
    arch = clone / "arch.md"
    original = arch.read_text()
    arch.write_text(original.replace("## 15. Gradient guardrails", "## Gradient guardrails"))
    try:
        result = planctl(clone, "validate")
    finally:
        arch.write_text(original)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "plans/gradient-flow-001.yaml" in message and "arch.md §15" in message
