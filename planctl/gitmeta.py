"""Git metadata for bundles and attempts, and the one commit that closes an attempt.

The commit holds exactly the paths planctl wrote: they are added to the index, then committed
with ``git commit --only``, which leaves anything else the user had staged staged and out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from planctl.errors import PlanctlError

if TYPE_CHECKING:
    from git import Repo


def open_repo(root: Path) -> Repo | None:
    """The git repository holding ``root``, or None outside one."""
    import git  # gitpython takes a while to import; only runs need it

    try:
        return git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


def git_state(repo: Repo | None) -> dict[str, Any] | None:
    if repo is None:
        return None
    has_head = repo.head.is_valid()
    return {
        "commit": repo.head.commit.hexsha if has_head else None,
        "branch": None if repo.head.is_detached else repo.active_branch.name,
        "dirty": repo.is_dirty(untracked_files=False),
        "diff_stat": repo.git.diff("--stat", "HEAD") if has_head else "",
    }


def commit_paths(repo: Repo, paths: list[Path], message: str) -> str:
    """Commit exactly ``paths`` (files or folders) with ``message``; return the new commit id."""
    import git

    names = sorted({str(p) for p in paths if p.exists()})
    try:
        # --force: a bundle folder may sit under a .gitignore'd reports/; it is evidence all the same.
        repo.git.add("--force", "--", *names)
        repo.git.commit("--only", "--quiet", "-m", message, "--", *names)
    except git.GitCommandError as err:
        detail = (err.stderr or str(err)).strip().splitlines()
        raise PlanctlError(f"git commit failed: {detail[-1] if detail else err}", exit_code=1) from None
    return repo.head.commit.hexsha


def commit_message(subject: str, trailers: dict[str, object]) -> str:
    lines = [f"{key}: {value}" for key, value in trailers.items() if value is not None]
    return subject + "\n\n" + "\n".join(lines) + "\n"
