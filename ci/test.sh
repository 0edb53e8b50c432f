#!/usr/bin/env bash
# Set up a virtualenv from this checkout and run the whole test suite (the README's command).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${PYNENC_VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[test,dev]'
bash ci/services.sh
"$VENV/bin/python" -m ruff check pynenc tests benchmarks
"$VENV/bin/python" -m ruff format --check pynenc tests benchmarks
"$VENV/bin/python" -m mypy pynenc
# the benchmarks once each, small, so they cannot rot (full runs: pytest benchmarks --benchmark-only)
PYNENC_BENCH_QUICK=1 "$VENV/bin/python" -m pytest -q benchmarks --benchmark-disable
# the whole suite on the pure-Python twins, as an install without a compiler runs it
PYNENC_NO_EXTENSIONS=1 "$VENV/bin/python" -m pytest -q -x "$@"
# the whole test suite (compiled twins) last: its summary line is the run's verdict
"$VENV/bin/python" -m pytest -q "$@"
