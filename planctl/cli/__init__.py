"""planctl's command line: one module per command, registered on the shared Typer app."""

from __future__ import annotations

import sys

from planctl.cli import (  # noqa: F401  (importing a command module registers it)
    attempts,
    import_plan,
    ledger,
    next_tasks,
    render,
    report,
    run,
    schema_export,
    set_state,
    show,
    status,
    triage,
    validate,
    verify,
)
from planctl.cli.app import app, skipped
from planctl.errors import PlanctlError
from planctl.process import Interrupted, interruptible


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Typer reports usage errors itself (exit 2); planctl's own errors
    become one ``planctl: error:`` line and their exit code, never a traceback; SIGINT/SIGTERM
    become one ``planctl: stopped by ...`` line and 130/143 (``run`` records the attempt first). A
    command about a whole folder that skipped a broken plan exits 1 once it has shown the others."""
    skipped.clear()
    try:
        with interruptible():  # Ctrl-C and SIGTERM: one line and 130/143, whatever the command was doing
            app(args=argv, prog_name="planctl")
    except PlanctlError as err:
        print(f"planctl: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except Interrupted as stop:
        print(f"planctl: stopped by {stop}", file=sys.stderr)
        sys.exit(stop.exit_code)
    except SystemExit as exit_:
        if skipped and exit_.code in (0, None):
            sys.exit(1)  # the command went on past a broken plan: it still failed
        raise
    if skipped:
        sys.exit(1)
