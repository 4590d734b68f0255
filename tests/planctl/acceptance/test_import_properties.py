"""Property tests: generated markdown plans import with every task id and state, and
import -> render -> import gives the same YAML."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planctl.importer import import_markdown
from planctl.project import Project
from planctl.schema import MARKER_STATES, Plan
from planctl.store import new_plan_text
from planctl.views import GENERATED_MARKER, environment
from planctl.yamlio import make_yaml

WORDS = st.sampled_from(
    ["gradient", "detector", "`pytest -q`", "|Δk|", "C", "reference", "image", "a|b", "`x | y`", "—", "Attempt #3",
     "reports/2026-01/phase_a/", "KMP_DUPLICATE_LIB_OK=TRUE", "**bold**", "ok.", "λ", "tee"]
)  # fmt: skip
TEXT = st.lists(WORDS, min_size=1, max_size=8).map(" ".join)
MARKERS = st.sampled_from(sorted(MARKER_STATES))
HEADINGS = st.sampled_from(
    ["### Phase {p} — {t}", "### Phase {p}: {t}", "### Phase {p}: {t} ✅ COMPLETE", "## Phase {p}"]
)
NOTE = st.one_of(
    TEXT,
    st.lists(TEXT, min_size=1, max_size=3).map(lambda items: "\n".join(f"- {i}" for i in items)),
    TEXT.map(lambda t: f"> {t}"),
    TEXT.map(lambda t: f"```\n{t}\n```"),
)


@st.composite
def markdown_plans(draw) -> tuple[str, list[tuple[str, str]]]:
    letters = draw(st.lists(st.sampled_from("ABCDEM"), min_size=0, max_size=4))
    lines = ["# GEN-PLAN-001: generated", "", "## Context", f"- Phase Goal: {draw(TEXT)}", ""]
    lines += [draw(NOTE), ""]
    truth = []
    phases = letters or [None]
    for p, letter in enumerate(phases):
        if letter is not None:
            lines += [draw(HEADINGS).format(p=letter, t=draw(TEXT).replace("#", "")), f"Goal: {draw(TEXT)}", ""]
        else:
            lines += ["## Tasks", ""]
        lines += ["| ID | Task Description | State | How/Why & Guidance |", "| --- | --- | --- | --- |"]
        for k in range(draw(st.integers(1, 4))):
            task_id = f"{letter or 'T'}{p}{k}{draw(st.sampled_from(['', 'a', '.1']))}"
            marker = draw(MARKERS)
            description, guidance = draw(TEXT), draw(st.one_of(st.just(""), TEXT))
            lines.append(f"| {task_id} | {description} | {marker} | {guidance} |")
            truth.append((task_id, MARKER_STATES[marker].value))
        lines.append("")
        if draw(st.booleans()):
            lines += [draw(NOTE), ""]
    if draw(st.booleans()):
        lines += ["## Exit Criteria Summary", f"- {draw(TEXT)}", "", "## References", draw(NOTE)]
    return "\n".join(lines) + "\n", truth


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(markdown_plans())
def test_generated_plans_keep_ids_and_states_and_round_trip(tmp_path: Path, generated):
    markdown, truth = generated
    plan = import_markdown(markdown, "gen.md").plan
    assert [(t.shown_id, t.state.value) for _, t in plan.tasks()] == truth
    yaml_text = new_plan_text(plan, "header")
    reread = Plan.model_validate(make_yaml().load(yaml_text))
    view = (
        environment(Project(tmp_path))
        .get_template("plan.md.j2")
        .render(plan=reread, source="plans/gen.yaml", marker=GENERATED_MARKER)
    )
    assert new_plan_text(import_markdown(view, "gen.md").plan, "header") == yaml_text
