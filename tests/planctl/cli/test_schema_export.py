"""planctl schema: the exported JSON Schema is the committed one."""

from __future__ import annotations

import json
from pathlib import Path

from planctl.cli.schema_export import plan_json_schema

REPO = Path(__file__).resolve().parents[3]


def test_schema_export_matches_the_committed_schema(tmp_path, planctl):
    schema = json.loads(plan_json_schema())
    assert schema["$defs"]["Task"]["properties"]["state"]["$ref"] == "#/$defs/TaskState"
    assert schema["$defs"]["TaskState"]["enum"] == ["[ ]", "[P]", "[B]", "[D]", "[S]"]
    committed = REPO / "schemas" / "plan.schema.json"
    assert committed.read_text() == plan_json_schema(), "run: planctl schema --out schemas/plan.schema.json"
    out = tmp_path / "plan.schema.json"
    assert planctl("schema", "--out", out).code == 0 and out.read_text() == plan_json_schema()
