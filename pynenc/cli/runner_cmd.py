"""``pynenc runner start``: serve the app's tasks in the foreground until SIGTERM/SIGINT,
then drain and exit 0. ``pynenc runner show_config`` shows the runner's settings."""

from __future__ import annotations

import argparse

from rich.text import Text

from pynenc.cli.app_loader import AppRef
from pynenc.cli.config_cmd import describe_backend, print_config, runner_config
from pynenc.cli.console import EXIT_OK, stderr_console, stdout_console


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("runner", help="commands related to the runner")
    commands = parser.add_subparsers(dest="runner_command", required=True, metavar="COMMAND")
    start = commands.add_parser(
        "start",
        help="start a runner in the foreground (SIGTERM or Ctrl-C drains and stops it)",
        description="Start the app's runner in the foreground. It serves until SIGTERM or "
        "SIGINT, then lets running tasks finish (graceful_shutdown_timeout_sec), re-queues "
        "what it could not finish and exits 0. Run one per host; all share the backend.",
    )
    start.set_defaults(handler=start_runner)
    show = commands.add_parser("show_config", help="show the runner's settings and sources")
    show.set_defaults(handler=show_runner_config)


def start_runner(_args: argparse.Namespace, ref: AppRef) -> int:
    app = ref.app
    # Build the components now, in this thread: a missing extra or a bad backend setting
    # fails as one line before any runner thread starts (and threads never race to
    # import a backend package for the first time).
    _ = (app.broker, app.orchestrator, app.state_backend)
    runner = app.runner
    backend = describe_backend(app)
    stdout_console().print(
        Text.assemble(
            "Starting ",
            (type(runner).__name__, "bold"),
            f" {runner.runner_id} for app '{app.app_id}' ({ref.spec}) on {backend}",
        )
    )
    if backend.startswith("memory"):
        stderr_console().print(
            "Warning: this app keeps invocations in memory, so this runner only sees tasks "
            "submitted from this process. Use .sqlite() or .redis(url=...) to share work.",
            style="yellow",
            markup=False,
        )
    try:
        runner.run()
    finally:
        app.close()
    stdout_console().print(f"Runner {runner.runner_id} stopped", markup=False)
    return EXIT_OK


def show_runner_config(_args: argparse.Namespace, ref: AppRef) -> int:
    print_config(ref.app, ref.spec, [runner_config(ref.app)])
    return EXIT_OK
