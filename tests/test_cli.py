"""The ``pynenc`` command line as a user drives it: in-process where possible, real
subprocesses for ``runner start`` and ``demo``."""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import pynenc
from pynenc import Pynenc
from pynenc.cli.main import main
from pynenc.invocation.status_render import render_mermaid, render_text

REPO_ROOT = Path(pynenc.__file__).resolve().parent.parent

APP_SOURCE = """
from pynenc import PynencBuilder

app = PynencBuilder().app_id({app_id!r}).{backend}.thread_runner(max_threads=4).build()


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def explode(message: str) -> None:
    raise ValueError(message)
"""

WriteApp = Callable[..., str]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WriteApp]:
    """A project directory as cwd; ``write_app(app_id)`` adds a module defining an app and
    returns the module name (unique per test, forgotten afterwards)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI adds the cwd; undo it
    written: list[str] = []

    def write_app(app_id: str, backend: str = "memory()", name: str | None = None) -> str:
        module = name or f"cli_app_{uuid.uuid4().hex[:8]}"
        source = APP_SOURCE.format(app_id=app_id, backend=backend)
        (tmp_path / f"{module}.py").write_text(source, encoding="utf-8")
        written.append(module)
        importlib.invalidate_caches()
        return module

    yield write_app
    for module in written:
        sys.modules.pop(module, None)


def import_project_module(name: str) -> ModuleType:
    """Import a module of the project as the test's own client code would."""
    sys.path.insert(0, os.getcwd())  # sys.path is restored by the project fixture
    return importlib.import_module(name)


