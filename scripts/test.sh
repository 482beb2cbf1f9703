#!/usr/bin/env bash
# Installs everything the tests need into .venv and runs the whole test suite.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# constraints/tested.txt pins the SQLAlchemy/OpenTelemetry combination the tests prove works.
.venv/bin/python -m pip install -q -c constraints/tested.txt -e ".[test]"
exec .venv/bin/python -m pytest "$@"
