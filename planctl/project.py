"""Where a planctl project keeps things, relative to its root (the folder that holds plans/).

plans/<name>.yaml        the plans (source of truth, hand-edited or imported)
attempts/<name>.yaml     attempt and state-transition records per plan (source of truth)
reports/...              evidence bundles, under each plan's artifacts root
ledgers/*.md             generated ledgers
docs/plans/<name>.md     generated markdown view of each plan
templates/*.j2           the project's templates; they override planctl's defaults
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from planctl.errors import PlanctlError

LOCK_NAME = ".planctl.lock"


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def find(cls, explicit: Path | None = None) -> Project:
        """The project at ``explicit``, or the nearest folder at or above the working directory
        that holds a plans/ folder."""
        if explicit is not None:
            root = explicit.resolve()
            if not root.is_dir():
                raise PlanctlError(f"--root {explicit}: no such directory")
            return cls(root)
        here = Path(os.getcwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / "plans").is_dir():
                return cls(folder)
        raise PlanctlError(f"no plans/ folder in {here} or above it; create one or pass --root")

    @property
    def plans_dir(self) -> Path:
        return self.root / "plans"

    @property
    def attempts_dir(self) -> Path:
        return self.root / "attempts"

    @property
    def ledgers_dir(self) -> Path:
        return self.root / "ledgers"

    @property
    def views_dir(self) -> Path:
        return self.root / "docs" / "plans"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    def plan_paths(self) -> list[Path]:
        if not self.plans_dir.is_dir():
            return []
        return sorted(p for p in self.plans_dir.iterdir() if p.suffix in {".yaml", ".yml"} and p.is_file())

    def display(self, path: Path) -> str:
        """``path`` as shown to users: relative to the project root when inside it."""
        if path.is_absolute() and ".." not in path.parts and path.is_relative_to(self.root):
            return str(path.relative_to(self.root))  # the common case, without resolving links
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)
