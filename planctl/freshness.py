"""Whether a done task's evidence still holds: a task's inputs, their content hashes, and staleness.

The inputs of a task are the files its evidence depends on:

- the run spec's ``inputs`` (paths or globs, relative to the run's ``cwd``, no ``$VARIABLES``:
  staleness is judged outside any run) when it declares any;
- otherwise the files and folders its command and checks name (``tests/x.py::TestY::test_z`` names
  ``tests/x.py``), plus the project's source packages (top-level folders holding ``__init__.py``,
  except tests);
- always the run spec itself, with the plan's guard environment: editing how a task is proven
  makes its old proof stale.

What planctl writes is never a derived input: plans (their run specs count on their own), attempt
records, ledgers, plan views and evidence bundles are left out, and the generated
``<!-- planctl:... -->`` blocks inside a markdown file are blanked before it is hashed (they change
with every attempt).

Every attempt records the SHA-256 of its input manifest (``inputs_digest``) and keeps the manifest,
one hash per file, as ``inputs.json`` in its bundle. A done task is *stale* when the digest of its
inputs now differs from that of its latest passing attempt (or when no passing attempt recorded
one); the two manifests say which files changed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shlex
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from planctl.confine import Confinement
from planctl.docblocks import refresh_blocks
from planctl.errors import PlanctlError
from planctl.project import Project
from planctl.readback import read_bounded
from planctl.records import Attempt, Records
from planctl.schema import Plan, Task, TaskState
from planctl.store import PlanFile

MANIFEST_NAME = "inputs.json"
_SKIPPED_NAMES = {"__pycache__", "node_modules"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_SHELL_OPERATORS = re.compile(r"[;&|()<>]+")
_CHUNK = 1 << 20
_MARKDOWN_BYTES = 8 << 20  # larger markdown files are hashed as they are


@dataclass
class Manifest:
    """Input name -> SHA-256 of its content (None: absent, or not a regular file)."""

    files: dict[str, str | None] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        lines = "".join(f"{name}\t{sha or '-'}\n" for name, sha in sorted(self.files.items()))
        return hashlib.sha256(lines.encode("utf-8")).hexdigest()

    def as_json(self) -> dict[str, object]:
        return {"digest": self.digest, "files": dict(sorted(self.files.items()))}


class Hasher:
    """Content hashes of files, the files under folders, and what the file system says about a
    plan's folders: each found once per planctl command however many tasks need them."""

    def __init__(self) -> None:
        self._known: dict[Path, str | None] = {}
        self._walked: dict[tuple[Path, tuple[Path, ...]], list[tuple[str, Path]]] = {}
        self._packages: dict[Path, list[Path]] = {}
        self._generated: dict[tuple[Path, str], tuple[Path, ...]] = {}
        self._confinements: dict[tuple[Path, tuple[str, ...]], Confinement] = {}

    def __call__(self, path: Path) -> str | None:
        if path not in self._known:
            self._known[path] = _hash_file(path)
        return self._known[path]

    def files_under(self, project: Project, folder: Path, skip: tuple[Path, ...]) -> list[tuple[str, Path]]:
        """(name as shown, resolved path) of every file under ``folder``, hidden, compiled and
        ``skip`` folders left out."""
        key = (folder, skip)
        if key not in self._walked:
            found = []
            for here, dirs, files in os.walk(folder):
                dirs[:] = sorted(d for d in dirs if not _skipped(d) and (Path(here) / d).resolve() not in skip)
                for name in sorted(files):
                    if not _skipped(name):
                        path = (Path(here) / name).resolve()
                        found.append((project.display(Path(here) / name), path))
            self._walked[key] = found
        return self._walked[key]

    def source_packages(self, project: Project) -> list[Path]:
        if project.root not in self._packages:
            self._packages[project.root] = source_packages(project)
        return self._packages[project.root]

    def generated_folders(self, project: Project, plan: Plan) -> tuple[Path, ...]:
        key = (project.root, plan.bundle_root)
        if key not in self._generated:
            self._generated[key] = _generated_folders(project, plan)
        return self._generated[key]

    def confinement(self, project: Project, plan: Plan) -> Confinement:
        key = (project.root, tuple(plan.outside_paths))
        if key not in self._confinements:
            self._confinements[key] = Confinement.of(project.root, plan)
        return self._confinements[key]


