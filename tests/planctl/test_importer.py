"""planctl import on the real markdown plans, and render reproducing their tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planctl.errors import PlanctlError
from planctl.importer import import_markdown
from planctl.project import Project
from planctl.schema import marker_state
from planctl.store import read_plan
from planctl.views import render_plan

SHARED_PLANS = [
    "cli-defaults.md",
    "determinism.md",
    "dtype-neutral.md",
    "gradient-flow-001.md",
    "source-weighting.md",
]


def table_rows(markdown: str) -> list[tuple[str, str, str]]:
    """(id, description, state) of every task row, read independently of planctl's importer."""
    rows = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 4 and re.fullmatch(r"[A-Z]\d+", cells[0]):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def phase_lines(markdown: str, label: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in markdown.splitlines() if line.startswith(f"{label}:")]


@pytest.fixture
def imported(tmp_path: Path, shared_dir: Path, planctl):
    """Import one shared plan into a fresh project; return (plan file, markdown, cli result)."""

    def run(name: str):
        (tmp_path / "plans").mkdir(exist_ok=True)
        result = planctl("import", shared_dir / "plans_md" / name, root=tmp_path)
        assert result.code == 0, result.err
        project = Project(tmp_path)
        plan_file = read_plan(project, tmp_path / "plans" / name.replace(".md", ".yaml"))
        return plan_file, (shared_dir / "plans_md" / name).read_text(encoding="utf-8"), result

    return run


@pytest.mark.parametrize("name", SHARED_PLANS)
def test_every_shared_plan_imports_into_a_valid_plan(imported, name):
    plan_file, markdown, result = imported(name)
    assert [t.id for _, t in plan_file.plan.tasks()] == [row[0] for row in table_rows(markdown)]
    # Whatever became a note was announced, one warning per note.
    notes = (
        len(plan_file.plan.context.notes) + len(plan_file.plan.notes) + sum(len(p.notes) for p in plan_file.plan.phases)
    )
    assert result.err.count("kept as") == notes


def test_gradient_flow_keeps_every_phase_task_state_and_exit_criterion(imported):
    plan_file, markdown, _ = imported("gradient-flow-001.md")
    plan = plan_file.plan
    assert plan.initiative.id == "GRADIENT-FLOW-001"
    headings = re.findall(r"^### Phase (\w) — (.+)$", markdown, re.MULTILINE)
    assert [(p.id, p.title) for p in plan.phases] == headings
    assert [(t.id, t.description, t.state.value) for _, t in plan.tasks()] == table_rows(markdown)
    assert [p.exit_criteria for p in plan.phases] == phase_lines(markdown, "Exit Criteria")
    assert [p.goal for p in plan.phases] == phase_lines(markdown, "Goal")
    summary = markdown.split("## Exit Criteria Summary", 1)[1]
    assert plan.exit_criteria_summary == [line[2:] for line in summary.splitlines() if line.startswith("- ")]
    skipped = [t for _, t in plan.tasks() if t.state.value == "[S]"]
    assert [t.id for t in skipped] == ["B1", "B2"] and all(t.reason for t in skipped)
    assert plan.guard_env == {
        "CUDA_VISIBLE_DEVICES": "-1",
        "KMP_DUPLICATE_LIB_OK": "TRUE",
        "NANOBRAGG_DISABLE_COMPILE": "1",
    }
    assert plan.artifacts_root == "reports/2026-01-gradient-flow"
    assert plan.prior_attempts == 2
    assert [p.requires for p in plan.phases] == [[], ["A"], ["B"], ["C"]]
    dependencies = {str(d.ref): d.kind for d in plan.context.dependencies}
    assert dependencies["tests/test_gradients.py:360-444"] == "source"
    assert dependencies['docs/development/pytorch_runtime_checklist.md §"Gradient Tests"'] == "source"
    assert (
        dependencies["reports/2026-01-test-suite-triage/phase_o/20251015T043128Z/chunks/chunk_03/summary.md"]
        == "evidence"
    )


@pytest.mark.parametrize("name", SHARED_PLANS)
def test_render_reproduces_the_markdown_tables(imported, name, tmp_path):
    plan_file, markdown, _ = imported(name)
    rendered = render_plan(Project(tmp_path), plan_file)
    assert table_rows(rendered) == table_rows(markdown)
    assert phase_lines(rendered, "Exit Criteria") == phase_lines(markdown, "Exit Criteria")
    # The view is itself an importable plan that gives back the same plan.
    assert import_markdown(rendered, f"{name} (rendered)").plan == plan_file.plan


