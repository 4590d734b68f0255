"""The evidence bundle of one attempt: reports/<artifacts root>/phase_<x>/<STAMP>/.

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

import glob
import importlib.metadata
import json
import platform
import shlex
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from planctl.confine import expand
from planctl.project import Project
from planctl.safeio import atomic_write_text
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


def junit_counts(path: Path) -> dict[str, int] | None:
    """passed/failed/errors/skipped/tests summed over the test suites of a junit XML file."""
    if not path.exists():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return None
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    totals = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        totals["tests"] += int(suite.get("tests", 0))
        totals["failed"] += int(suite.get("failures", 0))
        totals["errors"] += int(suite.get("errors", 0))
        totals["skipped"] += int(suite.get("skipped", 0))
    totals["passed"] = totals["tests"] - totals["failed"] - totals["errors"] - totals["skipped"]
    return totals


def collect_artifacts(patterns: list[str], cwd: Path, bundle: Bundle, env: dict[str, str]) -> list[str]:
    """Copy declared artifacts into the bundle (those already inside it stay put); return the
    patterns that matched nothing."""
    missing = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(cwd / expand(pattern, env)), recursive=True))
        if not matches:
            missing.append(pattern)
        for match in map(Path, matches):
            if bundle.path in match.resolve().parents:
                continue
            target = bundle.path / "artifacts" / _inside(match, cwd)
            target.parent.mkdir(parents=True, exist_ok=True)
            if match.is_dir():
                shutil.copytree(match, target, dirs_exist_ok=True)
            else:
                shutil.copy2(match, target)
    return missing


def _inside(path: Path, cwd: Path) -> Path:
    try:
        return path.resolve().relative_to(cwd.resolve())
    except ValueError:
        return Path(path.name)


def listing(bundle: Bundle) -> list[str]:
    return sorted(str(p.relative_to(bundle.path)) for p in bundle.path.rglob("*") if p.is_file())