def config_row(output: str, setting: str) -> str:
    """The table line of one setting (the first one, in the ConfigPynenc table)."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) > 1 and cells[1] == setting:
            return line
    raise AssertionError(f"no row for {setting!r} in:\n{output}")


def test_version_names_the_version_and_active_speedups(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert f"pynenc {pynenc.__version__}" in out
    assert "hashing=" in out and ("compiled" in out or "pure" in out)


def test_no_command_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: pynenc" in capsys.readouterr().err


def test_python_dash_m_pynenc_runs_the_cli() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pynenc", "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pynenc ")


# --- show_config ----------------------------------------------------------------------


def test_show_config_shows_app_id_and_its_source(
    project: WriteApp, capsys: pytest.CaptureFixture[str]
) -> None:
    module = project("cli-show")
    assert main(["--app", f"{module}.app", "show_config"]) == 0
    out = capsys.readouterr().out
    row = config_row(out, "app_id")
    assert "cli-show" in row and "config_values" in row
    assert "default" in config_row(out, "serializer_cls")
    # the runner's and the client data store's settings are there too
    assert "ConfigThreadRunner" in out and "max_threads" in out
    assert "ConfigClientDataStore" in out


def test_show_config_accepts_module_colon_attr(
    project: WriteApp, capsys: pytest.CaptureFixture[str]
) -> None:
    module = project("cli-colon")
    assert main(["--app", f"{module}:app", "show_config"]) == 0
    assert "cli-colon" in config_row(capsys.readouterr().out, "app_id")


def test_show_config_shows_env_overrides_with_their_variable(
    project: WriteApp, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYNENC__APP_ID", "from-env")
    monkeypatch.setenv("PYNENC__CONFIGRUNNER__RUNNER_BATCH_SIZE", "7")
    module = project("cli-env")
    assert main(["--app", f"{module}.app", "show_config"]) == 0
    out = capsys.readouterr().out
    row = config_row(out, "app_id")
    assert "from-env" in row and "env:PYNENC__APP_ID" in row
    batch = config_row(out, "runner_batch_size")
    assert "7" in batch and "env:PYNENC__CONFIGRUNNER__RUNNER_BATCH_SIZE" in batch


def test_show_config_of_a_sqlite_app_includes_the_sqlite_settings(
    project: WriteApp, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    module = project("cli-sqlite-conf", backend=f"sqlite({str(tmp_path / 'x.db')!r})")
    assert main(["--app", f"{module}.app", "show_config"]) == 0
    out = capsys.readouterr().out
    assert "ConfigSQLite" in out
    assert "x.db" in config_row(out, "sqlite_db_path")


# --- finding the app ------------------------------------------------------------------


def test_a_single_app_in_the_cwd_is_found_without_app(
    project: WriteApp, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    module = project("cli-found")
    # never imported while discovering: setup.py, tests, private modules
    for name in ("setup.py", "test_things.py", "_private.py"):
        (tmp_path / name).write_text("import pynenc\nraise SystemExit('imported!')\n")
    assert main(["show_config"]) == 0
    out = capsys.readouterr().out
    assert f"App {module}.app" in out
    assert "cli-found" in config_row(out, "app_id")


def test_no_app_in_the_cwd_is_a_clear_error(
    project: WriteApp, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "helpers.py").write_text("import pynenc\nVALUE = 1\n")
    assert main(["show_config"]) == 2
    err = capsys.readouterr().err
    assert "No Pynenc app found" in err and "--app" in err
    assert "Traceback" not in err


def test_several_apps_in_the_cwd_are_listed(
    project: WriteApp, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = project("cli-one"), project("cli-two")
    assert main(["show_config"]) == 2
    err = capsys.readouterr().err
    assert "Found 2 Pynenc apps" in err and "--app" in err
    assert f"{first}.app" in err and f"{second}.app" in err


def test_the_same_app_imported_elsewhere_counts_once(
    project: WriteApp, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    module = project("cli-once")
    (tmp_path / "aaa_main.py").write_text(f"from {module} import app\n")
    try:
        assert main(["show_config"]) == 0
    finally:
        sys.modules.pop("aaa_main", None)
    out = capsys.readouterr().out
    assert f"App {module}.app" in out  # named after the module that defines its tasks
    assert "cli-once" in config_row(out, "app_id")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module.app", "module 'no_such_module' not found"),
        ("{module}.missing", "has no attribute 'missing'"),
        ("{module}.add", "is a Task, not a Pynenc app"),
    ],
)
def test_a_bad_app_is_one_line_and_exit_2(
    project: WriteApp, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    module = project("cli-bad")
    assert main(["--app", spec.format(module=module), "show_config"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_app_module_that_fails_to_import_is_reported(
    project: WriteApp, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "broken_app.py").write_text("import pynenc\nraise RuntimeError('no db')\n")
    try:
        assert main(["--app", "broken_app.app", "show_config"]) == 2
    finally:
        sys.modules.pop("broken_app", None)
    err = capsys.readouterr().err
    assert "RuntimeError: no db" in err and "Traceback" not in err


# --- status render --------------------------------------------------------------------


def test_status_render_text_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "render", "--format", "text"]) == 0
    assert capsys.readouterr().out == render_text()


def test_status_render_svg_is_valid_xml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "render", "--format", "svg"]) == 0
    root = ET.fromstring(capsys.readouterr().out.encode())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    statuses = {g.get("data-status") for g in root.iter("{http://www.w3.org/2000/svg}g")}
    assert {"registered", "success", "failed"} <= statuses


def test_status_render_writes_and_checks_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "docs" / "status.mmd"
    assert main(["status", "render", "--format", "mermaid", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render_mermaid()
    assert (
        main(["status", "render", "--format", "mermaid", "--output", str(target), "--check"]) == 0
    )
    target.write_text("stale", encoding="utf-8")
    assert (
        main(["status", "render", "--format", "mermaid", "--output", str(target), "--check"]) == 1
    )
    assert "is stale" in capsys.readouterr().err


# --- status <invocation_id> -----------------------------------------------------------


@pytest.fixture
def served_app(project: WriteApp) -> Iterator[tuple[ModuleType, str]]:
    """A memory app module with its ThreadRunner serving from a thread of this process."""
    name = project("cli-status")
    module = import_project_module(name)
    app: Pynenc = module.app
    runner = app.runner
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    assert runner.started_event.wait(10)
    try:
        yield module, f"{name}.app"
    finally:
        runner.stop()
        thread.join(30)
        assert not thread.is_alive()


def test_status_of_a_succeeded_invocation(
    served_app: tuple[ModuleType, str], capsys: pytest.CaptureFixture[str]
) -> None:
    module, spec = served_app
    invocation = module.add(2, 3)
    assert invocation.result == 5
    runner_id = module.app.runner.runner_id
    assert main(["--app", spec, "status", invocation.invocation_id]) == 0
    out = capsys.readouterr().out
    assert invocation.invocation_id in out
    assert f"{module.__name__}.add" in out
    assert "SUCCESS" in out and "num retries" in out
    assert "result: 5" in out
    assert "x=2, y=3" in out
    for status in ("REGISTERED", "PENDING", "RUNNING"):
        assert status in out
    assert runner_id in out


def test_status_of_a_failed_invocation_shows_the_remote_traceback(
    served_app: tuple[ModuleType, str], capsys: pytest.CaptureFixture[str]
) -> None:
    module, spec = served_app
    invocation = module.explode("kaboom")
    with pytest.raises(ValueError, match="kaboom"):
        invocation.result
    assert main(["--app", spec, "status", invocation.invocation_id]) == 0
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "Traceback (most recent call last)" in out
    assert "in explode" in out and "ValueError: kaboom" in out


def test_status_of_an_unknown_id_exits_1(
    served_app: tuple[ModuleType, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, spec = served_app
    assert main(["--app", spec, "status", "no-such-id"]) == 1
    err = capsys.readouterr().err
    assert "No invocation 'no-such-id'" in err and "Traceback" not in err


def test_render_options_with_an_invocation_id_are_refused(
    served_app: tuple[ModuleType, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, spec = served_app
    assert main(["--app", spec, "status", "some-id", "--format", "svg"]) == 2
    assert "status render" in capsys.readouterr().err


# --- real processes over SQLite -------------------------------------------------------


def subprocess_env() -> dict[str, str]:
    existing = os.environ.get("PYTHONPATH")
    path = os.pathsep.join(p for p in (str(REPO_ROOT), existing) if p)
    return {**os.environ, "PYTHONPATH": path}


def wait_for_heartbeat(app: Pynenc, process: subprocess.Popen[bytes], log: Path) -> None:
    """Bounded wait for the runner subprocess's first heartbeat (pacing on its exit)."""
    deadline = time.monotonic() + 30
    while not any(info.pid == process.pid for info in app.state_backend.get_runners()):
        assert time.monotonic() < deadline, f"runner never heartbeat:\n{log.read_text()}"
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
            pytest.fail(f"runner exited with {process.returncode}:\n{log.read_text()}")


