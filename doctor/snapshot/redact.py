"""The one redactor: secret values out of everything the tool writes or shows (`snapshot --out`
dumps, `check --fix` plans and diffs, reports).

Secrets are not only in Secrets: `oc adm registry` puts a literal REGISTRY_HTTP_SECRET in the
DeploymentConfig's env, S3 or Azure keys may sit in env overrides or in a config.yml held by a
ConfigMap (the 3.x docs' `registry-config`), a Route carries its TLS key, an OAuthClient its
secret, and `kubectl apply` copies the whole object, Secret data included, into an annotation.

What is secret, wherever it sits:
- the registry configuration's secret settings (distribution `docs/content/about/configuration.md`,
  "List of configuration options"): a setting whose name says so (`storage.s3.accesskey`,
  `secretkey`, `sessiontoken`, `azure.accountkey`, `azure.credentials.secret`,
  `gcs.credentials.private_key`, `swift.password`, `oss.accesskeysecret`, `http.secret`,
  `redis.password`, `proxy.password`, `reporting.bugsnag.apikey`, ...) and every header value
  of `notifications.endpoints[].headers` and `health.http[].headers` (Authorization); in a
  config file of any YAML style, or in a `REGISTRY_*` env override of it;
- other env values whose names say secret (`AWS_SECRET_ACCESS_KEY`, `*_PASSWORD`, `*_TOKEN`);
- PEM private keys in any string, and user:password in any URL;
- every Secret value that is neither a PEM file nor a registry configuration.

Values are replaced, keys and structure stay, so a check reading the dump judges it as it judges
the cluster: certificates are kept, a private key keeps its layout and its public half (so a
check can still tell which certificate it belongs to), a config file keeps its text but for the
secret scalars. A reader turns the marker back into "unknown here" (`is_redacted`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry_doctor.doctor.model import Result

REDACTED = "<redacted by registry-doctor>"
REDACTED_ANNOTATION = "registry-doctor.io/redacted"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# A private key keeps its label behind this prefix and only its public half as body.
REDACTED_KEY_PREFIX = "REDACTED "
REDACTED_KEY_HEADER = "Comment: registry-doctor kept only the public half of this key"

_SECRET_WORD = (r"secret|passw(?:or)?d|token|access_?key|account_?key|api_?key|license_?key"
                r"|credential|private_?key|authori[sz]ation|cookie|htpasswd")
SECRET_NAME = re.compile(_SECRET_WORD, re.IGNORECASE)
# Header maps of the registry configuration: every value is masked (Authorization, API keys).
_SECRET_SECTIONS = (("notifications", "endpoints", "*", "headers"),
                    ("health", "http", "*", "headers"))
# Top-level sections of a distribution (and OpenShift 3.x) registry configuration file.
_REGISTRY_SECTIONS = frozenset({"storage", "http", "auth", "log", "middleware", "notifications",
                                "redis", "proxy", "health", "reporting", "openshift"})
# `secretkey: value`, `"password": "value"`, `{token=value, ...}` in text that is not YAML: the
# value is a quoted string or runs to the end of the line or of its flow collection.
_SECRET_SETTING = re.compile(
    rf"""((?<![\w.-])["']?[\w.-]*(?:{_SECRET_WORD})[\w.-]*["']?[ \t]*[:=][ \t]*)"""
    r"""(?=[^\s,}\]])("[^"\n]*"?|'[^'\n]*'?|[^,}\]\n]+)""", re.IGNORECASE)
# A key block, even one whose END line is missing (the rest of the text is then masked).
_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----(.*?)(?:(-----END \1-----)|(?=-----BEGIN )|\Z)",
    re.S)
