#!/usr/bin/env bash
# Start the example shop under protection, attack it, and show what the agent did.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$ROOT"
exec "$PY" examples/demo.py "$@"
