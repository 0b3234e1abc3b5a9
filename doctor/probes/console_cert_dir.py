"""Local probe (`--cert-dir`): the files of a Cockpit ws-certs.d folder on this host, parsed.

Only what `doctor.pem` keeps leaves this module: facts about certificates and keys, never the
key material itself.
"""

from __future__ import annotations

import os

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.pem import MAX_PEM_BYTES, PemFile, read_pem_file
from registry_doctor.doctor.probe_results import CertDirFiles
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.snapshot import Snapshot


def run(snapshot: Snapshot, config: RunConfig, timeout: float) -> CertDirFiles:
    folder = config.cert_dir
    if folder is None:
        raise ProbeError("no --cert-dir given")
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        raise ProbeError(f"cannot list {folder}: {error.strerror}") from None
    files: dict[str, PemFile] = {}
    unreadable: list[str] = []
    for entry in entries:
        if not entry.is_file():
            continue
        try:
            with open(entry.path, "rb") as handle:
                files[entry.name] = read_pem_file(entry.name, handle.read(MAX_PEM_BYTES + 1))
        except OSError as error:
            unreadable.append(f"{entry.name}: {error.strerror}")
    return CertDirFiles(str(folder), files, tuple(unreadable), os.access(folder, os.W_OK))
