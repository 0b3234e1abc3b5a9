"""registry-tls: the registry's own certificate is valid for every name it is reached by, and
its routes match the TLS that sits behind them.

OpenShift Origin 3.11 docs, "Securing the Registry" (`oc adm ca create-server-cert
--hostnames=<route host>,docker-registry.default.svc,docker-registry.default.svc.cluster.local,
<clusterIP>`, secret `registry-certificates`, `REGISTRY_HTTP_TLS_CERTIFICATE`/`_KEY`, probes
switched to HTTPS) and "Routes" (edge, passthrough and re-encryption termination).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from registry_doctor.doctor.check import CheckContext, ProbeResult
from registry_doctor.doctor.findings import Finding, verdict
from registry_doctor.doctor.model import CheckMeta, MetricKey, Resource, Result, Severity, Status
from registry_doctor.doctor.pem import Certificate, certificate_from_der, read_pem_file
from registry_doctor.doctor.probe_results import HandshakeTarget, RegistryChains
from registry_doctor.doctor.registry_tls import (
    ServingTls,
    TlsFile,
    hostname_error,
    issued_under,
    serving_tls,
)
from registry_doctor.doctor.registryconfig import CONFIG_KINDS
from registry_doctor.doctor.routes import (
    admissions,
    destination_ca,
    insecure_policy,
    served_hosts,
    termination,
)
from registry_doctor.doctor.workload import Workload, as_dict

# `registry_doctor_certificate_not_after_timestamp_seconds{check,role}` (docs/exporter.md).
EXPIRY_METRIC = "certificate_not_after_timestamp_seconds"
ROLE_REGISTRY = "registry"  # the chain the registry serves (its mounted files)
ROLE_REGISTRY_ROUTE = "registry-route"  # the chains its routes serve, live
EXPIRY_WARNING = timedelta(days=30)
# Annotations that make the service CA sign a serving certificate into the named secret
# (3.11 docs, "Service Serving Certificate Secrets").
SERVING_CERT_ANNOTATIONS = ("service.alpha.openshift.io/serving-cert-secret-name",
                            "service.beta.openshift.io/serving-cert-secret-name")
SERVICE_SIGNER = "openshift-service-serving-signer"  # the service CA's common name prefix

META = CheckMeta(
    id="registry-tls",
    title="Registry certificate covers its names, and its routes match its TLS",
    severity=Severity.CRIT,
    kinds=(*CONFIG_KINDS, "services", "routes"),
    probes=("registry-tls",),
    description=(
        "A registry without TLS (no REGISTRY_HTTP_TLS_CERTIFICATE/_KEY, no http.tls) is the 3.x "
        "default and not a finding. With TLS, the certificate and key files mounted from the "
        "registry's secret must load (crit: missing, no certificate, key encrypted or not "
        "matching), no certificate may be expired or not yet valid (crit) or expire within 30 "
        "days (warn), and the server certificate must cover <service>.<namespace>.svc, the "
        "Service's clusterIP and every host a passthrough route is served at (crit: clients "
        "fail with \"x509: certificate is valid for ..., not ...\"; "
        "<service>.<namespace>.svc.cluster.local missing, or no subjectAltName at all, is a "
        "warning). Kubelet probes must use "
        "the registry's scheme (crit). Each route to the registry: refused by every router "
        "(crit, with its reason) or by some (warn); edge or plain HTTP to an HTTPS registry, "
        "passthrough or reencrypt to a plain-HTTP one (crit); reencrypt whose "
        "destinationCACertificate did not issue the registry's certificate (crit) or, without "
        "one, a certificate the service CA did not sign (warn); insecureEdgeTerminationPolicy "
        "Allow (warn). Live (probe registry-tls): the chain the Service and each TLS route "
        "serve, its expiry, and whether it is the mounted one."
    ),
    remediation=(
        "Reissue the certificate for every name (`oc adm ca create-server-cert "
        "--signer-cert=/etc/origin/master/ca.crt --signer-key=/etc/origin/master/ca.key "
        "--signer-serial=/etc/origin/master/ca.serial.txt --hostnames=<route host>,"
        "<service>.<namespace>.svc,<service>.<namespace>.svc.cluster.local,<clusterIP> "
        "--cert=registry.crt --key=registry.key`), replace the secret and roll out "
        "(`$cli rollout latest $registry -n $namespace`); make routes to an HTTPS registry "
        "passthrough or reencrypt (`$cli create route passthrough --service=<service> -n "
        "$namespace`)."
    ),
)


def evaluate(ctx: CheckContext) -> Result:
    registry = ctx.registry()
    installation = ctx.installation
    config = ctx.configuration()
    tls = serving_tls(ctx.snapshot, config, registry.namespace)
    service = installation.service
    routes = installation.routes()
    now = datetime.now(timezone.utc)
    resources = [registry.resource, *tls.resources, *_service_resource(service),
                 *(Resource("Route", r["metadata"]["name"], registry.namespace) for r in routes)]
    findings = _serving(tls, registry, now)
    chain = tls.chain
    if chain:
        findings += _names(chain[0], service, routes, registry.namespace)
    findings += _kubelet_probes(registry, config.container, tls.https)
    for route in routes:
        findings += _route(route, tls, service)
    metrics: dict[MetricKey, float] = {}
    _note_expiry(metrics, ROLE_REGISTRY, chain)
    findings += _served(ctx.probe("registry-tls", RegistryChains), tls, now, metrics)
    served = "HTTPS with a valid certificate for its names" if tls.https else \
        "plain HTTP (the 3.x default, not a finding)"
    return verdict(ctx, findings, f"{registry.ref} serves {served}, and its routes match it",
                   resources, metrics)


def _service_resource(service: dict[str, Any] | None) -> list[Resource]:
    if service is None:
        return []
    metadata = service["metadata"]
    return [Resource("Service", metadata["name"], metadata.get("namespace"))]


def _note_expiry(metrics: dict[MetricKey, float], role: str,
                 chain: Sequence[Certificate]) -> None:
    """The earliest notAfter of the chain (the moment it stops verifying), the earliest of
    several chains of one role."""
    if chain:
        key = (EXPIRY_METRIC, (("role", role),))
        earliest = min(c.not_after.timestamp() for c in chain)
        metrics[key] = min(earliest, metrics.get(key, earliest))


def _serving(tls: ServingTls, registry: Workload, now: datetime) -> list[Finding]:
    if tls.https is None:
        return [Finding(Status.UNKNOWN, f"cannot tell whether {registry.ref} serves TLS: "
                                        f"{tls.reason}")]
    if not tls.https:
        return [Finding(Status.OK, f"{registry.ref} serves plain HTTP ({tls.reason}): the 3.x "
                                   "default, not a finding by itself; clients reach it as an "
                                   "insecure registry or through an edge route")]
    findings = [Finding(Status.OK, f"{registry.ref} serves HTTPS ({tls.reason})")]
    for file in tls.files:
        findings += _file(file)
    certificate, key = tls.certificate, tls.key
    if certificate and certificate.pem and certificate.pem.certificates:
        findings += _key_pair(certificate, key)
        findings += [d for c in certificate.pem.certificates
                     for d in _dates(c, now, f"{certificate.path} ({certificate.origin})")]
    return findings


def _file(file: TlsFile) -> list[Finding]:
    where = f"{file.path} ({file.origin or file.setting})"
    if file.problem:
        return [Finding(Status.CRIT, f"{file.role} {where}: {file.problem}")]
    if file.unknown:
        return [Finding(Status.UNKNOWN, f"cannot judge the {file.role} {file.path}: "
                                        f"{file.unknown}")]
    pem = file.pem
    if pem is None:
        return []
    findings = [Finding(Status.CRIT, f"{where}: {p}") for p in pem.problems]
    if file.role == "certificate" and not pem.certificates:
        findings.append(Finding(Status.CRIT, f"{where} holds no certificate: the registry "
                                             "exits (\"tls: failed to find any PEM data in "
                                             "certificate input\")"))
    return findings


def _key_pair(certificate: TlsFile, key: TlsFile | None) -> list[Finding]:
    """Go's tls.X509KeyPair: the first `* PRIVATE KEY` block, unencrypted, matching the first
    certificate."""
    if key is None or key.pem is None:
        return []
    where = f"{key.path} ({key.origin})"
    if not key.pem.keys:
        return [Finding(Status.CRIT, f"{where} holds no private key: the registry exits "
                                     "(\"tls: failed to find any PEM data in key input\")")]
    first = key.pem.keys[0]
    if first.encrypted or first.public_key is None:
        why = f"the key is {first.layout}" if first.encrypted else first.problem
        return [Finding(Status.CRIT, f"{where}: {why}: the registry exits (\"tls: failed to "
                                     "parse private key\")")]
    leaf = certificate.pem.certificates[0] if certificate.pem else None
    if leaf is not None and first.public_key != leaf.public_key:
        return [Finding(Status.CRIT, f"{where} does not belong to {leaf.label} of "
                                     f"{certificate.path}: the registry exits (\"tls: private "
                                     "key does not match public key\")")]
    return [Finding(Status.OK, f"{where}: unencrypted {first.layout} key of the server "
                               "certificate")]


def _dates(cert: Certificate, now: datetime, where: str) -> list[Finding]:
    """Go clients refuse the whole chain for one certificate out of its validity."""
    if not cert.not_before <= now <= cert.not_after:
        when = (f"expired on {cert.not_after:%Y-%m-%d}" if cert.not_after < now else
                f"is not valid before {cert.not_before:%Y-%m-%d}")
        return [Finding(Status.CRIT, f"{where}: {cert.label} {when}: clients refuse it "
                                     "(\"x509: certificate has expired or is not yet valid\")")]
    left = cert.not_after - now
    soon = left < EXPIRY_WARNING
    day = f"{cert.not_after:%Y-%m-%d}"
    state = f"expires in {left.days} days ({day})" if soon else f"valid until {day}"
    return [Finding(Status.WARN if soon else Status.OK, f"{where}: {cert.label} {state}")]


def _names(leaf: Certificate, service: dict[str, Any] | None, routes: list[dict[str, Any]],
           namespace: str) -> list[Finding]:
    """Every name clients reach the registry's own TLS by: the Service's names and IP, and the
    hosts of passthrough routes (the router hands their TLS to the registry)."""
    wanted: list[tuple[str, str, Status]] = []
    if service is not None:
        name = service["metadata"]["name"]
        wanted += [(f"{name}.{namespace}.svc", "the Service's cluster DNS name (builds and "
                    "image streams push and pull there)", Status.CRIT),
                   (f"{name}.{namespace}.svc.cluster.local", "the Service's full cluster DNS "
                    "name", Status.WARN)]
        cluster_ip = as_dict(service.get("spec")).get("clusterIP")
        if isinstance(cluster_ip, str) and cluster_ip not in ("", "None"):
            wanted.append((cluster_ip, "the Service's clusterIP", Status.CRIT))
    for route in routes:
        if termination(route) == "passthrough":
            wanted += [(host, f"the host route {route['metadata']['name']} is served at "
                        "(passthrough: clients see the registry's certificate)", Status.CRIT)
                       for host in served_hosts(route)]
    findings, covered = [], []
    for host, what, severity in wanted:
        error = hostname_error(leaf, host)
        if error is None:
            covered.append(host)
        else:
            findings.append(Finding(severity, f"{leaf.label} does not cover {host}, {what}: "
                                              f"clients fail with \"{error}\""))
    if covered:
        findings.append(Finding(Status.OK, f"{leaf.label} covers {', '.join(covered)}"))
    if not leaf.has_san and covered:
        findings.append(Finding(Status.WARN, f"{leaf.label} has no subjectAltName: only its "
                                             "Common Name names it, which Go < 1.15 clients "
                                             "accept and current docker, podman and skopeo "
                                             "refuse (\"x509: certificate relies on legacy "
                                             "Common Name field, use SANs instead\")"))
    return findings


def _kubelet_probes(registry: Workload, container: dict[str, Any],
                    https: bool | None) -> list[Finding]:
    """The docs switch the probes to HTTPS with the certificate: a probe in the other scheme
    fails every time, and the kubelet restarts (liveness) or unreadies (readiness) the pods."""
    if https is None:
        return []
    findings = []
    for kind in ("livenessProbe", "readinessProbe"):
        http_get = as_dict(as_dict(container.get(kind)).get("httpGet"))
        if not http_get:
            continue
        scheme = str(http_get.get("scheme") or "HTTP").upper()
        if https and scheme == "HTTP":
            findings.append(Finding(Status.CRIT, f"{registry.ref} {kind} uses HTTP against the "
                                                 "registry's TLS port: it answers 400 (\"Client "
                                                 "sent an HTTP request to an HTTPS server.\"); "
                                                 "set httpGet.scheme: HTTPS"))
        elif not https and scheme == "HTTPS":
            findings.append(Finding(Status.CRIT, f"{registry.ref} {kind} uses HTTPS, but the "
                                                 "registry serves plain HTTP: every probe fails "
                                                 "(\"http: server gave HTTP response to HTTPS "
                                                 "client\"); set httpGet.scheme: HTTP"))
    return findings


def _route(route: dict[str, Any], tls: ServingTls,
           service: dict[str, Any] | None) -> list[Finding]:
    name = f"route {route['metadata']['name']}"
    kind = termination(route)
    findings = _admission(route, name)
    https = tls.https
    if https is None:
        findings.append(Finding(Status.OK, f"{name} ({kind or 'plain HTTP'}) not judged "
                                           "against the registry, whose scheme is unknown"))
    elif kind in (None, "edge") and https:
        via = "edge termination" if kind else "no TLS (spec.tls)"
        findings.append(Finding(Status.CRIT, f"{name} has {via}: the router sends plain HTTP to "
                                             "the registry, which serves HTTPS; every request "
                                             "through it gets HTTP 400 (\"Client sent an HTTP "
                                             "request to an HTTPS server.\"); make it "
                                             "passthrough or reencrypt"))
    elif kind in ("passthrough", "reencrypt") and not https:
        how = ("passes the client's TLS through" if kind == "passthrough" else
               "opens TLS (reencrypt)")
        findings.append(Finding(Status.CRIT, f"{name} {how} to the registry, which serves plain "
                                             "HTTP: every handshake fails (clients see \"tls: "
                                             "first record does not look like a TLS handshake\" "
                                             "or the router's 503); make it edge, or secure the "
                                             "registry"))
    elif kind == "reencrypt":
        findings.append(_reencrypt(route, name, tls, service))
    else:
        findings.append(Finding(Status.OK, f"{name}: {kind or 'plain HTTP'} to a registry "
                                           f"serving {'HTTPS' if https else 'plain HTTP'}"))
    if kind in ("edge", "reencrypt") and insecure_policy(route) == "Allow":
        findings.append(Finding(Status.WARN, f"{name} insecureEdgeTerminationPolicy Allow: the "
                                             "registry is served over plain HTTP too, tokens "
                                             "and images in clear text; use Redirect or None"))
    return findings


def _admission(route: dict[str, Any], name: str) -> list[Finding]:
    answers = admissions(route)
    admitted = [a for a in answers if a.admitted]
    findings = [Finding(Status.WARN if admitted else Status.CRIT,
                        f"{name} not admitted by router {a.router!r}"
                        f" for {a.host or 'its host'}: {a.reason or 'no reason given'}"
                        + (f" ({a.message})" if a.message else "")
                        + ("" if admitted else ": no router serves it"))
                for a in answers if a.admitted is False]
    if answers and not admitted and not findings:
        findings.append(Finding(Status.WARN, f"{name}: no router has admitted it yet "
                                             "(status.ingress without Admitted=True)"))
    hosts = served_hosts(route)
    if hosts:
        findings.append(Finding(Status.OK, f"{name} is served at {', '.join(hosts)}"))
    elif not answers:
        findings.append(Finding(Status.WARN, f"{name} has no host (spec.host)"))
    return findings


def _reencrypt(route: dict[str, Any], name: str, tls: ServingTls,
               service: dict[str, Any] | None) -> Finding:
    """The router verifies the registry's certificate against destinationCACertificate, or
    without one against the service CA (3.11 docs, "Routes", "Re-encryption Termination")."""
    chain = tls.chain
    given = destination_ca(route)
    if given is not None:
        authorities = read_pem_file(f"{name} destinationCACertificate", given.encode())
        if not authorities.certificates:
            return Finding(Status.CRIT, f"{name} destinationCACertificate holds no readable "
                                        "certificate: the router cannot verify the registry "
                                        "and answers 503")
        if not chain:
            return Finding(Status.OK, f"{name} reencrypt with a destinationCACertificate; the "
                                      "registry's certificate is not readable to compare")
        labels = ", ".join(c.common_name or c.subject for c in authorities.certificates)
        if issued_under(chain, authorities.certificates):
            return Finding(Status.OK, f"{name} reencrypt: its destinationCACertificate ({labels}) "
                                      f"issued the registry's {chain[0].label}")
        return Finding(Status.CRIT, f"{name} destinationCACertificate ({labels}) did not issue "
                                    f"the registry's {chain[0].label} (issuer {chain[0].issuer}): "
                                    "the router refuses the backend and answers 503")
    secret = tls.certificate.secret if tls.certificate else None
    annotations = as_dict(as_dict(as_dict(service).get("metadata")).get("annotations"))
    if secret and any(annotations.get(a) == secret for a in SERVING_CERT_ANNOTATIONS):
        return Finding(Status.OK, f"{name} reencrypt: the registry serves the service CA's "
                                  f"certificate (secret {secret}), which the router trusts")
    if chain and (chain[0].issuer.split("CN=", 1)[-1]).startswith(SERVICE_SIGNER):
        return Finding(Status.OK, f"{name} reencrypt: the registry's certificate is signed by "
                                  f"the service CA ({chain[0].issuer}), which the router trusts")
    issued = f"issued by {chain[0].issuer}" if chain else "not readable here"
    return Finding(Status.WARN, f"{name} reencrypt without destinationCACertificate: the router "
                                "verifies the registry against the service CA only, and the "
                                f"registry's certificate ({issued}) is not a service serving "
                                "certificate: expect 503 from the router; set "
                                "spec.tls.destinationCACertificate to the CA that signed it")


def _served(observed: ProbeResult[RegistryChains] | None, tls: ServingTls, now: datetime,
            metrics: dict[MetricKey, float]) -> list[Finding]:
    """What the live handshakes saw: the chain each endpoint really serves."""
    if observed is None:
        return []
    if observed.error:
        return [Finding(Status.OK, f"served chains not checked: {observed.error}")]
    mounted = tls.chain[0] if tls.chain else None
    findings = []
    for seen in observed.data.targets:
        target = seen.target
        where = f"{target.name} ({target.host}:{target.port}" + (
            f" at {target.address})" if target.address != target.host else ")")
        if seen.served is None:
            findings.append(Finding(Status.OK, f"{where} not reached from here: {seen.error}"))
            continue
        if seen.served.handshake_error is not None:
            expected = target.kind == "route" or tls.https
            findings.append(Finding(Status.CRIT if expected else Status.OK,
                                    f"{where}: the TLS handshake fails: "
                                    f"{seen.served.handshake_error}"))
            continue
        chain = [c for c in (certificate_from_der(der, position) for position, der
                             in enumerate(seen.served.chain, 1)) if c is not None]
        if not chain:
            findings.append(Finding(Status.CRIT, f"{where}: no readable certificate served"))
            continue
        findings += _served_chain(target, where, chain, mounted, now)
        if target.kind == "route":
            _note_expiry(metrics, ROLE_REGISTRY_ROUTE, chain)
        elif mounted is None:
            _note_expiry(metrics, ROLE_REGISTRY, chain)
    return findings


def _served_chain(target: HandshakeTarget, where: str, chain: list[Certificate],
                  mounted: Certificate | None, now: datetime) -> list[Finding]:
    leaf = chain[0]
    expiry = min(chain, key=lambda c: c.not_after)
    findings = [Finding(Status.OK, f"{where} serves {' <- '.join(c.label for c in chain)}; "
                                   f"it stops verifying on {expiry.not_after:%Y-%m-%d} "
                                   f"({expiry.label} expires)")]
    findings += [d for c in chain for d in _dates(c, now, f"{where} served")
                 if d.status is not Status.OK]
    if target.kind == "route":
        error = hostname_error(leaf, target.host)
        if error:
            findings.append(Finding(Status.CRIT, f"{where}: clients fail with \"{error}\""))
    if target.registry_serves and mounted is not None and \
            leaf.fingerprint != mounted.fingerprint:
        findings.append(Finding(Status.WARN, f"{where} serves {leaf.label}, not {mounted.label} "
                                             "of the mounted secret: the pods predate the secret "
                                             "change (roll them out)"))
    return findings
