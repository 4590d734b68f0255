"""Markdown plan -> Plan, losslessly.

The document is read as markdown blocks (``planctl.markdown``). What it maps:

- the initiative: a ``- Initiative: ID — title`` item in a Context section, a ``Plan ID:`` line, the
  first heading (``# ID: Title``, ``# Title ([ID])``), else an id derived from the file name;
- the Context list: goal and dependencies;
- phases: ``Phase X`` headings in any style (``### Phase A — T``, ``### Phase A: T``, ``## Phase 0``,
  a status such as ``✅ COMPLETE`` kept out of the title); without them, numbered sections holding
  task tables (``## 2. Fix``); without those, one implicit phase. Goal/Prereqs/Exit Criteria lines;
- task tables: any table with an ID column and a state column, whatever its header says; a table
  under a sub-heading of a phase (a sub-checklist) keeps that heading as the tasks' ``section``;
  other columns are kept by header; rows split by unescaped pipes are repaired;
- the exit-criteria summary.

Everything else is kept verbatim as notes, one per block (one per item for lists), in order:
context notes before the first phase, phase notes inside a phase, plan notes after the phases.
The view that ``planctl render`` writes imports back to the same plan. Ids that would make an
invalid plan (a phase letter used twice, a task id repeated) get a ``-2`` suffix; the heading
or id as written is kept for views.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from planctl.errors import PlanctlError
from planctl.graph import structure_problems
from planctl.markdown import Block, Item, fit_row, parse_blocks
from planctl.refs import Reference, find_sections
from planctl.schema import EMOJI, Dependency, Plan, TaskState, marker_state
from planctl.views import GENERATED_MARKER

_TAG_ID = r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+"  # initiative ids as plans cite them: GRADIENT-FLOW-001
_TAG = re.compile(rf"\[({_TAG_ID})\]")
_INITIATIVE_VALUE = re.compile(rf"^`?\[?({_TAG_ID}|[A-Z][A-Z0-9]*)\]?`?\s*[—–]\s*(.+)$")
_HEADING_ID = re.compile(rf"^`?({_TAG_ID})`?(?:\s*:\s*|\s+[—–-]\s+|$)(.*)$")
_PLAN_ID = re.compile(rf"^\W*Plan[ -]ID\W*:?\W*\s*`?\[?({_TAG_ID}|[A-Z][A-Z0-9]*)\]?`?\s*$", re.IGNORECASE)
_LABEL = re.compile(r"^\**([A-Z][A-Za-z /&-]*?)\**\s*:\s*\**\s*(.*)$", re.DOTALL)
_PHASE = re.compile(
    r"^(?:\d+(?:\.\d+)*[.)]?\s+)?(?:Phase|PHASE)\s+(?P<id>[A-Z]{1,2}\d*(?:\.\d+)*[a-z]?|\d+(?:\.\d+)*[a-z]?)"
    r"(?=$|[\s:—–.)-])\s*(?:[:—–.)-]+\s*)?(?P<rest>.*)$"
)
_NUMBERED = re.compile(r"^(?P<id>\d+(?:\.\d+)*)[.)]?\s+(?P<rest>.+)$")
_STATUS = re.compile(
    r"\s*(?:[—–:-]\s*)?(?:(?:[\u2705\u2714\u2611\u23f3\u26d4\u274c\u2713\U0001f6a7\U0001f504]\ufe0f?\s*)+"
    r"(?:[A-Z][A-Z ]*[A-Z])?|\b(?:COMPLETE|COMPLETED|DONE|IN PROGRESS|BLOCKED|PENDING|SKIPPED|ARCHIVED)\b|"
    r"[(\[](?i:complete|completed|done|in progress|blocked|pending|skipped|archived|deferred|"
    r"partial(?:ly complete)?)[)\]])"
    r"\s*$"
)
_CONTEXT = re.compile(r"^Context\b\s*:?$", re.IGNORECASE)
_EXIT_SUMMARY = re.compile(r"^Exit Criteria\b", re.IGNORECASE)
_FIELD = re.compile(
    r"^\s*(?:[-*+]\s+)?\**(Goal|Prereqs?|Prerequisites|Exit Criteria)\**\s*:\s*\**\s*(.*)$", re.IGNORECASE
)
_FIELD_KEYS: dict[str, PhaseField] = {
    "goal": "goal",
    "prereq": "prereqs",
    "prereqs": "prereqs",
    "prerequisites": "prereqs",
}
_GOAL_LABELS = {"phase goal", "plan goal", "goal"}
_ATTEMPT = re.compile(r"Attempts?\s+#(\d+)(?:\s*[–-]\s*#?(\d+))?")
_GUARD = re.compile(r"\b([A-Z][A-Z0-9_]{2,})=([^\s`]+)")
_CODE = re.compile(r"`([^`]+)`")
_STAMP = re.compile(r"\d{8}T\d{6}Z")
_PLAIN_PATH = re.compile(r"reports(?:/[\w-][\w.-]*)+")
_BRACKETS = re.compile(r"\[\s*[A-Za-z~-]?\s*\]")
_LEADING_EMOJI = re.compile(rf"^(?:{EMOJI.pattern}\s*)+")
_SKIP_PREFIX = re.compile(r"^\**(?:SKIPPED|Skipped|BLOCKED|Blocked|N/A)\**\s*[—–:-]\s*")
_WAITS = re.compile(
    r"\b(?:blocked (?:by|on)|waiting (?:on|for)|waits (?:on|for)|depends on|until)\s+"
    r"((?:`?\[?[A-Za-z0-9][\w.-]*\]?`?(?:\s*(?:,|and|&)\s*)?)+)",
    re.IGNORECASE,
)
_ID_SHAPE = re.compile(rf"^(?:[A-Za-z]{{0,12}}[-_.]?\d+(?:[._-]?[A-Za-z0-9]+)*|{_TAG_ID})$")
_INVALID_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_ID_HEADERS = {"id", "#", "task id", "ref", "key", "no", "no.", "step", "item id"}
_STATE_HEADERS = {"state", "status", "done", "progress", "✓", "✅", "done?", "state/status"}
_DESCRIPTION_HEADERS = {
    "task description", "task", "description", "item", "action", "title", "work item", "deliverable",
    "what", "summary", "step", "tasks", "activity", "objective", "check", "criterion",
}  # fmt: skip
_GUIDANCE_HEADER = re.compile(
    r"^(?:how|why|guidance|details?|notes?|evidence|comments?|rationale|artifacts?|context)\b", re.IGNORECASE
)
_DEFAULT_REASONS = {TaskState.SKIPPED: "skipped", TaskState.BLOCKED: "blocked"}


@dataclass
class ImportResult:
    plan: Plan
    warnings: list[str] = field(default_factory=list)  # odd input: review it
    notes: list[str] = field(default_factory=list)  # content kept verbatim as notes
    inferred: list[str] = field(default_factory=list)  # values derived from prose; review them
    repaired: int = 0  # table rows whose unescaped pipes were merged back into cells


def import_markdown(text: str, source: str) -> ImportResult:
    text = text.removeprefix("\ufeff")  # a byte-order mark, as editors on Windows write one
    if "\x00" in text:
        raise PlanctlError(f"{source}: binary file, not a markdown plan")
    if not text.strip():
        raise PlanctlError(f"{source}: empty file")
    return _Importer(source, text).run()


@dataclass
class _Table:
    """A task table: which column holds what."""

    block: Block
    id_col: int
    state_col: int
    description_col: int | None
    guidance_col: int | None
    extra: list[tuple[int, str]]  # other columns: index, header


PhaseField = Literal["goal", "prereqs", "exit_criteria"]


@dataclass
class TaskDraft:
    """A task row as the importer reads it: the fields of :class:`planctl.schema.Task` that a
    markdown row can give, plus where it came from. Validated once, as part of the whole plan."""

    id: str
    description: str
    state: TaskState
    line: int  # 0-based line of the row, for warnings
    label: str | None = None  # the id as written, when it had to change
    marker: str | None = None  # the state cell as written, when it is not the canonical marker
    reason: str | None = None
    waits_on: list[str] = field(default_factory=list)
    guidance: str | None = None  # None: no guidance column (or cell); "" is kept as written
    columns: dict[str, str] = field(default_factory=dict)
    section: str | None = None

    def data(self) -> dict[str, Any]:
        """The task as plan data (what :class:`planctl.schema.Task` validates)."""
        data: dict[str, Any] = {"id": self.id, "description": self.description, "state": self.state}
        optional = {
            "label": self.label,
            "marker": self.marker,
            "reason": self.reason,
            "waits_on": self.waits_on or None,
            "guidance": self.guidance,
            "columns": self.columns or None,
            "section": self.section,
        }
        return data | {key: value for key, value in optional.items() if value is not None}


@dataclass
class PhaseDraft:
    """A phase as the importer builds it, heading by heading: the fields of
    :class:`planctl.schema.Phase`, plus the id as written and the heading's level."""

    label: str  # the id as written
    level: int  # heading level; 0 for the implicit phase
    id: str
    title: str
    heading: str | None = None  # the heading as written, when a view would not give it back; "" implicit
    goal: str = ""
    prereqs: str = ""
    exit_criteria: str = ""
    requires: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tasks: list[TaskDraft] = field(default_factory=list)

    def field_text(self, key: PhaseField) -> str:
        return {"goal": self.goal, "prereqs": self.prereqs, "exit_criteria": self.exit_criteria}[key]

    def set_field(self, key: PhaseField, text: str) -> None:
        if key == "goal":
            self.goal = text
        elif key == "prereqs":
            self.prereqs = text
        else:
            self.exit_criteria = text

    def data(self) -> dict[str, Any]:
        """The phase as plan data (what :class:`planctl.schema.Phase` validates)."""
        data: dict[str, Any] = {"id": self.id, "title": self.title}
        if self.heading is not None:
            data["heading"] = self.heading
        return data | {
            "goal": self.goal,
            "prereqs": self.prereqs,
            "requires": self.requires,
            "exit_criteria": self.exit_criteria,
            "notes": self.notes,
            "tasks": [task.data() for task in self.tasks],
        }


