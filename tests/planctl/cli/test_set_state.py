"""planctl set: state transitions are recorded and the views refreshed, or nothing is written."""

from __future__ import annotations

from pathlib import Path

from tests.planctl.planctl_testkit import write

REPO = Path(__file__).resolve().parents[3]


def test_set_records_transitions_and_refreshes_the_view(project, planctl):
    result = planctl("set", "DEMO-001", "A2", "--state", "S", "--why", "covered by A1", root=project)
    assert (result.code, result.out.strip()) == (0, "DEMO-001 A2: [ ] -> [S]")
    assert planctl("set", "demo", "A2", "--state", "open", root=project).code == 0
    records = (project / "attempts" / "demo.yaml").read_text()
    assert "task: A2\n  before: '[ ]'\n  after: '[S]'\n  why: covered by A1" in records
    assert "before: '[S]'\n  after: '[ ]'" in records
    assert "| A2 | Second task | [ ] |" in (project / "docs" / "plans" / "demo.md").read_text()


def test_set_with_a_broken_template_writes_nothing(project, planctl):
    write(project / "templates" / "plan.md.j2", "{{ oops\n")
    before = (project / "plans" / "demo.yaml").read_text()
    result = planctl("set", "demo", "A2", "--state", "D", root=project)
    assert result.code == 2 and "template syntax error" in result.err
    assert (project / "plans" / "demo.yaml").read_text() == before
    assert not (project / "attempts").exists()
