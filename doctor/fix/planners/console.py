"""Planners for the console checks: cert-chain-order, oauth-redirect, cockpit-port-conflict.

Cockpit (cockpit-project/cockpit 160-287, `cockpit_certificate_locate`) reads the alphabetically
last `*.cert` (or, since 211, `*.crt`) in /etc/cockpit/ws-certs.d: the server certificate first,
then each issuer after the certificate it issued, the private key last.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from registry_doctor.doctor.cockpit import CERT_DIR
from registry_doctor.doctor.config import CONSOLE_OAUTH_CLIENT, CONSOLE_SECRETS
from registry_doctor.doctor.console import DEFAULT_OAUTH_CLIENT, RESTORE_ROUTE, route_host
from registry_doctor.doctor.fix.model import Action, Permission
from registry_doctor.doctor.fix.pemtext import Segment, decoded, segments
from registry_doctor.doctor.fix.permissions import PATCH_WORKLOAD, REDEPLOY
from registry_doctor.doctor.fix.plan import PlanContext, planner
from registry_doctor.doctor.fix.planners import WORKLOADS
from registry_doctor.doctor.snapshot.kinds import console_env
from registry_doctor.doctor.workload import Workload, as_dict, as_list

CERT_SUFFIXES = (".cert", ".crt")
PATCH_SECRET = Permission("", "secrets", ("get", "patch"),
                          "cert-chain-order: rewrite the console's certificate secret",
                          names=(CONSOLE_SECRETS,))
PATCH_OAUTH_CLIENT = Permission("oauth.openshift.io", "oauthclients", ("get", "patch"),
                                "oauth-redirect: add the console's redirect URI",
                                cluster_scoped=True, names=(CONSOLE_OAUTH_CLIENT,))


@planner(*REDEPLOY, PATCH_SECRET, reads=(*WORKLOADS, "console-secrets"))
def plan_cert_chain_order(ctx: PlanContext) -> list[Action]:
    """The same PEM blocks, byte for byte, in the order Cockpit needs; then a console redeploy
    (cockpit-ws reads its certificate when it starts)."""
    console = ctx.console()
    secret = ctx.snapshot.named("console-secrets", _cert_secret(console)) if console else None
    data = as_dict(secret.get("data")) if secret else {}
    chosen = sorted(k for k in data if k.endswith(CERT_SUFFIXES))
    if console is None or secret is None or not chosen:
        return []
    key, name = chosen[-1], secret["metadata"]["name"]
    text = decoded(data[key])
    ordered = ordered_chain(text) if text is not None else None
    if ordered is None:
        return [ctx.manual("reorder-chain", f"reorder the PEM blocks of secret/{name} key {key}",
                           [f"its value is not a readable PEM chain here (a redacted dump?): "
                            f"plan against the cluster, or reorder {key} by hand: server "
                            "certificate, intermediates by issuance, private key last"])]
    if ordered == text:
        return []
    after = copy.deepcopy(secret)
    after["data"][key] = base64.b64encode(ordered.encode()).decode()
    return [ctx.patch(secret, after, "reorder-chain",
                      f"rewrite secret/{name} key {key}: server certificate first, then its "
                      "issuers in order, private key last (each block unchanged)",
                      redeploy=console, targets=ctx.findings(
                          *ORDER_FINDINGS, about=f"secret {secret['metadata'].get('namespace')}"
                                                 f"/{name}: {key}:"),
                      named_by=f"its name comes from the volume mounted at {CERT_DIR} in "
                      f"{console.ref}")]


# What doctor.cockpit reports about the order of a chain: what reordering removes.
ORDER_FINDINGS = ("the server certificate is not first", ": reversed: ", ": misordered chain: ")


def _cert_secret(console: Workload) -> str:
    """The secret mounted at Cockpit's certificate folder."""
    first = next(console.containers(), (0, {}))[1]
    volume = next((as_dict(m).get("name") for m in as_list(first.get("volumeMounts"))
                   if as_dict(m).get("mountPath") == CERT_DIR), None)
    for candidate in as_list(console.pod_spec.get("volumes")):
        if as_dict(candidate).get("name") == volume:
            return str(as_dict(as_dict(candidate).get("secret")).get("secretName") or "")
    return ""