_BASE64_PEM = re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}")  # base64 of "-----BEGIN"
_URL_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)([^/?#@\s\"']+)@")
_AUTH_SCHEME = re.compile(r"\b(Bearer|Basic)\s+(?!<redacted)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
# `key=value` (logfmt, as the registry logs its configuration) and `"key": "value"` in free
# text, where the key names a secret; a value may be `Bearer <token>`.
_SECRET_PAIR = re.compile(  # a key starts at a word boundary and is bounded: linear time
    r"""(?<![\w.-])(?P<key>"?[\w.-]{1,128}"?)(?P<sep>=|":\s*)"""
    r"""(?P<quote>["']?)(?P<value>(?:(?:Bearer|Basic)\s+)?[^\s"',;&}]+)""")


OPERATOR_GROUP = "imageregistry.operator.openshift.io/"


def is_redacted(value: object) -> bool:
    return value == REDACTED


# Objects

def redact(obj: dict[str, Any], mark: bool = True) -> dict[str, Any]:
    """`obj` with every secret value replaced (a copy when anything changes, marked with
    REDACTED_ANNOTATION when `mark`)."""
    if obj.get("kind") == "Secret":
        return redact_secret(obj, mark)
    redacted = copy.deepcopy(obj)
    changed = _redact_annotations(redacted)
    if obj.get("kind") == "OAuthClient":
        changed |= _redact_fields(redacted, ("secret", "additionalSecrets"))
    elif obj.get("kind") == "ConfigMap":
        changed |= _redact_configmap(redacted)
    elif str(obj.get("apiVersion", "")).startswith(OPERATOR_GROUP) \
            and isinstance(redacted.get("spec"), dict):
        # OpenShift 4's registry Config holds the registry's HTTP secret in plain text
        # (openshift/api imageregistry/v1 `spec.httpSecret`).
        changed |= _redact_fields(redacted["spec"], ("httpSecret",))
    walked = _walk(redacted)
    if not (changed or walked != redacted):
        return obj
    if mark:
        _mark(walked)
    return walked


def redact_secret(secret: dict[str, Any], mark: bool = True) -> dict[str, Any]:
    """A copy of a Secret with every value redacted: PEM files keep their certificates, a
    registry configuration its structure; any other value is replaced whole."""
    redacted = copy.deepcopy(secret)
    data, plain = secret.get("data"), secret.get("stringData")
    if isinstance(data, dict):
        redacted["data"] = {key: _encoded(_secret_text(_decoded(value))) if value else value
                            for key, value in data.items()}
    if isinstance(plain, dict):
        redacted["stringData"] = {key: _secret_text(value if isinstance(value, str) else None)
                                  if value else value for key, value in plain.items()}
    _redact_annotations(redacted)
    redacted = _walk(redacted)
    if mark:
        _mark(redacted)
    return redacted


def _secret_text(text: str | None) -> str:
    if text is None:
        return REDACTED
    if "-----BEGIN " in text:
        return redact_text(text)
    config = _redact_yaml(text, (), registry_only=True)
    return REDACTED if config is None else redact_text(config)


def _decoded(value: object) -> str | None:
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def _encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _mark(obj: dict[str, Any]) -> None:
    metadata = obj["metadata"] = dict(obj.get("metadata") or {})
    annotations = metadata.get("annotations")
    metadata["annotations"] = {**(annotations if isinstance(annotations, dict) else {}),
                               REDACTED_ANNOTATION: "true"}


def _redact_annotations(obj: dict[str, Any]) -> bool:
    """Replace, in place, kubectl's copy of the whole applied object (Secret data, env values
    and all) and annotations named like a secret (OpenShift 3.x keeps a service account's
    token in its dockercfg Secret's `openshift.io/token-secret.value`); True when any."""
    annotations = (obj.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict):
        return False
    secret = [key for key, value in annotations.items() if value not in (REDACTED, "")
              and (key == LAST_APPLIED or SECRET_NAME.search(str(key)))]
    annotations.update(dict.fromkeys(secret, REDACTED))
    return bool(secret)


def _redact_fields(obj: dict[str, Any], fields: tuple[str, ...]) -> bool:
    present = [f for f in fields if obj.get(f) and obj[f] != REDACTED]
    for name in present:
        obj[name] = [REDACTED] * len(obj[name]) if isinstance(obj[name], list) else REDACTED
    return bool(present)


def _redact_configmap(configmap: dict[str, Any]) -> bool:
    changed = False
    data, binary = configmap.get("data"), configmap.get("binaryData")
    for key, value in (data.items() if isinstance(data, dict) else ()):
        if isinstance(value, str):
            data[key] = redact_file(str(key), value)
            changed |= data[key] != value
    for key, value in (binary.items() if isinstance(binary, dict) else ()):
        text = _decoded(value)
        if text is not None and (kept := redact_file(str(key), text)) != text:
            binary[key] = _encoded(kept)
            changed = True
    return changed


def redact_file(name: str, text: str) -> str:
    """A configuration file's text with its secret values masked: YAML (any style) keeps its
    text but for the secret scalars; other text loses the values of `password=...`-like
    settings, or everything when the file's name says it is a secret (htpasswd, a token)."""
    structured = _redact_yaml(text, (), registry_only=False)
    if structured is not None:
        return redact_text(structured)
    if SECRET_NAME.search(name) and "-----BEGIN " not in text and text.strip():
        return REDACTED
    return redact_text(_SECRET_SETTING.sub(rf"\g<1>{REDACTED}", text))


def _walk(value: Any) -> Any:
    """Every env variable and string below `value` redacted (a new structure)."""
    if isinstance(value, dict):
        walked = {key: _walk(item) for key, item in value.items()}
        if isinstance(value.get("name"), str) and isinstance(value.get("value"), str):
            walked["value"] = redact_env_value(value["name"], value["value"])
        return walked
    if isinstance(value, list):
        return [_walk(item) for item in value]
    return redact_text(value) if isinstance(value, str) else value


def redact_env_value(name: str, value: str) -> str:
    """An env variable's value: a `REGISTRY_*` override is judged as the setting it sets (a
    secret setting, or a YAML value holding some), any other by its name."""
    if not value or value == REDACTED:
        return value
    if name.startswith("REGISTRY_"):
        path = tuple(name[len("REGISTRY_"):].lower().split("_"))
        if is_secret_setting(path):
            return REDACTED
        structured = _redact_yaml(value, path, registry_only=False)
        return redact_text(value if structured is None else structured)
    return REDACTED if SECRET_NAME.search(name) else redact_text(value)


# Registry configuration

def is_secret_setting(path: Sequence[str | int]) -> bool:
    """True for a registry configuration setting whose value is secret, e.g.
    ("storage", "azure", "accountkey") or ("notifications", "endpoints", 0, "headers", ...)."""
    parts = tuple(str(p).lower() for p in path)
    for section in _SECRET_SECTIONS:
        if len(parts) > len(section) and all(s in ("*", p) for s, p in zip(section, parts,
                                                                           strict=False)):
            return True
    names = [p for p in parts if not p.isdigit()]  # a list item is secret when its list is
    return bool(names) and bool(SECRET_NAME.search(names[-1]))


def _redact_yaml(text: str, base: tuple[str, ...], registry_only: bool) -> str | None:
    """`text` with the secret scalars of its YAML mapping or list replaced in place (comments,
    style and line numbers kept); None when it is not YAML holding a mapping or list (or, with
    `registry_only`, not a registry configuration)."""
    import yaml

    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError):
        return None
    if not documents or not all(isinstance(d, yaml.MappingNode | yaml.SequenceNode)
                                for d in documents if d is not None):
        return None
    if registry_only and not any(_is_registry_config(d) for d in documents):
        return None
    found: dict[int, tuple[Any, str]] = {}
    for document in documents:
        _secret_scalars(document, base, found, set())
    for node, new in sorted(found.values(), key=lambda f: -f[0].start_mark.index):
        start, end = node.start_mark.index, node.end_mark.index
        span = text[start:end]
        prefix = re.match(r"(?:[&!]\S*\s+)*", span)
        keep = prefix.group(0) if prefix else ""
        text = text[:start] + keep + _quoted(new) + "\n" * span.count("\n") + text[end:]
    return text


def _is_registry_config(document: Any) -> bool:
    import yaml

    if not isinstance(document, yaml.MappingNode):
        return False
    keys = {str(k.value) for k, _ in document.value if isinstance(k, yaml.ScalarNode)}
    return "version" in keys and bool(keys & _REGISTRY_SECTIONS)


def _secret_scalars(node: Any, path: tuple[str, ...], found: dict[int, tuple[Any, str]],
                    seen: set[tuple[int, bool]]) -> None:
    """Collect (node, new value) for each scalar to replace; aliases make a graph, so each
    node is visited once per secrecy."""
    import yaml

    secret = is_secret_setting(path)
    if (id(node), secret) in seen:
        return
    seen.add((id(node), secret))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            _secret_scalars(value, (*path, name), found, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _secret_scalars(item, (*path, str(index)), found, seen)
    elif isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null" \
            and node.value != "":
        new = REDACTED if secret else redact_text(node.value)
        if new != node.value:
            found[id(node)] = (node, new)


def _quoted(value: str) -> str:
    import yaml

    dumped = yaml.safe_dump(value, default_style='"', width=float("inf"), allow_unicode=True)
    return dumped.rstrip("\n").removesuffix("\n...")


# Free text

def redact_text(text: str) -> str:
    """PEM private keys (also base64-encoded), URL credentials and the values of secret-named
    `key=value` / `"key": "value"` pairs out of any text (log lines quoted as evidence)."""
    if "PRIVATE KEY" in text:
        text = _PRIVATE_KEY.sub(_public_half, text)
    if "LS0tLS1CRUdJTi" in text:
        text = _BASE64_PEM.sub(_encoded_key, text)
    if "@" in text:
        text = _URL_USERINFO.sub(rf"\g<1>{REDACTED}@", text)
    if "=" in text or '":' in text:
        text = _SECRET_PAIR.sub(_masked_pair, text)
    if "earer" in text or "asic" in text:
        text = _AUTH_SCHEME.sub(rf"\g<1> {REDACTED}", text)
    return text


def _masked_pair(match: re.Match[str]) -> str:
    """A secret's value masked; a key that only names a secret object (`secretName=`) or is
    already masked is left as it is."""
    key, value = match.group("key").strip('"'), match.group("value")
    if not SECRET_NAME.search(key) or value.startswith("<redacted") \
            or re.search(r"(?:name|names|ref)$", key, re.IGNORECASE):
        return match.group(0)
    return f"{match.group('key')}{match.group('sep')}{match.group('quote')}{REDACTED}"


def _public_half(match: re.Match[str]) -> str:
    """A key block as a REDACTED block holding only the key's public half (SubjectPublicKeyInfo),
    its label and its encryption header kept: what `doctor.pem` needs to pair it with its
    certificate and judge its layout."""
    label = match.group(1)
    if label.startswith(REDACTED_KEY_PREFIX):
        return match.group(0)
    from registry_doctor.doctor.pem import pem_blocks, public_key_of

    blocks = pem_blocks(match.group(0).encode("utf-8", "replace"), [])
    public = public_key_of(blocks[0]) if blocks else None
    body = base64.b64encode(public).decode() if public else ""
    lines = [f"-----BEGIN {REDACTED_KEY_PREFIX}{label}-----", REDACTED_KEY_HEADER]
    if blocks and blocks[0].encrypted_header:
        lines.append("Proc-Type: 4,ENCRYPTED")
    lines += [body[i:i + 64] for i in range(0, len(body), 64)]
    if not match.group(3):  # no END line: the text up to the next block is masked with it
        return "\n".join(lines) + "\n"
    return "\n".join([*lines, f"-----END {REDACTED_KEY_PREFIX}{label}-----"])


def _encoded_key(match: re.Match[str]) -> str:
    text = _decoded(match.group(0))
    if text is None or "PRIVATE KEY" not in text:
        return match.group(0)
    return _encoded(redact_text(text))


def redact_result(result: Result) -> Result:
    """A check's result with PEM keys and URL credentials out of its text: evidence quotes
    what the cluster holds, and no format may show them (the renderers get this)."""
    summary, details = redact_text(result.summary), tuple(map(redact_text, result.details))
    if summary == result.summary and details == result.details:
        return result
    return replace(result, summary=summary, details=details)
