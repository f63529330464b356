#!/usr/bin/env bash
# Compiles the app's own modules to bytecode before azd packages them (azure.yaml's prepackage
# hook). The Flex Consumption app runs from a read-only package, so what is not compiled here is
# compiled again at every cold start (tests/benchmarks/cold_start.py --no-bytecode measures it).
# checked-hash: the bytecode is trusted only while its source's hash matches, whatever the zip
# does to file times, and a later local edit is never shadowed.
# Python 3.11 only: the runtime's version (infra/modules/functionapp.bicep); other versions'
# bytecode would be ignored there, so nothing is written.
# Usage: scripts/compile-bytecode.sh [APP_DIRECTORY]   (default: the repository)
set -euo pipefail
app="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
python=""
for candidate in "$app/.venv/bin/python" python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 \
    && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    python="$candidate"
    break
  fi
done
if [ -z "$python" ]; then
  echo "compile-bytecode: no Python 3.11 here; the package ships sources only" >&2
  exit 0
fi
cd "$app"
# PYTHONPYCACHEPREFIX would send the bytecode elsewhere: it must land beside the sources.
env -u PYTHONPYCACHEPREFIX "$python" -m compileall -q --invalidation-mode checked-hash \
  function_app.py api shared orchestrators timers
echo "compiled: function_app.py api shared orchestrators timers"