def ordered_chain(text: str) -> str | None:
    """`text` with its blocks reordered (None when it holds no readable certificate): the
    certificate of the private key (else the one that issued no other) first, then each
    certificate's issuer after it, certificates outside the chain, other blocks, keys."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    blocks, trailer = segments(text)
    certs = [b for b in blocks if b.label == "CERTIFICATE"]
    try:
        parsed = {id(b): x509.load_der_x509_certificate(b.der or b"") for b in certs}
    except ValueError:
        return None
    if not certs:
        return None
    keys = [b for b in blocks if b.is_key]

    def issued(child: Segment, issuer: Segment) -> bool:
        try:
            parsed[id(child)].verify_directly_issued_by(parsed[id(issuer)])
        except Exception:  # ValueError, TypeError, InvalidSignature: not its issuer
            return False
        return True

    def public(segment: Segment) -> bytes:
        return parsed[id(segment)].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    leaf = next((c for c in certs if keys and public(c) == _key_public(keys[0])), None) or \
        next((c for c in certs if not any(issued(o, c) for o in certs if o is not c)), certs[0])
    chain = [leaf]
    while issuer := next((c for c in certs if id(c) not in map(id, chain)
                          and issued(chain[-1], c)), None):
        chain.append(issuer)
    rest = [b for b in blocks if id(b) not in map(id, chain) and not b.is_key]
    return "".join(_line_ended(b.text) for b in [*chain, *rest, *keys]) + trailer


def _key_public(key: Segment) -> bytes | None:
    from cryptography.hazmat.primitives import serialization

    try:
        private = serialization.load_der_private_key(key.der or b"", password=None)
    except (ValueError, TypeError):  # encrypted or not a key: the leaf is found by issuance
        return None
    return private.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def _line_ended(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


@planner(*PATCH_WORKLOAD, *REDEPLOY, PATCH_OAUTH_CLIENT,
         reads=(*WORKLOADS, "routes", "oauthclients"))
def plan_oauth_redirect(ctx: PlanContext) -> list[Action]:
    """Register the console's URL with its OAuth client (keeping the URIs there), and drop a
    trailing slash from COCKPIT_KUBE_URL (then redeploy the console). The client is the one
    configured (--console-oauth-client), never one the console's env names; the URL only on a
    configured console host (--console-host): both are enforced by doctor.fix.scope. When the
    route is the cause (missing, refused by its router, a termination Cockpit cannot work
    behind), the steps to restore it, and no OAuthClient change."""
    console = ctx.console()
    if console is None:
        return []
    env = console_env(console)
    route_problems = ctx.findings(RESTORE_ROUTE)
    if route_problems:
        return [ctx.manual("restore-route", f"restore the route of {console.ref}",
                           route_problems)]
    kube_url = env.get("COCKPIT_KUBE_URL", "")
    route = ctx.snapshot.named("routes", console.name)
    url = _route_url(route) or kube_url.rstrip("/")
    client_name = ctx.config.console_oauth_client
    named = env.get("OPENSHIFT_OAUTH_CLIENT_ID", DEFAULT_OAUTH_CLIENT)
    client = ctx.snapshot.named("oauthclients", client_name)
    actions = []
    if named != client_name:
        actions.append(ctx.refused(
            "add-redirect-uri", {"kind": "OAuthClient", "metadata": {"name": named}},
            f"register {url or 'the console URL'} with oauthclient/{named}",
            f"its name comes from env OPENSHIFT_OAUTH_CLIENT_ID of {console.ref}; if that is "
            "the console's client, configure it"))
    elif not url:
        actions.append(ctx.manual("console-url", "the console's URL is unknown", [
            f"create the console's route (oc create route passthrough --service "
            f"{console.name} -n {console.namespace}) or set COCKPIT_KUBE_URL"]))
    elif client is None:
        actions.append(ctx.manual("create-client", f"oauthclient/{client_name} is missing", [
            f"create it with redirectURIs [{url}] (the registry-console template does)"]))
    elif url not in as_list(client.get("redirectURIs")) and not ctx.config.console_hosts:
        actions.append(ctx.manual("add-redirect-uri", f"add {url} to the redirectURIs of "
                                  f"oauthclient/{client_name}", [
            f"registry-doctor registers a redirect URI only on a host the admin configured: "
            f"check that {url} is the console, then add it (oc patch oauthclient "
            f"{client_name}) or rerun with --console-host (chart value registry.consoleHosts)"
        ]))
    elif url not in as_list(client.get("redirectURIs")):
        after = copy.deepcopy(client)
        after["redirectURIs"] = [*as_list(client.get("redirectURIs")), url]
        source = f"route/{console.name}" if _route_url(route) else \
            f"COCKPIT_KUBE_URL of {console.ref}"
        actions.append(ctx.patch(client, after, "add-redirect-uri",
                                 f"add {url} to the redirectURIs of oauthclient/{client_name} "
                                 "(the ones there are kept)",
                                 named_by=f"the URL comes from {source}"))
    if kube_url.rstrip("/") and kube_url != kube_url.rstrip("/"):
        actions.append(_strip_slash(ctx, console, kube_url))
    return actions


def _route_url(route: dict[str, Any] | None) -> str:
    """The console's URL as its template registers it: passthrough TLS, no path."""
    host = route_host(route)
    return f"https://{host}" if host else ""


def _strip_slash(ctx: PlanContext, console: Workload, kube_url: str) -> Action:
    after = copy.deepcopy(console.obj)
    container = after["spec"]["template"]["spec"]["containers"][0]
    for entry in container["env"]:
        if isinstance(entry, dict) and entry.get("name") == "COCKPIT_KUBE_URL":
            entry["value"] = kube_url.rstrip("/")
    return ctx.patch(console.obj, after, "strip-trailing-slash",
                     f"set COCKPIT_KUBE_URL of {console.ref} to {kube_url.rstrip('/')}: a "
                     "trailing slash breaks Cockpit's WebSocket origin check",
                     redeploy=console)


@planner(*REDEPLOY, reads=(*WORKLOADS, "console-pods"))
def plan_cockpit_port_conflict(ctx: PlanContext) -> list[Action]:
    """A host service holds the console's port: steps for a person, and an optional redeploy
    once the port is free."""
    console = ctx.console()
    port = ctx.config.console_port
    nodes = sorted({str(as_dict(p.get("spec")).get("nodeName")) for p in
                    ctx.snapshot.items("console-pods") if as_dict(p.get("spec")).get("nodeName")})
    steps = [f"on {node}: see who holds port {port} (ss -ltnp 'sport = :{port}'); the host's "
             "Cockpit: systemctl disable --now cockpit.socket" for node in nodes or
             ["the console's node"]]
    steps.append(f"or move the console off port {port}: its containerPort, probes and the "
                 "Service targetPort")
    actions = [ctx.manual("free-port", f"free port {port} for the console", steps)]
    if console is not None:
        actions.append(ctx.redeploy(console, "redeploy", f"redeploy {console.ref} once the "
                                    "port is free", optional=True))
    return actions
