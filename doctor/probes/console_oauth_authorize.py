"""Opt-in live probe (`--oauth-probe`): ask the OAuth server to authorize the console, as a
browser does on login, without following the redirect.

GET <authorization_endpoint>?client_id=<OPENSHIFT_OAUTH_CLIENT_ID>&redirect_uri=https://<the
first host a router serves the console route at>/&response_type=token. A redirect towards login
(or a login page) means the client and redirect URI were accepted; HTTP 400 `invalid_request`
means the redirect URI was refused ("urls don't validate" in the master log). Nothing is logged
in and no secret is sent; the request does show up in the master's log, which is why it is
opt-in.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from urllib.parse import urlencode

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.console import DEFAULT_OAUTH_CLIENT, console_url, route_to
from registry_doctor.doctor.probe_results import AuthorizeAnswer
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.probes.console_oauth import master_url, oauth_metadata
from registry_doctor.doctor.probes.http_get import get
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.snapshot.kinds import console_env

AUTHORIZE_PATH = "/oauth/authorize"


def run(snapshot: Snapshot, config: RunConfig, timeout: float) -> AuthorizeAnswer:
    console = snapshot.console()
    route = route_to(snapshot, config.console_name)
    redirect_uri = console_url(route) if route else None
    if console is None or redirect_uri is None:
        raise ProbeError("no console route a router serves to take the redirect URI from")
    client_id = console_env(console).get("OPENSHIFT_OAUTH_CLIENT_ID", DEFAULT_OAUTH_CLIENT)
    deadline = time.monotonic() + timeout
    base = master_url(snapshot)
    endpoint = oauth_metadata(base, timeout / 2).authorization_endpoint or \
        base.rstrip("/") + AUTHORIZE_PATH
    return authorize(endpoint, client_id, redirect_uri, max(deadline - time.monotonic(), 0.1))


def authorize(endpoint: str, client_id: str, redirect_uri: str,
              timeout: float) -> AuthorizeAnswer:
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri,
                       "response_type": "token", "state": "registry-doctor"})
    answer = get(f"{endpoint}?{query}", timeout)
    asked = AuthorizeAnswer(endpoint, client_id, redirect_uri, answer.status,
                            answer.headers.get("location"))
    try:
        document = json.loads(answer.body)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return replace(asked, error=document["error"],
                       error_description=str(document.get("error_description", "")))
    return asked
