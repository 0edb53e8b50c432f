"""What every command shares: the CLI's error type and rich consoles bound to the current
standard streams."""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console

from pynenc.exceptions import PynencError

# Wide enough that tables piped to a file or grep are not wrapped mid-value.
_PIPE_WIDTH = 160

EXIT_OK = 0
EXIT_FAILURE = 1  # the command ran and found a problem (unknown id, wrong demo result)
EXIT_USAGE = 2  # the command could not run as asked (bad --app, bad arguments, config)


class CLIError(PynencError):
    """A problem the CLI reports as one line on stderr, then exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def stdout_console() -> Console:
    """A console on the *current* ``sys.stdout`` (so redirections and pytest's capsys work)."""
    return _console(sys.stdout)


def stderr_console() -> Console:
    return _console(sys.stderr)


def _console(stream: TextIO) -> Console:
    width = None if stream.isatty() else _PIPE_WIDTH
    return Console(file=stream, width=width, highlight=False)
