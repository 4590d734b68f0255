"""The one exception type users see: a single line, a location when there is one, an exit code."""

from __future__ import annotations

USAGE_EXIT = 2  # bad input or flags, as with argparse/click


class PlanctlError(Exception):
    """A user-facing failure, printed as ``planctl: error: <message>`` without a traceback."""

    def __init__(self, message: str, exit_code: int = USAGE_EXIT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Diagnostic:
    """A problem found at a place in a file: ``path:line:col: severity: message``."""

    def __init__(self, path: str, line: int, col: int, message: str, severity: str = "error") -> None:
        self.path, self.line, self.col = path, line, col
        self.message, self.severity = message, severity

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message}"

    def as_error(self) -> PlanctlError:
        return PlanctlError(f"{self.location}: {self.message}")
