"""What a command loads: the read-only commands (status, next, validate) start in a fraction of a
second because they import neither YAML library once the plans are in the parse cache, nor rich,
jinja2, GitPython, markdown-it or the run engine. Each check runs in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("yaml", "ruamel.yaml", "rich", "jinja2", "git", "markdown_it", "planctl.engine", "planctl.records")


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
    cache = tmp_path / "cache"
    first = loaded_by_read_only_commands(project, cache)
    assert "yaml" in first and "ruamel.yaml" not in first  # libyaml parsed the plan; ruamel was not needed
    assert loaded_by_read_only_commands(project, cache) == []
