"""Regenerate every file planctl derives from plans and records: plan views, ledgers, doc blocks."""

from __future__ import annotations

from pathlib import Path

from planctl.ledger import block_files, entries, ledger_files
from planctl.project import Project
from planctl.records import Records
from planctl.safeio import atomic_write_text
from planctl.store import PlanFile
from planctl.views import render_plan, view_path


def derived_files(
    project: Project, plan_files: list[PlanFile], records: dict[str, Records] | None = None
) -> dict[Path, str]:
    """What every derived file should contain, given all plans of the project (loaded, valid) and
    their records (read from attempts/, except those passed in ``records`` by plan name)."""
    ledger = entries(project, plan_files, records or {})
    files = {view_path(project, p): render_plan(project, p) for p in plan_files}
    return files | ledger_files(project, ledger) | block_files(project, ledger)


def stale_files(project: Project, plan_files: list[PlanFile]) -> list[Path]:
    return [path for path, text in derived_files(project, plan_files).items() if _read(path) != text]


def write_derived(files: dict[Path, str]) -> list[Path]:
    """Write the files whose content differs; return them."""
    return [path for path, text in files.items() if atomic_write_text(path, text)]


def publish(project: Project, plan_files: list[PlanFile]) -> list[Path]:
    """Rewrite the derived files that are out of date; return them. Everything is rendered before
    anything is written, so a template error leaves every file as it was."""
    return write_derived(derived_files(project, plan_files))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