def test_runner_start_serves_tasks_and_stops_on_sigterm(project: WriteApp, tmp_path: Path) -> None:
    db = tmp_path / "runner.db"
    name = project("cli-runner", backend=f"sqlite({str(db)!r})")
    module = import_project_module(name)
    app: Pynenc = module.app
    app.purge()
    log = tmp_path / "runner.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pynenc", "--app", f"{name}.app", "runner", "start"],
            cwd=tmp_path,
            env=subprocess_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_heartbeat(app, process, log)
        group = module.add.parallelize([(i, i) for i in range(20)])
        assert group.get_results(timeout_sec=60) == [2 * i for i in range(20)]
        # run by the subprocess, not by this process
        runner_ids = {r.runner_id for r in group.invocations[0].history if r.runner_id}
        assert len(runner_ids) == 1 and f"-{process.pid}-" in runner_ids.pop()
        process.terminate()
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        app.close()
    output = log.read_text()
    assert "Starting ThreadRunner" in output and "cli-runner" in output
    assert "stopped" in output


def test_demo_runs_every_task_and_reports_throughput(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pynenc", "demo", "--tasks", "300", "--timeout", "120"],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tasks/s" in done.stdout
    assert "All 300 results are correct" in done.stdout
    assert "SUCCESS" in done.stdout
    assert list(tmp_path.iterdir()) == []  # nothing left behind in the cwd
