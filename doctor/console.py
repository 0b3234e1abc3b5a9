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

from registry_doctor.doctor.cockpit import (
    CERT_DIR,
    LAUNCHER_COMBINED,
    LAUNCHER_PAIR,
    LAUNCHER_PAIR_DIR,
    CockpitVersion,
    version_of_image,
)
from registry_doctor.doctor.model import Resource
from registry_doctor.doctor.routes import served_hosts
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.snapshot.redact import REDACTED
from registry_doctor.doctor.workload import Workload, as_dict, as_list

# The registry console ships with OpenShift 3.x only (openshift-ansible release-3.11
# roles/cockpit-ui); OpenShift 4 has its own web console and no registry console.
CONSOLE_PLATFORMS = ("openshift3",)
NO_CONSOLE = "the registry console (Cockpit) is part of OpenShift 3.x only"
DEFAULT_OAUTH_CLIENT = "cockpit-oauth-client"
# Makes the service CA sign a `kubernetes.io/tls` secret of that name for the Service (3.x
# "Service Serving Certificate Secrets"); reencrypt routes without a destinationCACertificate
# trust that CA.
SERVING_CERT_ANNOTATION = "service.alpha.openshift.io/serving-cert-secret-name"
RESTORE_ROUTE = "restore the route"  # a route finding's fix: the route is the cause


def route_to(snapshot: Snapshot, name: str) -> dict[str, Any] | None:
    """The route called `name`, else one sending traffic to a service called `name`."""
    routes = snapshot.items("routes")
    named = next((r for r in routes if r["metadata"]["name"] == name), None)
    return named or next((r for r in routes if route_target(r) == name), None)


def route_target(route: dict[str, Any]) -> Any:
    return as_dict(as_dict(route.get("spec")).get("to")).get("name")


def route_host(route: dict[str, Any] | None) -> str | None:
    """The host browsers reach the route at: the first one a router admitted it with
    (doctor.routes), None when no router serves it."""
    return next(iter(served_hosts(route)), None)


def restore_route_command(route: dict[str, Any], console: Workload, host: str) -> str:
    """The template's passthrough route again, at `host`."""
    name = route["metadata"]["name"]
    port = as_dict(as_dict(route.get("spec")).get("port")).get("targetPort")
    return (f"oc delete route {name} -n {console.namespace} && oc create route passthrough "
            f"{name} --service {route_target(route) or console.name} --hostname {host}"
            + (f" --port {port}" if isinstance(port, (str, int)) and port != "" else "")
            + f" -n {console.namespace}")


def route_resource(route: dict[str, Any]) -> Resource:
    return Resource("Route", route["metadata"]["name"], route["metadata"].get("namespace"))


def console_urls(route: dict[str, Any]) -> list[str]:
    """What the browser shows at each host a router serves the route at, and so what the
    console sends as redirect_uri from there."""
    path = as_dict(route.get("spec")).get("path")
    path = path if isinstance(path, str) and path.startswith("/") else "/"
    return [f"https://{host}{path}" for host in served_hosts(route)]


def console_url(route: dict[str, Any]) -> str | None:
    return next(iter(console_urls(route)), None)


def console_version(console: Workload) -> CockpitVersion:
    """The Cockpit the console's main container runs, by its image."""
    located = console.main_container(console.name)
    return version_of_image(str(located[1].get("image", "")) if located else "")


READ_ONLY_VOLUMES = ("secret", "configMap", "projected", "downwardAPI")


def read_only_at(console: Workload, path: str) -> str | None:
    """The read-only volume (secret, configMap, ...) the console's main container mounts as
    the whole folder `path`, by name, if any: nothing can write files into that folder."""
    located = console.main_container(console.name)
    if located is None:
        return None
    volumes = {v.get("name"): v for v in map(as_dict, as_list(console.pod_spec.get("volumes")))}
    return next((str(m.get("name")) for m in map(as_dict, as_list(
        located[1].get("volumeMounts"))) if not m.get("subPath") and
        posixpath.normpath(str(m.get("mountPath", ""))) == path and
        any(k in as_dict(volumes.get(m.get("name"))) for k in READ_ONLY_VOLUMES)), None)


def secret_mount(console: Workload, secret: str) -> str | None:
    """Where the console's main container mounts secret `secret` (a whole volume), if it does."""
    located = console.main_container(console.name)
    if located is None:
        return None
    volumes = {v.get("name"): as_dict(v.get("secret")).get("secretName")
               for v in map(as_dict, as_list(console.pod_spec.get("volumes")))}
    return next((str(m.get("mountPath")) for m in map(as_dict, as_list(
        located[1].get("volumeMounts"))) if volumes.get(m.get("name")) == secret
                 and not m.get("subPath")), None)


