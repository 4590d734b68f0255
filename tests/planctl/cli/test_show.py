"""planctl show: one task, its state and prerequisites."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_show_task_lists_state_and_prerequisites(project, planctl):
    result = planctl("show", "demo", "B2", root=project)
    assert result.code == 0
    assert result.out.splitlines()[:3] == [
        "DEMO-001 B2 [ ] — Needs B1",
        "Phase B — Second phase",
        "Needs: A1 [D], A2 [ ], B1 [ ]",
    ]
    details = json.loads(planctl("show", "demo", "B2", "--json", root=project).out)
    assert details["waiting_for"] == ["A2", "B1"] and details["depends_on"] == ["B1"]
