"""The one error type for bad user input."""

from __future__ import annotations


class InputError(Exception):
    """A bad flag, value or input file.

    The message is complete on its own: it already names the flag, or the file (and line), so the
    command line can print it as ``nanobrag: error: <message>`` without a traceback.
    """
