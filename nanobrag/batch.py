"""``nanobrag batch FILE``: many nanoBragg command lines in one process.

The natural replacement for the shell loops C users write: Python, torch and the compiled kernels
are loaded once, not once per image. Each line is one command line as a shell would split it
(quotes work; no pipes or redirections), optionally starting with the program's name; blank lines
and lines starting with ``#`` are skipped. A line that fails is reported with its line number and
the batch goes on (``--stop-on-error`` stops it); the exit status is 2 if any line failed.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TextIO

import typer

from .errors import InputError

_PROGRAM_NAMES = ("nanobragg", "nanobrag")


def command_lines(source: TextIO, name: str) -> list[tuple[int, list[str]]]:
    """(line number, argv) for every command line in ``source``; a bad quote is an input error."""
    lines = []
    for number, text in enumerate(source, start=1):
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            args = shlex.split(stripped, comments=True)
        except ValueError as err:
            raise InputError(f"{name}:{number}: {err}") from err
        if args and Path(args[0]).name.lower() in _PROGRAM_NAMES:
            args = args[1:]
        if args:
            lines.append((number, args))
    return lines


def run_batch(lines: list[tuple[int, list[str]]], name: str, stop_on_error: bool, progress: bool) -> int:
    """Run each command line; returns 0, or 2 when any line failed."""
    from .cli import run_reporting_errors
    from .compiled import repeated_work
    from .progress import ProgressDisplay

    failed = 0
    with ProgressDisplay("batch", "images", enabled=progress) as bar:
        for done, (number, args) in enumerate(lines):
            with repeated_work(len(lines) - done):  # a kernel may pay for its build over the batch
                status = run_reporting_errors([*args, "-noprogress"])
            if status != 0:
                failed += 1
                print(f"nanobrag: batch: {name}:{number} failed", file=sys.stderr)
                if stop_on_error:
                    break
            bar(done + 1, len(lines))
    if failed:
        print(f"nanobrag: batch: {failed} of {len(lines)} command line(s) failed", file=sys.stderr)
        return 2
    return 0


def batch_command(
    file: str = typer.Argument(..., help="File of nanoBragg command lines, one per line; - reads stdin."),
    stop_on_error: bool = typer.Option(False, "--stop-on-error", help="Stop at the first line that fails."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Run many nanoBragg command lines in one process (startup and compiled kernels paid once)."""
    if file == "-":
        lines = command_lines(sys.stdin, "<stdin>")
    else:
        try:
            with open(file, encoding="utf-8") as source:
                lines = command_lines(source, file)
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{file}: cannot read: {err}") from err
    raise typer.Exit(run_batch(lines, file if file != "-" else "<stdin>", stop_on_error, not no_progress))
