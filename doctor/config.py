"""Run settings shared by the CLI, the exporter, the collector, the probes and the checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from doctor.acknowledge import Acknowledgement


@dataclass(frozen=True)
class RunConfig:
    namespace: str = "default"
    registry_name: str = "docker-registry"
    registry_container: str = "registry"
    console_name: str = "registry-console"
    # Where objects come from: a dump folder, else the cluster of kubeconfig/context/in-cluster.
    from_dir: Path | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    # Live probes (S3, TLS, OAuth, sockets). None: on against a cluster, off with --from-dir.
    probes: bool | None = None
    timeout: float = 30.0  # the whole run's deadline, in seconds
    probe_timeout: float = 5.0  # each probe's deadline, in seconds
    log_tail_lines: int = 500
    node_local: bool = False  # also inspect this host (port 9090 owner, local cert dir)
    console_port: int = 9090
    cert_dir: Path | None = None
    s3_write_probe: bool = False
    canary: bool = False
    canary_repository: str = "registry-doctor/canary"
    oauth_probe: bool = False  # also ask the OAuth server to authorize the console's redirect
    # Findings the admin lives with until a date (--config; doctor/acknowledge.py).
    acknowledgements: tuple[Acknowledgement, ...] = ()

    @property
    def live(self) -> bool:
        return self.from_dir is None

    @property
    def probes_enabled(self) -> bool:
        return self.live if self.probes is None else self.probes
