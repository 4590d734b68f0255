"""Markdown views rendered from plans through Jinja templates.

Templates are looked up in the project's templates/ folder first, then in planctl's defaults
(planctl/templates/), so a project overrides a default by keeping a file of the same name.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2

from planctl.errors import PlanctlError
from planctl.project import Project
from planctl.schema import Phase, Task
from planctl.store import PlanFile

PLAN_TEMPLATE = "plan.md.j2"
GENERATED_MARKER = "<!-- planctl:generated"
_LIST_ITEM = re.compile(r"(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")


def table_cell(text: object) -> str:
    """Text safe inside a markdown table cell: pipes escaped, line breaks as <br>."""
    return str(text).replace("|", r"\|").replace("\n", "<br>")


@dataclass(frozen=True)
class TaskTable:
    """Consecutive tasks of a phase shown as one table: under ``section`` (a heading line) when
    they came from a sub-table, with the extra ``columns`` their rows carry."""

    section: str | None
    columns: list[str]
    tasks: list[Task]


def task_tables(phase: Phase) -> list[TaskTable]:
    """The phase's tasks as tables: the tasks without a section first (the phase's own table),
    then each section in order of appearance."""
    groups: dict[str | None, list[Task]] = {None: []}
    for task in phase.tasks:
        groups.setdefault(task.section, []).append(task)
    tables = []
    for section, tasks in groups.items():
        if tasks or (section is None and not phase.tasks):
            columns = list(dict.fromkeys(name for task in tasks for name in task.columns))
            tables.append(TaskTable(section, columns, tasks))
    return tables


def join_notes(notes: list[str]) -> str:
    """Notes as markdown blocks: separated by a blank line, except that list items follow each
    other directly, so a list kept item by item reads as the list it was."""
    out, previous = "", None
    for note in notes:
        if previous is not None:
            out += "\n" if _LIST_ITEM.match(previous) and _LIST_ITEM.match(note) else "\n\n"
        out += note
        previous = note
    return out


def environment(project: Project, *, html: bool = False) -> jinja2.Environment:
    """Templates of the project over planctl's defaults; ``html`` escapes what they insert."""
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(project.templates_dir),
                jinja2.PackageLoader("planctl", "templates"),
            ]
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=html,
    )
    env.filters["cell"] = table_cell
    env.filters["task_tables"] = task_tables
    env.filters["notes"] = join_notes
    return env


@contextlib.contextmanager
def template_errors(project: Project, name: str) -> Iterator[None]:
    """Turn a missing or broken template (``name``, or one it imports) into a one-line user error."""
    try:
        yield
    except jinja2.TemplateNotFound as err:
        where = project.display(project.templates_dir)
        raise PlanctlError(f"template {err.name} not found in {where} or planctl's defaults") from None
    except jinja2.TemplateSyntaxError as err:
        raise PlanctlError(f"{err.filename or name}:{err.lineno}: template syntax error: {err.message}") from None
    except jinja2.TemplateError as err:
        raise PlanctlError(f"template {name}: {err.message}") from None


def render_template(project: Project, name: str, **context: object) -> str:
    with template_errors(project, name):
        return environment(project).get_template(name).render(**context)


def view_path(project: Project, plan_file: PlanFile) -> Path:
    return project.views_dir / f"{plan_file.name}.md"


def render_plan(project: Project, plan_file: PlanFile) -> str:
    return render_template(
        project, PLAN_TEMPLATE, plan=plan_file.plan, source=plan_file.display, marker=GENERATED_MARKER
    )
