"""The client layer: the one place that imports `kubernetes` and speaks HTTP to the API server.

It uses the official client for what it is good at (kubeconfig, contexts, in-cluster service
account, TLS, auth plugins) and exchanges raw JSON, so live objects have exactly the shape of
the YAML dumps that offline mode reads. Every failure becomes a `KubeError` whose message a
registry admin can act on; no exception of the client library escapes this module.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

CONNECT_TIMEOUT = 5.0
MAX_RETRY_AFTER = 5.0  # the longest a 429 may make us wait, within the caller's timeout
# Reads are retried on answers that say "try again" and on dropped connections: a single 503
# from a busy master must not turn a check unknown. Writes are not (a 5xx after the server
# committed would apply them twice); remediation re-reads the object instead.
TRANSIENT_STATUS = (429, 500, 502, 503, 504)
MAX_ATTEMPTS = 4
FIRST_BACKOFF, MAX_BACKOFF = 0.25, 2.0  # seconds, doubled after each attempt
CONNECTION_FAILED = "ConnectionFailed"  # KubeError.reason of a dropped or reset connection
# No answer of the API server is this large for the scoped reads we make; a body that never
# ends must fail the request, not exhaust memory.
MAX_RESPONSE_BYTES = 128 * 1024 * 1024
READ_CHUNK = 256 * 1024


class KubeError(Exception):
    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(without_url_credentials(message))
        self.status = status
        self.reason = reason

    @property
    def unreachable(self) -> bool:
        """The API server gave no answer about the object: no connection, a timeout, rejected
        credentials, throttling or a server error. A run that met one is blind, not judged."""
        return self.status is None or self.status in (401, 429) or self.status >= 500


class KubeConfigError(KubeError):
    """The kubeconfig cannot be used (missing, unreadable, not a kubeconfig, unknown context):
    the caller asked for something that does not exist, a usage error."""


# `https://user:password@host`: the userinfo of a URL, never shown.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def without_url_credentials(text: str) -> str:
    """`text` with the user and password of every URL in it removed."""
    return _URL_USERINFO.sub(r"\1", text)


@dataclass(frozen=True)
class Target:
    """Where an API path points, for messages: `list pods in default`."""

    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        what = f"{self.resource}/{self.name}" if self.name else self.resource
        return f"{self.verb} {what}" + (f" in {self.namespace}" if self.namespace else "")


def api_path(api_version: str, resource: str, namespace: str | None = None,
             name: str | None = None, subresource: str | None = None) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = base + (f"/namespaces/{quote(namespace, safe='')}" if namespace else "")
    path += f"/{resource}" + (f"/{quote(name, safe='')}" if name else "")
    return path + (f"/{subresource}" if subresource else "")


def user_agent() -> str:
    """`registry-doctor/0.1.0 (linux; python 3.11.7)`, after kubectl's `kubectl/v1.x (os/arch)`."""
    import platform
    import sys

    from registry_doctor.doctor import __version__

    return f"registry-doctor/{__version__} ({sys.platform}; python {platform.python_version()})"


class KubeClient:
    max_response_bytes = MAX_RESPONSE_BYTES

    def __init__(self, kubeconfig: Path | None = None, context: str | None = None) -> None:
        from kubernetes import client

        self._configuration, self.context = _load_configuration(kubeconfig, context)
        self._configuration.retries = False  # we retry ourselves, within the run's deadline
        self._api = client.ApiClient(self._configuration)
        self._api.user_agent = user_agent()  # audit logs then name who read what

    @property
    def server(self) -> str:
        """The API server's URL, for messages and reports: without credentials."""
        return without_url_credentials(str(self._configuration.host))

    def request(self, method: str, path: str, target: Target, *, timeout: float,
                query: dict[str, str] | None = None, body: Any = None,
                content_type: str = "application/json", raw: bool = False,
                retry: bool | None = None) -> Any:
        """Send one request; answer the decoded JSON (or text when `raw`). `retry` (default:
        for GET) retries transient failures with bounded backoff within `timeout`; a 429 is
        retried for every method (the server refused it before doing anything)."""
        retry = method == "GET" if retry is None else retry
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                status, headers, data = self._send(method, path, target, query, body,
                                                   content_type,
                                                   max(deadline - time.monotonic(), 0.1))
            except KubeError as error:
                if retry and error.reason == CONNECTION_FAILED and \
                        _pause(_backoff(attempt), attempt, deadline):
                    continue
                raise
            if (status == 429 or (retry and status in TRANSIENT_STATUS)) and \
                    _pause(_retry_after(headers, _backoff(attempt)), attempt, deadline):
                continue
            if status >= 400:
                raise _http_error(status, data, target)
            if raw:
                return data.decode("utf-8", "replace")
            try:
                return json.loads(data)
            except ValueError:
                raise KubeError(f"API server answered {target} with a body that is not "
                                "JSON", status) from None

    def _send(self, method: str, path: str, target: Target, query: dict[str, str] | None,
              body: Any, content_type: str, timeout: float) -> tuple[int, Any, bytes]:
        import urllib3

        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, _ = self._api.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers,
            body=body, auth_settings=["BearerToken"])
        try:
            response = self._api.call_api(method, url, headers, body,
                                          _request_timeout=(min(CONNECT_TIMEOUT, timeout),
                                                            timeout))
            data = _read_capped(response.response, self.max_response_bytes, target,
                                time.monotonic() + timeout)
            return response.status, response.headers, data
        # Before the timeouts: a refused connection is a NewConnectionError, which urllib3
        # derives from ConnectTimeoutError.
        except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.MaxRetryError) as error:
            cause = getattr(error, "reason", None) or error
            raise KubeError(f"cannot reach the API server {self.server}: "
                            f"{_root_cause(cause)} ({target})") from None
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError):
            raise KubeError(f"timed out after {timeout:.0f}s: {target}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise KubeError(f"connection to the API server failed: {_root_cause(error)} "
                            f"({target})", reason=CONNECTION_FAILED) from None


