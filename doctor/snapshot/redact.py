"""Secret values out of objects written to a dump (`snapshot --out` without --include-secrets).

Secrets are not only in Secrets: `oc adm registry` puts a literal REGISTRY_HTTP_SECRET in the
DeploymentConfig's env, S3 keys may sit in env or in a config.yml held by a ConfigMap (the 3.x
docs' `registry-config`), an OAuthClient carries its secret, and `kubectl apply` copies the
whole object, Secret data included, into an annotation. Values are replaced, keys and
structure stay, so a check reading the dump still sees what is set where.
"""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

from doctor.workload import as_dict, as_list

REDACTED = "<redacted by registry-doctor>"
REDACTED_ANNOTATION = "registry-doctor.io/redacted"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_SECRET_WORD = r"secret|passw(?:or)?d|token|access_?key|credential|private_?key"
SECRET_NAME = re.compile(_SECRET_WORD, re.IGNORECASE)
# `secretkey: value`, `"password": "value"`, `token=value` lines in configuration text.
_SECRET_LINE = re.compile(
    rf"""^(\s*-?\s*["']?[\w.-]*(?:{_SECRET_WORD})[\w.-]*["']?\s*[:=]\s*)(?=\S)(.*)$""",
    re.IGNORECASE | re.MULTILINE)
_PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z ]*PRIVATE KEY)-----.*?-----END \1-----", re.S)


def redact(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with every secret value replaced (a copy when anything changes)."""
    kind = obj.get("kind")
    if kind == "Secret":
        return redact_secret(obj)
    redacted = copy.deepcopy(obj)
    changed = redact_last_applied(redacted)
    if kind == "OAuthClient":
        changed |= _redact_fields(redacted, ("secret", "additionalSecrets"))
    elif kind == "ConfigMap":
        changed |= _redact_text_values(redacted)
    changed |= _redact_env(redacted)
    if not changed:
        return obj
    _mark(redacted)
    return redacted


def redact_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Secret with every value replaced, so a dump can be shared safely."""
    redacted = copy.deepcopy(secret)
    marker = base64.b64encode(REDACTED.encode()).decode()
    if isinstance(secret.get("data"), dict):
        redacted["data"] = {key: marker for key in secret["data"]}
    if isinstance(secret.get("stringData"), dict):
        redacted["stringData"] = {key: REDACTED for key in secret["stringData"]}
    redact_last_applied(redacted)
    _mark(redacted)
    return redacted


def _mark(obj: dict[str, Any]) -> None:
    metadata = obj["metadata"] = dict(obj.get("metadata") or {})
    annotations = metadata.get("annotations")
    metadata["annotations"] = {**(annotations if isinstance(annotations, dict) else {}),
                               REDACTED_ANNOTATION: "true"}


def redact_last_applied(obj: dict[str, Any]) -> bool:
    """Replace, in place, kubectl's copy of the whole applied object (Secret data, env values
    and all); True when there was one."""
    annotations = (obj.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        annotations[LAST_APPLIED] = REDACTED
        return True
    return False


def _redact_fields(obj: dict[str, Any], fields: tuple[str, ...]) -> bool:
    present = [f for f in fields if obj.get(f)]
    for name in present:
        obj[name] = [REDACTED] * len(obj[name]) if isinstance(obj[name], list) else REDACTED
    return bool(present)


def _redact_text_values(configmap: dict[str, Any]) -> bool:
    data = configmap.get("data")
    if not isinstance(data, dict):
        return False
    changed = False
    for key, value in data.items():
        if isinstance(value, str):
            text = _PRIVATE_KEY.sub(REDACTED, _SECRET_LINE.sub(rf"\g<1>{REDACTED}", value))
            changed |= text != value
            data[key] = text
    return changed


def _redact_env(obj: dict[str, Any]) -> bool:
    """Literal env values whose names say secret, in a pod or a pod template."""
    spec = as_dict(obj.get("spec"))
    variables = [as_dict(variable)
                 for pod_spec in (spec, as_dict(as_dict(spec.get("template")).get("spec")))
                 for field in ("initContainers", "containers")
                 for container in as_list(pod_spec.get(field))
                 for variable in as_list(as_dict(container).get("env"))]
    secret = [v for v in variables if "value" in v and SECRET_NAME.search(str(v.get("name")))]
    for variable in secret:
        variable["value"] = REDACTED
    return bool(secret)