class _Importer:
    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.blocks = [b for b in parse_blocks(text) if not b.source.startswith(GENERATED_MARKER)]
        self.warnings: list[str] = []
        self.kept: list[str] = []
        self.inferred: list[str] = []
        self.repaired = 0
        self.goal = ""
        self.dependencies: list[Dependency] = []
        self.context_notes: list[str] = []
        self.plan_notes: list[str] = []
        self.summary: list[str] = []
        self.phases: list[PhaseDraft] = []
        self.orphans: list[TaskDraft] = []  # tasks of tables before the first phase
        self.consumed: set[tuple[int, int]] = set()  # (block, item or -1) mapped by the initiative pass

    # -- driver ---------------------------------------------------------------------------
    def run(self) -> ImportResult:
        tables = {i: t for i, b in enumerate(self.blocks) if b.kind == "table" and (t := self._task_table(b))}
        initiative = self._initiative()
        phase_heads, sections = self._layout(tables)
        if not tables and not phase_heads:
            raise PlanctlError(
                f"{self.source}: no task table (a table with an ID column and a State column) and no "
                "'Phase' headings; is this a plan?"
            )
        self._walk(tables, phase_heads, sections)
        return self._result(initiative)

    def _line(self, line: int) -> str:
        return f"{self.source}:{line + 1}"

    def _keep(self, text: str, line: int, scope: str) -> None:
        """Keep unmapped markdown verbatim as a note of ``scope`` (context, plan, or a phase)."""
        if not text.strip():
            return
        phase = self.phases[-1] if scope == "phase" else None
        if phase is not None:
            phase.notes.append(text)
            where = f"phase {phase.label}"
        elif scope == "plan":
            self.plan_notes.append(text)
            where = "plan"
        else:
            self.context_notes.append(text)
            where = "context"
        first = text.splitlines()[0]
        excerpt = first if len(first) <= 60 else first[:57] + "..."
        self.kept.append(f"{self._line(line)}: kept as {where} note: {excerpt}")

    def _keep_block(self, index: int, block: Block, scope: str) -> None:
        if block.kind == "list":
            for k, item in enumerate(block.items):
                if (index, k) not in self.consumed:
                    self._keep(item.source, item.start, scope)
        else:
            self._keep(block.source, block.start, scope)

    # -- task tables ------------------------------------------------------------------------
    def _task_table(self, block: Block) -> _Table | None:
        header = [_plain(h).lower() for h in block.header]
        rows = [fit_row(r.source, len(header), None, _is_state)[0] for r in block.rows]
        state_col = next((k for k, h in enumerate(header) if h in _STATE_HEADERS), None)
        if state_col is None and rows:
            votes = [sum(_is_state(row[k]) for row in rows) for k in range(len(header))]
            best = max(range(len(header)), key=lambda k: votes[k])
            state_col = best if votes[best] * 2 > len(rows) and votes[best] else None
        if state_col is None:
            return None
        id_col = next((k for k, h in enumerate(header) if h in _ID_HEADERS), None)
        if id_col is None and rows and sum(bool(_ID_SHAPE.match(_plain(r[0]))) for r in rows) * 2 > len(rows):
            id_col = 0
        if id_col is None and sum(marker_state(row[state_col]) is not None for row in rows) * 2 <= len(rows):
            # A table of something else that has a status (tests, risks): not tasks, kept as a note.
            self.warnings.append(
                f"{self._line(block.start)}: a table with a '{block.header[state_col]}' column but no ID column, "
                "whose cells are mostly not task states; kept as a note"
            )
            return None
        if id_col is None:
            raise PlanctlError(
                f"{self._line(block.start)}: a table with a state column ('{block.header[state_col]}') has no ID "
                "column; give each row an id so its tasks can be imported"
            )
        taken = {id_col, state_col}
        description = next((k for k, h in enumerate(header) if h in _DESCRIPTION_HEADERS and k not in taken), None)
        if description is None:
            description = next((k for k in range(len(header)) if k not in taken), None)
        if description is not None:
            taken.add(description)
        guidance = next((k for k, h in enumerate(header) if _GUIDANCE_HEADER.match(h) and k not in taken), None)
        if guidance is None:
            guidance = next((k for k in range(state_col + 1, len(header)) if k not in taken), None)
        if guidance is not None:
            taken.add(guidance)
        extra = [(k, block.header[k] or f"Column {k + 1}") for k in range(len(header)) if k not in taken]
        return _Table(block, id_col, state_col, description, guidance, extra)

    def _rows(self, table: _Table, section: str | None, scope: str) -> list[TaskDraft]:
        tasks = []
        for row in table.block.rows:
            cells, repaired = fit_row(row.source, len(table.block.header), table.state_col, _is_marker)
            raw_id = _plain(cells[table.id_col])
            task_id = _INVALID_ID_CHARS.sub("-", raw_id).strip("-._")
            if not task_id:
                self.warnings.append(f"{self._line(row.line)}: table row without a task id; kept as a note")
                self._keep(row.source.strip(), row.line, scope)
                continue
            if repaired:
                self.repaired += 1
                self.warnings.append(
                    f"{self._line(row.line)}: task {raw_id}: unescaped '|' inside cells; merged back (escape it as \\|)"
                )
            tasks.append(self._task(table, cells, raw_id, task_id, section, row.line))
        return tasks

    def _task(
        self, table: _Table, cells: list[str], raw_id: str, task_id: str, section: str | None, line: int
    ) -> TaskDraft:
        cell = cells[table.state_col]
        state = marker_state(cell)
        if state is None:
            self.warnings.append(f"{self._line(line)}: task {raw_id} has unknown state '{cell}'; imported as open")
            state = TaskState.OPEN
        description = cells[table.description_col] if table.description_col is not None else ""
        guidance = cells[table.guidance_col] if table.guidance_col is not None else None
        task = TaskDraft(task_id, description, state, line, label=raw_id if task_id != raw_id else None)
        if cell != state.value:
            task.marker = cell
        if state in _DEFAULT_REASONS:
            if cell.strip() == "[-]":
                reason = "not applicable"
            else:
                reason = _SKIP_PREFIX.sub("", guidance or "").strip() or _said_beyond_state(cell)
            if not reason:
                reason = f"{_DEFAULT_REASONS[state]} (no reason given in the markdown plan)"
                self.warnings.append(f"{self._line(line)}: {state.word} task {raw_id} gives no reason")
            task.reason = reason
            if guidance != reason:
                task.guidance = guidance or ""
        elif guidance:
            task.guidance = guidance
        task.columns = {name: cells[k] for k, name in table.extra if cells[k]}
        task.section = section
        return task

    # -- initiative -------------------------------------------------------------------------
    def _initiative(self) -> tuple[str, str]:
        """(id, title) from the best source; what supplied them is consumed, not kept as a note."""
        in_context = False
        with_id: list[tuple[str, str, tuple[int, int]]] = []  # Initiative items with an id
        without_id: list[tuple[str, tuple[int, int]]] = []
        plan_ids: list[tuple[str, tuple[int, int]]] = []
        title_heading: tuple[str | None, str, int] | None = None
        first_heading = True
        for i, block in enumerate(self.blocks):
            if block.kind == "heading":
                if first_heading and not _PHASE.match(block.title) and not _CONTEXT.match(block.title):
                    tag = _TAG.search(block.title)
                    found = None if tag else _HEADING_ID.match(_plain(block.title))
                    if block.level == 1 or found or tag:
                        if found:
                            title_heading = (found[1], (found[2] or "").strip(), i)
                        else:
                            rest = _TAG.sub("", block.title) if tag else block.title
                            rest = re.sub(r"\(\s*`?\s*`?\s*\)|``", "", rest).strip(" -—–:")
                            title_heading = (tag[1] if tag else None, rest, i)
                first_heading = False
                in_context = bool(_CONTEXT.match(block.title))
                if _PHASE.match(block.title):
                    break
                continue
            if block.kind == "list":
                for k, item in enumerate(block.items):
                    if found := _PLAN_ID.match(" ".join(item.text.split())):
                        plan_ids.append((found[1].upper(), (i, k)))
                        continue
                    label = _LABEL.match(item.text)
                    if not in_context:
                        continue
                    if label and label[1].lower() == "initiative":
                        value = " ".join(label[2].split())
                        match = _INITIATIVE_VALUE.match(value)
                        if match:
                            with_id.append((match[1], match[2].strip(), (i, k)))
                        else:
                            without_id.append((value, (i, k)))
            if block.kind == "paragraph":
                for line in block.source.splitlines():
                    if found := _PLAN_ID.match(line.strip()):
                        plan_ids.append((found[1].upper(), (i, -1)))
        if with_id:
            initiative_id, stated_title, where = with_id[0]
            self.consumed.add(where)
            return initiative_id, stated_title
        title: str | None = None
        if title_heading is not None and title_heading[1]:
            title = title_heading[1]
        if plan_ids:
            initiative_id = plan_ids[0][0]
            self.consumed.add(plan_ids[0][1])
        elif title_heading is not None and title_heading[0]:
            initiative_id = title_heading[0]
        else:
            initiative_id = _id_from_file(self.source)
            self.warnings.append(f"{self.source}: no initiative id found; using {initiative_id}")
        if title_heading is not None and (title or title_heading[0]):
            self.consumed.add((title_heading[2], -1))
        if title is None and without_id:
            title = without_id[0][0]
            self.consumed.add(without_id[0][1])
        return initiative_id, title or initiative_id

    # -- layout -----------------------------------------------------------------------------
    def _layout(self, tables: dict[int, _Table]) -> tuple[dict[int, tuple[str, str]], dict[int, int]]:
        """Which headings start phases (block index -> (id as written, title)), and for each task
        table the heading block it sits under as a section (absent: directly in its phase)."""
        headings = [i for i, b in enumerate(self.blocks) if b.kind == "heading"]
        owner = {}  # table block -> index of the nearest heading above it
        for i in tables:
            above = [h for h in headings if h < i]
            if above:
                owner[i] = above[-1]
        phase_heads: dict[int, tuple[str, str]] = {}
        level: int | None = None
        for i in headings:
            block = self.blocks[i]
            if level is not None and block.level <= level:
                level = None
            match = _PHASE.match(block.title)
            if match is None or (level is not None and block.level > level):
                continue
            rest = match["rest"]
            if re.match(r"Checklist\b", rest, re.IGNORECASE):
                continue  # "#### Phase M4 Checklist — ...": a sub-checklist, a section of its phase
            phase_heads[i] = (match["id"], _title(rest) or f"Phase {match['id']}")
            level = block.level
        if not phase_heads:
            holding = set(owner.values())
            level = None
            for i in headings:
                block = self.blocks[i]
                if level is not None and block.level <= level:
                    level = None
                match = _NUMBERED.match(block.title)
                if match is None or level is not None:
                    continue
                extent = self._extent(i)
                if any(i <= t < extent for t in tables) and (
                    i in holding or any(h in holding for h in range(i, extent))
                ):
                    phase_heads[i] = (match["id"], _title(match["rest"]) or match["rest"])
                    level = block.level
        sections = {}
        for table, heading in owner.items():
            title = self.blocks[heading].title
            if heading in phase_heads or _CONTEXT.match(title) or (heading, -1) in self.consumed:
                continue
            sections[table] = heading
        return phase_heads, sections

    def _extent(self, heading: int) -> int:
        level = self.blocks[heading].level
        return next(
            (
                j
                for j in range(heading + 1, len(self.blocks))
                if self.blocks[j].kind == "heading" and self.blocks[j].level <= level
            ),
            len(self.blocks),
        )

    # -- the walk ---------------------------------------------------------------------------
    def _walk(
        self, tables: dict[int, _Table], phase_heads: dict[int, tuple[str, str]], sections: dict[int, int]
    ) -> None:
        implicit = not phase_heads
        if implicit:
            first = min(tables)
            anchor = sections.get(first, first)
            title = self.blocks[anchor].title if anchor in sections.values() else "Tasks"
            self.phases.append(PhaseDraft("A", 0, "A", _title(title) or title, heading=""))
        section_heads = set(sections.values())
        current: PhaseDraft | None = None  # the phase whose extent we are in (explicit phases)
        in_context = in_summary = seen_summary = False
        for i, block in enumerate(self.blocks):
            if block.kind == "heading":
                if current is not None and block.level <= current.level and i not in phase_heads:
                    current = None
                in_summary = False  # the summary is the lists right under its heading
                if i in phase_heads:
                    current = self._start_phase(block, *phase_heads[i])
                    in_context = False
                    continue
                in_context = bool(_CONTEXT.match(block.title)) and current is None
                if in_context or (i, -1) in self.consumed or i in section_heads:
                    continue
                if current is None and _EXIT_SUMMARY.match(block.title):
                    in_summary = seen_summary = True
                    continue
            scope = self._scope(current, implicit, seen_summary)
            if i in tables:
                section = self.blocks[sections[i]].source.strip() if i in sections else None
                self._place(self._rows(tables[i], section, scope), current, implicit)
            elif block.kind == "rule" or ((i, -1) in self.consumed and block.kind != "paragraph"):
                continue
            elif in_context and block.kind == "list":
                self._context_list(i, block)
            elif in_summary and block.kind == "list":
                self.summary += [_summary_item(item) for item in block.items]
            elif current is not None and block.kind in ("paragraph", "list"):
                self._phase_fields(i, block, current)
            elif block.kind == "paragraph" and (i, -1) in self.consumed:
                rest = "\n".join(line for line in block.source.splitlines() if not _PLAN_ID.match(line.strip()))
                self._keep(rest, block.start, scope)
            else:
                self._keep_block(i, block, scope)
        if self.orphans:
            explicit = [p for p in self.phases if p.level]
            if explicit:
                explicit[0].tasks[:0] = self.orphans

    def _scope(self, current: PhaseDraft | None, implicit: bool, seen_summary: bool) -> str:
        if current is not None:
            return "phase"
        if implicit:
            return "plan" if seen_summary else "context"
        return "plan" if self.phases else "context"

    def _place(self, tasks: list[TaskDraft], current: PhaseDraft | None, implicit: bool) -> None:
        if implicit:
            self.phases[0].tasks += tasks
        elif current is not None:
            current.tasks += tasks
        elif self.phases:  # a table between or after phases belongs to the phase before it
            self.phases[-1].tasks += tasks
        else:
            self.orphans += tasks

    def _start_phase(self, block: Block, label: str, title: str) -> PhaseDraft:
        heading = block.source.strip()
        phase = PhaseDraft(
            label, block.level, label, title, heading=None if heading == f"### Phase {label} — {title}" else heading
        )
        self.phases.append(phase)
        return phase

    def _phase_fields(self, index: int, block: Block, phase: PhaseDraft) -> None:
        """Goal/Prereqs/Exit Criteria lines (or list items) of a phase; other lines are notes."""
        if block.kind == "list":
            for item in block.items:
                if not self._phase_field(item.text.replace("\n", " "), phase):
                    self._keep(item.source, item.start, "phase")
            return
        pending: list[str] = []
        start = block.start
        field_open: PhaseField | None = None
        for offset, line in enumerate(block.source.splitlines()):
            match = _FIELD.match(line)
            if match and self._phase_field(line, phase):
                self._keep("\n".join(pending), start, "phase")
                pending, field_open = [], _field_key(match[1])
            elif field_open is not None and not pending:
                phase.set_field(field_open, phase.field_text(field_open) + " " + line.strip())
            else:
                if not pending:
                    start = block.start + offset
                pending.append(line)
                field_open = None
        self._keep("\n".join(pending), start, "phase")

    def _phase_field(self, text: str, phase: PhaseDraft) -> bool:
        match = _FIELD.match(text)
        if not match:
            return False
        key = _field_key(match[1])
        if phase.field_text(key):
            return False
        phase.set_field(key, match[2].strip())
        return True

    # -- context ----------------------------------------------------------------------------
    def _context_list(self, index: int, block: Block) -> None:
        after_dependencies = False
        for k, item in enumerate(block.items):
            if (index, k) in self.consumed:
                after_dependencies = False
                continue
            label = _LABEL.match(item.text)
            name = label[1].lower() if label else ""
            if label and name in _GOAL_LABELS and not self.goal:
                self.goal = " ".join(label[2].split())
                after_dependencies = False
            elif label and name == "dependencies" and not label[2].strip():
                for child in item.children:
                    self._dependency(child)
                after_dependencies = True
            elif after_dependencies and not label and (dependency := _dependency(item.text)) is not None:
                self.dependencies.append(dependency)
            else:
                self._keep(item.source, item.start, "context")
                after_dependencies = False

    def _dependency(self, item: Item) -> None:
        dependency = None if item.children else _dependency(item.text)
        if item.children:
            self._keep(textwrap.dedent(item.source), item.start, "context")
        elif dependency is None:
            self.warnings.append(f"{self._line(item.start)}: no file path in dependency; kept as a note")
            self._keep("- " + " ".join(item.text.split()), item.start, "context")
        else:
            self.dependencies.append(dependency)

    # -- assembly ---------------------------------------------------------------------------
    def _result(self, initiative: tuple[str, str]) -> ImportResult:
        self._disambiguate()
        for k, phase in enumerate(self.phases):
            mentioned = re.findall(r"\bPhases?\s+([A-Za-z0-9]+(?:\.\d+)*)\b", phase.prereqs)
            requires = []
            for label in dict.fromkeys(mentioned):
                match = [p.id for p in self.phases[:k] if p.label == label]
                if match:
                    requires.append(match[-1])
            phase.requires = list(dict.fromkeys(requires))
        task_ids = {task.id for phase in self.phases for task in phase.tasks}
        for phase in self.phases:
            self._waits_on(phase.tasks, task_ids)
        data: dict[str, Any] = {
            "initiative": {"id": initiative[0], "title": initiative[1]},
            "context": {"goal": self.goal, "dependencies": self.dependencies, "notes": self.context_notes},
            "phases": [phase.data() for phase in self.phases],
            "exit_criteria_summary": self.summary,
            "notes": self.plan_notes,
        }
        texts = list(_strings(data))
        data["artifacts_root"] = self._artifacts_root()
        data["guard_env"] = self._guard_env(texts)
        data["prior_attempts"] = max(
            (int(n) for text in texts for m in _ATTEMPT.findall(text) for n in m if n), default=0
        )
        try:
            plan = Plan.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise PlanctlError(f"{self.source}: cannot import: {where}: {first['msg']}") from None
        problems = structure_problems(plan)
        if problems:
            raise PlanctlError(f"{self.source}: cannot import: {problems[0][1]}")
        if plan.prior_attempts:
            self.inferred.append(f"prior_attempts: {plan.prior_attempts} (highest attempt number in the text)")
        return ImportResult(plan, self.warnings, self.kept, self.inferred, self.repaired)

    def _disambiguate(self) -> None:
        """Give repeated phase and task ids a -2, -3... suffix; views keep showing them as written."""
        used: set[str] = set()
        for phase in self.phases:
            new = _unique(phase.id, used)
            if new != phase.id:
                self.warnings.append(
                    f"{self.source}: phase id {phase.label} is used twice; the second is {new} (its heading is kept)"
                )
                phase.id = new
                if phase.heading is None:
                    phase.heading = f"### Phase {phase.label} — {phase.title}"
        used = set()
        for phase in self.phases:
            for task in phase.tasks:
                new = _unique(task.id, used)
                if new != task.id:
                    self.warnings.append(f"{self._line(task.line)}: task id {task.id} is used twice; this one is {new}")
                    task.label = task.label or task.id
                    task.id = new

    def _waits_on(self, tasks: list[TaskDraft], task_ids: set[str]) -> None:
        for task in tasks:
            if task.state is not TaskState.BLOCKED or task.reason is None:
                continue
            found = []
            for match in _WAITS.finditer(task.reason):
                for word in re.split(r"\s*(?:,|\band\b|&)\s*", match[1]):
                    word = word.strip("`[]. ")
                    if (word in task_ids and word != task.id) or re.fullmatch(_TAG_ID, word):
                        found.append(word)
            if found:
                task.waits_on = list(dict.fromkeys(found))
                self.inferred.append(f"task {task.id} waits on {', '.join(task.waits_on)} (from its reason)")

    def _artifacts_root(self) -> str | None:
        # A root counts when bundles of at least two phases sit under it as <root>/phase_<id>/.
        phases_under: dict[str, set[str]] = {}
        for phase in self.phases:
            prose = " ".join(t.guidance or "" for t in phase.tasks)
            prose += " " + phase.exit_criteria
            for root in re.findall(rf"(reports/[^\s`]*?)/phase_{re.escape(phase.label.lower())}/", prose):
                if _PLAIN_PATH.fullmatch(root) and not _STAMP.search(root):
                    phases_under.setdefault(root, set()).add(phase.label)
        candidates = [(len(ids), root) for root, ids in phases_under.items() if len(ids) >= 2]
        if not candidates:
            return None
        root = max(candidates)[1]
        self.inferred.append(f"artifacts_root: {root} (from the bundle paths in the task guidance)")
        return root

    def _guard_env(self, texts: list[str]) -> dict[str, str]:
        env: dict[str, str] = {}
        for text in texts:
            for span in _CODE.findall(text):
                for name, value in _GUARD.findall(span):
                    if env.setdefault(name, value) != value:
                        self.warnings.append(
                            f"{self.source}: {name} appears as {env[name]} and {value}; kept {env[name]}"
                        )
        if env:
            listed = " ".join(f"{k}={v}" for k, v in env.items())
            self.inferred.append(f"guard_env: {listed} (from commands in the text)")
        return env


