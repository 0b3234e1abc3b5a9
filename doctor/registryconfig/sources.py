"""Where a container's configuration comes from: its environment (literal values, secret and
configmap references, `envFrom`) and the files mounted from secret and configmap volumes.

Pure: everything is read from snapshot objects. A value that cannot be known from the API (a
redacted secret, a `fieldRef`) is an `Opaque`, never a guess.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from dataclasses import dataclass
from typing import Any

from registry_doctor.doctor.model import Resource
from registry_doctor.doctor.snapshot.redact import is_redacted
from registry_doctor.doctor.workload import as_dict, as_list


@dataclass(frozen=True)
class Opaque:
    """A value that exists in the pod but cannot be read from here; `why` says so."""

    why: str

    def __str__(self) -> str:
        return f"<{self.why}>"


Text = str | Opaque
MASKED = Opaque("redacted in this dump")  # a value `registry-doctor snapshot` masked


@dataclass(frozen=True)
class Problem:
    """Something wrong with the registry's configuration. `fatal`: the registry (or its pod)
    does not start; otherwise it starts and misbehaves. `scope` is "config" for the file and
    the storage section, or the driver name for driver parameters."""

    fatal: bool
    field: str  # the setting or object field at fault
    message: str  # a sentence that names the field and its source
    scope: str = "config"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: Text
    origin: str  # e.g. "env REGISTRY_STORAGE_S3_BUCKET of dc/docker-registry"
    secret: bool = False  # read from a Secret: the value is never shown


@dataclass(frozen=True)
class SourceObject:
    """A ConfigMap or Secret the configuration reads, with its decoded entries."""

    kind: str
    name: str
    namespace: str
    data: dict[str, Text]

    @property
    def resource(self) -> Resource:
        return Resource(self.kind, self.name, self.namespace)

    @property
    def secret(self) -> bool:
        return self.kind == "Secret"

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()} {self.name}"


class Objects:
    """The namespace's configmaps and secrets, by name; records which ones were read."""

    def __init__(self, namespace: str, configmaps: list[dict], secrets: list[dict]) -> None:
        self.namespace = namespace
        self._by_kind = {
            "ConfigMap": {o["metadata"]["name"]: o for o in configmaps
                          if _namespace(o) == namespace},
            "Secret": {o["metadata"]["name"]: o for o in secrets if _namespace(o) == namespace},
        }
        self.read: dict[tuple[str, str], SourceObject] = {}

    def get(self, kind: str, name: str) -> SourceObject | None:
        obj = self._by_kind[kind].get(name)
        if obj is None:
            return None
        source = SourceObject(kind, name, self.namespace,
                              _secret_data(obj) if kind == "Secret" else _configmap_data(obj))
        self.read[(kind, name)] = source
        return source


def _namespace(obj: dict) -> str:
    return str(obj["metadata"].get("namespace") or "default")


def _secret_data(secret: dict[str, Any]) -> dict[str, Text]:
    data: dict[str, Text] = {str(k): _b64_text(v) for k, v in as_dict(secret.get("data")).items()}
    data.update((str(k), _unless_redacted(str(v)))
                for k, v in as_dict(secret.get("stringData")).items())
    return data


def _configmap_data(configmap: dict[str, Any]) -> dict[str, Text]:
    data: dict[str, Text] = {str(k): _unless_redacted(str(v))
                             for k, v in as_dict(configmap.get("data")).items()}
    data.update((str(k), _b64_text(v)) for k, v in as_dict(configmap.get("binaryData")).items())
    return data


def _unless_redacted(text: str) -> Text:
    """A value a redacted dump masked (`registry-doctor snapshot`) is unknown here."""
    return MASKED if is_redacted(text) else text


