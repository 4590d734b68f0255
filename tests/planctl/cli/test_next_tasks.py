"""planctl next: tasks whose dependencies and required phases are closed."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_next_honours_dependencies_and_required_phases(project, planctl):
    assert [r["task"] for r in json.loads(planctl("next", "--json", root=project).out)] == ["A2"]
    assert planctl("set", "demo", "A2", "--state", "S", "--why", "not needed", root=project).code == 0
    assert [r["task"] for r in json.loads(planctl("next", "--json", root=project).out)] == ["B1"]
    assert planctl("set", "demo", "B1", "--state", "D", root=project).code == 0
    table = planctl("next", root=project).out
    assert "DEMO-001    B      B2" in table
