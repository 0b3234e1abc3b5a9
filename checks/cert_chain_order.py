"""cert-chain-order: the registry console serves a certificate browsers accept.

"Deploying a Registry on Existing Clusters" (OpenShift Origin 3.x docs),
"Securing the Registry Console": the console loads the alphabetically last `.cert` file in
/etc/cockpit/ws-certs.d, which must hold the server certificate, the intermediates and an
unencrypted key; without one it serves a self-signed certificate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from registry_doctor.doctor.check import CheckContext
from registry_doctor.doctor.cockpit import (
    CERT_DIR,
    DEFAULT_SELF_SIGNED,
    LAUNCHER_PAIR_DIR,
    CockpitVersion,
    choose,
    judge_chain,
    judge_directory,
    logged_certificate,
    served_chain,
)
from registry_doctor.doctor.console import (
    CONSOLE_PLATFORMS,
    NO_CONSOLE,
    certificate_files,
    console_version,
    route_resource,
    route_to,
)
from registry_doctor.doctor.findings import Finding, verdict
from registry_doctor.doctor.fix.planners.console import plan_cert_chain_order as plan  # noqa: F401 (its planner)
from registry_doctor.doctor.model import (
    CheckMeta,
    CheckOption,
    MetricKey,
    Resource,
    Result,
    Severity,
    Status,
)
from registry_doctor.doctor.pem import Certificate, PemFile, certificate_from_der, read_pem_file
from registry_doctor.doctor.probe_results import CertDirFiles, ServedChain
from registry_doctor.doctor.routes import refusals, served_hosts, termination
from registry_doctor.doctor.workload import WORKLOAD_KINDS, Workload

# `registry_doctor_certificate_not_after_timestamp_seconds{check,role}` (docs/exporter.md): the
# earliest notAfter of each chain the check reads, the moment that chain stops verifying.
EXPIRY_METRIC = "certificate_not_after_timestamp_seconds"
ROLE_CONSOLE = "console"  # the file Cockpit in the console pod serves (its mounted secret)
ROLE_CONSOLE_ROUTE = "console-route"  # the chain the console route serves, live
ROLE_LOCAL_COCKPIT = "local-cockpit"  # the --cert-dir folder of a host's Cockpit
Expiries = dict[MetricKey, float]

META = CheckMeta(
    id="cert-chain-order",
    title="Registry console serves a valid, well-ordered certificate chain",
    severity=Severity.CRIT,
    kinds=(*WORKLOAD_KINDS, "console-secrets", "configmaps", "routes", "console-pods",
           "console-logs"),
    probes=("console-route-tls", "console-cert-dir"),
    platforms=CONSOLE_PLATFORMS,
    platform_note=NO_CONSOLE,
    description=(
        "Judges the certificate the console's Cockpit would serve, from the secret or configMap "
        f"mounted at {CERT_DIR} (for the console image also the tls.crt and tls.key its "
        f"launcher combines into tls.cert from a volume at {LAUNCHER_PAIR_DIR}), from a local "
        "folder (--cert-dir) and, live, from the chain the console route actually serves. The "
        "file is the one Cockpit picks (alphabetically last *.cert; also *.crt with NAME.key "
        "from Cockpit 211, by the console image's version), and a file shadowed by it is named; "
        "the console pod's own log line 'Using certificate: PATH' is quoted as evidence. Names "
        "are checked against the hosts routers serve a passthrough route at (status.ingress). "
        "Crit: key missing, encrypted, in a layout the console cannot read or not matching the "
        "first certificate; a certificate not issued (signature verified) by the next one; "
        "expired or not yet valid; a served route host not in the subjectAltNames; the secret "
        "missing. Warn: only a self-signed certificate, expiry within 30 days, a repeated "
        "certificate, a shadowed file, a server certificate without its issuer, a route "
        "serving another certificate than the mounted file, a pod whose log names another file "
        "than the mounted ones make it choose, a tls pair the launcher cannot use. Unknown: a "
        "certificate an init container writes into an emptyDir at run time."
    ),
    remediation=(
        "Put the server certificate, then its intermediates, then the unencrypted key into one "
        ".cert file, recreate the secret (`$cli create secret generic console-secret "
        "--from-file=console.cert -n $namespace --dry-run -o yaml | $cli replace -f -`) and roll "
        "out the console (`$cli rollout latest $console -n $namespace`)."
    ),
    options=(
        CheckOption("--cert-dir", "cert_dir", "A local Cockpit ws-certs.d folder to judge.",
                    type="path"),
    ),
)


def evaluate(ctx: CheckContext) -> Result:
    console = ctx.console()
    version = console_version(console)
    route = route_to(ctx.snapshot, ctx.config.console_name)
    hosts, findings = _browser_hosts(route)
    now = datetime.now(timezone.utc)
    findings.insert(0, Finding(Status.OK, version.description))
    resources = [console.resource] + ([route_resource(route)] if route else [])
    expiries: Expiries = {}
    parsed, mounted = _mounted(ctx, console, version, hosts, now, resources)
    findings += mounted
    mounted_chain = served_chain(parsed, version) if parsed is not None else ()
    _note_expiry(expiries, ROLE_CONSOLE, mounted_chain)
    findings += _logged(ctx, console, None if parsed is None else
                        choose(parsed, version).certificate or DEFAULT_SELF_SIGNED)
    findings += _local_folder(ctx, version, hosts, now, expiries)
    expected = mounted_chain[0] if mounted_chain else None
    findings += _served(ctx, route, now, expected, expiries)
    return verdict(ctx, findings, f"{console.ref} serves a valid chain for "
                                  f"{', '.join(hosts) or 'its route'}", resources, expiries)


def _browser_hosts(route: dict | None) -> tuple[list[str], list[Finding]]:
    """The hosts browsers reach Cockpit's own certificate at: those a router serves the route
    at, when it passes TLS through."""
    if route is None:
        return [], []
    name, how = route["metadata"]["name"], termination(route)
    if refusals(route):
        return [], [Finding(Status.OK, f"no router serves route {name} (oauth-redirect names "
                                       "the refusal): the subjectAltNames are not compared "
                                       "with a host")]
    if how not in ("passthrough", None):
        return [], [Finding(Status.OK, f"route {name} uses {how} TLS termination: browsers see "
                                       "the router's certificate, not Cockpit's, so its "
                                       "subjectAltNames are not compared with the route host "
                                       "(oauth-redirect judges the route)")]
    return served_hosts(route), []


def _logged(ctx: CheckContext, console: Workload, chosen: str | None) -> list[Finding]:
    """cockpit-ws's own word on the file it loaded, against the file judged here (`chosen`;
    None: the files are unknown)."""
    findings = []
    for pod in ctx.snapshot.items("console-pods"):
        metadata = pod["metadata"]
        found = logged_certificate(ctx.snapshot.logs.get(
            (metadata.get("namespace", console.namespace), metadata["name"]), ""))
        if found is None:
            continue
        path, line = found
        said = f"pod {metadata['name']} logged {line!r}"
        if chosen is None:
            findings.append(Finding(Status.OK, f"{said}: the file it serves"))
        elif path == f"{CERT_DIR}/{chosen}":
            findings.append(Finding(Status.OK, f"{said}: the file judged here"))
        else:
            findings.append(Finding(Status.WARN, f"{said}, but the files mounted now make "
                                                 f"Cockpit choose {chosen}: the pod started "
                                                 "before they changed; roll it out: `oc rollout "
                                                 f"latest {console.ref} -n "
                                                 f"{console.namespace}`"))
    return findings


def _note_expiry(expiries: Expiries, role: str, chain: Sequence[Certificate]) -> None:
    if chain:
        expiries[(EXPIRY_METRIC, (("role", role),))] = min(
            c.not_after.timestamp() for c in chain)


def _mounted(ctx: CheckContext, console: Workload, version: CockpitVersion,
             hosts: list[str], now: datetime, resources: list[Resource]
             ) -> tuple[dict[str, PemFile] | None, list[Finding]]:
    """The files mounted into the console's certificate folder (None: unknown) and the
    findings about them."""
    mounted = certificate_files(console, ctx.snapshot)
    resources.extend(mounted.resources)
    where = " + ".join(mounted.sources) or f"{console.ref} (no volume at {CERT_DIR})"
    findings = [Finding(Status.CRIT, p) for p in mounted.problems]
    findings += [Finding(Status.UNKNOWN, f"cannot judge {u}") for u in mounted.unreadable]
    findings += [Finding(Status.WARN, i) for i in mounted.ignored]
    if mounted.problems or mounted.unreadable:
        return None, findings
    parsed = {name: read_pem_file(name, data) for name, data in mounted.files.items()}
    return parsed, findings + _prefixed(where, judge_directory(parsed, version, hosts, now,
                                                               mounted.writable))


def _local_folder(ctx: CheckContext, version: CockpitVersion, hosts: list[str],
                  now: datetime, expiries: Expiries) -> list[Finding]:
    if ctx.config.cert_dir is None:
        return []
    observed = ctx.probe("console-cert-dir", CertDirFiles)
    where = f"--cert-dir {ctx.config.cert_dir}"
    if observed is None:
        return [Finding(Status.OK, f"{where} not read: probes are off (--no-probes)")]
    if observed.error:
        return [Finding(Status.UNKNOWN, f"{where}: {observed.error}")]
    data = observed.data
    findings = [Finding(Status.UNKNOWN, f"{where}: cannot read {u}") for u in data.unreadable]
    _note_expiry(expiries, ROLE_LOCAL_COCKPIT, served_chain(data.files, version))
    return findings + _prefixed(where, judge_directory(data.files, version, hosts, now,
                                                       data.writable))


def _served(ctx: CheckContext, route: dict | None, now: datetime,
            expected: Certificate | None, expiries: Expiries) -> list[Finding]:
    observed = ctx.probe("console-route-tls", ServedChain)
    if observed is None:
        return []
    if observed.error:
        return [Finding(Status.OK, f"served chain not checked: {observed.error}")]
    data = observed.data
    how = termination(route)
    by = "Cockpit, through the passthrough route" if how == "passthrough" else \
        f"the router ({how or 'no'} TLS termination), not Cockpit"
    where = f"https://{data.host}/ (served by {by})"
    if data.handshake_error is not None:
        return [Finding(Status.CRIT, f"{where}: the TLS handshake fails: "
                                     f"{data.handshake_error}")]
    chain: list[Certificate] = [c for c in (certificate_from_der(der, position) for position, der
                                            in enumerate(data.chain, 1)) if c is not None]
    if not chain:
        return [Finding(Status.CRIT, f"{where}: no readable certificate was served")]
    _note_expiry(expiries, ROLE_CONSOLE_ROUTE, chain)
    findings = judge_chain(chain, now, data.host, where)
    if expected is not None and how == "passthrough" and \
            chain[0].fingerprint != expected.fingerprint:
        findings.append(Finding(Status.WARN, f"{where}: serves {chain[0].label}, not "
                                             f"{expected.label} of the mounted files: the "
                                             "console pod predates the secret change (roll it "
                                             "out) or the route reaches another server"))
    return findings


def _prefixed(where: str, findings: list[Finding]) -> list[Finding]:
    return [Finding(f.status, f"{where}: {f.text}") for f in findings]

