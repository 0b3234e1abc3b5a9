"""Live probe: the OAuth server's metadata, `/.well-known/oauth-authorization-server`.

Asked of the API server this run talks to (the master), so its `issuer` is the master's public
URL that the console's OPENSHIFT_OAUTH_PROVIDER_URL must name; against a dump, of the URL the
console names. The endpoint is public: no credentials are sent.
"""

from __future__ import annotations

import json

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.probe_results import OAuthMetadata
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.probes.http_get import get
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.snapshot.kinds import console_env

METADATA_PATH = "/.well-known/oauth-authorization-server"


def run(snapshot: Snapshot, config: RunConfig, timeout: float) -> OAuthMetadata:
    return oauth_metadata(master_url(snapshot), timeout)


def master_url(snapshot: Snapshot) -> str:
    server = snapshot.source.get("server")
    if isinstance(server, str) and server.startswith("https://"):
        return server
    console = snapshot.console()
    provider = console_env(console).get("OPENSHIFT_OAUTH_PROVIDER_URL") if console else None
    if not provider:
        raise ProbeError("no master URL: neither a live API server nor the console's "
                         "OPENSHIFT_OAUTH_PROVIDER_URL")
    return provider


def oauth_metadata(base_url: str, timeout: float) -> OAuthMetadata:
    url = base_url.rstrip("/") + METADATA_PATH
    answer = get(url, timeout)
    if answer.status != 200:
        return OAuthMetadata(url, answer.status)
    try:
        document = json.loads(answer.body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return OAuthMetadata(url, answer.status, problem="the answer is not a JSON object")
    issuer, endpoint = (document.get(f) for f in ("issuer", "authorization_endpoint"))
    return OAuthMetadata(url, answer.status, issuer=issuer if isinstance(issuer, str) else None,
                         authorization_endpoint=endpoint if isinstance(endpoint, str) else None)
