"""What a command loads: the read-only commands (status, next, validate) start in a fraction of a
second because they import neither YAML library once the plans are in the parse cache, nor rich,
jinja2, GitPython, markdown-it, the run engine or the report. Each check runs in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from planctl.project import Project
from planctl.records import Attempt, Records, records_path, save_records

HEAVY = (
    "yaml",
    "ruamel.yaml",
    "rich",
    "jinja2",
    "git",
    "markdown_it",
    "planctl.engine",
    "planctl.report",
)


def loaded_by_read_only_commands(root: Path, cache: Path) -> list[str]:
    """The heavy modules a fresh interpreter holds after status, next and validate on ``root``."""
    script = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from planctl.cli import main
        for command in ("status", "next", "validate"):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                main(["--root", {str(root)!r}, command])
        heavy = {HEAVY!r}
        print(" ".join(sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))))
        """
    )
    env = {**os.environ, "PLANCTL_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_read_only_commands_import_no_heavy_library_once_plans_are_cached(project, tmp_path):
    # status reads the plan's attempt records too (for stale evidence): they go through the cache as well.
    attempt = Attempt(
        number=1, task="A1", phase="A", stamp="s1", outcome="passed", started="2026-01-01T00:00:00Z", bundle="b"
    )
    save_records(records_path(Project(project), "demo"), Records(initiative="DEMO-001", attempts=[attempt]))
    cache = tmp_path / "cache"
    first = loaded_by_read_only_commands(project, cache)
    assert "yaml" in first and "ruamel.yaml" not in first  # libyaml parsed plan and records; no ruamel
    assert loaded_by_read_only_commands(project, cache) == []
