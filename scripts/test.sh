#!/usr/bin/env bash
# Install everything the tests need (venv, Debian chromium) and run lint + the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/_venv.sh" test
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "installing Debian chromium for the browser tests"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
  else
    echo "chromium is missing: run 'sudo apt-get install chromium' (the browser tests need it)" >&2
    exit 1
  fi
fi
cd "$ROOT"
"$VENV/bin/ruff" check or_magic tests benchmarks scripts
set +e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" = "5" ]; then echo "pytest collected no tests: treating as failure" >&2; exit 1; fi
exit "$rc"