def test_render_command_writes_views_that_match_show(project, planctl):
    result = planctl("render", root=project)
    assert result.code == 0 and "docs/plans/demo.md" in result.out
    view = (project / "docs" / "plans" / "demo.md").read_text()
    assert planctl("show", "demo", root=project).out == view
    assert table_rows(view) == [
        ("A1", "First task", "[D]"),
        ("A2", "Second task", "[ ]"),
        ("B1", "Needs phase A", "[ ]"),
        ("B2", "Needs B1", "[ ]"),
    ]
    assert "B2: depends on B1" in view
    assert planctl("render", root=project).out.strip() == "ledgers and views are up to date"


def test_project_templates_override_the_defaults(project, planctl):
    (project / "templates").mkdir()
    (project / "templates" / "plan.md.j2").write_text("custom view of {{ plan.initiative.id }}\n")
    assert planctl("show", "demo", root=project).out == "custom view of DEMO-001\n"


def test_import_keeps_what_it_cannot_map_and_warns(tmp_path, planctl):
    source = tmp_path / "odd.md"
    source.write_text(
        "## Context\n- Initiative: ODD-001 — odd plan\n- Owner: someone\n\n"
        "### Phase A — Only phase\nGoal: g\n\n| ID | Task Description | State | How/Why & Guidance |\n"
        "| --- | --- | --- | --- |\n| A1 | Pending review | [?] | waiting |\n| A2 | Skipped without why | [S] | |\n"
        "\nA stray paragraph.\n\n## Appendix\nSome text.\n"
    )
    (tmp_path / "plans").mkdir()
    result = planctl("import", source, root=tmp_path)
    assert result.code == 0
    plan = read_plan(Project(tmp_path), tmp_path / "plans" / "odd.yaml").plan
    assert plan.context.notes == ["- Owner: someone"]
    assert plan.notes == ["## Appendix", "Some text."]
    assert "A stray paragraph." in plan.phases[0].notes
    assert [t.state.value for t in plan.phases[0].tasks] == ["[ ]", "[S]"]
    assert plan.phases[0].tasks[0].marker == "[?]"  # kept, so the view shows it as written
    for expected in (
        "unknown state '[?]'",
        "gives no reason",
        "kept as context note: - Owner",
        "kept as plan note: ## Appendix",
        "kept as phase A note: A stray paragraph.",
    ):
        assert expected in result.err
    again = planctl("import", source, root=tmp_path)
    assert again.code == 2 and "exists; pass --force" in again.err
    assert planctl("import", source, "--force", root=tmp_path).code == 0


def test_import_rejects_a_file_without_tasks_or_phases(tmp_path, planctl):
    source = tmp_path / "notes.md"
    source.write_text("# Just notes\nnothing here\n")
    (tmp_path / "plans").mkdir()
    result = planctl("import", source, root=tmp_path)
    assert result.code == 2
    assert result.err.strip() == (
        "planctl: error: notes.md: no task table (a table with an ID column and a State column) and no "
        "'Phase' headings; is this a plan?"
    )
    assert not (tmp_path / "plans" / "notes.yaml").exists()


def test_a_broken_template_is_a_one_line_error(project, planctl):
    (project / "templates").mkdir()
    (project / "templates" / "plan.md.j2").write_text("{% if %}\n")
    result = planctl("render", root=project)
    assert result.code == 2
    assert result.err.startswith("planctl: error: ") and result.err.count("\n") == 1
    assert "plan.md.j2:1: template syntax error" in result.err
    assert not (project / "docs" / "plans").exists()


@pytest.mark.parametrize(
    ("cell", "state"),
    [
        ("✅ Done", "[D]"),
        ("Done ✅", "[D]"),
        ("Complete — 2026-02-03", "[D]"),
        ("🚧 In progress (50%)", "[P]"),
        ("Partially complete: 2 of 3", "[P]"),
        ("⏳ Pending review", "[ ]"),  # the words win over the emoji
        ("✅ see the log", "[D]"),
        ("[✓]", "[D]"),
        ("☐ to be scheduled", "[ ]"),
        ("Blocked on A1", "[B]"),
        ("N/A — float64 only", "[S]"),
        ("Not done", None),
        ("Doneness", None),
        ("✅🚧", None),  # two emoji that disagree, and no words
    ],
)
def test_state_cells_that_say_more_than_their_state(cell, state):
    assert (None if marker_state(cell) is None else marker_state(cell).value) == state
    # A column is recognised as the state column only by cells that say nothing else.
    assert marker_state(cell, lenient=False) is None


