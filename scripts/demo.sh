#!/usr/bin/env bash
# The main job, on a fresh machine: install or_magic in .venv, run the quickstart notebook end to end, and
# leave the executed copy in out/quickstart.ipynb to open in JupyterLab.
#
#   bash scripts/demo.sh                          # the quickstart
#   bash scripts/demo.sh notebooks/*.ipynb        # every demo notebook
#
# Without OPENROUTER_API_KEY in the environment the notebooks use the offline sandbox (scripted answers,
# no network, no cost); with it, real OpenRouter models (the quickstart costs well under $0.001).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLER_DIR="$(pwd)"
notebooks=()
for nb in "$@"; do  # paths given relative to where the script was called from
  [ -f "$nb" ] || { echo "no such notebook: $nb" >&2; exit 2; }
  notebooks+=("$(cd "$(dirname "$nb")" && pwd)/$(basename "$nb")")
done
source "$ROOT/scripts/_venv.sh" demo
cd "$ROOT"

if [ -n "${OPENROUTER_API_KEY:-}" ]; then
  echo "OPENROUTER_API_KEY is set: the notebooks talk to real OpenRouter"
else
  echo "no OPENROUTER_API_KEY: the notebooks use the offline sandbox (scripted answers, no cost)"
fi
[ "${#notebooks[@]}" -gt 0 ] || notebooks=(notebooks/quickstart.ipynb)

set +e
"$VENV/bin/python" scripts/run_notebooks.py --out out "${notebooks[@]}"
rc=$?
set -e

lab=".venv/bin/jupyter lab"
[ "$(id -u)" = "0" ] && lab="$lab --allow-root"   # JupyterLab refuses to run as root without it
[ "$CALLER_DIR" = "$ROOT" ] || lab="cd $ROOT && $lab"
first="out/$(basename "${notebooks[0]}")"
echo
if [ "$rc" = "0" ]; then
  echo "Done. The executed notebook is $first. Open it in JupyterLab:"
else
  echo "Some cells failed (see above). The executed notebook, failures included, is $first:"
fi
echo "    $lab $first"
echo "(or '$lab notebooks/' to run the demos yourself; the answers stream live there.)"
exit "$rc"
