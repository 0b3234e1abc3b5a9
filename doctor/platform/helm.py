"""Fixes of a Helm-managed registry, lowered to the chart values that render them.

A Deployment (or its Service) that Helm manages is rendered again at the next `helm upgrade`,
or at every sync of a GitOps tool, which reverts a direct patch. So a fix planned as a patch of
such an object becomes a step for a person: the values of the twuni/docker-registry chart that
render the same change (`values.yaml`: replicaCount, updateStrategy, resources, persistence.*,
service.sessionAffinity, secrets.haSharedSecret), or, for a change no value renders, the field
the chart must render.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from registry_doctor.doctor.fix import patch as patching
from registry_doctor.doctor.fix.model import CREATE, MANUAL, MANUAL_STEPS, PATCH, Action
from registry_doctor.doctor.workload import as_dict, as_list

HELM_RELEASE_ANNOTATION = "meta.helm.sh/release-name"  # set by `helm install` since Helm 3.2
HELM_VALUES = "helm-values"  # the name of the lowered action


def helm_release(obj: dict[str, Any] | None) -> str | None:
    """The Helm release that manages `obj` (its annotation, else its chart's labels), or
    None. Helm 3 sets `meta.helm.sh/release-name` and `app.kubernetes.io/managed-by: Helm`;
    charts such as twuni/docker-registry add `heritage: Helm` and `release`."""
    metadata = as_dict(as_dict(obj).get("metadata"))
    labels, annotations = as_dict(metadata.get("labels")), as_dict(metadata.get("annotations"))
    managed = HELM_RELEASE_ANNOTATION in annotations or labels.get("heritage") == "Helm" \
        or labels.get("app.kubernetes.io/managed-by") == "Helm"
    if not managed:
        return None
    release = annotations.get(HELM_RELEASE_ANNOTATION) or labels.get("release") \
        or labels.get("app.kubernetes.io/instance")
    return str(release or "(release unknown)")


def lower(actions: Iterable[Action]) -> list[Action]:
    """Each check's writes to Helm-managed objects (and the claims created for them) as one
    manual action naming the chart values; other actions as they are."""
    actions = list(actions)
    helm_checks = {a.check for a in actions if a.operation == PATCH and helm_release(a.before)}
    lowered: list[Action] = []
    for action in actions:
        if action.check not in helm_checks or action.operation not in (PATCH, CREATE):
            lowered.append(action)
        elif not any(a.check == action.check and a.name == HELM_VALUES for a in lowered):
            lowered.append(_values_action([a for a in actions if a.check == action.check
                                           and a.operation in (PATCH, CREATE)]))
    return lowered


def _values_action(writes: list[Action]) -> Action:
    patched = next(a for a in writes if a.operation == PATCH and helm_release(a.before))
    release = helm_release(patched.before)
    created = [a.after for a in writes if a.operation == CREATE and a.after]
    values = [v for a in writes if a.operation == PATCH
              for v in _values(a.before or {}, a.after or {}, created)]
    namespace = patched.target.namespace if patched.target else None
    steps = [f"change the values of Helm release {release} (namespace {namespace}): "
             + "; ".join(dict.fromkeys(values)),
             f"then `helm upgrade {release} <chart> -n {namespace} -f <your values>` (or let "
             "your GitOps tool sync): a direct patch would be reverted by the next render",
             *(n for a in writes for n in a.notes)]
    summary = "; ".join(a.summary for a in writes)
    return Action(patched.check, HELM_VALUES, f"through the chart's values: {summary}", MANUAL,
                  patched.target, risk=patched.risk, steps=tuple(dict.fromkeys(steps)),
                  state=MANUAL_STEPS)


def _values(before: dict[str, Any], after: dict[str, Any],
            created: list[dict[str, Any]]) -> list[str]:
    """The chart values that render the change from `before` to `after`."""
    values = []
    for change in patching.changes(before, after):
        path = change.path
        if after.get("kind") == "Service" and path == ("spec", "sessionAffinity"):
            values.append(f"service.sessionAffinity: {change.new}")
        elif path == ("spec", "replicas"):
            values.append(f"replicaCount: {change.new}")
        elif path[:2] == ("spec", "strategy"):
            values.append(f"updateStrategy: {_flow(as_dict(after['spec'].get('strategy')))}")
        elif path[:4] == ("spec", "template", "spec", "containers") and "resources" in path:
            container = as_list(after["spec"]["template"]["spec"]["containers"])[path[4]]
            values.append(f"resources: {_flow(as_dict(as_dict(container).get('resources')))}")
        elif path[:4] == ("spec", "template", "spec", "volumes"):
            volume = as_list(after["spec"]["template"]["spec"]["volumes"])[path[4]]
            claim = as_dict(as_dict(volume).get("persistentVolumeClaim")).get("claimName")
            values.extend(_persistence(str(claim), created))
        else:
            values.append(f"whatever renders {change.pointer} = {_flow(change.new)}")
    return values


def _persistence(claim: str, created: list[dict[str, Any]]) -> list[str]:
    """A claim the fix would create is one the chart creates (`<fullname>`, from persistence.*);
    an existing one is persistence.existingClaim."""
    new = next((c for c in created if c.get("kind") == "PersistentVolumeClaim"
                and c["metadata"]["name"] == claim), None)
    if new is None:
        return ["persistence.enabled: true", f"persistence.existingClaim: {claim}"]
    spec = new["spec"]
    values = ["persistence.enabled: true",
              f"persistence.size: {spec['resources']['requests']['storage']}",
              f"persistence.accessMode: {spec['accessModes'][0]}"]
    if spec.get("storageClassName"):
        values.append(f"persistence.storageClass: {spec['storageClassName']}")
    return values


def _flow(value: Any) -> str:
    """A value as YAML flow text, e.g. `{requests: {cpu: 100m}}`."""
    return json.dumps(value, separators=(", ", ": ")).replace('"', "")