def test_a_blocked_or_skipped_state_cell_gives_the_reason_when_no_column_does():
    text = (
        "# CELLS-001: reasons in state cells\n\n| ID | Task | Status |\n| --- | --- | --- |\n"
        "| A1 | first | Done |\n| A2 | second | Blocked on A1 and GPU-001 |\n| A3 | third | N/A — float64 only |\n"
        "| A4 | fourth | ⛔ Blocked |\n"
    )
    result = import_markdown(text, "cells.md")
    tasks = {t.id: t for _, t in result.plan.tasks()}
    assert (tasks["A2"].reason, tasks["A2"].waits_on) == ("Blocked on A1 and GPU-001", ["A1", "GPU-001"])
    assert tasks["A3"].reason == "float64 only" and tasks["A3"].marker == "N/A — float64 only"
    assert tasks["A4"].reason == "blocked (no reason given in the markdown plan)"
    assert result.warnings == ["cells.md:8: blocked task A4 gives no reason"]


def test_a_byte_order_mark_or_windows_line_ends_change_nothing():
    text = (Path(__file__).parents[1] / "data" / "plans_md" / "gpu-parity.md").read_text(encoding="utf-8")
    plain = import_markdown(text, "gpu-parity.md").plan
    assert plain.initiative.id == "GPU-PARITY-007"
    assert import_markdown("\ufeff" + text, "gpu-parity.md").plan == plain
    assert import_markdown(text.replace("\n", "\r\n"), "gpu-parity.md").plan == plain


def test_a_table_right_under_a_list_item_or_a_quote_is_still_a_task_table():
    text = (
        "# LAZY-001: tables without a blank line above\n\n"
        "## Phase A: Fix [IN PROGRESS]\n"
        "- Goal: wait\n"
        "| ID | Task | State |\n| --- | --- | --- |\n| A1 | one | [D] |\n| A2 | two | maybe |\n\n"
        "## Phase B\n"
        "> a quoted remark\n"
        "| ID | Task | State |\n| --- | --- | --- |\n| B1 | three | [ ] |\n\n"
        "```text\n- an example in a fence\n| X1 | not | [ ] |\n| --- | --- | --- |\n```\n"
    )
    result = import_markdown(text, "lazy.md")
    a, b = result.plan.phases
    assert (a.title, a.goal, [t.id for t in a.tasks]) == ("Fix", "wait", ["A1", "A2"])
    assert [t.id for t in b.tasks] == ["B1"] and b.notes[0] == "> a quoted remark"
    assert b.notes[1].startswith("```text\n- an example in a fence\n| X1 |")  # code stays code
    # Lines in messages are those of the file as written.
    assert result.warnings == ["lazy.md:8: task A2 has unknown state 'maybe'; imported as open"]


def test_a_status_table_of_something_else_is_a_note_but_a_task_table_without_ids_is_an_error():
    others = (
        "| Test | Status |\n| --- | --- |\n| test_gradients | passing |\n| test_parity | 2 failures |\n\n"
        "| Risk | Mitigation | Status |\n| --- | --- | --- |\n| GPU flakiness | pin driver | Mitigated |\n"
        "| Memory | chunking | Open |\n\n"
    )
    tasks = "### Phase A — Fix\n\n| ID | Task | State |\n| --- | --- | --- |\n| A1 | fix | [ ] |\n"
    result = import_markdown(f"# OTHER-001: status tables\n\n{others}{tasks}", "other.md")
    assert [t.id for _, t in result.plan.tasks()] == ["A1"]
    assert [note.splitlines()[0] for note in result.plan.context.notes] == [
        "| Test | Status |",
        "| Risk | Mitigation | Status |",
    ]
    assert len(result.warnings) == 2 and "no ID column, whose cells are mostly not task states" in result.warnings[0]
    without_ids = "| Task | Status |\n| --- | --- |\n| fix the cell | [D] |\n| test it | [ ] |\n"
    with pytest.raises(PlanctlError, match=r"other\.md:3: a table with a state column \('Status'\) has no ID column"):
        import_markdown(f"# OTHER-001: status tables\n\n{without_ids}", "other.md")
