"""Parse the command line, run one command, turn known errors into one line and an exit code.

``pynenc [--app module.attr] COMMAND ...``; without ``--app`` the one app defined in the
current directory's top-level modules is used.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable

from pynenc.cli import config_cmd, demo_cmd, runner_cmd, status_cmd
from pynenc.cli.app_loader import AppRef
from pynenc.cli.console import EXIT_FAILURE, EXIT_USAGE, CLIError, stderr_console
from pynenc.exceptions import PynencError

Handler = Callable[[argparse.Namespace, AppRef], int]


def version_line() -> str:
    """``pynenc 0.1.0 (Python 3.12.1; speedups: hashing=compiled)``."""
    import platform

    from pynenc import __version__
    from pynenc._speedups import active_twins

    twins = ", ".join(f"{name}={twin}" for name, twin in sorted(active_twins().items()))
    return f"pynenc {__version__} (Python {platform.python_version()}; speedups: {twins})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pynenc",
        description="Pynenc command line interface.",
        epilog="Without --app, the one Pynenc app defined at module level in the current "
        "directory's *.py files is used.",
    )
    parser.add_argument(
        "--app",
        metavar="MODULE.ATTR",
        help="the app, as module.attr or module:attr (e.g. tasks.app)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and full tracebacks"
    )
    parser.add_argument(
        "--version", action="store_true", help="print the version and the active speedups"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    runner_cmd.add_parser(commands)
    config_cmd.add_parser(commands)
    status_cmd.add_parser(commands)
    demo_cmd.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage or help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.version:
        print(version_line())
        return 0
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return _run(handler, args)


def _run(handler: Handler, args: argparse.Namespace) -> int:
    try:
        return handler(args, AppRef(args.app, args.verbose))
    except CLIError as exc:
        return _fail(args, exc, exc.exit_code)
    except PynencError as exc:  # a config or backend problem: say what, not where
        return _fail(args, exc, EXIT_USAGE)
    except KeyboardInterrupt:
        stderr_console().print("Interrupted.", markup=False)
        return 130
    except BrokenPipeError:  # e.g. `pynenc show_config | head`
        return EXIT_FAILURE


def _fail(args: argparse.Namespace, exc: BaseException, code: int) -> int:
    if args.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    prefix = "" if isinstance(exc, CLIError) else f"{type(exc).__name__}: "
    message = f"{prefix}{exc}".replace("\n", " ")
    stderr_console().print(f"Error: {message}", style="red", markup=False, soft_wrap=True)
    return code