def bearer_token(kubeconfig: Path | None = None, context: str | None = None) -> str | None:
    """The bearer token these credentials send to the API server (a pod's service account,
    an `oc login` session), for services that accept it too, like the OpenShift registry.
    None when the credentials are not a token (client certificates)."""
    configuration, _ = _load_configuration(kubeconfig, context)
    value = configuration.auth_settings().get("BearerToken", {}).get("value") or ""
    scheme, _, token = str(value).partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _load_configuration(kubeconfig: Path | None, context: str | None) -> tuple[Any, str | None]:
    import yaml
    from kubernetes import client, config

    configuration = client.Configuration()
    explicit = kubeconfig is not None or context is not None or "KUBECONFIG" in os.environ
    where = str(kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config")
    try:
        if not explicit and "KUBERNETES_SERVICE_HOST" in os.environ:
            config.load_incluster_config(client_configuration=configuration)
            return configuration, "in-cluster"
        if kubeconfig is not None and not kubeconfig.is_file():
            problem = "a directory, not a file" if kubeconfig.is_dir() else "no such file"
            raise KubeConfigError(f"--kubeconfig {kubeconfig}: {problem}")
        path = str(kubeconfig) if kubeconfig else None
        if context is not None:
            _require_context(path, context, where)
        config.load_kube_config(config_file=path, context=context,
                                client_configuration=configuration)
        _, active = config.list_kube_config_contexts(path)
        return configuration, context or (active or {}).get("name")
    except KubeConfigError:
        raise
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "cannot parse"
        raise KubeConfigError(f"cannot load cluster credentials from {where}: not valid YAML"
                              f"{line} ({problem})") from None
    except UnicodeDecodeError:
        raise KubeConfigError(f"cannot load cluster credentials from {where}: not a text "
                              "file (not UTF-8)") from None
    except (AttributeError, KeyError, TypeError) as error:  # YAML, but not a kubeconfig
        raise KubeConfigError(f"cannot load cluster credentials from {where}: not a "
                              f"kubeconfig ({type(error).__name__}: {error})") from None
    except (config.ConfigException, OSError, ValueError) as error:
        raise KubeConfigError(f"cannot load cluster credentials from {where}: "
                              f"{_root_cause(error)}") from None


def _require_context(path: str | None, context: str, where: str) -> None:
    """A missing --context is named with the contexts there are."""
    from kubernetes import config

    contexts, _ = config.list_kube_config_contexts(path)
    names = [str(c.get("name")) for c in contexts or [] if isinstance(c, dict)]
    if context not in names:
        raise KubeConfigError(f"--context {context}: no such context in {where} (its "
                              f"contexts: {', '.join(names) or 'none'})")


def _read_capped(response: Any, limit: int, target: Target, deadline: float) -> bytes:
    """The body of a urllib3 response read without preloading: at most `limit` bytes, and
    not past `deadline` (a body trickling forever)."""
    chunks, size = [], 0
    try:
        while chunk := response.read(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                raise KubeError(f"the answer to {target} is larger than {limit / 2**20:g} MiB: "
                                "refused (a broken or hostile API server or proxy?)")
            if time.monotonic() > deadline:
                raise KubeError(f"timed out reading the answer to {target}")
            chunks.append(chunk)
    except BaseException:
        response.close()  # the rest of the body is unread: the connection cannot be reused
        raise
    response.release_conn()
    return b"".join(chunks)


def _backoff(attempt: int) -> float:
    return min(FIRST_BACKOFF * 2 ** (attempt - 1), MAX_BACKOFF)


def _pause(seconds: float, attempt: int, deadline: float) -> bool:
    """Wait before another attempt, when one is left and fits before the deadline."""
    if attempt >= MAX_ATTEMPTS or time.monotonic() + seconds >= deadline:
        return False
    time.sleep(seconds)
    return True


def _retry_after(headers: Any, default: float = 1.0) -> float:
    try:
        return min(float(headers.get("Retry-After", default)), MAX_RETRY_AFTER)
    except (TypeError, ValueError):
        return default


def _http_error(status: int, data: bytes, target: Target) -> KubeError:
    try:
        body = json.loads(data)
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
    except ValueError:
        message, reason = data.decode("utf-8", "replace").strip()[:200], ""
    summary = {
        401: "unauthorized: the API server rejected the credentials",
        403: f"forbidden: {target}",
        404: f"not found: {target}",
        409: f"conflict: {target}",
        429: f"throttled by the API server: {target}",
    }.get(status, f"API error {status}: {target}")
    detail = f" ({message})" if message and status not in (403, 404) else ""
    return KubeError(summary + detail, status, reason)


def _root_cause(error: BaseException) -> str:
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    text = str(error)
    for known in ("Connection refused", "Name or service not known", "Connection reset",
                  "certificate verify failed", "No route to host"):
        if known.lower() in text.lower():
            return known.lower()
    return " ".join(text.split())[:200] or type(error).__name__