def _is_state(cell: str) -> bool:
    """A cell that says a state and nothing else: what votes for a state column without a header."""
    return bool(cell.strip()) and marker_state(cell, lenient=False) is not None


def _said_beyond_state(cell: str) -> str:
    """What a state cell says beyond its state, as a reason: 'Blocked on GPU-001' as it is,
    'N/A — float64 only' -> 'float64 only', '[B] waiting for A2' -> 'waiting for A2'; '' for a bare state."""
    rest = _LEADING_EMOJI.sub("", _BRACKETS.sub("", cell, count=1).strip())
    rest = _SKIP_PREFIX.sub("", rest).strip()
    bare = " ".join(EMOJI.sub(" ", rest).split())
    return "" if not bare or marker_state(bare, lenient=False) is not None else rest


def _is_marker(cell: str) -> bool:
    """A bracket state marker: what anchors the state column when a row is repaired (words such
    as 'waiting' or 'done' also occur in prose)."""
    return bool(re.fullmatch(r"\W*\[[ A-Za-z~-]?\]\W*", cell.strip())) and marker_state(cell) is not None


def _plain(text: str) -> str:
    """Text without surrounding emphasis or code marks: ``**A1**`` -> ``A1``."""
    return re.sub(r"^[*_`~]+|[*_`~]+$", "", text.strip()).strip()


