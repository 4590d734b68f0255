"""planctl test helpers: an in-process CLI runner and small projects in temporary folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from planctl.cli import main
from tests.planctl.planctl_testkit import GUIDE, RUN_PLAN, SMALL_PLAN, init_repo, write


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture(autouse=True, scope="session")
def _plan_cache(tmp_path_factory):
    """Parsed plans are cached in a folder of the test session, not the user's cache."""
    folder = tmp_path_factory.mktemp("planctl-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLANCTL_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture
def planctl(capsys):
    """Run ``planctl ARGS`` in this process; returns exit code, stdout and stderr."""

    def run(*args: object, root: Path | None = None) -> CliResult:
        argv = (["--root", str(root)] if root else []) + [str(a) for a in args]
        try:
            main(argv)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root holding plans/demo.yaml and the docs it references."""
    write(tmp_path / "plans" / "demo.yaml", SMALL_PLAN)
    write(tmp_path / "docs" / "guide.md", GUIDE)
    return tmp_path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository (one commit) holding plans/run.yaml and what its tasks run."""
    return init_repo(tmp_path / "repo", RUN_PLAN)