@dataclass
class MountedFiles:
    """The files a pod sees in the certificate folder, from the volumes mounted there."""

    files: dict[str, bytes] = field(default_factory=dict)
    writable: bool = True  # False when a read-only volume (secret, configMap) is the folder
    sources: list[str] = field(default_factory=list)  # e.g. "secret default/console-secret"
    resources: list[Resource] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # cannot mount (missing object): crit
    unreadable: list[str] = field(default_factory=list)  # cannot judge (redacted): unknown
    ignored: list[str] = field(default_factory=list)  # provided, but never reaches Cockpit: warn


def certificate_files(console: Workload, snapshot: Snapshot) -> MountedFiles:
    """Files in /etc/cockpit/ws-certs.d of the console container: the whole folder mounted from
    a secret or configMap (the docs' `oc volume --add --type=secret -m ...`), single files
    mounted into it with subPath, an emptyDir an init container fills (unknown), and, for the
    console image, the tls.crt and tls.key its launcher combines into tls.cert there from a
    volume at /var/run/secrets/ws-certs.d (doctor.cockpit)."""
    found = MountedFiles()
    located = console.main_container(console.name)
    if located is None:
        return found
    index, container = located
    volumes = {v["name"]: v for v in map(as_dict, as_list(console.pod_spec.get("volumes")))
               if isinstance(v.get("name"), str)}
    pair = MountedFiles()
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
        elif path == LAUNCHER_PAIR_DIR and not mount.get("subPath") and \
                console_version(console).launcher:
            _add_volume(pair, volume, None, None, where, console, snapshot)
    _combine_pair(found, pair)
    return found


def _combine_pair(found: MountedFiles, pair: MountedFiles) -> None:
    """What the launcher's `remotectl certificate tls.crt tls.key` adds to the folder."""
    found.problems += pair.problems
    found.unreadable += pair.unreadable
    found.resources += pair.resources
    if not pair.sources or pair.problems or pair.unreadable:
        return
    source = f"{' + '.join(pair.sources)} at {LAUNCHER_PAIR_DIR}"
    missing = [name for name in LAUNCHER_PAIR if name not in pair.files]
    if missing:
        found.ignored.append(f"{source} holds no {' or '.join(missing)}: the launcher's "
                             f"remotectl combines nothing into {LAUNCHER_COMBINED}")
    elif not found.writable:
        found.ignored.append(f"{source} is not used: the launcher's remotectl cannot write "
                             f"{LAUNCHER_COMBINED} into the read-only volume at {CERT_DIR}")
    else:
        found.sources.append(f"{source} (combined into {LAUNCHER_COMBINED} by the launcher)")
        found.files[LAUNCHER_COMBINED] = b"".join(pair.files[n] + b"\n" for n in LAUNCHER_PAIR)


def _add_volume(found: MountedFiles, volume: dict[str, Any] | None, sub_path: str | None,
                file_name: str | None, where: str, console: Workload, snapshot: Snapshot) -> None:
    if volume is None:
        found.problems.append(f"{where} mounts a volume the pod template does not define")
        return
    kind, collection, name_field = next(
        ((k, c, n) for k, c, n in (("secret", "console-secrets", "secretName"),
                                   ("configMap", "configmaps", "name")) if k in volume),
        (None, None, None))
    if kind is None and "emptyDir" in volume:
        _add_empty_dir(found, volume, where, console, whole=sub_path is None)
        return
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


def _add_empty_dir(found: MountedFiles, volume: dict[str, Any], where: str,
                   console: Workload, whole: bool) -> None:
    """An emptyDir starts empty and writable (as the `whole` folder); an init container
    mounting it writes the certificate at run time, which no API object holds."""
    found.writable = found.writable or whole
    writers = [str(c.get("name")) for c in map(as_dict, as_list(
        console.pod_spec.get("initContainers"))) if any(
        as_dict(m).get("name") == volume.get("name") for m in as_list(c.get("volumeMounts")))]
    if writers:
        found.unreadable.append(f"{where}: emptyDir {volume.get('name')} is filled at run time "
                                f"by initContainer {', '.join(writers)}: the certificate it "
                                "writes is in no API object, so it is unknown, not wrong")


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