def _title(rest: str) -> str:
    return _STATUS.sub("", rest).strip(" —–:-")


def _field_key(label: str) -> PhaseField:
    """The phase field a ``_FIELD`` label names: Goal, Prereq(s)/Prerequisites or Exit Criteria."""
    key = label.lower()
    return "exit_criteria" if key == "exit criteria" else _FIELD_KEYS[key]


def _summary_item(item: Item) -> str:
    if not item.children and "\n\n" not in item.source:
        return " ".join(item.text.split())
    lines = item.source.splitlines()
    marker = re.match(r"\s*(?:[-*+]|\d{1,9}[.)])\s*", lines[0])
    width = marker.end() if marker else 0
    return "\n".join(
        [lines[0][width:], *(line[width:] if line[:width].isspace() else line.strip() for line in lines[1:])]
    )


def _unique(candidate: str, used: set[str]) -> str:
    new, n = candidate, 1
    while new in used:
        n += 1
        new = f"{candidate}-{n}"
    used.add(new)
    return new


def _id_from_file(source: str) -> str:
    stem = source.rsplit("/", 1)[-1]
    stem = re.sub(r"\.(md|markdown)$", "", stem, flags=re.IGNORECASE)
    derived = re.sub(r"[^A-Z0-9]+", "-", stem.upper()).strip("-")
    if len(derived) < 3 or not derived[0].isalpha():
        derived = f"PLAN-{derived}" if derived else "PLAN"
    return derived


def _strings(value: Any) -> Iterator[str]:
    """Every string in the plan data: what inferences read, so that a view infers the same."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, Dependency):
        yield value.note


def _dependency(text: str) -> Dependency | None:
    item = " ".join(text.split())
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
    kind: Literal["source", "evidence"] = "evidence" if ref.path.startswith("reports/") else "source"
    return Dependency(ref=ref, note=note, kind=kind)
