"""Run settings shared by the CLI, the exporter, the collector, the probes and the checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry_doctor.doctor.acknowledge import Acknowledgement


@dataclass(frozen=True)
class RunConfig:
    # The platform to judge the cluster as (doctor.platform): "auto" detects it.
    platform: str = "auto"
    namespace: str = "default"
    registry_name: str = "docker-registry"
    registry_container: str = "registry"
    console_name: str = "registry-console"
    # Which of namespace, registry_name and console_name the admin gave (the CLI's -n,
    # --registry, --console); the platform names the others (doctor.platform: settle).
    # None: all three are given as they stand.
    names_given: frozenset[str] | None = None
    # Why `platform` is what it is, once the engine settled it (doctor.engine.settle), and how
    # the platform found the registry when it looked for it.
    platform_evidence: str = ""
    # Set when the platform looked for the registry and found none: where it looked (checks
    # say so instead of naming a default the admin never gave).
    registry_search: str = ""
    # What fixes may touch besides the two workloads (and their Services), named by the admin:
    # never taken from objects in the namespace, which whoever edits a DeploymentConfig or a
    # Route could point elsewhere (docs/remediation.md, "What a fix may touch").
    console_oauth_client: str = "cockpit-oauth-client"  # the registry-console template's
    console_hosts: tuple[str, ...] = ()  # hosts whose https URL a fix may register with it
    # Secrets the pod templates name (the 3.x templates' and docs' names): the certificates
    # (`oc adm registry --tls-certificate`), the configuration override, the console's.
    registry_secrets: tuple[str, ...] = ("registry-certificates", "registry-certs",
                                         "registry-config")
    console_secrets: tuple[str, ...] = ("console-secret",)
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
    # cockpit-port-conflict: also list the pods of every namespace on the console's nodes
    # (a cluster-wide pod list, which RBAC cannot narrow to those nodes).
    node_pod_scan: bool = False
    console_port: int = 9090
    cert_dir: Path | None = None
    s3_write_probe: bool = False
    canary: bool = False
    canary_repository: str = "registry-doctor/canary"
    oauth_probe: bool = False  # also ask the OAuth server to authorize the console's redirect
    # storage-capacity: a Prometheus that scrapes the kubelets (kubelet_volume_stats_*), e.g.
    # the cluster monitoring stack's; None: the check reads a dump's saved query result.
    prometheus_url: str | None = None
    # A file holding the bearer token that Prometheus (e.g. behind OpenShift's OAuth proxy)
    # wants, and the CA bundle that verifies it; the token goes over verified https only.
    prometheus_token_file: Path | None = None
    prometheus_ca_file: Path | None = None
    # storage-capacity: else the kubelets' summary API through the API server (nodes/proxy, a
    # powerful permission: it reaches every kubelet API; off unless the admin opts in).
    node_stats: bool = False
    # Findings the admin lives with until a date (--config; doctor/acknowledge.py).
    acknowledgements: tuple[Acknowledgement, ...] = ()

    @property
    def live(self) -> bool:
        return self.from_dir is None

    @property
    def probes_enabled(self) -> bool:
        return self.live if self.probes is None else self.probes

    def object_names(self) -> dict[str, tuple[str, ...]]:
        """What each name symbol of the RBAC declarations (doctor.fix.permissions,
        doctor.snapshot.kinds) stands for; the chart maps them from its values alike
        (templates/_helpers.tpl, objectNames), into `resourceNames`."""
        return {REGISTRY: (self.registry_name,), CONSOLE: (self.console_name,),
                REGISTRY_SECRETS: self.registry_secrets, CONSOLE_SECRETS: self.console_secrets,
                CONSOLE_OAUTH_CLIENT: (self.console_oauth_client,),
                REGISTRY_NAMESPACE: (self.namespace,)}


# Name symbols: objects RBAC grants by name, named by configuration.
REGISTRY, CONSOLE = "registry", "console"
REGISTRY_SECRETS, CONSOLE_SECRETS = "registrySecrets", "consoleSecrets"
CONSOLE_OAUTH_CLIENT = "consoleOAuthClient"
# Fixed names (doctor.fix.permissions.FIXED_NAMES): OpenShift 4's operator singletons.
OPERATOR_CONFIG, CLUSTER_OPERATOR = "operatorConfig", "clusterOperator"
REGISTRY_NAMESPACE = "registryNamespace"  # the Namespace object itself (its SCC ranges)
# The flag and the chart value that name each symbol's objects.
NAME_SETTINGS = {REGISTRY: ("--registry", "registry.name"),
                 CONSOLE: ("--console", "registry.console"),
                 REGISTRY_SECRETS: ("--registry-secret", "registry.secrets"),
                 CONSOLE_SECRETS: ("--console-secret", "registry.consoleSecrets"),
                 CONSOLE_OAUTH_CLIENT: ("--console-oauth-client", "registry.consoleOAuthClient"),
                 REGISTRY_NAMESPACE: ("--namespace", "registry.namespace")}


def setting(symbol: str) -> str:
    """`--registry-secret (chart value registry.secrets)`"""
    flag, value = NAME_SETTINGS[symbol]
    return f"{flag} (chart value {value})"
