"""Per-plan records of what happened to a plan's tasks, stored as attempts/<plan>.yaml.

Only planctl writes these files, always under the project lock and atomically. They are, with the
plans, the source of truth that ledgers are generated from.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

from pydantic import Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from planctl.errors import PlanctlError
from planctl.project import Project
from planctl.safeio import atomic_write_text
from planctl.schema import State, StrictModel


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Transition(StrictModel):
    task: str
    before: State
    after: State
    why: str | None = None
    at: str = Field(default_factory=utc_now)
    by: str = Field(description="'manual' (planctl set) or 'attempt #N'")


class Records(StrictModel):
    initiative: str
    transitions: list[Transition] = Field(default_factory=list)


def records_path(project: Project, plan_name: str) -> Path:
    return project.attempts_dir / f"{plan_name}.yaml"


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[attr-defined]
    yaml.width = 4096
    return yaml


def load_records(path: Path, initiative: str) -> Records:
    if not path.exists():
        return Records(initiative=initiative)
    try:
        data = _yaml().load(path.read_text(encoding="utf-8"))
        return Records.model_validate(data)
    except (YAMLError, ValidationError) as err:
        first = str(err).strip().splitlines()
        raise PlanctlError(f"{path}: corrupt attempt records: {first[0] if first else err}") from None


def save_records(path: Path, records: Records) -> bool:
    buffer = io.StringIO()
    _yaml().dump(records.model_dump(mode="json", exclude_none=True), buffer)
    return atomic_write_text(path, buffer.getvalue())
