"""Markdown plan -> Plan.

Reads the layout of the hand-written plans: a ``## Context`` list (Initiative, goal, Dependencies),
``### Phase X — Title`` sections with Goal/Prereqs/Exit Criteria lines and a
``| ID | Task Description | State | How/Why & Guidance |`` table, and an exit-criteria summary.
Everything else is kept verbatim as notes (context notes before the first phase, plan notes
after) and reported in a warning: nothing is dropped except horizontal rules and planctl's own
"generated" marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from planctl.errors import PlanctlError
from planctl.refs import Reference, find_sections
from planctl.schema import INITIATIVE_PATTERN, Dependency, Plan, TaskState
from planctl.views import GENERATED_MARKER

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_PHASE = re.compile(r"^Phase\s+([A-Za-z0-9]+)\s*[—–-]\s*(.+)$")
_EXIT_SUMMARY = re.compile(r"^Exit Criteria\b", re.IGNORECASE)
_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,})\s*$")
_LABEL_BULLET = re.compile(r"^\s*- ([A-Z][A-Za-z ]*):\s*(.*)$")
_ID = INITIATIVE_PATTERN.strip("^$")
_INITIATIVE_VALUE = re.compile(rf"^`?\[?({_ID})\]?`?\s*[—–]\s*(.+)$")
_BRACKETED_ID = re.compile(rf"\[({_ID})\]")
_PHASE_FIELD = re.compile(r"^(Goal|Prereqs|Exit Criteria):\s*(.*)$")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_ATTEMPT = re.compile(r"Attempts?\s+#(\d+)(?:\s*[–-]\s*#?(\d+))?")
_GUARD = re.compile(r"\b([A-Z][A-Z0-9_]{2,})=([^\s`]+)")
_CODE = re.compile(r"`([^`]+)`")
_STAMP = re.compile(r"\d{8}T\d{6}Z")
_PLAIN_PATH = re.compile(r"reports(?:/[\w-][\w.-]*)+")
_STATES = {"[ ]": TaskState.OPEN, "[]": TaskState.OPEN, "[D]": TaskState.DONE, "[S]": TaskState.SKIPPED}
_GOAL_LABELS = {"Phase Goal", "Plan Goal", "Goal"}

Line = tuple[int, str]  # 1-based line number, text


@dataclass
class ImportResult:
    plan: Plan
    warnings: list[str] = field(default_factory=list)  # content kept as notes, odd input
    inferred: list[str] = field(default_factory=list)  # values derived from prose; review them


@dataclass
class _Block:
    heading: Line | None
    level: int
    title: str
    body: list[Line]

    def text(self) -> str:
        lines = ([self.heading[1]] if self.heading else []) + [t for _, t in self.body if not _RULE.match(t)]
        return "\n".join(lines).strip("\n")


def import_markdown(text: str, source: str) -> ImportResult:
    return _Importer(source).run(text)


class _Importer:
    def __init__(self, source: str) -> None:
        self.source = source
        self.warnings: list[str] = []
        self.inferred: list[str] = []
        self.initiative_id: str | None = None
        self.title: str | None = None
        self.heading_id: str | None = None
        self.goal = ""
        self.dependencies: list[Dependency] = []
        self.context_notes: list[str] = []
        self.phases: list[dict] = []
        self.summary: list[str] = []
        self.plan_notes: list[str] = []

    # -- driver ---------------------------------------------------------------------------
    def run(self, text: str) -> ImportResult:
        for block in _blocks(text):
            phase = _PHASE.match(block.title)
            if block.title == "Context":
                self._context(block.body)
            elif phase:
                self._phase(phase[1], phase[2], block.body)
            elif _EXIT_SUMMARY.match(block.title) and block.heading:
                self._summary(block.body)
            else:
                if block.level == 1 and (found := _BRACKETED_ID.search(block.title)):
                    self.heading_id = found[1]
                self._keep(block.text(), block.heading or (block.body[0] if block.body else None))
        return self._result(text)

    def _keep(self, note: str, where: Line | None, phase: dict | None = None) -> None:
        """Keep unmapped markdown verbatim as a note (of ``phase``, else of the context before
        the first phase or of the plan after it) and say so."""
        if not note.strip():
            return
        if phase is not None:
            notes, scope = phase["notes"], f"phase {phase['id']}"
        elif self.phases:
            notes, scope = self.plan_notes, "plan"
        else:
            notes, scope = self.context_notes, "context"
        notes.append(note)
        first = note.splitlines()[0]
        excerpt = first if len(first) <= 60 else first[:57] + "..."
        line = f":{where[0]}" if where else ""
        self.warnings.append(f"{self.source}{line}: kept as {scope} note: {excerpt}")

    # -- context ----------------------------------------------------------------------------
    def _context(self, body: list[Line]) -> None:
        pending: list[Line] = []
        in_dependencies = False

        def flush() -> None:
            if pending:
                self._keep("\n".join(t for _, t in pending), pending[0])
                pending.clear()

        for number, line in body:
            label = _LABEL_BULLET.match(line)
            if not line.strip() or _RULE.match(line):
                flush()
                in_dependencies = False
            elif label and label[1] == "Initiative":
                flush()
                self._initiative(label[2])
            elif label and label[1] in _GOAL_LABELS:
                flush()
                self.goal = label[2]
            elif label and label[1] == "Dependencies":
                flush()
                in_dependencies = True
            elif in_dependencies and line.lstrip().startswith("- ") and not label:
                dependency = _dependency(line)
                if dependency is None:
                    self.warnings.append(f"{self.source}:{number}: no file path in dependency; kept as note")
                    pending.append((number, line))
                else:
                    self.dependencies.append(dependency)
            elif in_dependencies and not label and self.dependencies and line.startswith(" "):
                last = self.dependencies[-1]
                last.note = f"{last.note} {line.strip()}".strip()
            else:
                if label:
                    flush()
                in_dependencies = False
                pending.append((number, line))
        flush()

    def _initiative(self, value: str) -> None:
        match = _INITIATIVE_VALUE.match(value.strip())
        if match:
            self.initiative_id, self.title = match[1], match[2].strip()
        else:
            self.title = value.strip()

    # -- phases -----------------------------------------------------------------------------
    def _phase(self, phase_id: str, title: str, body: list[Line]) -> None:
        phase: dict = {"id": phase_id, "title": title.strip(), "notes": [], "tasks": []}
        earlier = [p["id"] for p in self.phases]
        self.phases.append(phase)
        pending: list[Line] = []

        def flush() -> None:
            if pending:
                self._keep("\n".join(t for _, t in pending), pending[0], phase)
                pending.clear()

        for number, line in body:
            stripped = line.strip()
            field_match = _PHASE_FIELD.match(stripped)
            if not stripped or _RULE.match(line):
                flush()
            elif field_match and not pending:
                key = field_match[1].lower().replace(" ", "_")
                phase[key] = field_match[2].strip()
            elif stripped.startswith("|"):
                flush()
                self._row(phase, number, stripped)
            else:
                pending.append((number, line))
        flush()
        mentioned = re.findall(r"\bPhases?\s+([A-Za-z0-9]+)\b", phase.get("prereqs", ""))
        phase["requires"] = [p for p in dict.fromkeys(mentioned) if p in earlier]

    def _row(self, phase: dict, number: int, line: str) -> None:
        cells = [c.strip().replace(r"\|", "|") for c in _CELL_SPLIT.split(line.strip().strip("|"))]
        if (cells and cells[0] == "ID") or all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
            return  # header and separator rows
        if len(cells) != 4 or not cells[0]:
            self._keep(line, (number, line), phase)
            return
        task_id, description, marker, guidance = cells
        state = _STATES.get(marker)
        task: dict = {"id": task_id, "description": description, "guidance": guidance}
        if state is None:
            state = TaskState.OPEN
            self.warnings.append(
                f"{self.source}:{number}: task {task_id} has unknown state marker '{marker}'; imported as open"
            )
            phase["notes"].append(f"Task {task_id} was marked `{marker}` in {self.source}.")
        task["state"] = state
        if state is TaskState.SKIPPED:
            reason = re.sub(r"^\**SKIPPED\**\s*[—–:-]\s*", "", guidance).strip()
            if not reason:
                reason = "skipped (no reason given in the markdown plan)"
                self.warnings.append(f"{self.source}:{number}: skipped task {task_id} gives no reason")
            task["reason"] = reason
        phase["tasks"].append(task)

    def _summary(self, body: list[Line]) -> None:
        for number, line in body:
            if line.startswith("- "):
                self.summary.append(line[2:].strip())
            elif line.startswith("  ") and self.summary and line.strip():
                self.summary[-1] += " " + line.strip()
            elif line.strip() and not _RULE.match(line):
                self._keep(line, (number, line))

    # -- assembly ---------------------------------------------------------------------------
    def _result(self, text: str) -> ImportResult:
        initiative_id = self.initiative_id or self.heading_id
        if initiative_id is None:
            initiative_id = re.sub(
                r"[^A-Z0-9]+", "-", self.source.rsplit("/", 1)[-1].upper().removesuffix(".MD")
            ).strip("-")
            self.warnings.append(f"{self.source}: no initiative id found; using {initiative_id}")
        if not self.phases:
            raise PlanctlError(f"{self.source}: no '### Phase X — Title' sections found; is this a plan?")
        data = {
            "initiative": {"id": initiative_id, "title": self.title or initiative_id},
            "artifacts_root": self._artifacts_root(),
            "guard_env": self._guard_env(text),
            "prior_attempts": max((int(n) for m in _ATTEMPT.findall(text) for n in m if n), default=0),
            "context": {"goal": self.goal, "dependencies": self.dependencies, "notes": self.context_notes},
            "phases": self.phases,
            "exit_criteria_summary": self.summary,
            "notes": self.plan_notes,
        }
        try:
            plan = Plan.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise PlanctlError(f"{self.source}: cannot import: {where}: {first['msg']}") from None
        if plan.prior_attempts:
            self.inferred.append(f"prior_attempts: {plan.prior_attempts} (highest attempt number in the text)")
        return ImportResult(plan, self.warnings, self.inferred)

    def _artifacts_root(self) -> str | None:
        # A root counts when bundles of at least two phases sit under it as <root>/phase_<id>/.
        phases_under: dict[str, set[str]] = {}
        for phase in self.phases:
            prose = " ".join(t["guidance"] for t in phase["tasks"]) + " " + phase.get("exit_criteria", "")
            for root in re.findall(rf"(reports/[^\s`]*?)/phase_{re.escape(phase['id'].lower())}/", prose):
                if _PLAIN_PATH.fullmatch(root) and not _STAMP.search(root):
                    phases_under.setdefault(root, set()).add(phase["id"])
        candidates = [(len(ids), root) for root, ids in phases_under.items() if len(ids) >= 2]
        if not candidates:
            return None
        root = max(candidates)[1]
        self.inferred.append(f"artifacts_root: {root} (from the bundle paths in the task guidance)")
        return root

    def _guard_env(self, text: str) -> dict[str, str]:
        env: dict[str, str] = {}
        for span in _CODE.findall(text):
            for name, value in _GUARD.findall(span):
                if env.setdefault(name, value) != value:
                    self.warnings.append(f"{self.source}: {name} appears as {env[name]} and {value}; kept {env[name]}")
        if env:
            listed = " ".join(f"{k}={v}" for k, v in env.items())
            self.inferred.append(f"guard_env: {listed} (from commands in the text)")
        return env


def _blocks(text: str) -> list[_Block]:
    blocks = [_Block(None, 0, "", [])]
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith(GENERATED_MARKER):
            continue
        heading = _HEADING.match(line)
        if heading:
            blocks.append(_Block((number, line), len(heading[1]), heading[2], []))
        else:
            blocks[-1].body.append((number, line))
    return blocks


def _dependency(line: str) -> Dependency | None:
    item = line.strip()[2:].strip()
    head, _, note = item.partition(" — ")
    spans = _CODE.findall(head)
    first = spans[0] if spans else (head.split() or [""])[0]
    rest = head.replace(f"`{first}`" if spans else first, "", 1)
    try:
        ref = Reference.parse(first)
    except ValueError:
        return None
    if "/" not in ref.path.rstrip("/") and not re.search(r"\.\w+$", ref.path):
        return None
    sections, leftover = find_sections(rest)
    ref = Reference(ref.path, ref.lines, ref.sections + tuple(sections))
    qualifier = rest.strip() if re.sub(r"[\s,]|\band\b", "", leftover) else ""
    note = " — ".join(part for part in (qualifier, note.strip()) if part)
    kind = "evidence" if ref.path.startswith("reports/") else "source"
    return Dependency(ref=ref, note=note, kind=kind)
