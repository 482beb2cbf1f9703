#!/usr/bin/env bash
# Installs otel-sqla-doctor into .venv and runs it: the live probe on the embedded default
# (SQLite in memory through aiosqlite), then the static scan of a sample service.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c constraints/tested.txt -e . || exit 2
echo "== doctor probe (embedded SQLite) =="
.venv/bin/doctor probe
echo
echo "== doctor scan sample_projects/orders_api =="
.venv/bin/doctor scan sample_projects/orders_api
echo "(exit code 1 above means: problems found, as expected in this deliberately broken sample)"
