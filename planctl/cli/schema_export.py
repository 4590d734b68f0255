"""planctl schema: the plan JSON Schema, for editors that validate YAML as it is typed."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from planctl.cli.app import app, console
from planctl.errors import PlanctlError
from planctl.safeio import atomic_write_text
from planctl.schema import Plan


def plan_json_schema() -> str:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **Plan.model_json_schema()}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@app.command("schema")
def schema_export(
    out: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout.", dir_okay=False),
) -> None:
    """Print (or write) the JSON Schema of plan files."""
    text = plan_json_schema()
    if out is None:
        print(text, end="")
    else:
        try:
            atomic_write_text(out, text)
        except OSError as err:
            raise PlanctlError(f"{out}: cannot write: {err.strerror}") from None
        console().print(f"wrote {out}")
