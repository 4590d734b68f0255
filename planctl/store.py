"""Reading and writing plan files: parse, validate with locations, and edit states in place.

A plan is read one way everywhere: its plain data comes from the parse cache (planctl.parsecache),
else from libyaml (planctl.plainyaml), else from ruamel.yaml for text libyaml does not read; then
it is validated. Its round-trip document, which keeps comments and layout, is parsed only when the
plan is edited. Neither YAML library is imported by a command that finds every plan in the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from planctl.confine import path_problems
from planctl.errors import Diagnostic, PlanctlError
from planctl.graph import structure_problems
from planctl.parsecache import TooLarge, cached_data
from planctl.project import Project
from planctl.readback import human_size
from planctl.safeio import atomic_write_text
from planctl.schema import Phase, Plan, Task, TaskState
from planctl.yamlio import NotYaml, dump, guess_indent, load_round_trip, make_yaml, one_line, position, styled

MAX_PLAN_BYTES = 32 << 20
# Values a plan may expand to once YAML aliases are followed: a few aliases nested in one another
# ("billion laughs") would otherwise make every walk of the plan exponential.
MAX_PLAN_VALUES = 2_000_000


@dataclass
class PlanFile:
    path: Path
    display: str  # the path as users see it in messages
    text: str
    plan: Plan
    _doc: Any = field(default=None, repr=False)  # the round-trip document, once parsed
    _node: Any = field(default=None, repr=False)  # libyaml's node tree: positions without the round trip

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def doc(self) -> Any:
        """The round-trip document: edits go here, then get written back. Parsed on first use:
        commands that only read plans never need it."""
        if self._doc is None:
            self._doc = make_yaml(self.indent).load(self.text)
        return self._doc

    @property
    def indent(self) -> tuple[int, int, int]:
        return guess_indent(self.text)

    def position(self, loc: tuple[Any, ...], at_key: bool = False) -> tuple[int, int]:
        """1-based line and column of the value at ``loc`` in the file: from libyaml's node tree
        (composed in C, cheap), or from the round-trip document for text libyaml refuses."""
        from planctl.plainyaml import compose, node_position

        if self._node is None and self._doc is None:
            self._node = compose(self.text)
        if self._node is not None:
            return node_position(self._node, loc, at_key)
        return position(self.doc, loc, at_key)

    def task(self, task_id: str) -> Task:
        return self.locate(task_id)[1]

    def locate(self, task_id: str) -> tuple[Phase, Task]:
        """The task and its phase; an unknown task is an error naming the plan's tasks."""
        found = self.plan.find_task(task_id)
        if found is None:
            known = ", ".join(t.id for _, t in self.plan.tasks())
            raise PlanctlError(f"{self.display}: unknown task '{task_id}' (tasks: {known})")
        return found


