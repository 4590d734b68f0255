"""The evidence bundle of one attempt: reports/<artifacts root>/phase_<x>/<STAMP>/ (a triage run's
chunks have folders of their own in it: chunks/chunk_NN/).

commands.txt   how to rerun the command (directory, environment, command line)
output.log     the command's combined stdout and stderr, as streamed
exit_code.txt  its exit status
env.json       Python, torch, platform, device and the guard variables
git.json       commit, branch, dirty state and diff stat before the run
junit.xml      for pytest commands (pytest writes it; planctl parses the counts)
summary.md     rendered from summary.md.j2 when the attempt ends
...            rendered templates and the declared artifacts
"""

from __future__ import annotations

import functools
import glob
import importlib.metadata
import json
import os
import platform
import shlex
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from planctl.confine import Confinement, expand
from planctl.errors import PlanctlError
from planctl.project import Project
from planctl.readback import human_size, read_bounded
from planctl.records import Check
from planctl.redact import Redactor
from planctl.safeio import atomic_write_bytes, atomic_write_text, atomic_writer
from planctl.schema import Phase, Plan

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Bundle:
    path: Path
    stamp: str

    def file(self, name: str) -> Path:
        return self.path / name


def create_bundle(project: Project, plan: Plan, phase: Phase) -> Bundle:
    """A new, empty bundle folder. Two attempts in the same phase and second get STAMP and
    STAMP-2: ``mkdir`` is atomic, so concurrent runs never share a folder."""
    base = project.root / plan.bundle_root / f"phase_{phase.id.lower()}"
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime(STAMP_FORMAT)
    for n in range(1, 1000):
        name = stamp if n == 1 else f"{stamp}-{n}"
        try:
            (base / name).mkdir()
        except FileExistsError:
            continue
        return Bundle(base / name, name)
    raise RuntimeError(f"cannot create a bundle folder under {base}")


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def commands_text(command: str, cwd: Path, variables: dict[str, str]) -> str:
    """A shell snippet that reruns the command as planctl ran it."""
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())
    return f"cd {shlex.quote(str(cwd))}\n{exports}bash -c {shlex.quote(command)}\n"


def environment_snapshot(
    guard_env: dict[str, str], task_env: dict[str, str], run_env: dict[str, str]
) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch": _version("torch"),
        "device": _device(run_env),
        "guard_env": guard_env,
        "task_env": task_env,
        "planctl": _version("nanobrag"),
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _device(run_env: dict[str, str]) -> str:
    hidden = run_env.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        return "cpu (CUDA_VISIBLE_DEVICES hides every GPU)"
    try:  # only here is torch imported: it takes a while, and the guard usually hides GPUs
        import torch
    except ImportError:
        return "unknown (torch not installed)"
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} visible)"
    return "cpu (no CUDA device available)"


_JUNIT_ATTRIBUTES = (("tests", "tests"), ("failed", "failures"), ("errors", "errors"), ("skipped", "skipped"))


def read_junit(path: Path, limit: int) -> ET.Element | None:
    """The root element of a junit XML file; None when there is none. A file over ``limit`` bytes
    or not XML is a PlanctlError saying so."""
    try:
        data = read_bounded(path, limit)
    except FileNotFoundError:
        return None
    try:
        return ET.fromstring(data)
    except ET.ParseError as err:
        raise PlanctlError(f"{path} is not junit XML: {err}") from None


def junit_counts(path: Path, limit: int) -> dict[str, int] | None:
    """passed/failed/errors/skipped/tests summed over the test suites of a junit XML file; None
    when there is none. A file over ``limit`` bytes, not XML, or with counts that are not whole
    numbers is a PlanctlError saying so."""
    root = read_junit(path, limit)
    if root is None:
        return None
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    totals = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key, attribute in (
            ("tests", "tests"),
            ("failed", "failures"),
            ("errors", "errors"),
            ("skipped", "skipped"),
        ):
            value = suite.get(attribute, "0")
            if not value.strip().isdigit():
                raise PlanctlError(f"{path}: testsuite {attribute}={value!r} is not a whole number")
            totals[key] += int(value)
    totals["passed"] = totals["tests"] - totals["failed"] - totals["errors"] - totals["skipped"]
    return totals


ARTIFACT_LIMIT_NAME = "limits.artifact_bytes"


def collect_artifacts(
    patterns: list[str], cwd: Path, bundle: Bundle, env: dict[str, str], confinement: Confinement, limit: int
) -> list[Check]:
    """Copy declared artifacts into the bundle (those already inside it stay put); return a failed
    check for each pattern that matched nothing, each file the plan may not read, and the file
    at which the bundle would outgrow ``limit`` bytes of artifacts (nothing more is copied then).
    Symbolic links are followed only where they stay allowed; copies are atomic."""
    problems: list[Check] = []
    budget = limit
    for pattern in patterns:
        matches = sorted(glob.glob(str(cwd / expand(pattern, env)), recursive=True))
        if not matches:
            problems.append(Check(name=f"artifact {pattern}", passed=False, detail="the run produced no such file"))
        for source in _files(map(Path, matches)):
            if bundle.path in source.resolve().parents:
                continue
            refusal = confinement.refusal("artifact", str(source), source)
            if refusal:
                problems.append(Check(name=f"artifact {pattern}", passed=False, detail=refusal))
                continue
            try:
                size = os.stat(source).st_size
                if size > budget:
                    detail = (
                        f"{source} would take the bundle's artifacts past {ARTIFACT_LIMIT_NAME} "
                        f"({human_size(limit)}); it and what follows are not copied"
                    )
                    return [*problems, Check(name=f"artifact {pattern}", passed=False, detail=detail)]
                budget -= size
                _copy_atomic(source, bundle.path / "artifacts" / _inside(source, cwd), size)
            except (OSError, PlanctlError) as err:
                problems.append(Check(name=f"artifact {pattern}", passed=False, detail=f"{source}: {err}"))
    return problems


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    """The regular files among ``paths`` and below the folders among them (links not followed into)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            for folder, _dirs, names in os.walk(path):
                yield from (Path(folder) / name for name in sorted(names))
        else:
            yield path


def _copy_atomic(source: Path, target: Path, size: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, read_bounded(source, size, ARTIFACT_LIMIT_NAME))


def _inside(path: Path, cwd: Path) -> Path:
    try:
        return path.resolve().relative_to(cwd.resolve())
    except ValueError:
        return Path(path.name)


def listing(bundle: Bundle) -> list[str]:
    return sorted(str(p.relative_to(bundle.path)) for p in bundle.path.rglob("*") if p.is_file())


def redact_bundle(bundle: Bundle, redactor: Redactor, already: Iterable[str] = ()) -> None:
    """Redact every file in the bundle in place (a command may write into it directly, and pytest
    copies captured output into junit.xml), except the names in ``already``; remove links and the
    temporary files a stopped copy left behind. Files are streamed through the redactor, so
    memory stays bounded whatever the command wrote."""
    skip = set(already)
    for path in sorted(p for p in bundle.path.rglob("*") if p.is_file() or p.is_symlink()):
        if path.is_symlink() or (path.name.startswith(".") and path.name.endswith(".tmp")):
            path.unlink()  # a link could lead anywhere; a stray temporary file is half a copy
            continue
        if str(path.relative_to(bundle.path)) in skip:
            continue
        stream = redactor.stream()
        with open(path, "rb") as source, atomic_writer(path) as target:
            for chunk in iter(functools.partial(source.read, 1 << 20), b""):
                target.write(stream.feed(chunk))
            target.write(stream.flush())
