"""Paths that a plan names stay inside the project, unless the plan lets them out by name.

A run spec names paths in several places: its ``cwd``, its artifacts, the JSON files of metric
checks, the files of file checks, the data files of templates and its inputs. Each is resolved the way the run
sees it (``$VARS`` expanded, relative to ``cwd``, symbolic links followed) and must land inside the
project root but outside its ``.git`` folder, or inside one of the absolute folders the plan lists
under ``outside_paths``. The plan's ``artifacts_root`` has no way out: bundles are committed.

The same rules run twice: when a plan is read (``validate`` and ``run`` alike), on every path
whose text needs no run variable; and during a run, on what each path actually resolves to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from planctl.errors import PlanctlError
from planctl.schema import Plan, RunSpec

Loc = tuple[str | int, ...]
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
OPT_IN = "list a folder that holds it under the plan's outside_paths to allow it"


def expand(text: str, env: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced from ``env`` (unknown names are left as written)."""
    return _VARIABLE.sub(lambda m: env.get(m[1] or m[2], m[0]), text)


def _real(path: Path | str) -> Path:
    return Path(os.path.realpath(path))


def _within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or below it; both resolved (as text: walking ``path.parents``
    costs a Path object per level, and freshness asks this thousands of times)."""
    inner, outer = str(path), str(folder)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


@dataclass(frozen=True)
class Confinement:
    """Where one plan's paths may lead: the project (less .git) and its ``outside_paths``."""

    root: Path
    outside: tuple[Path, ...] = ()

    @classmethod
    def of(cls, root: Path, plan: Plan) -> Confinement:
        return cls(_real(root), tuple(_real(p) for p in plan.outside_paths if os.path.isabs(p)))

    def inside_project(self, path: Path) -> bool:
        real = _real(path)
        return _within(real, self.root) and not _within(real, self.root / ".git")

    def allows(self, path: Path) -> bool:
        return self.inside_project(path) or any(_within(_real(path), folder) for folder in self.outside)

    def refusal(self, what: str, text: str, path: Path) -> str | None:
        """Why ``path`` (what ``text`` resolved to) may not be used, or None when it may."""
        if self.allows(path):
            return None
        real = _real(path)
        where = "inside the project's .git folder" if _within(real, self.root / ".git") else "outside the project"
        landing = str(real.relative_to(self.root)) if _within(real, self.root) else str(real)
        shown = f"{text!r}" if landing == text else f"{text!r} resolves to {landing},"
        return f"{what} {shown} {where}; {OPT_IN}"

    def resolve(self, what: str, text: str, base: Path, env: dict[str, str]) -> Path:
        """``text`` as the run sees it; a PlanctlError when it leads where the plan may not go."""
        path = base / expand(text, env)
        refusal = self.refusal(what, text, path)
        if refusal:
            raise PlanctlError(refusal)
        return path


def path_problems(plan: Plan, root: Path) -> list[tuple[Loc, str]]:
    """Paths of ``plan`` that lead out of the project, each with its location in the plan."""
    confinement = Confinement.of(root, plan)
    problems: list[tuple[Loc, str]] = []
    for i, folder in enumerate(plan.outside_paths):
        if not os.path.isabs(folder):
            problems.append((("outside_paths", i), f"outside_paths entry {folder!r} must be an absolute path"))
    if plan.artifacts_root is not None:
        bundles = confinement.root / plan.artifacts_root
        if "$" in plan.artifacts_root or not confinement.inside_project(bundles):
            problems.append(
                (
                    ("artifacts_root",),
                    f"artifacts_root {plan.artifacts_root!r} must be a folder inside the project "
                    "(bundles are committed with it), without $VARIABLES",
                )
            )
    for i, phase in enumerate(plan.phases):
        for j, task in enumerate(phase.tasks):
            if task.run is None:
                continue
            at: Loc = ("phases", i, "tasks", j, "run")
            for loc, what, text, base in _run_paths(task.run, confinement.root):
                if "$" in text:
                    continue  # resolved and checked during the run, once its variables are known
                refusal = confinement.refusal(f"task {task.id}: {what}", text, base / text)
                if refusal:
                    problems.append(((*at, *loc), refusal))
    return problems


def _run_paths(spec: RunSpec, root: Path) -> Iterator[tuple[Loc, str, str, Path]]:
    """(location in the run spec, kind, text, folder it is relative to) of every path of a run spec."""
    yield ("cwd",), "cwd", spec.cwd, root
    cwd = root / spec.cwd
    for k, pattern in enumerate(spec.artifacts):
        yield ("artifacts", k), "artifact", pattern, cwd
    for k, metric in enumerate(spec.expect.metrics):
        yield ("expect", "metrics", k, "file"), "metrics file", metric.file, cwd
    for k, check in enumerate(spec.expect.files):
        yield ("expect", "files", k, "path"), "file check", check.path, cwd
    for k, artifact in enumerate(spec.render):
        for name, data in artifact.data.items():
            yield ("render", k, "data", name), "template data", data, cwd
    for k, pattern in enumerate(spec.inputs):
        yield ("inputs", k), "input", pattern, cwd
