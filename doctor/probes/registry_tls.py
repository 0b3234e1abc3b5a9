"""Live probe: the certificate chains the registry's Service and its TLS routes serve.

One TLS handshake with each: the Service at clusterIP:port (SNI `<service>.<namespace>.svc`,
the name the router and builds use), and each route host the routers admitted at 443.
Nothing is verified here; the registry-tls check judges the chains. A target that cannot be
reached (a clusterIP seen from outside the cluster) is reported as such, not raised.
"""

from __future__ import annotations

import time

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.probe_results import HandshakeTarget, RegistryChains, TargetChain
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.probes.canary import registry_service_port
from registry_doctor.doctor.probes.console_route_tls import HTTPS_PORT, served_chain
from registry_doctor.doctor.routes import served_hosts, termination
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.workload import as_dict


def run(snapshot: Snapshot, config: RunConfig, timeout: float) -> RegistryChains:
    targets = handshake_targets(snapshot)
    if not targets:
        raise ProbeError("neither a Service clusterIP nor a TLS route host of the registry to "
                         "connect to")
    deadline = time.monotonic() + timeout
    observed = []
    for position, target in enumerate(targets):
        share = max(deadline - time.monotonic(), 0.001) / (len(targets) - position)
        try:
            observed.append(TargetChain(target, served_chain(target.host, target.port, share,
                                                             target.address)))
        except ProbeError as error:
            observed.append(TargetChain(target, error=str(error)))
    return RegistryChains(tuple(observed))


def handshake_targets(snapshot: Snapshot) -> list[HandshakeTarget]:
    """The Service, then each host of each route with TLS; `registry_serves`: the chain comes
    from the registry itself (the Service, a passthrough route), not from a router."""
    installation = snapshot.installation()
    targets: list[HandshakeTarget] = []
    service = installation.service
    spec = as_dict(as_dict(service).get("spec"))
    cluster_ip, port = spec.get("clusterIP"), registry_service_port(spec)
    if isinstance(cluster_ip, str) and cluster_ip not in ("", "None") and port is not None:
        name = installation.service_name
        targets.append(HandshakeTarget("service", f"service {name}", cluster_ip,
                                       f"{name}.{installation.namespace}.svc", port["port"],
                                       registry_serves=True))
    for route in installation.routes():
        kind = termination(route)
        if kind is None:
            continue
        targets += [HandshakeTarget("route", f"route {route['metadata']['name']} ({kind})",
                                    host, host, HTTPS_PORT,
                                    registry_serves=kind == "passthrough")
                    for host in served_hosts(route)]
    return targets
