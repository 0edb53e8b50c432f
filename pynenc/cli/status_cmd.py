"""``pynenc status``: one invocation's status, history and outcome, or ``status render`` for
the status machine itself (text, SVG or mermaid, generated from the status table)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pynenc.app import Pynenc
from pynenc.call import unpack_arguments
from pynenc.cli.app_loader import AppRef
from pynenc.cli.config_cmd import describe_backend
from pynenc.cli.console import EXIT_FAILURE, EXIT_OK, CLIError, stdout_console
from pynenc.conf.config_pynenc import ArgumentPrintMode
from pynenc.invocation.errors import remote_traceback
from pynenc.invocation.record import InvocationRecord, InvocationState
from pynenc.invocation.status import STATUS_TABLE, InvocationStatus, StatusRecord
from pynenc.invocation.status_render import render_mermaid, render_svg, render_text

RENDER = "render"
_RENDERERS = {"text": render_text, "svg": render_svg, "mermaid": render_mermaid}
_MAX_VALUE_CHARS = 2000  # longer results are cut in the terminal view

_STATUS_STYLES = {
    InvocationStatus.SUCCESS: "bold green",
    InvocationStatus.FAILED: "bold red",
    InvocationStatus.KILLED: "bold red",
    InvocationStatus.CONCURRENCY_CONTROLLED_FINAL: "bold yellow",
}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show an invocation (status <id>) or the status machine (status render)",
        description="'status <invocation_id>' shows an invocation's status, history and "
        "result or error. 'status render' draws the invocation status machine from the "
        "status table.",
    )
    parser.add_argument("target", metavar="INVOCATION_ID|render")
    render = parser.add_argument_group("status render options")
    render.add_argument("--format", choices=tuple(_RENDERERS), default=None, help="default: text")
    render.add_argument("--output", type=Path, help="write to this file instead of stdout")
    render.add_argument(
        "--check",
        action="store_true",
        help="fail (exit 1) if --output does not hold the current rendering",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, ref: AppRef) -> int:
    if args.target == RENDER:
        return render(args.format or "text", args.output, args.check)
    if args.format or args.output or args.check:
        raise CLIError("--format, --output and --check apply to 'pynenc status render' only.")
    return show_invocation(ref.app, args.target)


# --- status render ----------------------------------------------------------------------


def render(kind: str, output: Path | None, check: bool) -> int:
    rendered = _RENDERERS[kind]()
    if check:
        return _check(kind, output, rendered)
    if output is None:
        sys.stdout.write(rendered)  # raw: the text view contains brackets rich would eat
        return EXIT_OK
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(rendered, encoding="utf-8")
    except OSError as exc:
        raise CLIError(f"Cannot write {output}: {exc.strerror or exc}.") from None
    stdout_console().print(f"Wrote {output}", markup=False)
    return EXIT_OK


def _check(kind: str, output: Path | None, rendered: str) -> int:
    if output is None:
        raise CLIError("--check needs --output FILE, the file to compare with.")
    try:
        current = output.read_text(encoding="utf-8")
    except OSError as exc:
        raise CLIError(f"Cannot read {output}: {exc.strerror or exc}.", EXIT_FAILURE) from None
    if current != rendered:
        raise CLIError(
            f"{output} is stale. Run: pynenc status render --format {kind} --output {output}",
            EXIT_FAILURE,
        )
    stdout_console().print(f"{output} is up to date", markup=False)
    return EXIT_OK


# --- status <invocation_id> ------------------------------------------------------------


def show_invocation(app: Pynenc, invocation_id: str) -> int:
    state = app.orchestrator.get_state(invocation_id)
    record = app.state_backend.get_invocation(invocation_id)
    if state is None and record is None:
        raise CLIError(
            f"No invocation '{invocation_id}' in app '{app.app_id}' "
            f"({describe_backend(app)}). Check the id, and that --app names the app and "
            "backend that ran it.",
            EXIT_FAILURE,
        )
    console = stdout_console()
    console.print(_summary(app, invocation_id, state, record))
    console.print()
    console.print(_history_table(app.state_backend.get_history(invocation_id)))
    if state is not None:
        console.print()
        _print_outcome(console, app, invocation_id, InvocationStatus(state.status))
    return EXIT_OK


def _summary(
    app: Pynenc, invocation_id: str, state: InvocationState | None, record: InvocationRecord | None
) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("invocation", Text(invocation_id))
    grid.add_row("task", Text(record.task_id if record else state.task_id if state else "-"))
    if state is not None:
        status = InvocationStatus(state.status)
        label = Text(status.name, style=_STATUS_STYLES.get(status, "bold"))
        label.append(f"  {STATUS_TABLE[status].description}", style="dim")
        grid.add_row("status", label)
        grid.add_row("owner", Text(state.owner or "-"))
        grid.add_row("num retries", str(state.num_retries))
        grid.add_row("updated", _time(state.updated_at))
    else:
        grid.add_row("status", Text("unknown (no state in the orchestrator)", style="yellow"))
    if record is not None:
        grid.add_row("created", _time(record.created_at))
        grid.add_row("arguments", Text(_arguments(app, record)))
        grid.add_row("parent", Text(record.parent_invocation_id or "-"))
        grid.add_row("workflow", Text(record.workflow_id))
    return grid


def _history_table(history: list[StatusRecord]) -> Table:
    table = Table(title=Text("history", style="bold"), title_justify="left")
    table.add_column("timestamp", no_wrap=True)
    table.add_column("+s", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("runner")
    start = history[0].timestamp if history else 0.0
    for entry in history:
        style = _STATUS_STYLES.get(entry.status, "")
        table.add_row(
            _time(entry.timestamp),
            f"{entry.timestamp - start:.3f}",
            Text(entry.status.name, style=style),
            Text(entry.runner_id or "-"),
        )
    return table


def _print_outcome(
    console: Console, app: Pynenc, invocation_id: str, status: InvocationStatus
) -> None:
    if status is InvocationStatus.SUCCESS:
        encoded = app.state_backend.get_result(invocation_id)
        if encoded is None:
            console.print("result: (not stored; it may have expired)", style="yellow")
            return
        encoded = app.client_data_store.resolve_value(encoded)  # large results are stored by key
        console.print(Text.assemble(("result: ", "bold"), _decoded(app, encoded)))
    elif status is InvocationStatus.FAILED:
        error = app.state_backend.get_exception(invocation_id)
        if error is None:
            console.print("error: (not stored)", style="yellow")
            return
        error = app.client_data_store.resolve_value(error)
        console.print("error, with the remote traceback:", style="bold red")
        console.print(Text(remote_traceback(error).rstrip()))
    elif not status.is_final:
        console.print(f"not final yet: {status.name}", style="dim")


def _decoded(app: Pynenc, encoded: bytes) -> str:
    try:
        value: Any = app.serializer.loads(encoded)
    except Exception as exc:  # the value's class may not import here
        return f"(cannot be decoded in this process: {type(exc).__name__}: {exc})"
    text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        return f"{text[:_MAX_VALUE_CHARS]}... ({len(text)} characters)"
    return text


def _arguments(app: Pynenc, record: InvocationRecord) -> str:
    """The call's arguments, shown as the app's ``argument_print_mode`` allows."""
    mode = app.conf.argument_print_mode
    if mode is ArgumentPrintMode.HIDDEN or not app.conf.print_arguments:
        return "(hidden by argument_print_mode)"
    try:
        encoded = unpack_arguments(record.arguments)
    except Exception as exc:  # a corrupt or foreign record
        return f"(cannot be decoded: {exc})"
    if mode is ArgumentPrintMode.KEYS:
        return ", ".join(encoded) or "-"
    limit = app.conf.truncate_arguments_length
    parts = []
    for name, value in encoded.items():
        shown = _decoded(app, value)
        if mode is ArgumentPrintMode.TRUNCATED and len(shown) > limit:
            shown = shown[:limit] + "..."
        parts.append(f"{name}={shown}")
    return ", ".join(parts) or "-"


def _time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="milliseconds")