def inspect_plan(project: Project, path: Path) -> tuple[PlanFile | None, list[Diagnostic]]:
    """Parse and check one plan file; the plan is None when it does not match the schema."""
    display = project.display(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
        if len(raw) > MAX_PLAN_BYTES:
            return None, [Diagnostic(display, 1, 1, f"larger than {human_size(MAX_PLAN_BYTES)}, the limit for a plan")]
        text = raw.decode("utf-8")
    except OSError as err:
        return None, [Diagnostic(display, 1, 1, f"cannot read: {err.strerror}")]
    except UnicodeDecodeError as err:
        return None, [Diagnostic(display, 1, 1, f"not UTF-8 text: byte {err.start} cannot be decoded")]
    return inspect_text(project, path, text)


def inspect_text(project: Project, path: Path, text: str) -> tuple[PlanFile | None, list[Diagnostic]]:
    """``inspect_plan`` for a plan file that would hold ``text``: how import checks what it is
    about to write."""
    display = project.display(path)
    parsed: dict[str, Any] = {}  # what a parse on a cache miss leaves behind: libyaml's node or ruamel's document

    def parse(source: str) -> Any:  # on a cache miss
        from planctl.plainyaml import fast_load

        fast = fast_load(source)
        if fast is not None:
            parsed["node"] = fast[1]
            return fast[0]
        parsed["doc"] = load_round_trip(source)  # reads what libyaml refused, or says what is wrong and where
        return parsed["doc"]

    try:
        data = cached_data(text, parse, MAX_PLAN_VALUES)
    except TooLarge:
        return None, [Diagnostic(display, 1, 1, f"expands to more than {MAX_PLAN_VALUES:,} values (YAML aliases)")]
    except NotYaml as err:
        return None, [Diagnostic(display, err.line, err.col, f"invalid YAML: {err.reason}")]
    if not isinstance(data, dict):
        return None, [Diagnostic(display, 1, 1, "a plan must be a YAML mapping")]
    try:
        plan = Plan.model_validate(data)
    except ValidationError as err:
        doc = parsed["doc"] if "doc" in parsed else _round_trip(text)
        return None, [
            Diagnostic(
                display,
                *position(doc, e["loc"], at_key=e["type"] == "extra_forbidden"),
                _describe_error(doc, e),
            )
            for e in err.errors()
        ]
    plan_file = PlanFile(path, display, text, plan, parsed.get("doc"), parsed.get("node"))
    found = structure_problems(plan) + path_problems(plan, project.root)
    return plan_file, [Diagnostic(display, *plan_file.position(loc), msg) for loc, msg in found]


def _round_trip(text: str) -> Any:
    """The round-trip document, for error positions and labels; None (positions 1:1) should it not load."""
    try:
        return load_round_trip(text)
    except NotYaml:
        return None


def read_plan(project: Project, path: Path) -> PlanFile:
    plan_file, problems = inspect_plan(project, path)
    if problems:
        raise problems[0].as_error()
    assert plan_file is not None
    return plan_file


def read_all(project: Project) -> list[PlanFile]:
    return [read_plan(project, path) for path in project.plan_paths()]


def read_valid(project: Project) -> tuple[list[PlanFile], list[Diagnostic]]:
    """Every plan that loads cleanly, and the first problem of each one that does not: commands
    about a whole folder report a broken plan and carry on with the others."""
    plan_files, problems = [], []
    for path in project.plan_paths():
        plan_file, found = inspect_plan(project, path)
        if found:
            problems.append(found[0])
        elif plan_file is not None:
            plan_files.append(plan_file)
    return plan_files, problems


def find_plan(project: Project, name: str) -> PlanFile:
    """A plan by file name (``gradient-flow-001``) or initiative id (``GRADIENT-FLOW-001``)."""
    for path in project.plan_paths():
        if name.lower() in (path.stem.lower(), path.name.lower()):
            return read_plan(project, path)
    return select_plan(project, read_valid(project)[0], name)


def select_plan(project: Project, plan_files: list[PlanFile], name: str) -> PlanFile:
    """The plan named ``name`` (file name or initiative id) among already loaded plans."""
    for plan_file in plan_files:
        if name.lower() in (
            plan_file.name.lower(),
            plan_file.path.name.lower(),
            plan_file.plan.initiative.id.lower(),
        ):
            return plan_file
    known = ", ".join(p.name for p in plan_files) or "none"
    raise PlanctlError(f"unknown plan '{name}' (plans in {project.display(project.plans_dir)}: {known})")


def save_plan(plan_file: PlanFile) -> bool:
    return atomic_write_text(plan_file.path, dump(plan_file.doc, make_yaml(plan_file.indent)))


def new_plan_text(plan: Plan, header: str) -> str:
    """YAML for a plan written from scratch (by import): defaults left out, each task's state
    spelled out, long prose folded, ``header`` as the opening comment."""
    data = plan.model_dump(mode="json", exclude_defaults=True)
    for phase_data, phase in zip(data["phases"], plan.phases, strict=True):
        phase_data["tasks"] = [
            {"id": task.id, "description": task.description, "state": task.state.value} | task_data
            for task_data, task in zip(phase_data.get("tasks", []), phase.tasks, strict=True)
        ]
    doc = styled(data)
    doc.yaml_set_start_comment(header)
    return dump(doc, make_yaml())


def set_task_state(
    plan_file: PlanFile, task_id: str, state: TaskState, reason: str | None, waits_on: list[str] | None = None
) -> None:
    """Change a task's state (and its reason, and what a blocked task waits on) in the document,
    keeping everything else as is. A marker kept from an imported plan goes: it described the old state."""
    from ruamel.yaml.comments import CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    plan_file.task(task_id)
    node = next(t for phase in plan_file.doc["phases"] for t in phase.get("tasks", []) if t["id"] == task_id)
    old = node.get("state")
    quoted = (
        type(old) if isinstance(old, (SingleQuotedScalarString, DoubleQuotedScalarString)) else SingleQuotedScalarString
    )
    put_after(node, "state", quoted(state.value), after="description")
    if state.value != old and "marker" in node:
        del node["marker"]
    if state in (TaskState.SKIPPED, TaskState.BLOCKED):
        put_after(node, "reason", reason, after="state")
    elif "reason" in node:
        del node["reason"]
    if state is TaskState.BLOCKED and waits_on:
        put_after(node, "waits_on", CommentedSeq(waits_on), after="reason")
    elif "waits_on" in node:
        del node["waits_on"]
    plan_file.plan = Plan.model_validate(plan_file.doc)


def put_after(node: Any, key: str, value: Any, after: str) -> None:
    """Set ``key`` in a round-trip mapping; a new key goes right after ``after`` (or last)."""
    if key in node:
        node[key] = value
    else:
        keys = list(node)
        node.insert(keys.index(after) + 1 if after in keys else len(keys), key, value)


def _describe_error(doc: Any, error: ErrorDetails) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        where, message = loc[:-1], f"unknown key {_shown(loc[-1])}"
    elif kind == "missing":
        where, message = loc[:-1], f"missing required key '{loc[-1]}'"
    else:
        where, message = loc, one_line(error["msg"].removeprefix("Value error, "))
    label = _label(doc, where)
    return f"{label}: {message}" if label else message


def _shown(key: object) -> str:
    text = str(key)
    return f"'{text}'" if text.isprintable() else repr(text)


def _label(doc: Any, loc: tuple[Any, ...]) -> str:
    """A readable path such as ``phases[B].tasks[B2].state``: list items by their id."""
    parts: list[str] = []
    node = doc
    for key in loc:
        if isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
            item_id = node.get("id") if isinstance(node, dict) else None
            parts[-1:] = [f"{parts[-1] if parts else ''}[{item_id if item_id is not None else key}]"]
        elif isinstance(node, dict) and key in node:
            node = node[key]
            parts.append(str(key) if str(key).isprintable() else repr(key))
    return ".".join(parts)
