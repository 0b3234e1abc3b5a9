"""The requests remediation sends, over the client layer (`doctor.kube.KubeClient`).

Every write goes through here, so `dryRun=All` (server dry run), the run lock's check that it
is still held (`write_guard`) and the crash hook apply to all of them. What the server offers
(an API group, dry run) is discovered here, never guessed from its version string. The crash
hook is for tests: with REGISTRY_DOCTOR_EXIT_AFTER_WRITES=N in the environment the process
dies (`os._exit`) right after its Nth write, as if killed there.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from registry_doctor.doctor.fix.model import AccessCheck, ObjectRef
from registry_doctor.doctor.fix.patch import JSON_PATCH
from registry_doctor.doctor.kube import KubeClient, KubeError, Target, api_path

CRASH_ENV = "REGISTRY_DOCTOR_EXIT_AFTER_WRITES"
CRASH_EXIT_CODE = 137  # what a SIGKILL leaves
MERGE_PATCH = "application/merge-patch+json"
COMPONENT = "registry-doctor"


def now() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime | None = None) -> str:
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


DEADLINE = "Deadline"  # KubeError.reason when the run's --timeout has passed
GRACE_SECONDS = 10.0  # past the deadline, to undo a unit the deadline cut short


class Deadline:
    """The run's `--timeout`: every request of the run must fit in it. Waiting for a rollout is
    bounded by `--rollout-timeout` instead (`paused`), and undoing a unit the deadline cut
    short gets a short grace (`grace`), so a run ends within timeout + rollout waits + grace."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        self._paused_at: float | None = None

    def remaining(self) -> float:
        return math.inf if self._paused_at is not None else self._end - time.monotonic()

    @contextmanager
    def paused(self) -> Iterator[None]:
        self._paused_at = time.monotonic()
        try:
            yield
        finally:
            self._end += time.monotonic() - self._paused_at
            self._paused_at = None

    def grace(self) -> None:
        self._end = max(self._end, time.monotonic() + min(GRACE_SECONDS, self.seconds))


