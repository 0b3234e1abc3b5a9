# The registry-doctor image the Helm chart runs (docs/helm.md): `serve`, `check --fix --yes`.
#   docker build -t REGISTRY/registry-doctor:0.1.0 . && docker push REGISTRY/registry-doctor:0.1.0
# Runs as any non-root UID (OpenShift's restricted SCC picks one; group 0), on a read-only root
# filesystem: nothing is written outside /tmp.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY doctor ./doctor
COPY checks ./checks
COPY exporter ./exporter
RUN pip install . && rm -rf /src

WORKDIR /
# Numeric, so the kubelet can verify runAsNonRoot without an /etc/passwd entry.
USER 1001
EXPOSE 9709
ENTRYPOINT ["registry-doctor"]
CMD ["serve"]
