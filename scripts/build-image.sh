#!/usr/bin/env bash
# Build the registry-doctor image with Debian's buildah, without a Docker engine or Docker Hub
# (docs/image.md). The Dockerfile's base, debian:bookworm-slim, is replaced by a Debian 12
# minbase that mmdebstrap makes from Debian's archive; every other step of the Dockerfile runs
# as written (apt from Debian, pip from PyPI).
#   scripts/build-image.sh [TAG]      TAG defaults to localhost/registry-doctor:latest
# Runs as root. CONTAINERS_STORAGE_CONF picks the image store, as for buildah and podman.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-localhost/registry-doctor:latest}"
base=localhost/registry-doctor-base:bookworm

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# What debian:bookworm-slim is: minbase, and dpkg keeps no docs, man pages or translations
# (the options stay in the base's /etc/dpkg/dpkg.cfg.d, so the Dockerfile's installs obey them).
mmdebstrap --quiet --variant=minbase \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  bookworm "$work/rootfs.tar"
printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$work/Containerfile"

# chroot isolation: RUN steps need no OCI runtime, cgroups or rlimits of their own, which a
# sandboxed build host may not grant.
build=(buildah build --isolation chroot --quiet)
"${build[@]}" --tag "$base" "$work" >/dev/null

# Behind a TLS-inspecting proxy the build's pip must trust what this host's pip trusts (its
# cert setting, else the system bundle). That bundle and a pip.conf naming it are mounted over
# root's home for the RUN steps: the base has /root already, so the image keeps no trace.
pip_ca="${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null \
  || echo /etc/ssl/certs/ca-certificates.crt)}"
if [ -n "$pip_ca" ] && [ -f "$pip_ca" ]; then
  mkdir -p "$work/root/.config/pip"
  cp "$pip_ca" "$work/root/.config/pip/ca.crt"
  printf '[global]\ncert = /root/.config/pip/ca.crt\n' >"$work/root/.config/pip/pip.conf"
  build+=(--volume "$work/root:/root")
fi

"${build[@]}" --from "$base" --pull=never --tag "$tag" . >/dev/null
echo "$tag"
