"""Regenerate every file planctl derives from plans and records."""

from __future__ import annotations

from pathlib import Path

from planctl.project import Project
from planctl.store import PlanFile
from planctl.views import write_plan_views


def publish(project: Project, plan_files: list[PlanFile]) -> list[Path]:
    """Re-render all derived files from every plan of the project (``plan_files``, loaded and
    valid) and their records; return the files whose content changed."""
    return write_plan_views(project, plan_files)
