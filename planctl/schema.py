"""The plan document: pydantic models for the YAML files under plans/.

A plan is an initiative split into phases; each phase holds tasks whose state is ``[ ]`` (open),
``[P]`` (in progress), ``[B]`` (blocked, with a reason), ``[D]`` (done) or ``[S]`` (skipped, with a
reason). A task may carry a runnable spec: the command that proves it, its environment, and what its
outcome must show.

Everything that reaches a shell or the file system is typed here once, for ``validate`` and
``run`` alike: environment names are shell names, commands, values and paths carry no NUL byte,
and paths are checked against the project (planctl.confine) when a plan is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
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
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV_PREFIX = "PLANCTL_"  # planctl sets these for each run


CLUSTER_PATTERN = r"^C[1-9][0-9]*$"


class TaskState(str, Enum):
    OPEN = "[ ]"
    IN_PROGRESS = "[P]"
    BLOCKED = "[B]"
    DONE = "[D]"
    SKIPPED = "[S]"

    @property
    def closed(self) -> bool:
        """Done or skipped: nothing waits on it any more."""
        return self in (TaskState.DONE, TaskState.SKIPPED)

    @property
    def workable(self) -> bool:
        """Open or in progress: someone can work on it once its prerequisites are closed."""
        return self in (TaskState.OPEN, TaskState.IN_PROGRESS)

    @property
    def word(self) -> str:
        return self.name.lower().replace("_", " ")


_CANONICAL_MARKERS = frozenset(state.value for state in TaskState)
# Markers seen in hand-kept markdown plans, beyond the five canonical ones.
MARKER_STATES = {
    "[ ]": TaskState.OPEN,
    "[]": TaskState.OPEN,
    "[P]": TaskState.IN_PROGRESS,
    "[~]": TaskState.IN_PROGRESS,
    "[B]": TaskState.BLOCKED,
    "[D]": TaskState.DONE,
    "[X]": TaskState.DONE,
    "[S]": TaskState.SKIPPED,
    "[-]": TaskState.SKIPPED,
}
_BRACKET_MARKER = re.compile(r"\[\s*([A-Za-z~-]?)\s*\]")
_STATE_WORDS = {
    TaskState.DONE: ("done", "complete", "completed", "finished", "closed", "✅", "✓", "✔", "✔️", "☑", "☑️", "☒"),
    TaskState.IN_PROGRESS: (
        "in progress",
        "in-progress",
        "wip",
        "partial",
        "partially complete",
        "started",
        "ongoing",
        "🚧",
        "⏳",
        "🔄",
    ),
    TaskState.BLOCKED: ("blocked", "on hold", "waiting", "⛔", "🛑"),
    TaskState.SKIPPED: ("skipped", "n/a", "not applicable", "won't do", "wontfix", "dropped"),
    TaskState.OPEN: ("", "open", "todo", "to do", "pending", "not started", "planned", "queued", "☐"),
}
_WORD_STATES = {word: state for state, words in _STATE_WORDS.items() for word in words}
EMOJI = re.compile(r"[\u2300-\u27bf\U0001f000-\U0001faff]\ufe0f?")  # emoji and dingbats
_LEADING_WORDS = re.compile(r"[a-z/'-]+(?: [a-z/'-]+){0,2}")


def marker_state(cell: str, lenient: bool = True) -> TaskState | None:
    """The state a markdown state cell means: its first bracket marker (``[x]``, ``[~]``, ``[-]``,
    ...) or a plain word or emoji (``Done``, ``✅``, ``In progress``); None when it means nothing known.

    ``lenient`` also reads a cell that says more: a state phrase at its start (``Complete —
    2025-10-11``, ``🚧 In progress (50%)``), else the state emoji in it (``✅ see log``) when they
    all mean one state. Words win over emoji: ``⏳ Pending review`` is open."""
    found = _BRACKET_MARKER.search(cell)
    if found:
        return MARKER_STATES.get(f"[{found[1].upper()}]" if found[1] else "[ ]")
    words = re.sub(r"[*_`]", "", cell).strip().rstrip(".").lower()
    exact = _WORD_STATES.get(words)
    if exact is not None or not lenient:
        return exact
    text = " ".join(EMOJI.sub(" ", words).split())
    leading = _LEADING_WORDS.match(text)
    if leading:  # the longest state phrase the text starts with, ending where a word ends
        phrase = leading[0].split(" ")
        for n in range(len(phrase), 0, -1):
            state = _WORD_STATES.get(" ".join(phrase[:n]))
            if state is not None:
                return state
    meant = {_WORD_STATES[symbol] for symbol in EMOJI.findall(words) if symbol in _WORD_STATES}
    return meant.pop() if len(meant) == 1 else None


def _state_marker(value: Any) -> Any:
    if isinstance(value, list):
        # An unquoted [D] in YAML is a one-item list, and [ ] an empty one.
        raise ValueError("quote the state marker, e.g. state: '[D]' (unquoted it is a YAML list)")
    if isinstance(value, str) and value not in _CANONICAL_MARKERS:
        raise ValueError(f"unknown state marker '{value}' (expected '[ ]', '[P]', '[B]', '[D]' or '[S]')")
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


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL byte, which no command line, path or environment value can carry")
    return value


def _env_name(name: str) -> str:
    if not _SHELL_NAME.fullmatch(name):
        raise ValueError(
            f"environment variable name {name!r} is not a shell name (letters, digits and _, not starting with a digit)"
        )
    if name.startswith(RESERVED_ENV_PREFIX):
        raise ValueError(
            f"environment variable {name}: {RESERVED_ENV_PREFIX}* variables are set by planctl for each run"
        )
    return name


def _path_text(value: str) -> str:
    if not value.strip():
        raise ValueError("empty path")
    return _no_nul(value)


def _compiles(value: str) -> str:
    try:
        re.compile(value)
    except re.error as err:
        raise ValueError(f"invalid regular expression: {err}") from None
    return value


State = Annotated[TaskState, BeforeValidator(_state_marker)]
Command = Annotated[str, AfterValidator(_no_nul)]
"""A shell command line: run with ``bash -c``, quoted whole wherever planctl writes it down."""
EnvName = Annotated[str, AfterValidator(_env_name)]
EnvValue = Annotated[str, AfterValidator(_no_nul)]
EnvMap = Annotated[dict[EnvName, EnvValue], BeforeValidator(_env_value)]
PathText = Annotated[str, AfterValidator(_path_text)]
"""A path as the command sees it: ``$VARS`` expanded, relative to the run's cwd; confined to the
project unless the plan lists an ``outside_paths`` folder that holds it."""


def _cluster_ids(value: Any) -> Any:
    items = [value] if isinstance(value, str) else value
    if isinstance(items, list):
        for item in items:
            if not (isinstance(item, str) and re.fullmatch(CLUSTER_PATTERN, item)):
                raise ValueError(f"{item!r} is not a cluster id (C1, C2, ... as `planctl triage show` lists them)")
    return items


# One id or a list of them in YAML; always a list in the model.
ClusterIds = Annotated[
    list[str],
    BeforeValidator(_cluster_ids),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": CLUSTER_PATTERN},
                {"type": "array", "items": {"type": "string", "pattern": CLUSTER_PATTERN}},
            ],
            "description": "triage cluster id(s), e.g. C19 or [C3, C19]",
        }
    ),
]
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

    file: PathText = Field(description="JSON file as the command sees it, e.g. $PLANCTL_BUNDLE/x.json")
    select: str = Field(description="dotted path; '*' matches every key or item: 'grads.*'")
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    value: float
    abs: bool = Field(False, description="compare |x| instead of x")
    quantifier: Literal["all", "any"] = "all"


class FileCheck(StrictModel):
    path: PathText
    exists: bool = True
    contains: str | None = Field(None, description="literal text the file must contain")
    regex: str | None = Field(None, description="regular expression the file must match")

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        return None if value is None else _compiles(value)


class Expectations(StrictModel):
    exit_code: int | None = Field(0, description="required exit code; null accepts any")
    junit: JunitCounts | None = None
    metrics: list[MetricThreshold] = Field(default_factory=list)
    files: list[FileCheck] = Field(default_factory=list)
    clusters: ClusterIds = Field(
        default_factory=list,
        description="triage clusters that must pass: each of their tests ran and passed in this run's junit XML",
    )


class TemplateArtifact(StrictModel):
    template: str = Field(description="template name in templates/ or planctl's defaults")
    output: str = Field(description="file name inside the bundle")
    vars: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, PathText] = Field(
        default_factory=dict,
        description=(
            "JSON files the command wrote ($VARS expanded, relative to cwd), given to the template as data.<name>"
        ),
    )

    @field_validator("output")
    @classmethod
    def _inside_bundle(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/") or not value.strip() or "\x00" in value:
            raise ValueError(f"output {value!r} must be a relative path inside the bundle")
        return value


class RunSpec(StrictModel):
    command: Command | None = Field(None, description="run with bash -c")
    env: EnvMap = Field(default_factory=dict)
    cwd: PathText = "."
    timeout: float = Field(
        1800, gt=0, description="seconds for the whole attempt: the command, then its templates and checks"
    )
    expect: Expectations = Field(default_factory=Expectations)
    artifacts: list[PathText] = Field(default_factory=list, description="files or globs to keep")
    inputs: list[PathText] = Field(
        default_factory=list,
        description="files or globs (relative to cwd) the evidence depends on; when they change, the done task "
        "is stale. Default: the files the command and checks name, plus the project's source packages",
    )
    render: list[TemplateArtifact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_work(self) -> RunSpec:
        # A spec with only file or metric checks proves a task done by hand (an edit, say).
        if self.command is None and not (self.render or self.expect.files or self.expect.metrics):
            raise ValueError("a run spec needs a command, a template to render, or file/metric checks")
        if self.expect.clusters and self.command is None:
            raise ValueError("expect.clusters needs a command: the cluster's tests must run under pytest")
        return self


class Task(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    label: str | None = Field(
        None, description="the id as written in an imported markdown plan, when planctl had to change it; views show it"
    )
    description: str
    state: State = TaskState.OPEN
    marker: str | None = Field(
        None,
        description="the state cell as written in an imported markdown plan ('[x]', '[~]', '[-]'); views show it. "
        "It must mean the same state; planctl drops it when the state changes",
    )
    reason: str | None = Field(None, description="why the task is skipped or blocked; required for [S] and [B]")
    waits_on: list[str] = Field(
        default_factory=list, description="what a blocked task waits on: task ids of this plan or initiative ids"
    )
    guidance: str | None = Field(None, description="how and why; when absent, views show the reason")
    columns: dict[str, str] = Field(
        default_factory=dict, description="other columns of the task's row in an imported table, by header"
    )
    section: str | None = Field(
        None, description="markdown heading of the sub-table (e.g. a sub-checklist) that holds the task"
    )
    depends_on: list[str] = Field(default_factory=list)
    run: RunSpec | None = None

    @model_validator(mode="after")
    def _state_is_consistent(self) -> Task:
        if self.state in (TaskState.SKIPPED, TaskState.BLOCKED) and not (self.reason or "").strip():
            raise ValueError(f"task {self.id} is {self.state.word} '{self.state.value}' but has no reason")
        if self.waits_on and self.state is not TaskState.BLOCKED:
            raise ValueError(f"task {self.id} lists waits_on but is not blocked '[B]'")
        if self.marker is not None and (marker_state(self.marker) or TaskState.OPEN) is not self.state:
            meant = marker_state(self.marker) or TaskState.OPEN
            raise ValueError(
                f"task {self.id}: marker '{self.marker}' means {meant.word} but the state is '{self.state.value}' "
                "(remove the marker or fix the state)"
            )
        if self.section is not None and not re.match(r"#{1,6} \S", self.section):
            raise ValueError(f"task {self.id}: section must be a markdown heading line, e.g. '#### Checklist'")
        return self

    @property
    def shown_id(self) -> str:
        return self.label or self.id

    @property
    def shown_marker(self) -> str:
        return self.state.value if self.marker is None else self.marker


class Phase(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    title: str
    heading: str | None = Field(
        None,
        description="the phase's markdown heading as written in an imported plan ('## Phase 0: Setup ✅'), shown "
        "by views instead of '### Phase <id> — <title>'; '' for the implicit phase of a plan without phase headings",
    )
    goal: str = ""
    prereqs: str = ""
    requires: list[str] = Field(default_factory=list, description="phases whose tasks must all be closed first")
    exit_criteria: str = ""
    notes: list[str] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)

    @field_validator("heading")
    @classmethod
    def _is_heading(cls, value: str | None) -> str | None:
        if value and not re.match(r"#{1,6} \S", value):
            raise ValueError("heading must be a markdown heading line, e.g. '## Phase 0: Setup'")
        return value


MiB = 1 << 20


class Limits(StrictModel):
    """How much of a run planctl reads back and keeps. Sizes are bytes or strings such as '4 MiB'."""

    log_bytes: ByteSize = Field(
        ByteSize(MiB), description="output.log is kept whole up to this size; longer output keeps its head and tail"
    )
    log_archive_bytes: ByteSize = Field(
        ByteSize(64 * MiB),
        description="the full output of a cut log goes to output.log.gz, up to this many bytes; 0 keeps none",
    )
    read_bytes: ByteSize = Field(
        ByteSize(16 * MiB),
        description="the largest file a check reads back: JSON metrics, junit XML, file checks, template data",
    )
    artifact_bytes: ByteSize = Field(
        ByteSize(256 * MiB), description="the most bytes of artifacts copied into one bundle"
    )


class Redaction(StrictModel):
    """Secrets kept out of bundles, records and commits, on top of planctl's built-in rules."""

    names: list[Annotated[str, AfterValidator(_no_nul)]] = Field(
        default_factory=list,
        description="more environment variable names (shell patterns, any case, e.g. '*_DSN') whose values are secret",
    )
    patterns: list[Annotated[str, AfterValidator(_compiles)]] = Field(
        default_factory=list, description="more regular expressions for secrets in a run's output"
    )


