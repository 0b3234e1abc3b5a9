"""Where the registry console's pieces are: its route, the files mounted into its certificate
folder, the registry route it points at. Pure functions over the snapshot, shared by the three
console checks and the console probes.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
from dataclasses import dataclass, field
from typing import Any

from registry_doctor.doctor.cockpit import CERT_DIR
from registry_doctor.doctor.model import Resource
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.snapshot.redact import REDACTED
from registry_doctor.doctor.workload import Workload, as_dict, as_list

# The registry console ships with OpenShift 3.x only (openshift-ansible release-3.11
# roles/cockpit-ui); OpenShift 4 has its own web console and no registry console.
CONSOLE_PLATFORMS = ("openshift3",)
NO_CONSOLE = "the registry console (Cockpit) is part of OpenShift 3.x only"
DEFAULT_OAUTH_CLIENT = "cockpit-oauth-client"


def route_to(snapshot: Snapshot, name: str) -> dict[str, Any] | None:
    """The route called `name`, else one sending traffic to a service called `name`."""
    routes = snapshot.items("routes")
    named = next((r for r in routes if r["metadata"]["name"] == name), None)
    return named or next((r for r in routes if _route_target(r) == name), None)


def _route_target(route: dict[str, Any]) -> Any:
    return as_dict(as_dict(route.get("spec")).get("to")).get("name")


def route_host(route: dict[str, Any] | None) -> str | None:
    host = as_dict(as_dict(route).get("spec")).get("host")
    return host if isinstance(host, str) and host else None


def route_resource(route: dict[str, Any]) -> Resource:
    return Resource("Route", route["metadata"]["name"], route["metadata"].get("namespace"))


def console_url(route: dict[str, Any]) -> str | None:
    """What the browser shows, and so what the console sends as redirect_uri."""
    host = route_host(route)
    if host is None:
        return None
    path = as_dict(route.get("spec")).get("path")
    path = path if isinstance(path, str) and path.startswith("/") else "/"
    return f"https://{host}{path}"


@dataclass
class MountedFiles:
    """The files a pod sees in the certificate folder, from the volumes mounted there."""

    files: dict[str, bytes] = field(default_factory=dict)
    writable: bool = True  # False when a read-only volume (secret, configMap) is the folder
    sources: list[str] = field(default_factory=list)  # e.g. "secret default/console-secret"
    resources: list[Resource] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # cannot mount (missing object): crit
    unreadable: list[str] = field(default_factory=list)  # cannot judge (redacted): unknown


def certificate_files(console: Workload, snapshot: Snapshot) -> MountedFiles:
    """Files in /etc/cockpit/ws-certs.d of the console container: the whole folder mounted from
    a secret or configMap (the docs' `oc volume --add --type=secret -m ...`), or single files
    mounted into it with subPath."""
    found = MountedFiles()
    located = console.main_container(console.name)
    if located is None:
        return found
    index, container = located
    volumes = {v["name"]: v for v in map(as_dict, as_list(console.pod_spec.get("volumes")))
               if isinstance(v.get("name"), str)}
    for position, mount in enumerate(as_list(container.get("volumeMounts"))):
        mount = as_dict(mount)
        path = posixpath.normpath(str(mount.get("mountPath", "")))
        where = f"{console.ref} {console.container_path(container, index)}.volumeMounts[{position}]"
        volume = volumes.get(mount["name"]) if isinstance(mount.get("name"), str) else None
        if path == CERT_DIR and not mount.get("subPath"):
            found.writable = False
            _add_volume(found, volume, None, None, where, console, snapshot)
        elif posixpath.dirname(path) == CERT_DIR and mount.get("subPath"):
            _add_volume(found, volume, str(mount["subPath"]), posixpath.basename(path), where,
                        console, snapshot)
    return found


def _add_volume(found: MountedFiles, volume: dict[str, Any] | None, sub_path: str | None,
                file_name: str | None, where: str, console: Workload, snapshot: Snapshot) -> None:
    if volume is None:
        found.problems.append(f"{where} mounts a volume the pod template does not define")
        return
    kind, collection, name_field = next(
        ((k, c, n) for k, c, n in (("secret", "console-secrets", "secretName"),
                                   ("configMap", "configmaps", "name")) if k in volume),
        (None, None, None))
    if kind is None:
        found.unreadable.append(f"{where}: volume {volume.get('name')} is neither a secret nor a "
                                "configMap; its files cannot be read from the cluster")
        return
    spec = as_dict(volume[kind])
    name = str(spec.get(name_field))
    source = f"{kind} {console.namespace}/{name}"
    found.sources.append(source)
    obj = snapshot.named(collection, name)
    if obj is None:
        if not spec.get("optional"):
            found.problems.append(f"{source} (volume {volume.get('name')}) does not exist: the "
                                  "console pod cannot start (MountVolume.SetUp failed)")
        return
    found.resources.append(Resource("Secret" if kind == "secret" else "ConfigMap", name,
                                    console.namespace))
    data = _object_files(obj, kind, source, found.problems)
    masked = sorted(key for key, value in data.items() if value == REDACTED.encode())
    if masked:  # a redacted dump keeps PEM files; what it masked cannot be judged
        found.unreadable.append(f"{source}: {', '.join(masked)} redacted in this dump")
        return
    names = _projected_names(spec, data)
    if sub_path is None:
        found.files.update({n: data[key] for n, key in names.items()})
    elif sub_path in names:
        found.files[file_name or sub_path] = data[names[sub_path]]


def _object_files(obj: dict[str, Any], kind: str, source: str,
                  problems: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    encoded = as_dict(obj.get("data" if kind == "secret" else "binaryData"))
    for key, value in encoded.items():
        try:
            files[str(key)] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            problems.append(f"{source} key {key}: not valid base64")
    plain = as_dict(obj.get("stringData" if kind == "secret" else "data"))
    files.update({str(k): str(v).encode() for k, v in plain.items()})
    return files


def _projected_names(spec: dict[str, Any], data: dict[str, bytes]) -> dict[str, str]:
    """File name in the folder -> key, honouring a volume's `items` (key -> path)."""
    items = [as_dict(i) for i in as_list(spec.get("items"))]
    if not items:
        return {key: key for key in data}
    return {str(i.get("path")): str(i.get("key")) for i in items
            if str(i.get("key")) in data and "/" not in str(i.get("path"))}
