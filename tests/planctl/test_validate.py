"""planctl validate: every problem as file:line:col: severity: message."""

from __future__ import annotations

import re

from tests.planctl.planctl_testkit import SMALL_PLAN, write

DEPENDENCIES = """\
    - ref: docs/guide.md §2
      note: the guide
    - ref: docs/guide.md §2.1, §"gradient tests"
    - ref: docs/guide.md:2-3
    - ref: docs/guide.md §9
    - ref: docs/guide.md:1-99
    - ref: src/missing.py
    - ref: reports/old/phase_a/20250101T000000Z/summary.md
      kind: evidence
"""


def at(text: str, needle: str) -> str:
    """``line:col`` (1-based) where ``needle`` first occurs in ``text``."""
    before = text[: text.index(needle)]
    return f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


def diagnostics(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"^plans/\S+:\d+:\d+: ", line)]


def test_a_clean_project_passes(project, planctl):
    result = planctl("validate", root=project)
    assert (result.code, result.out) == (0, "1 plan(s) checked: 0 error(s), 0 warning(s)\n")


def test_references_are_checked_against_the_repository(project, planctl):
    text = SMALL_PLAN.replace("    - ref: docs/guide.md §2\n      note: the guide\n", DEPENDENCIES)
    write(project / "plans" / "demo.yaml", text)
    result = planctl("validate", root=project)
    assert result.code == 1
    assert diagnostics(result.out) == [
        f"plans/demo.yaml:{at(text, 'docs/guide.md §9')}: error: source dependency 'docs/guide.md §9': "
        "section §9 not found among the headings of docs/guide.md",
        f"plans/demo.yaml:{at(text, 'docs/guide.md:1-99')}: error: source dependency 'docs/guide.md:1-99': "
        "docs/guide.md has 6 lines; range 1-99 is past its end",
        f"plans/demo.yaml:{at(text, 'src/missing.py')}: error: source dependency 'src/missing.py': "
        "src/missing.py does not exist",
        f"plans/demo.yaml:{at(text, 'reports/old')}: warning: evidence dependency "
        "'reports/old/phase_a/20250101T000000Z/summary.md': "
        "reports/old/phase_a/20250101T000000Z/summary.md does not exist",
    ]
    assert result.out.endswith("1 plan(s) checked: 3 error(s), 1 warning(s)\n")


def test_missing_evidence_is_a_warning_unless_strict(project, planctl):
    evidence = "    - ref: reports/x/summary.md\n      kind: evidence\n"
    write(
        project / "plans" / "demo.yaml",
        SMALL_PLAN.replace("      note: the guide\n", "      note: the guide\n" + evidence),
    )
    assert planctl("validate", root=project).code == 0
    assert planctl("validate", "--strict", root=project).code == 1
    write(project / "reports" / "x" / "summary.md", "evidence\n")
    assert planctl("validate", "--strict", root=project).code == 0


def test_structure_problems_are_all_listed(project, planctl):
    broken = SMALL_PLAN.replace(
        "        state: '[ ]'\n  - id: B", "        state: '[ ]'\n        depends_on: [B2]\n  - id: B", 1
    ).replace("requires: [A]", "requires: [A, Z]")
    write(project / "plans" / "demo.yaml", broken)
    write(project / "plans" / "bad.yaml", "initiative: {id: BAD-1, title: x}\nphases: [\n")
    write(project / "plans" / "twin.yaml", SMALL_PLAN)
    result = planctl("validate", root=project)
    assert result.code == 1
    found = diagnostics(result.out)
    assert found[0].startswith("plans/bad.yaml:3:1: error: invalid YAML: ")
    assert f"plans/demo.yaml:{at(broken, 'Z]')}: error: phase B requires unknown phase 'Z'" in found
    assert f"plans/demo.yaml:{at(broken, '[B2]')}: error: dependency cycle: A2 -> B2 -> A2" in found
    assert "plans/twin.yaml:3:7: error: initiative DEMO-001 is also defined in plans/demo.yaml" in found


def test_run_specs_must_find_their_templates_and_working_directories(project, planctl):
    run = (
        "        run:\n          cwd: nowhere\n          render:\n"
        "            - {template: nowhere.md.j2, output: design.md}\n"
    )
    text = SMALL_PLAN.replace("        description: Second task\n", "        description: Second task\n" + run)
    write(project / "plans" / "demo.yaml", text)
    result = planctl("validate", root=project)
    assert result.code == 1
    assert diagnostics(result.out) == [
        f"plans/demo.yaml:{at(text, 'nowhere')}: error: task A2: working directory 'nowhere' does not exist",
        f"plans/demo.yaml:{at(text, 'nowhere.md.j2')}: error: task A2: template 'nowhere.md.j2' not found",
    ]