def _hash_file(path: Path) -> str | None:
    """SHA-256 of a regular file's content; None for anything else (a folder, a device, a pipe: never
    read, /dev/zero would not end). A markdown file's generated blocks are blanked first."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        if path.suffix == ".md" and info.st_size <= _MARKDOWN_BYTES:
            data = handle.read()
            if b"<!-- planctl:" in data:
                text = data.decode("utf-8", errors="surrogateescape")
                data = _without_generated_blocks(text, str(path)).encode("utf-8", errors="surrogateescape")
            return _sha(data)
        digest = hashlib.sha256()
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
        return digest.hexdigest()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _without_generated_blocks(text: str, where: str) -> str:
    try:
        return refresh_blocks(text, lambda *_: "", where)
    except PlanctlError:  # an unclosed block: hash the text as it is
        return text


def run_spec_key(plan_file: PlanFile, task: Task) -> str:
    return f"{plan_file.display}#{task.id}.run"


def task_manifest(project: Project, plan_file: PlanFile, task: Task, hasher: Hasher | None = None) -> Manifest:
    """The inputs of ``task`` (which must have a run spec) and their hashes, as they are now."""
    spec = task.run
    assert spec is not None
    hasher = hasher or Hasher()
    confinement = hasher.confinement(project, plan_file.plan)
    cwd = (project.root / spec.cwd).resolve()
    manifest = Manifest()
    spec_text = json.dumps({"run": spec.model_dump(mode="json"), "guard_env": plan_file.plan.guard_env}, sort_keys=True)
    manifest.files[run_spec_key(plan_file, task)] = _sha(spec_text.encode("utf-8"))
    if spec.inputs:
        for pattern in spec.inputs:
            matches = sorted(glob.glob(str(cwd / pattern), recursive=True))
            if not matches:
                manifest.files[pattern] = None
            for match in map(Path, matches):
                if confinement.allows(match):  # the plan was checked; a link may still lead out
                    _add(project, manifest, match, hasher, skip=())
        return manifest
    skip = hasher.generated_folders(project, plan_file.plan)
    for path in [*_named_paths(project, confinement, task, cwd), *hasher.source_packages(project)]:
        _add(project, manifest, path, hasher, skip)
    return manifest


def _add(project: Project, manifest: Manifest, path: Path, hasher: Hasher, skip: tuple[Path, ...]) -> None:
    if path.is_dir() and not path.is_symlink():
        for name, resolved in hasher.files_under(project, path, skip):
            manifest.files[name] = hasher(resolved)
    else:
        real = path.resolve()
        if not any(folder in skip for folder in real.parents):
            manifest.files[project.display(path)] = hasher(real)


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in _SKIPPED_NAMES or name.endswith(_SKIPPED_SUFFIXES)


def _generated_folders(project: Project, plan: Plan) -> tuple[Path, ...]:
    """Folders planctl writes into: never inputs, even when a command names a folder above them.
    Plans change state with every pass; what matters of them is the run spec, hashed on its own."""
    folders = (project.plans_dir, project.attempts_dir, project.ledgers_dir, project.views_dir)
    return tuple(p.resolve() for p in (*folders, project.root / plan.bundle_root))


def source_packages(project: Project) -> list[Path]:
    """Top-level Python packages of the project (folders holding __init__.py), tests excepted."""
    return sorted(
        p
        for p in project.root.iterdir()
        if p.is_dir() and not _skipped(p.name) and p.name not in ("tests", "test") and (p / "__init__.py").is_file()
    )


def _named_paths(project: Project, confinement: Confinement, task: Task, cwd: Path) -> list[Path]:
    """Existing files and folders inside the project that the command, the checks and the
    template data name (words with ``$VARIABLES`` are run outputs, e.g. bundle files)."""
    spec = task.run
    assert spec is not None
    words: list[str] = []
    if spec.command:
        try:
            tokens = shlex.split(spec.command)
        except ValueError:  # unbalanced quotes: the words are still worth a look
            tokens = spec.command.split()
        for token in tokens:
            words += _SHELL_OPERATORS.split(token)
    words += [check.path for check in spec.expect.files]
    words += [metric.file for metric in spec.expect.metrics]
    words += [path for artifact in spec.render for path in artifact.data.values()]
    found: list[Path] = []
    for word in words:
        word = word.split("=", 1)[1] if "=" in word else word  # --out=x, VAR=x
        word = word.split("::", 1)[0]  # pytest node ids
        if not word or "$" in word or word.startswith("-"):
            continue
        path = cwd / word
        if path.exists() and confinement.inside_project(path):
            found.append(path)
    for artifact in spec.render:
        template = project.templates_dir / artifact.template
        if template.is_file():
            found.append(template)
    return found


def changed_inputs(before: dict[str, str | None], now: dict[str, str | None]) -> list[str]:
    """Inputs added, removed or modified between two manifests."""
    return sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))


Status = Literal["fresh", "stale", "unverifiable"]


@dataclass(frozen=True)
class Freshness:
    """Whether a done task's evidence holds for its inputs as they are now."""

    task: str
    phase: str
    status: Status
    reason: str
    since: int | None = None  # the passing attempt the evidence comes from
    changed: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return asdict(self)

    def describe(self, shown: int = 3) -> str:
        """One line for people: the reason, and the first changed inputs."""
        if not self.changed:
            return self.reason
        names = ", ".join(self.changed[:shown])
        more = f" and {len(self.changed) - shown} more" if len(self.changed) > shown else ""
        return f"{self.reason}: {names}{more}"


