#!/usr/bin/env bash
# Run the whole test suite (creates .venv on first use). Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"
exec "$PY" -m pytest "$@"
