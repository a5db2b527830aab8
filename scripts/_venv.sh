# Sourced by the other scripts: make (or reuse) .venv with the package and its test extras.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RASP_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv $VENV"
    "$PYTHON_BIN" -m venv "$VENV"
fi
STAMP="$VENV/.installed-$(cat "$ROOT/pyproject.toml" | sha1sum | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
    echo "==> installing confine-rasp and its test dependencies into $VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]"
    # mysqlclient compiles against the MariaDB client headers; without them its tests skip.
    if ! "$VENV/bin/python" -m pip install --quiet -e "$ROOT[mysqlclient]"; then
        echo "==> mysqlclient did not build (no libmariadb-dev?); its tests will be skipped" >&2
    fi
    touch "$STAMP"
fi
PY="$VENV/bin/python"
