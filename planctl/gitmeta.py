"""Git metadata for bundles and attempts, and the one commit that closes an attempt.

The commit holds exactly the paths planctl wrote. They are staged in a temporary copy of the index
and committed from it with ``git commit --only``, so anything else the user had staged stays staged
and out. Only once the commit exists does the real index learn the new versions of planctl's
paths; a commit that fails (a hook said no) leaves the real index exactly as it was.
"""

from __future__ import annotations

import shutil
import tempfile
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
    real_index = Path(repo.working_tree_dir or ".") / repo.git.rev_parse("--git-path", "index")
    with tempfile.TemporaryDirectory(prefix="planctl-index-", dir=repo.git_dir) as folder:
        index = {"GIT_INDEX_FILE": str(Path(folder) / "index")}
        if real_index.exists():
            shutil.copyfile(real_index, index["GIT_INDEX_FILE"])
        try:
            # --force: a bundle folder may sit under a .gitignore'd reports/; it is evidence all the same.
            repo.git.add("--force", "--", *names, env=index)
            repo.git.commit("--only", "--quiet", "-m", message, "--", *names, env=index)
        except git.GitCommandError as err:
            said = [line.strip() for line in f"{err.stdout or ''}\n{err.stderr or ''}".splitlines() if line.strip()]
            said = [line.removeprefix("stdout: ").removeprefix("stderr: ").strip("'") for line in said]
            raise PlanctlError(
                f"git commit failed (exit {err.status}, a git hook may have refused it): {said[-1] if said else err}; "
                "the attempt is recorded but not committed, and none of its files is staged",
                exit_code=1,
            ) from None
    repo.git.reset("--quiet", "--", *names)  # the real index now agrees with the commit for these paths
    return repo.head.commit.hexsha


def commit_message(subject: str, trailers: dict[str, object]) -> str:
    lines = [f"{key}: {value}" for key, value in trailers.items() if value is not None]
    return subject + "\n\n" + "\n".join(lines) + "\n"