def last_pass(records: Records, task_id: str) -> Attempt | None:
    """The task's latest passing attempt: the evidence its done state stands on."""
    passes = [a for a in records.attempts if a.task == task_id and a.outcome == "passed"]
    return max(passes, key=lambda a: a.number, default=None)


def plan_freshness(
    project: Project, plan_file: PlanFile, records: Records, hasher: Hasher | None = None
) -> list[Freshness]:
    """The freshness of every done task of a plan, in plan order."""
    hasher = hasher or Hasher()
    return [
        task_freshness(project, plan_file, phase.id, task, records, hasher)
        for phase, task in plan_file.plan.tasks()
        if task.state is TaskState.DONE
    ]


def task_freshness(
    project: Project, plan_file: PlanFile, phase_id: str, task: Task, records: Records, hasher: Hasher
) -> Freshness:
    if task.run is None:
        return Freshness(task.id, phase_id, "unverifiable", "done without a run spec: nothing can re-check it")
    proof = last_pass(records, task.id)
    if proof is None:
        return Freshness(task.id, phase_id, "stale", "no passing attempt on record")
    if proof.inputs_digest is None:
        return Freshness(task.id, phase_id, "stale", f"attempt #{proof.number} recorded no inputs", proof.number)
    now = task_manifest(project, plan_file, task, hasher)
    if now.digest == proof.inputs_digest:
        return Freshness(task.id, phase_id, "fresh", f"inputs unchanged since attempt #{proof.number}", proof.number)
    before = _recorded_manifest(project, hasher.confinement(project, plan_file.plan), plan_file.plan, proof)
    if before is None:
        reason = f"inputs changed since attempt #{proof.number} (its {MANIFEST_NAME} is missing: not which)"
        return Freshness(task.id, phase_id, "stale", reason, proof.number)
    reason = f"inputs changed since attempt #{proof.number}"
    return Freshness(task.id, phase_id, "stale", reason, proof.number, changed_inputs(before, now.files))


def _recorded_manifest(
    project: Project, confinement: Confinement, plan: Plan, attempt: Attempt
) -> dict[str, str | None] | None:
    """The manifest an attempt left in its bundle; None when it is gone or not one."""
    path = project.root / attempt.bundle / MANIFEST_NAME
    if not confinement.inside_project(path):
        return None
    try:
        files = json.loads(read_bounded(path, plan.limits.read_bytes))["files"]
    except (OSError, PlanctlError, ValueError, KeyError, TypeError):
        return None
    return files if isinstance(files, dict) else None
