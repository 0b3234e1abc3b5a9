"""oauth-redirect: logging in to the registry console comes back to the console.

"Deploying a Registry on Existing Clusters" (OpenShift Origin 3.x docs),
"Deploying the Registry Console": "If the redirection URL is wrong when you are trying to
log in to the registry console, check your OAuth client with oc get oauthclients."
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from registry_doctor.doctor.check import CheckContext, ProbeResult
from registry_doctor.doctor.cockpit import CERT_DIR
from registry_doctor.doctor.console import (
    CONSOLE_PLATFORMS,
    DEFAULT_OAUTH_CLIENT,
    NO_CONSOLE,
    RESTORE_ROUTE,
    SERVING_CERT_ANNOTATION,
    console_urls,
    console_version,
    read_only_at,
    restore_route_command,
    route_host,
    route_resource,
    route_target,
    route_to,
    secret_mount,
)
from registry_doctor.doctor.findings import Finding, verdict
from registry_doctor.doctor.fix.planners.console import plan_oauth_redirect as plan  # noqa: F401 (its planner)
from registry_doctor.doctor.model import CheckMeta, CheckOption, Resource, Result, Severity, Status
from registry_doctor.doctor.oauth import UrlError, match_redirect, parse_url
from registry_doctor.doctor.probe_results import AuthorizeAnswer, OAuthMetadata
from registry_doctor.doctor.routes import (
    admissions,
    describe_refusal,
    destination_ca,
    refusals,
    requested_host,
    served_hosts,
    termination,
)
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.snapshot.kinds import console_env
from registry_doctor.doctor.workload import WORKLOAD_KINDS, Workload, as_dict, as_list

META = CheckMeta(
    id="oauth-redirect",
    title="Registry console login redirects back to the console",
    severity=Severity.CRIT,
    kinds=(*WORKLOAD_KINDS, "routes", "services", "oauthclients"),
    probes=("console-oauth", "console-oauth-authorize"),
    platforms=CONSOLE_PLATFORMS,
    platform_note=NO_CONSOLE,
    description=(
        "The console route must be served: the hosts are those routers admitted it with "
        "(status.ingress[].host; spec.host only without status), and its TLS must reach "
        "Cockpit: passthrough; not edge (Cockpit redirects the router's plain HTTP to HTTPS: "
        "a redirect loop, crit); reencrypt only "
        "with a destinationCACertificate or the Service's service-serving certificate where "
        "Cockpit reads it (else crit). A route missing, refused (e.g. HostAlreadyClaimed) or "
        "with such a termination is the cause: its fix restores the route, not the OAuthClient. "
        "The OAuthClient named by the console's OPENSHIFT_OAUTH_CLIENT_ID (default "
        "cockpit-oauth-client; it must be the one configured with --console-oauth-client, "
        "else warn: only that one is read) must exist and one of its redirectURIs must accept "
        "https://<served host>/ for every served host by the OAuth server's rules (scheme, host "
        "with port, path prefix; osin urivalidate.go). Crit: no such client, no match, "
        "OPENSHIFT_OAUTH_PROVIDER_URL unset or not an https URL, a COCKPIT_KUBE_URL (Cockpit's "
        "Origins) that is not exactly https://<served host> (a trailing slash breaks the "
        "WebSocket origin check), and, with --oauth-probe, HTTP 400 invalid_request from the "
        "authorize endpoint. Warn: a provider URL other than the issuer in the master's OAuth "
        "metadata (live), REGISTRY_HOST not the docker-registry route's served host."
    ),
    remediation=(
        "When the route is the cause, restore the template's passthrough route: `$cli delete "
        "route registry-console -n $namespace && $cli create route passthrough registry-console "
        "--service registry-console --hostname <host> -n $namespace`. Else make the OAuthClient "
        "accept the console URL: `$cli patch oauthclient cockpit-oauth-client -p "
        "'{\"redirectURIs\":[\"https://<served host>\"]}'`; fix console env with `$cli set env "
        "$console -n $namespace NAME=value`."
    ),
    options=(
        CheckOption("--oauth-probe", "oauth_probe", "Also ask the OAuth server to authorize "
                    "the console's redirect URI (shows in the master log).", type="bool",
                    default=False),
        CheckOption("--console-host", "console_hosts", "A host whose https URL the fix may "
                    "register with the console's OAuthClient (repeatable; none: the fix is "
                    "left to a person).", type="list", default=(), fix=True),
    ),
)


def evaluate(ctx: CheckContext) -> Result:
    console = ctx.console()
    env = console_env(console)
    client_id = env.get("OPENSHIFT_OAUTH_CLIENT_ID", DEFAULT_OAUTH_CLIENT)
    route = route_to(ctx.snapshot, ctx.config.console_name)
    resources = [console.resource, Resource("OAuthClient", client_id)]
    findings = _route(route, console, ctx.snapshot)
    urls = console_urls(route) if route else []
    if route:
        resources.append(route_resource(route))
    if urls and client_id != ctx.config.console_oauth_client:
        findings.append(Finding(Status.WARN, _unconfigured_client(client_id, console, ctx)))
    elif urls:
        client = ctx.snapshot.named("oauthclients", client_id)
        for position, url in enumerate(urls):  # one probe: of the first host
            authorize = ctx.probe("console-oauth-authorize", AuthorizeAnswer) \
                if position == 0 else None
            findings += _redirect(client, client_id, url, authorize,
                                  ctx.config.probes_enabled and position == 0)
        findings += _origins(env, console, urls[0])
    url = urls[0] if urls else None
    findings += _provider(env, console, ctx.probe("console-oauth", OAuthMetadata))
    findings += _registry_host(ctx, env, console, resources)
    return verdict(ctx, findings, f"OAuthClient {client_id} accepts {url} and the console's "
                                  "OAuth settings agree", resources)


def _unconfigured_client(client_id: str, console: Workload, ctx: CheckContext) -> str:
    configured = ctx.config.console_oauth_client
    return (f"the console's OPENSHIFT_OAUTH_CLIENT_ID names OAuthClient {client_id}, not the "
            f"configured {configured} (--console-oauth-client): registry-doctor reads only "
            f"{configured} (OAuthClients hold client secrets), so the redirect URIs of "
            f"{client_id} are not judged; if {client_id} is right, configure it, else fix the "
            f"env: `oc set env {console.ref} -n {console.namespace} "
            f"OPENSHIFT_OAUTH_CLIENT_ID={configured}`")


def _route(route: dict[str, Any] | None, console: Workload,
           snapshot: Snapshot) -> list[Finding]:
    """Whether a router serves the console route, where, and whether its TLS can reach
    Cockpit: when not, the route is the cause (restore it), not the OAuthClient."""
    if route is None:
        return [Finding(Status.CRIT, f"no route {console.name} (nor one to service "
                                     f"{console.name}): the console is unreachable and has no "
                                     f"URL to redirect to; {RESTORE_ROUTE}: `oc create route "
                                     f"passthrough --service {console.name} -n "
                                     f"{console.namespace}`")]
    name = route["metadata"]["name"]
    refused = refusals(route)
    if refused:
        return [Finding(Status.CRIT, f"{describe_refusal(route, r)}: no router serves the "
                                     "console, so there is no URL to log in at; "
                                     f"{RESTORE_ROUTE}, not the OAuthClient: delete the older "
                                     "route holding the host, or give the console a free host: "
                                     f"`{restore_route_command(route, console, '<free host>')}`")
                for r in refused]
    host = route_host(route)
    if host is None:
        pending = bool(admissions(route))
        return [Finding(Status.UNKNOWN if pending else Status.CRIT,
                        f"no router has answered route {name} yet (status.ingress without an "
                        "Admitted condition)" if pending else f"route {name} has no spec.host")]
    return [*_served_at(route, name), *_termination(route, console, host, snapshot)]


def _served_at(route: dict[str, Any], name: str) -> list[Finding]:
    answers = admissions(route)
    asked, served = requested_host(route), served_hosts(route)
    findings = [Finding(Status.OK, f"{describe_refusal(route, a)}; other routers serve it")
                for a in answers if a.admitted is False]
    if answers and served != [asked]:
        findings.append(Finding(Status.OK, f"route {name} asks for spec.host {asked}, but its "
                                           f"routers serve it at {', '.join(served)} "
                                           "(status.ingress[].host: a router subdomain or "
                                           "hostname override): that is the console's URL"))
    return findings


def _termination(route: dict[str, Any], console: Workload, host: str,
                 snapshot: Snapshot) -> list[Finding]:
    name, how = route["metadata"]["name"], termination(route)
    restore = f"{RESTORE_ROUTE}: `{restore_route_command(route, console, host)}`"
    if how == "passthrough":
        return [Finding(Status.OK, f"route {name}: https://{host}/, passthrough TLS to Cockpit")]
    if how is None:
        return [Finding(Status.CRIT, f"route {name} has no TLS (spec.tls): the console needs "
                                     f"HTTPS; {restore}")]
    if how == "edge":
        return [_edge(name, restore)]
    if how == "reencrypt":
        return [_reencrypt(route, console, snapshot, restore)]
    return [Finding(Status.CRIT, f"route {name} has TLS termination {how!r}, which routers do "
                                 f"not know; {restore}")]


def _edge(name: str, restore: str) -> Finding:
    """Cockpit answers every plain-HTTP request that does not arrive on a loopback address
    with a redirect to https (cockpit-project/cockpit `src/common/cockpitwebserver.c`
    `redirect_tls`); the console image's cockpit.conf has no AllowUnencrypted, and in Cockpit
    195 not even --no-tls (COCKPIT_KUBE_INSECURE) turns it off."""
    return Finding(Status.CRIT, f"route {name} uses edge TLS termination: the router talks "
                                "plain HTTP to Cockpit, which answers with a redirect to HTTPS, "
                                "so browsers loop (ERR_TOO_MANY_REDIRECTS) and the console is "
                                f"unusable; {restore}")


def _reencrypt(route: dict[str, Any], console: Workload, snapshot: Snapshot,
               restore: str) -> Finding:
    name = route["metadata"]["name"]
    if destination_ca(route):
        return Finding(Status.OK, f"route {name} re-encrypts to Cockpit and verifies its "
                                  "certificate with the route's destinationCACertificate")
    service_name = str(route_target(route) or "")
    service = snapshot.named("services", service_name)
    untrusted = (f"route {name} re-encrypts to Cockpit without a destinationCACertificate, so "
                 "the router trusts only certificates of the service CA")
    if service is None:
        return Finding(Status.UNKNOWN, f"{untrusted}; service {service_name} was not read (only "
                                       "the registry's and the console's are), so whether it "
                                       "has a serving certificate is unknown")
    secret = as_dict(as_dict(service.get("metadata")).get("annotations")).get(
        SERVING_CERT_ANNOTATION)
    if not secret:
        return Finding(Status.CRIT, f"{untrusted}, and service {service_name} has no "
                                    f"{SERVING_CERT_ANNOTATION} annotation: Cockpit's "
                                    "certificate is not one, every request fails (HTTP 503); "
                                    f"{restore}")
    mounted = secret_mount(console, str(secret))
    version = console_version(console)
    reads_at = version.tls_pair_folder
    blocked = read_only_at(console, CERT_DIR) if version.launcher else None
    if mounted is not None and mounted == reads_at and blocked is None:
        return Finding(Status.OK, f"route {name} re-encrypts to Cockpit, which reads the "
                                  f"service serving certificate (secret {secret}, signed by "
                                  f"the service CA the router trusts) at {mounted} "
                                  "(cert-chain-order judges the file it serves)")
    if mounted is None:
        where = "does not mount it"
    elif mounted != reads_at:
        where = f"mounts it at {mounted}, not at {reads_at} where its Cockpit reads tls.crt " \
                "and tls.key"
    else:
        where = f"mounts it at {mounted}, and the launcher cannot combine it into the " \
                f"read-only volume {blocked} at {CERT_DIR}"
    return Finding(Status.CRIT, f"{untrusted}; service {service_name} has a serving "
                                f"certificate (secret {secret}), but {console.ref} {where}: "
                                "Cockpit serves another certificate and the router answers "
                                f"HTTP 503; mount secret {secret} at {reads_at} alone, or "
                                f"{restore}")


def _redirect(client: dict[str, Any] | None, client_id: str, url: str,
              authorize: ProbeResult[AuthorizeAnswer] | None, probes_on: bool) -> list[Finding]:
    if client is None:
        return [Finding(Status.CRIT, f"OAuthClient {client_id} (the console's "
                                     "OPENSHIFT_OAUTH_CLIENT_ID) does not exist: the OAuth server "
                                     "answers unauthorized_client; create it with "
                                     f"redirectURIs: [\"{url.rstrip('/')}\"]")]
    registered = [str(u) for u in as_list(client.get("redirectURIs"))]
    match = match_redirect(registered, url)
    tried = [f"OAuthClient {client_id} redirectURIs[{index}] {uri!r}: {verdict.reason}"
             for index, (uri, verdict) in enumerate(match.verdicts)]
    if match.accepted_by is not None:
        static = Finding(Status.OK, f"OAuthClient {client_id} accepts {url} "
                                    f"(redirectURIs entry {match.accepted_by!r})")
    else:
        kept = [u for u in registered if _is_url(u)]  # a non-URL would stop the search again
        fix = json.dumps({"redirectURIs": list(dict.fromkeys([url.rstrip("/"), *kept]))})
        static = Finding(Status.CRIT, f"OAuthClient {client_id} redirectURIs {registered} do not "
                                      f"accept {url}, the URL the console sends: the OAuth server "
                                      "answers HTTP 400 invalid_request; fix: `oc patch "
                                      f"oauthclient {client_id} -p '{fix}'`")
    if match.verdicts and match.verdicts[-1][1].stops_search and \
            len(match.verdicts) < len(registered):
        tried.append(f"the OAuth server stops at redirectURIs[{len(match.verdicts) - 1}]: the "
                     "entries after it are never tried")
    return [static, *(Finding(Status.OK, t) for t in tried),
            *_authorize_answer(authorize, static, probes_on)]


def _is_url(text: str) -> bool:
    try:
        parse_url(text)
    except UrlError:
        return False
    return bool(text)


def _authorize_answer(observed: ProbeResult[AuthorizeAnswer] | None, static: Finding,
                      probes_on: bool) -> list[Finding]:
    if observed is None:
        return [Finding(Status.OK, "the OAuth server itself was not asked (add --oauth-probe)")] \
            if probes_on else []
    if observed.error:
        return [Finding(Status.OK, f"the OAuth server could not be asked: {observed.error}")]
    data = observed.data
    said = f"GET {data.endpoint} with redirect_uri {data.redirect_uri} answered HTTP " \
           f"{data.status}"
    error = data.error
    if data.status == 400 and error in ("invalid_request", "unauthorized_client"):
        return [Finding(Status.CRIT, f"the OAuth server refuses the console's login: {said} "
                                     f"{error}: {data.error_description or ''}".rstrip())]
    location = data.location or ""
    if 300 <= data.status < 400 and location.startswith(data.redirect_uri) and \
            "error=" in location:
        return [Finding(Status.WARN, f"the OAuth server accepted the redirect but sends back an "
                                     f"error: {said} to {location}")]
    if 300 <= data.status < 400 or data.status == 200:
        where = urlsplit(location).path if location else "a login page"
        agreed = "" if static.status is Status.OK else \
            " (it accepts what the OAuthClient as read here seems not to)"
        return [Finding(Status.OK, f"the OAuth server accepts the console's login: {said}, "
                                   f"towards {where}{agreed}")]
    return [Finding(Status.UNKNOWN, f"the OAuth server gave no verdict: {said}")]


def _origins(env: dict[str, str], console: Workload, url: str) -> list[Finding]:
    origins = env.get("COCKPIT_KUBE_URL")
    if origins is None:
        return []
    expected = f"https://{urlsplit(url).netloc}"  # an Origin header: no path, no slash
    if origins == expected:
        return [Finding(Status.OK, f"COCKPIT_KUBE_URL {origins} is the console's origin")]
    slash = " (a trailing slash never matches)" if origins.rstrip("/") == expected else ""
    return [Finding(Status.CRIT, f"{console.ref} env COCKPIT_KUBE_URL is {origins!r}, but "
                                 f"browsers send Origin {expected}{slash}: Cockpit refuses the "
                                 "WebSocket (\"received request from bad Origin\"); fix: `oc "
                                 f"set env {console.ref} -n {console.namespace} "
                                 f"COCKPIT_KUBE_URL={expected}`")]


def _provider(env: dict[str, str], console: Workload,
              metadata: ProbeResult[OAuthMetadata] | None) -> list[Finding]:
    provider = env.get("OPENSHIFT_OAUTH_PROVIDER_URL")
    where = f"{console.ref} env OPENSHIFT_OAUTH_PROVIDER_URL"
    if not provider:
        return [Finding(Status.CRIT, f"{where} is not set: the console cannot send users to "
                                     "log in; set it to the master's public URL")]
    parts = urlsplit(provider)
    if parts.scheme != "https" or not parts.hostname:
        return [Finding(Status.CRIT, f"{where} {provider!r} is not an https URL of the master")]
    if metadata is None:
        return [Finding(Status.OK, f"{where} is {provider}")]
    if metadata.error:
        return [Finding(Status.OK, f"{where} is {provider}; OAuth metadata not read: "
                                   f"{metadata.error}")]
    issuer = metadata.data.issuer
    if not issuer:
        return [Finding(Status.OK, f"{where} is {provider}; {metadata.data.url} answered "
                                   f"HTTP {metadata.data.status} without an issuer")]
    if issuer.rstrip("/") == provider.rstrip("/"):
        return [Finding(Status.OK, f"{where} is the OAuth issuer {issuer}")]
    return [Finding(Status.WARN, f"{where} is {provider}, but the master's OAuth issuer is "
                                 f"{issuer} ({metadata.data.url}): browsers may not reach "
                                 f"the login there; fix: `oc set env {console.ref} -n "
                                 f"{console.namespace} OPENSHIFT_OAUTH_PROVIDER_URL={issuer}`")]


def _registry_host(ctx: CheckContext, env: dict[str, str], console: Workload,
                   resources: list[Resource]) -> list[Finding]:
    registry = ctx.config.registry_name
    route = route_to(ctx.snapshot, registry)
    if route is None:
        return [Finding(Status.WARN, f"no route {registry}: the registry is not exposed, and "
                                     "the console shows pull commands for REGISTRY_HOST; expose "
                                     f"it first (`oc create route passthrough --service "
                                     f"{registry}`)")]
    resources.append(route_resource(route))
    host, shown = route_host(route), env.get("REGISTRY_HOST")
    if host is None:
        return [Finding(Status.OK, f"REGISTRY_HOST not compared: no router serves route "
                                   f"{registry}")]
    if shown is None:
        return [Finding(Status.WARN, f"{console.ref} env REGISTRY_HOST is not set: the console "
                                     f"cannot show pull commands; fix: `oc set env "
                                     f"{console.ref} -n {console.namespace} "
                                     f"REGISTRY_HOST={host}`")]
    if shown == host:
        return [Finding(Status.OK, f"REGISTRY_HOST is the {registry} route host {host}")]
    return [Finding(Status.WARN, f"{console.ref} env REGISTRY_HOST is {shown!r}, but route "
                                 f"{registry} serves {host}: the console shows wrong pull and "
                                 f"push commands; fix: `oc set env {console.ref} -n "
                                 f"{console.namespace} REGISTRY_HOST={host}`")]
