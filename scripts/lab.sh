#!/usr/bin/env bash
# Start JupyterLab on notebooks/, listening on 127.0.0.1 only. Usage: scripts/lab.sh PYTHON PORT [jupyter lab args]
# Nothing but 127.0.0.1 is reached and nothing pops up: the kit's defaults (lab-config/: JupyterLab does not ask about
# news nor check for updates; a learner's own settings still win), and the server never fetches the news feed, an
# update check or PyPI's extension list.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${1:-.venv/bin/python}
port=${2:-8888}
args=(--ServerApp.ip=127.0.0.1 --ServerApp.port="$port" --ServerApp.root_dir=notebooks
      --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate --LabApp.extension_manager=readonly)
[ "$(id -u)" = 0 ] && args+=(--allow-root)
[ -n "${LAB_NO_BROWSER:-}" ] && args+=(--no-browser)
shift 2 || true
export JUPYTER_CONFIG_PATH="$here/lab-config${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
exec "$py" -m jupyter lab "${args[@]}" "$@"
