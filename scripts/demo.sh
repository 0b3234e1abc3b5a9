#!/usr/bin/env bash
# Install registry-doctor into .venv and run it on the bundled broken OpenShift 3.11 dump.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
ensure_venv
"$VENV/bin/python" -m pip install -q . >&2
exec "$VENV/bin/registry-doctor" demo "$@"
