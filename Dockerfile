# The registry-doctor image the Helm chart runs (docs/image.md): `serve`, `check --fix --yes`.
#   docker build -t REGISTRY/registry-doctor:0.1.0 . && docker push REGISTRY/registry-doctor:0.1.0
# Runs as any non-root UID (OpenShift's restricted SCC picks one; group 0), on a read-only root
# filesystem: nothing is written outside /tmp.
# The tests build this file with buildah on a Debian 12 minbase made by mmdebstrap in place of
# the FROM image (scripts/build-image.sh); every other step runs as written.
FROM docker.io/library/debian:bookworm-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/registry-doctor/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY doctor ./doctor
COPY checks ./checks
COPY exporter ./exporter
# The docs pages the output links to are installed with the package (registry_doctor/docs).
COPY docs ./docs
# A virtualenv: Debian's python3 refuses system-wide pip installs (PEP 668). pip builds the
# project's wheel and installs it with its dependencies from PyPI.
RUN python3 -m venv /opt/registry-doctor \
 && pip install /src \
 && rm -rf /src

WORKDIR /
# Numeric, so the kubelet can verify runAsNonRoot without an /etc/passwd entry.
USER 1001
EXPOSE 9709
ENTRYPOINT ["registry-doctor"]
CMD ["serve"]
