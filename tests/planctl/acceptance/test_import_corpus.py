"""Import on a corpus of markdown plans: the synthetic ones in tests/data/plans_md (every layout the
importer must read) and the real ones in ../shared/plans_md. Each task keeps its id and state, render
gives back every row and note, and import -> render -> import is stable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from planctl.importer import import_markdown
from planctl.project import Project
from planctl.schema import Plan, TaskState
from planctl.store import new_plan_text
from planctl.views import GENERATED_MARKER, environment
from planctl.yamlio import make_yaml

CORPUS = Path(__file__).resolve().parents[2] / "data" / "plans_md"
EXPECTED = json.loads((CORPUS / "EXPECTED.json").read_text(encoding="utf-8"))  # id and state of every row
SYNTHETIC = sorted(EXPECTED)


def render(plan: Plan, tmp_path: Path) -> str:
    template = environment(Project(tmp_path)).get_template("plan.md.j2")
    return template.render(plan=plan, source="plans/x.yaml", marker=GENERATED_MARKER)


def round_trip(text: str, name: str, tmp_path: Path) -> tuple[Plan, str, str, str]:
    """(plan, its YAML, its view, the YAML of the view imported again)."""
    first = import_markdown(text, name).plan
    yaml_text = new_plan_text(first, "header")
    written = Plan.model_validate(make_yaml().load(yaml_text))
    view = render(written, tmp_path)
    again = new_plan_text(import_markdown(view, name).plan, "header")
    return written, yaml_text, view, again


def rows_of(view: str) -> list[list[str]]:
    """Cells of every row of the view's task tables (those under an '| ID | Task Description' header)."""
    rows, in_tasks = [], False
    for line in view.splitlines():
        if line.startswith("| ID | Task Description |"):
            in_tasks = True
        elif not line.startswith("|"):
            in_tasks = False
        elif in_tasks and not line.startswith("| --- "):
            rows.append([c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
    return rows


def test_the_corpus_covers_what_real_plans_contain():
    text = "\n".join((CORPUS / name).read_text(encoding="utf-8") for name in SYNTHETIC)
    assert len(SYNTHETIC) >= 30
    for marker in ("[ ]", "[P]", "[B]", "[D]", "[S]", "[X]", "[x]", "[~]", "[-]"):
        assert f"| {marker} |" in text, marker
    for needle in (
        "|Δk|", "|sum_ratio−1|", "| tee ", "`a | b`", "| D1b |", "| M4a |", "| P0.1 |", "CLUSTER-CREF-001",
        "Checklist —",
        "| ID | Task | State | Details |", "| ID | Task | File | Status |", "### Phase A: ", "✅ COMPLETE",
        "\n## Phase 0\n", "\n## 1. ", "Plan ID:", "(`[", "## Root Cause Analysis", "## Fix Strategy", "```bash",
    ):  # fmt: skip
        assert needle in text, needle
    assert any(
        "### Phase" not in (CORPUS / n).read_text() and "## Phase" not in (CORPUS / n).read_text() for n in SYNTHETIC
    )


@pytest.mark.parametrize("name", SYNTHETIC)
def test_every_synthetic_plan_keeps_each_task_id_and_state(name):
    result = import_markdown((CORPUS / name).read_text(encoding="utf-8"), name)
    assert [[t.shown_id, t.state.value] for _, t in result.plan.tasks()] == EXPECTED[name]


@pytest.mark.parametrize("name", SYNTHETIC)
def test_render_gives_back_every_row_and_note_and_the_round_trip_is_stable(name, tmp_path):
    plan, yaml_text, view, again = round_trip((CORPUS / name).read_text(encoding="utf-8"), name, tmp_path)
    assert again == yaml_text
    tasks = [t for _, t in plan.tasks()]
    shown = [(t.shown_id, t.description, t.shown_marker, t.reason if t.guidance is None else t.guidance) for t in tasks]
    assert [tuple(row[:4]) for row in rows_of(view)] == [(i, d, m, g or "") for i, d, m, g in shown]
    position = 0
    for note in [*plan.context.notes, *(n for p in plan.phases for n in p.notes), *plan.notes]:
        assert note in view
    for note in plan.notes:  # plan notes close the view, in order
        position = view.index(note, position) + len(note)


def test_markers_map_to_states_and_are_kept_for_views():
    markdown = (
        "# MAP-001: markers\n\n### Phase A — All of them\n\n"
        "| ID | Task | State | Details |\n| --- | --- | --- | --- |\n"
        "| A1 | x | [X] | |\n| A2 | x | [x] | |\n| A3 | x | [~] | |\n| A4 | x | [-] | |\n"
        "| A5 | x | [B] | blocked by A3 and [OTHER-PLAN-002] |\n| A6 | x | [P] | half way |\n"
    )
    tasks = {t.id: t for _, t in import_markdown(markdown, "map.md").plan.tasks()}
    assert [(t.state, t.marker) for t in tasks.values()] == [
        (TaskState.DONE, "[X]"),
        (TaskState.DONE, "[x]"),
        (TaskState.IN_PROGRESS, "[~]"),
        (TaskState.SKIPPED, "[-]"),
        (TaskState.BLOCKED, None),
        (TaskState.IN_PROGRESS, None),
    ]
    assert tasks["A4"].reason == "not applicable"
    assert tasks["A5"].reason == "blocked by A3 and [OTHER-PLAN-002]"
    assert tasks["A5"].waits_on == ["A3", "OTHER-PLAN-002"]


def test_unescaped_pipes_stay_inside_their_cells():
    markdown = (
        "# PIPE-001: pipes\n\n## Tasks\n\n| ID | Task | State | How/Why & Guidance |\n| --- | --- | --- | --- |\n"
        "| A1 | run `pytest -q | tee log` | [D] | kept |\n"
        "| A2 | bound the error | [ ] | require |Δk| < 1e-3 and |sum_ratio−1| ≤ 1e-4 |\n"
        "| A3 | filter | [P] | pytest -v tests | tee out.log |\n"
    )
    result = import_markdown(markdown, "pipe.md")
    tasks = [t for _, t in result.plan.tasks()]
    assert [(t.id, t.description, t.state.value, t.guidance) for t in tasks] == [
        ("A1", "run `pytest -q | tee log`", "[D]", "kept"),
        ("A2", "bound the error", "[ ]", "require |Δk| < 1e-3 and |sum_ratio−1| ≤ 1e-4"),
        ("A3", "filter", "[P]", "pytest -v tests | tee out.log"),
    ]
    assert result.repaired == 3


def test_phase_heading_styles_and_initiative_sources():
    styles = "### Phase A: First\n\n{t}\n### Phase B: Second ✅ COMPLETE\n\n{t}\n## Phase 0\n\n{t}\n"
    table = "| ID | Task | State |\n| --- | --- | --- |\n| {p}1 | x | [ ] |\n"
    markdown = "Plan ID: STYLE-009\n\n" + styles.replace("{t}", "{}").format(
        table.format(p="A"), table.format(p="B"), table.format(p="Z")
    )
    plan = import_markdown(markdown, "whatever.md").plan
    assert plan.initiative.id == "STYLE-009"
    assert [(p.id, p.title, p.heading) for p in plan.phases] == [
        ("A", "First", "### Phase A: First"),
        ("B", "Second", "### Phase B: Second ✅ COMPLETE"),
        ("0", "Phase 0", "## Phase 0"),
    ]
    bare = import_markdown("## Tasks\n\n" + table.format(p="T"), "my plan_v2.md").plan
    assert bare.initiative.id == "MY-PLAN-V2" and [p.heading for p in bare.phases] == [""]
    assert import_markdown("# [TAG-ID-3] Tagged\n\n" + table.format(p="T"), "t.md").plan.initiative.id == "TAG-ID-3"
    assert import_markdown("## Tasks\n\n" + table.format(p="T"), "x.md").plan.initiative.id == "PLAN-X"


def test_a_reused_phase_letter_gets_a_new_id_and_keeps_its_heading():
    plan = import_markdown((CORPUS / "archived-rerun.md").read_text(encoding="utf-8"), "archived-rerun.md").plan
    assert [p.id for p in plan.phases] == ["A", "B", "B-2", "C"]
    assert plan.phases[2].heading.startswith("### Phase B — ")
    assert [t.shown_id for t in plan.phases[2].tasks][:3] == ["B1", "B2", "B3"]
    assert len({t.id for _, t in plan.tasks()}) == len(list(plan.tasks()))


@pytest.fixture(scope="module")
def shared_plans(shared_dir: Path) -> list[Path]:
    found = sorted((shared_dir / "plans_md").glob("*.md"))
    if not found:
        pytest.skip(f"no markdown plans in {shared_dir / 'plans_md'}")
    return found


def independent_rows(markdown: str) -> list[tuple[str, str]]:
    """(id, state) of every task row of a real plan, read without planctl: rows whose first cell is
    an id and whose third cell is a bracket marker."""
    states = {"[X]": "[D]", "[x]": "[D]", "[~]": "[P]", "[-]": "[S]"}
    rows = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 4 and re.fullmatch(r"[A-Z]+\d+[a-z]?", cells[0]):
            rows.append((cells[0], states.get(cells[2], cells[2])))
    return rows


def test_every_shared_plan_keeps_ids_and_states_and_round_trips(shared_plans, tmp_path):
    for path in shared_plans:
        markdown = path.read_text(encoding="utf-8")
        plan, yaml_text, _, again = round_trip(markdown, path.name, tmp_path)
        assert [(t.shown_id, t.state.value) for _, t in plan.tasks()] == independent_rows(markdown), path.name
        assert again == yaml_text, path.name
