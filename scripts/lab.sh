#!/usr/bin/env bash
# Start JupyterLab on notebooks/, listening on 127.0.0.1 only. Usage: scripts/lab.sh PYTHON PORT
set -euo pipefail
py=${1:-.venv/bin/python}
port=${2:-8888}
args=(--ServerApp.ip=127.0.0.1 --ServerApp.port="$port" --ServerApp.root_dir=notebooks)
[ "$(id -u)" = 0 ] && args+=(--allow-root)
[ -n "${LAB_NO_BROWSER:-}" ] && args+=(--no-browser)
shift 2 || true
exec "$py" -m jupyter lab "${args[@]}" "$@"