class Cluster:
    def __init__(self, client: KubeClient, timeout: float, *, dry_run: bool = False,
                 deadline: Deadline | None = None) -> None:
        self.client = client
        self.timeout = timeout  # per request
        self.deadline = deadline or Deadline(math.inf)
        self.dry_run = dry_run
        self.writes = 0
        # Called with each write's object before it is sent (raises to stop the write).
        self.write_guard: Callable[[ObjectRef], None] | None = None
        self._served: dict[str, set[str] | None] = {}
        self._openapi: dict[str, Any] | None = None
        crash_after = os.environ.get(CRASH_ENV, "")
        self._crash_after = int(crash_after) if crash_after.isdigit() else None

    # reads

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self._request("GET", ref, Target("get", ref.resource, ref.namespace,
                                                    ref.name))
        except KubeError as error:
            if error.status == 404 and error.reason == "NotFound":
                return None
            raise

    def list(self, api_version: str, resource: str, namespace: str,
             label_selector: str) -> list[dict[str, Any]]:
        answer = self.client.request(
            "GET", api_path(api_version, resource, namespace), Target("list", resource, namespace),
            timeout=self.request_timeout(), query={"labelSelector": label_selector})
        return [i for i in answer.get("items", []) if isinstance(i, dict)]

    # discovery

    def serves(self, api_version: str, resource: str) -> bool:
        """Whether the server serves `resource` in `api_version`, from its discovery document
        (a group the server lacks answers 404)."""
        if api_version not in self._served:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                answer = self.client.request("GET", path, Target("discover", api_version),
                                             timeout=self.request_timeout())
                self._served[api_version] = {str(r.get("name")) for r in
                                             answer.get("resources", []) if isinstance(r, dict)}
            except KubeError as error:
                if error.status != 404:
                    raise
                self._served[api_version] = None
        return resource in (self._served[api_version] or ())

    def dry_run_refusal(self, ref: ObjectRef, method: str) -> str | None:
        """None when the server's OpenAPI document lists a `dryRun` parameter for this write,
        else why not. A server that does not know the parameter ignores it and applies the
        write (Kubernetes before 1.12), so it is never sent without this check; kubectl's
        DryRunVerifier judged the same way."""
        if self._openapi is None:
            self._openapi = self.client.request("GET", "/openapi/v2",
                                                Target("discover", "openapi/v2"),
                                                timeout=self.request_timeout())
        scope = "/namespaces/{namespace}" if ref.namespace else ""
        base = "/api/v1" if ref.api_version == "v1" else f"/apis/{ref.api_version}"
        path = f"{base}{scope}/{ref.resource}" + ("" if method == "post" else "/{name}")
        item = (self._openapi.get("paths") or {}).get(path) or {}
        operation = item.get(method) or {}
        names = {p.get("name") for p in [*(item.get("parameters") or []),
                                         *(operation.get("parameters") or [])]
                 if isinstance(p, dict)}
        if "dryRun" in names:
            return None
        version = (self._openapi.get("info") or {}).get("version", "?")
        return (f"the API server ({version}) has no server-side dry run for {method.upper()} "
                f"{path} (dryRun is not in its OpenAPI document; Kubernetes before 1.13 would "
                "apply the write)")

    def allowed(self, check: AccessCheck) -> AccessCheck:
        """Ask the API server (SelfSubjectAccessReview) whether this identity may do it."""
        plural, _, subresource = check.resource.partition("/")
        attributes = {"verb": check.verb, "group": check.group, "resource": plural,
                      "namespace": check.namespace or "", "name": check.name or "",
                      "subresource": subresource}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {k: v for k, v in attributes.items() if v}}}
        try:
            answer = self.client.request(
                "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                Target("create", "selfsubjectaccessreviews"), timeout=self.request_timeout(),
                body=review, retry=True)  # a question: asking twice changes nothing
        except KubeError as error:
            return replace(check, allowed=None, reason=str(error))
        status = answer.get("status") or {}
        return replace(check, allowed=bool(status.get("allowed")),
                       reason=str(status.get("reason") or ""))

    # writes

    def patch(self, ref: ObjectRef, body: Any, *, merge: bool = False) -> dict[str, Any]:
        """A JSON patch (a list of operations) or, with `merge`, a JSON merge patch."""
        return self._write("PATCH", ref, Target("patch", ref.resource, ref.namespace, ref.name),
                           body, MERGE_PATCH if merge else JSON_PATCH)

    def create(self, ref: ObjectRef, body: dict[str, Any]) -> dict[str, Any]:
        collection = ObjectRef(ref.api_version, ref.kind, ref.resource, "", ref.namespace)
        return self._write("POST", collection, Target("create", ref.resource, ref.namespace,
                                                      ref.name), body)

    def update(self, ref: ObjectRef, body: dict[str, Any]) -> dict[str, Any]:
        """PUT: refused with 409 unless body's resourceVersion is the stored one."""
        return self._write("PUT", ref, Target("update", ref.resource, ref.namespace, ref.name),
                           body)

    def instantiate(self, ref: ObjectRef) -> dict[str, Any]:
        """What `oc rollout latest` sends (openshift/origin release-3.11
        pkg/oc/cli/rollout/latest.go)."""
        request = {"kind": "DeploymentRequest", "apiVersion": "apps.openshift.io/v1",
                   "name": ref.name, "latest": True, "force": True}
        return self._write("POST", ref, Target("create", "deploymentconfigs/instantiate",
                                               ref.namespace, ref.name), request,
                           subresource="instantiate")

    def record_event(self, obj: dict[str, Any], namespace: str, reason: str, message: str,
                     warning: bool = False) -> None:
        """A core/v1 Event on `obj`, as client-go's recorder writes one."""
        metadata = obj["metadata"]
        moment = timestamp()
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{metadata['name']}.{time.time_ns():x}",
                         "namespace": metadata.get("namespace") or namespace},
            "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                               "name": metadata["name"], "namespace": metadata.get("namespace"),
                               "uid": metadata.get("uid"),
                               "resourceVersion": metadata.get("resourceVersion")},
            "reason": reason, "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT, "host": socket.gethostname()},
            "firstTimestamp": moment, "lastTimestamp": moment, "count": 1,
            "reportingComponent": COMPONENT, "reportingInstance": socket.gethostname(),
        }
        ref = ObjectRef("v1", "Event", "events", "", event["metadata"]["namespace"])
        self._write("POST", ref, Target("create", "events", ref.namespace), event)

    # plumbing

    def request_timeout(self) -> float:
        """The time the next request may take: its own timeout, within the run's deadline."""
        remaining = self.deadline.remaining()
        if remaining <= 0:
            raise KubeError(f"the run's deadline passed (--timeout {self.deadline.seconds:g}s)",
                            reason=DEADLINE)
        return min(self.timeout, remaining)

    def _request(self, method: str, ref: ObjectRef, target: Target, body: Any = None,
                 content_type: str = "application/json", subresource: str | None = None,
                 query: dict[str, str] | None = None) -> Any:
        path = api_path(ref.api_version, ref.resource, ref.namespace, ref.name or None,
                        subresource)
        return self.client.request(method, path, target, timeout=self.request_timeout(),
                                   body=body, content_type=content_type, query=query)

    def _write(self, method: str, ref: ObjectRef, target: Target, body: Any,
               content_type: str = "application/json",
               subresource: str | None = None) -> Any:
        if self.write_guard is not None:
            self.write_guard(ref)
        query = {"dryRun": "All"} if self.dry_run else None
        answer = self._request(method, ref, target, body, content_type, subresource, query)
        if not self.dry_run:
            self.writes += 1
            if self.writes == self._crash_after:
                sys.stdout.flush()
                os._exit(CRASH_EXIT_CODE)
        return answer
