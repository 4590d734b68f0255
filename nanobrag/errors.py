"""The one error type for bad input: its message names the flag, file (and line) at fault."""


class InputError(Exception):
    """Invalid user input; the CLI prints the message on one line and exits with status 2."""
