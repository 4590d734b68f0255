"""The plan document: pydantic models for the YAML files under plans/.

A plan is an initiative split into phases; each phase holds tasks whose state is ``[ ]`` (open),
``[D]`` (done) or ``[S]`` (skipped, with a reason). A task may carry a runnable spec: the command
that proves it, its environment, and what its outcome must show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from planctl.refs import Reference

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
INITIATIVE_PATTERN = r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*$"


class TaskState(str, Enum):
    OPEN = "[ ]"
    DONE = "[D]"
    SKIPPED = "[S]"

    @property
    def closed(self) -> bool:
        return self is not TaskState.OPEN


def _state_marker(value: Any) -> Any:
    if isinstance(value, list):
        # An unquoted [D] in YAML is a one-item list, and [ ] an empty one.
        raise ValueError("quote the state marker, e.g. state: '[D]' (unquoted it is a YAML list)")
    if isinstance(value, str) and value not in {s.value for s in TaskState}:
        raise ValueError(f"unknown state marker '{value}' (expected '[ ]', '[D]' or '[S]')")
    return value


def _env_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    for key, item in value.items():
        if not isinstance(item, str):
            raise ValueError(
                f"value of {key} must be a quoted string, e.g. {key}: '{item}' "
                "(YAML reads -1, 1 and TRUE as numbers or booleans)"
            )
    return value


def _reference(value: Any) -> Any:
    return Reference.parse(value) if isinstance(value, str) else value


State = Annotated[TaskState, BeforeValidator(_state_marker)]
EnvMap = Annotated[dict[str, str], BeforeValidator(_env_value)]
Ref = Annotated[
    Reference,
    BeforeValidator(_reference),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "description": "path[:start-end] [§section, ...], e.g. 'arch.md §15' or 'tests/x.py:10-20'",
        }
    ),
]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class Initiative(StrictModel):
    id: str = Field(pattern=INITIATIVE_PATTERN, description="e.g. GRADIENT-FLOW-001")
    title: str


class Dependency(StrictModel):
    ref: Ref
    note: str = ""
    kind: Literal["source", "evidence"] = Field(
        "source",
        description="source: must exist (error if missing); evidence: an artifact that may not "
        "exist yet (warning if missing)",
    )


class Context(StrictModel):
    goal: str = ""
    dependencies: list[Dependency] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="markdown blocks shown verbatim")


class JunitCounts(StrictModel):
    """Exact counts read from the junit XML that pytest writes into the bundle."""

    passed: int | None = Field(None, ge=0)
    failed: int | None = Field(None, ge=0)
    errors: int | None = Field(None, ge=0)
    skipped: int | None = Field(None, ge=0)


class MetricThreshold(StrictModel):
    """Compare every (or any) number selected from a JSON file with a threshold."""

    file: str = Field(description="JSON file as the command sees it, e.g. $PLANCTL_BUNDLE/x.json")
    select: str = Field(description="dotted path; '*' matches every key or item: 'grads.*'")
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    value: float
    abs: bool = Field(False, description="compare |x| instead of x")
    quantifier: Literal["all", "any"] = "all"


class FileCheck(StrictModel):
    path: str
    exists: bool = True
    contains: str | None = Field(None, description="literal text the file must contain")
    regex: str | None = Field(None, description="regular expression the file must match")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"invalid regular expression: {err}") from None
        return value


class Expectations(StrictModel):
    exit_code: int | None = Field(0, description="required exit code; null accepts any")
    junit: JunitCounts | None = None
    metrics: list[MetricThreshold] = Field(default_factory=list)
    files: list[FileCheck] = Field(default_factory=list)


class TemplateArtifact(StrictModel):
    template: str = Field(description="template name in templates/ or planctl's defaults")
    output: str = Field(description="file name inside the bundle")
    vars: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "JSON files the command wrote ($VARS expanded, relative to cwd), given to the template as data.<name>"
        ),
    )

    @field_validator("output")
    @classmethod
    def _inside_bundle(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/") or not value.strip():
            raise ValueError(f"output '{value}' must be a relative path inside the bundle")
        return value


class RunSpec(StrictModel):
    command: str | None = Field(None, description="run with bash -c")
    env: EnvMap = Field(default_factory=dict)
    cwd: str = "."
    timeout: float = Field(1800, gt=0, description="seconds")
    expect: Expectations = Field(default_factory=Expectations)
    artifacts: list[str] = Field(default_factory=list, description="files or globs to keep")
    render: list[TemplateArtifact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_work(self) -> RunSpec:
        # A spec with only file or metric checks proves a task done by hand (an edit, say).
        if self.command is None and not (self.render or self.expect.files or self.expect.metrics):
            raise ValueError("a run spec needs a command, a template to render, or file/metric checks")
        return self


class Task(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    description: str
    state: State = TaskState.OPEN
    reason: str | None = Field(None, description="why the task was skipped; required for [S]")
    guidance: str = ""
    depends_on: list[str] = Field(default_factory=list)
    run: RunSpec | None = None

    @model_validator(mode="after")
    def _skip_has_reason(self) -> Task:
        if self.state is TaskState.SKIPPED and not (self.reason or "").strip():
            raise ValueError(f"task {self.id} is skipped '[S]' but has no reason")
        return self


class Phase(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    title: str
    goal: str = ""
    prereqs: str = ""
    requires: list[str] = Field(default_factory=list, description="phases whose tasks must all be closed first")
    exit_criteria: str = ""
    notes: list[str] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)


class Plan(StrictModel):
    schema_version: Literal[1] = 1
    initiative: Initiative
    artifacts_root: str | None = Field(None, description="where evidence bundles go; default reports/<initiative id>")
    guard_env: EnvMap = Field(default_factory=dict, description="environment for every run")
    reproduction: str | None = Field(None, description="the command that shows the problem")
    cluster: str | None = Field(None, description="failure cluster, e.g. C19")
    prior_attempts: int = Field(0, ge=0, description="attempts made before planctl; numbering continues after")
    context: Context = Field(default_factory=Context)
    phases: list[Phase]
    exit_criteria_summary: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def bundle_root(self) -> str:
        return self.artifacts_root or f"reports/{self.initiative.id.lower()}"

    def tasks(self) -> Iterator[tuple[Phase, Task]]:
        for phase in self.phases:
            for task in phase.tasks:
                yield phase, task

    def find_task(self, task_id: str) -> tuple[Phase, Task] | None:
        return next(((p, t) for p, t in self.tasks() if t.id == task_id), None)

    def find_phase(self, phase_id: str) -> Phase | None:
        return next((p for p in self.phases if p.id.lower() == phase_id.lower()), None)