class HistoricalCluster(StrictModel):
    """A failure cluster recorded before planctl's triage (in another tool or project): its id is
    kept, and a triage run here resolves it once all of its tests pass."""

    id: str = Field(pattern=CLUSTER_PATTERN)
    tests: list[str] = Field(min_length=1, description="pytest node ids of its failing tests, as collected here")
    origin: str = Field(description="where and when it was recorded, e.g. the originating project's triage run")
    summary: str = Field("", description="what failed, in words")


class TriageSettings(StrictModel):
    """Defaults of `planctl triage run` for the initiative that owns the project's full-suite triage."""

    task: str | None = Field(
        None, description="the task whose attempts the triage runs are (its phase names their folder); default: first"
    )

    args: list[str] = Field(default_factory=list, description="pytest arguments when the command line gives none")
    chunks: int = Field(4, ge=1, description="how many chunks to split the suite into")
    split: Literal["balanced", "file"] = Field(
        "balanced", description="balanced: by recorded durations; file: one chunk per test file"
    )
    jobs: int = Field(1, ge=1, description="chunks run at once")
    timeout_per_chunk: float = Field(1800, gt=0, description="seconds before a chunk is stopped")
    historical_clusters: list[HistoricalCluster] = Field(default_factory=list)


class Plan(StrictModel):
    schema_version: Literal[1] = 1
    initiative: Initiative
    artifacts_root: PathText | None = Field(
        None, description="where evidence bundles go, inside the project; default reports/<initiative id>"
    )
    outside_paths: list[PathText] = Field(
        default_factory=list,
        description="absolute folders outside the project that run specs may use (cwd, artifacts, checks, data)",
    )
    guard_env: EnvMap = Field(default_factory=dict, description="environment for every run")
    limits: Limits = Field(default_factory=Limits)
    redact: Redaction = Field(default_factory=Redaction)
    reproduction: Command | None = Field(None, description="the command that shows the problem")
    cluster: ClusterIds = Field(
        default_factory=list, description="failure cluster(s) this plan fixes, e.g. C19 (`planctl triage link` sets it)"
    )
    prior_attempts: int = Field(0, ge=0, description="attempts made before planctl; numbering continues after")
    context: Context = Field(default_factory=Context)
    phases: list[Phase]
    exit_criteria_summary: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    triage: TriageSettings | None = Field(
        None, description="makes this plan the project's triage initiative (`planctl triage run`)"
    )

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