def _b64_text(value: Any) -> Text:
    try:
        return _unless_redacted(base64.b64decode(str(value), validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):  # ValueError: non-ASCII text
        return Opaque("not base64-encoded UTF-8 text")


# Env sources a container can name -> the kind of object they name.
_REF_KINDS = {"secretKeyRef": "Secret", "configMapKeyRef": "ConfigMap", "secretRef": "Secret",
              "configMapRef": "ConfigMap"}


def _relevant(name: str) -> bool:
    """Variables the registry's storage reads: its overrides and the AWS credential chain."""
    return name.startswith(("REGISTRY_", "AWS_"))


def container_env(container: dict[str, Any], where: str, owner: str, objects: Objects,
                  problems: list[Problem]) -> dict[str, EnvVar]:
    """The container's environment as the kubelet builds it: `envFrom` first, then `env`,
    a later definition replacing an earlier one."""
    env: dict[str, EnvVar] = {}
    for index, source in enumerate(as_list(container.get("envFrom"))):
        env.update(_env_from(as_dict(source), f"{where}.envFrom[{index}]", owner, objects,
                             problems))
    for entry in as_list(container.get("env")):
        entry = as_dict(entry)
        name = entry.get("name")
        if isinstance(name, str):
            variable = _env_entry(name, entry, f"{where}.env[{name}]", owner, objects, problems)
            if variable is not None:
                env[name] = variable
    return env


def _env_from(source: dict[str, Any], field: str, owner: str, objects: Objects,
              problems: list[Problem]) -> dict[str, EnvVar]:
    for ref_field in ("configMapRef", "secretRef"):
        ref = as_dict(source.get(ref_field))
        if ref:
            kind = _REF_KINDS[ref_field]
            found = _referenced(kind, ref, f"{field}.{ref_field}", objects, problems)
            prefix = str(source.get("prefix") or "")
            if found is None:
                return {}
            return {prefix + key: EnvVar(prefix + key, value,
                                         f"envFrom {found.ref} key {key} of {owner}",
                                         found.secret)
                    for key, value in found.data.items()}
    return {}


def _env_entry(name: str, entry: dict[str, Any], field: str, owner: str, objects: Objects,
               problems: list[Problem]) -> EnvVar | None:
    origin = f"env {name} of {owner}"
    value_from = as_dict(entry.get("valueFrom"))
    if not value_from:
        value = entry.get("value")
        return EnvVar(name, "" if value is None else _unless_redacted(str(value)), origin)
    for ref_field in ("secretKeyRef", "configMapKeyRef"):
        ref = as_dict(value_from.get(ref_field))
        if not ref:
            continue
        kind = _REF_KINDS[ref_field]
        sink = problems if _relevant(name) else []
        found = _referenced(kind, ref, f"{field}.valueFrom.{ref_field}", objects, sink)
        key = str(ref.get("key"))
        if found is None:
            return None
        if key not in found.data:
            if not ref.get("optional"):
                sink.append(Problem(True, f"{field}.valueFrom.{ref_field}",
                                    f"{field}.valueFrom.{ref_field}: {found.ref} has no key "
                                    f"{key}: the pods cannot start "
                                    "(CreateContainerConfigError)"))
            return None
        return EnvVar(name, found.data[key], f"{origin} from {found.ref} key {key}", found.secret)
    return EnvVar(name, Opaque("set by the kubelet at run time"), origin)


def _referenced(kind: str, ref: dict[str, Any], field: str, objects: Objects,
                problems: list[Problem]) -> SourceObject | None:
    name = str(ref.get("name"))
    found = objects.get(kind, name)
    if found is None and not ref.get("optional"):
        problems.append(Problem(True, field, f"{field}: {kind.lower()} {name} not found in "
                                f"namespace "
                                f"{objects.namespace}: the pods cannot start "
                                "(CreateContainerConfigError)"))
    return found


@dataclass(frozen=True)
class Mount:
    """The volume that holds `path` in a container: the deepest mount covering it."""

    volume_name: str
    volume: dict[str, Any]
    mount_path: str
    relative: str  # the path inside the volume ("" when the mount point itself)
    field: str  # evidence: where the mount is declared

    @property
    def type(self) -> str:
        kinds = [k for k in self.volume if k != "name"]
        return kinds[0] if kinds else "unknown"


def mount_for(container: dict[str, Any], container_field: str, pod_spec: dict[str, Any],
              path: str) -> Mount | None:
    path = posixpath.normpath(path)
    best: Mount | None = None
    for mount in as_list(container.get("volumeMounts")):
        mount = as_dict(mount)
        mount_path = posixpath.normpath(str(mount.get("mountPath") or "/"))
        sub_path = mount.get("subPath")
        if sub_path:
            if path != mount_path:
                continue
            relative = str(sub_path)
        elif path == mount_path or path.startswith(mount_path.rstrip("/") + "/"):
            relative = path[len(mount_path):].lstrip("/")
        else:
            continue
        if best is None or len(mount_path) > len(best.mount_path):
            name = str(mount.get("name"))
            volume = next((as_dict(v) for v in as_list(pod_spec.get("volumes"))
                           if as_dict(v).get("name") == name), {"name": name})
            best = Mount(name, volume, mount_path, relative,
                         f"{container_field}.volumeMounts[{name}]")
    return best


@dataclass(frozen=True)
class MountedFile:
    text: Text | None  # None: the file does not exist
    origin: str  # e.g. "secret registry-config key config.yml"
    source: SourceObject | None
    problem: Problem | None = None


# Volume types whose files the API shows, with the field naming their object.
_FILE_VOLUMES = {"secret": ("Secret", "secretName"), "configMap": ("ConfigMap", "name")}


def read_mounted_file(mount: Mount, objects: Objects) -> MountedFile | None:
    """The file at `mount.relative` of a secret, configmap or projected volume; None when
    the volume type's content cannot be read from the API (PVC, hostPath, ...)."""
    if mount.type in _FILE_VOLUMES:
        return _file_from(mount, as_dict(mount.volume[mount.type]), mount.type, objects)
    if mount.type == "projected":
        found: MountedFile | None = None
        for source in as_list(as_dict(mount.volume["projected"]).get("sources")):
            for volume_type in _FILE_VOLUMES:
                spec = as_dict(as_dict(source).get(volume_type))
                if spec:
                    found = _file_from(mount, spec, volume_type, objects)
                    if found.text is not None or found.problem is not None:
                        return found
        return found or MountedFile(None, f"projected volume {mount.volume_name}", None)
    return None


def _file_from(mount: Mount, spec: dict[str, Any], volume_type: str,
               objects: Objects) -> MountedFile:
    kind, name_field = _FILE_VOLUMES[volume_type]
    if volume_type == "secret":  # projected sources name a secret with `name`
        name_field = "secretName" if "secretName" in spec else "name"
    name = str(spec.get(name_field))
    field = f"volume {mount.volume_name}"
    source = objects.get(kind, name)
    if source is None:
        if spec.get("optional"):
            return MountedFile(None, f"optional {kind.lower()} {name} (absent)", None)
        return MountedFile(None, f"{kind.lower()} {name}", None, Problem(
            True, field, f"{field}: {kind.lower()} {name} not found in namespace "
            f"{objects.namespace}: "
            "the pods cannot start (volume mount fails)"))
    items = [as_dict(i) for i in as_list(spec.get("items"))]
    if items:
        key = next((str(i.get("key")) for i in items if i.get("path") == mount.relative), None)
        missing = [str(i.get("key")) for i in items if str(i.get("key")) not in source.data]
        if missing and not spec.get("optional"):
            return MountedFile(None, source.ref, source, Problem(
                True, field, f"{field}: {source.ref} has no key {', '.join(missing)}: the pods "
                "cannot start (volume mount fails)"))
    else:
        key = mount.relative if "/" not in mount.relative else None
    if key is None or key not in source.data:
        return MountedFile(None, source.ref, source)
    return MountedFile(source.data[key], f"{source.ref} key {key}", source)
