"""The Typer application and what every command shares: the project root and console output."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from planctl.errors import Diagnostic
from planctl.project import Project
from planctl.store import PlanFile, find_plan, read_valid

if TYPE_CHECKING:
    from rich.console import Console

# Plans a command about the whole folder skipped because they do not load; main() turns any into exit 1.
skipped: list[Diagnostic] = []

app = typer.Typer(
    name="planctl",
    help="Typed remediation plans, evidence bundles and generated ledgers.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

RootOption = typer.Option(
    None,
    "--root",
    envvar="PLANCTL_ROOT",
    help="Project root (the folder holding plans/). Default: the nearest such folder above the working directory.",
    file_okay=False,
)


PlanArgument = typer.Argument(..., help="Plan file name (gradient-flow-001) or initiative id.")
AnyPlanArgument = typer.Argument(None, help="Plan file name or initiative id; default: every plan.")
JsonOption = typer.Option(False, "--json", help="Print JSON for machines.")


@app.callback()
def _options(ctx: typer.Context, root: Path | None = RootOption) -> None:
    ctx.obj = root


def project(ctx: typer.Context) -> Project:
    return Project.find(ctx.find_root().obj)


def selected_plans(ctx: typer.Context, plan: str | None) -> list[PlanFile]:
    """The plan named on the command line, or every plan of the project that loads: a broken one
    is reported on one line and skipped, and the command exits 1 once it has shown the others."""
    proj = project(ctx)
    return [find_plan(proj, plan)] if plan else valid_plans(proj)


def valid_plans(proj: Project) -> list[PlanFile]:
    plan_files, problems = read_valid(proj)
    for problem in problems:
        print(f"planctl: error: {problem.location}: {problem.message}; plan skipped", file=sys.stderr)
    skipped.extend(problems)
    return plan_files


def console() -> Console:
    """rich's console, for commands that draw tables or styles; plain text goes through print()."""
    from rich.console import Console  # imported by the commands that draw: status, next, validate start faster

    # highlight=False: plan text is shown as written; markup=False: "[D]" is a state, not a style;
    # soft_wrap: long lines are left to the terminal rather than broken mid-path.
    return Console(highlight=False, markup=False, soft_wrap=True)


def title_line(bold: str, rest: str) -> str:
    """``bold`` then ``rest`` on one line: on a terminal, cut to its width with ``bold`` in bold
    (unless NO_COLOR is set or TERM is dumb); elsewhere as is."""
    text = bold + rest
    if not sys.stdout.isatty() or os.environ.get("TERM") == "dumb":
        return text
    width = shutil.get_terminal_size().columns
    if len(text) > width:
        text = text[: width - 1] + "…"
    if "NO_COLOR" in os.environ or len(text) < len(bold):
        return text
    return f"\x1b[1m{bold}\x1b[0m{text[len(bold) :]}"


def warn(message: str) -> None:
    print(f"planctl: warning: {message}", file=sys.stderr)


def note(message: str) -> None:
    print(f"planctl: note: {message}", file=sys.stderr)


def plain_table(
    headers: list[str], rows: list[list[str]], right: tuple[str, ...] = (), max_width: dict[str, int] | None = None
) -> str:
    """Columns separated by two spaces, numbers right-aligned, long cells cut with an ellipsis.
    Plain string work: rich's table layout costs more than loading 40 plans."""
    limits = max_width or {}
    cut = [
        [cell if len(cell) <= limits.get(h, 10**6) else cell[: limits[h] - 1] + "…" for h, cell in zip(headers, row)]
        for row in rows
    ]
    widths = [max([len(h), *(len(r[k]) for r in cut)]) for k, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        parts = [c.rjust(w) if h in right else c.ljust(w) for h, c, w in zip(headers, cells, widths)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(r) for r in cut)])


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))
