"""The seed plan GRADIENT-FLOW-001 runs end to end against nanobrag, in a temporary clone of this
repository: every runnable task passes, bundles and ledgers are written, one commit per task run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.planctl.chromium import Chromium, find_chromium

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


@pytest.fixture(scope="module")
def all_ready(clone) -> int:
    """``planctl run GRADIENT-FLOW-001 --all-ready`` in the clone, once; the commit count before it."""
    before = int(git(clone, "rev-list", "--count", "HEAD"))
    assert status(clone)["open"] == 6, "main carries the plan with phases C and D open, as in the markdown"
    result = planctl(clone, "run", PLAN, "--all-ready")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return before


@pytest.mark.slow
def test_all_ready_tasks_run_and_close_every_phase(clone, all_ready):
    before = all_ready

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


# What the browser test reads from the report's pages: a selector's box, style and text.
LOOK = """(selector => {
  const element = document.querySelector(selector);
  if (!element) return null;
  element.scrollIntoView();
  const box = element.getBoundingClientRect(), style = getComputedStyle(element);
  return {width: box.width, height: box.height, display: style.display, visibility: style.visibility,
          text: element.textContent.trim().slice(0, 300),
          value: element.getAttribute("aria-valuenow")};
})"""


def visible(page, selector: str) -> dict:
    seen = page.evaluate(f"{LOOK}({json.dumps(selector)})")
    assert seen is not None, f"{selector}: not on {page.page.url}"
    assert seen["width"] > 0 and seen["height"] > 0, f"{selector}: {seen}"
    assert seen["display"] != "none" and seen["visibility"] == "visible", f"{selector}: {seen}"
    return seen


@pytest.mark.slow
def test_the_report_shows_the_plan_its_progress_and_its_metric_plots_in_chromium(clone, all_ready, tmp_path):
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium): the report is not looked at")
    site = tmp_path / "site"
    result = planctl(clone, "report", "--out", str(site))
    assert result.returncode == 0, result.stdout + result.stderr
    shots = Path(os.environ.get("PLANCTL_SCREENSHOTS", tmp_path))
    with Chromium(executable) as browser:
        overview = browser.open((site / "index.html").as_uri())
        card = visible(overview, "#plan-GRADIENT-FLOW-001")
        assert card["text"].startswith("GRADIENT-FLOW-001") and "restore end-to-end gradients" in card["text"]
        assert visible(overview, "#plan-GRADIENT-FLOW-001 .progress")["value"] == "13"  # 13 of 13 closed
        assert visible(overview, "#plan-GRADIENT-FLOW-001 .progress .bar.done")["width"] > 0
        assert "13/13 closed (100%)" in visible(overview, "#plan-GRADIENT-FLOW-001 .progress-text")["text"]
        overview.screenshot(shots / "report-overview.png")

        plan = browser.open((site / "gradient-flow-001" / "index.html").as_uri())
        visible(plan, "h1#plan-GRADIENT-FLOW-001")
        visible(plan, ".progress .bar.done")
        visible(plan, "svg.graph")
        d2 = 'svg.metric-plot[aria-label^="D2 · gradients.json: results.0.gradients"]'
        assert visible(plan, d2)["width"] > 300
        assert "cell_a, cell_b, cell_c, cell_alpha, cell_beta, cell_gamma" in plan.evaluate(
            f"document.querySelector({json.dumps(d2)}).getAttribute('aria-label')"
        )
        # One series per cell gradient, each with a point per attempt drawn on the page.
        points = plan.evaluate(
            f"[...document.querySelectorAll({json.dumps(d2 + ' g.series')})]"
            ".map(g => [...g.querySelectorAll('circle')].filter(c => c.getBoundingClientRect().width > 0).length)"
        )
        assert len(points) == 6 and all(n >= 1 for n in points), points
        plan.screenshot(shots / "report-plan.png")
        assert (shots / "report-plan.png").read_bytes().startswith(b"\x89PNG")
    assert overview.page.errors == [] and plan.page.errors == []


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
