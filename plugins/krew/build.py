"""Build the krew archive of the kubectl/oc plugin and keep the manifest's sha256 and version
in step with it (`python plugins/krew/build.py [--check] [--out DIR]`).

The archive holds the launcher `kubectl-registry_doctor` only, written byte-for-byte
reproducibly (fixed owner, mode and time), so the sha256 in registry-doctor.yaml is a fact the
test suite re-derives rather than a number someone pasted. No release is published: install
with `kubectl krew install --manifest=plugins/krew/registry-doctor.yaml --archive=<archive>`
(docs/plugin.md).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
MANIFEST = HERE / "registry-doctor.yaml"
LAUNCHER = HERE / "kubectl-registry_doctor"


def version() -> str:
    text = (REPO / "doctor" / "__init__.py").read_text()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def archive_bytes() -> bytes:
    data = LAUNCHER.read_bytes()
    info = tarfile.TarInfo(LAUNCHER.name)
    info.size, info.mode, info.mtime = len(data), 0o755, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as stream:
        stream.write(raw.getvalue())
    return packed.getvalue()


def archive_name() -> str:
    return f"registry-doctor-krew-v{version()}.tar.gz"


def synced_manifest(current: str, digest: str) -> str:
    text = re.sub(r"(?m)^(\s*sha256: ).*$", rf"\g<1>{digest}", current)
    text = re.sub(r"(?m)^(  version: ).*$", rf'\g<1>"v{version()}"', text)
    return re.sub(r"registry-doctor-krew-v[0-9][^/\s]*\.tar\.gz", archive_name(), text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, change nothing")
    parser.add_argument("--out", type=Path, help="also write the archive into this folder")
    args = parser.parse_args(argv)
    data = archive_bytes()
    current = MANIFEST.read_text()
    wanted = synced_manifest(current, hashlib.sha256(data).hexdigest())
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / archive_name()).write_bytes(data)
    if wanted == current:
        return 0
    if args.check:
        print(f"{MANIFEST.relative_to(REPO)} is out of date: run python "
              "plugins/krew/build.py", file=sys.stderr)
        return 1
    MANIFEST.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
