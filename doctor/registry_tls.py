"""Where the registry's serving certificate is, and how Go clients judge it.

The 3.x registry serves TLS when `http.tls.certificate` and `http.tls.key` are set, usually as
the env overrides `REGISTRY_HTTP_TLS_CERTIFICATE`/`_KEY` naming files of a secret volume
(OpenShift Origin 3.11 docs, "Securing the Registry": `oc adm ca create-server-cert`, secret
`registry-certificates` mounted at /etc/secrets). The registry loads them with Go's
`tls.LoadX509KeyPair` (distribution `registry/registry.go`) and exits when they do not load.
Pure: files are read from the secrets and configmaps in the snapshot, never from a pod. A
private key is reduced to its public half by doctor/pem.py at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from registry_doctor.doctor.cockpit import name_matches
from registry_doctor.doctor.model import Resource
from registry_doctor.doctor.pem import Certificate, PemFile, read_pem_file
from registry_doctor.doctor.registryconfig import RegistryConfig, mount_for
from registry_doctor.doctor.registryconfig.merge import load_yaml
from registry_doctor.doctor.registryconfig.sources import Objects, Opaque, read_mounted_file
from registry_doctor.doctor.snapshot import Snapshot

CERT_ENV, KEY_ENV = "REGISTRY_HTTP_TLS_CERTIFICATE", "REGISTRY_HTTP_TLS_KEY"


@dataclass(frozen=True)
class TlsFile:
    """One of the two files, as the registry container sees it."""

    role: str  # "certificate" or "key"
    path: str
    setting: str  # where the path is set: "env REGISTRY_HTTP_TLS_CERTIFICATE of dc/..."
    origin: str = ""  # where the file's text comes from: "secret registry-certificates key ..."
    pem: PemFile | None = None  # None: not readable here (see `problem` or `unknown`)
    secret: str | None = None  # the Secret holding it, by name
    problem: str | None = None  # the registry cannot load it: it exits
    unknown: str | None = None  # cannot be read from the API (redacted, hostPath, ...)


@dataclass
class ServingTls:
    """The registry's TLS as configured: `https` None when it cannot be known."""

    https: bool | None
    reason: str  # why: which settings say so, or why they cannot be read
    files: list[TlsFile] = field(default_factory=list)
    resources: list[Resource] = field(default_factory=list)

    @property
    def certificate(self) -> TlsFile | None:
        return next((f for f in self.files if f.role == "certificate"), None)

    @property
    def key(self) -> TlsFile | None:
        return next((f for f in self.files if f.role == "key"), None)

    @property
    def chain(self) -> tuple[Certificate, ...]:
        """The certificates the registry sends, in the file's order (Go sends them so)."""
        cert = self.certificate
        return cert.pem.certificates if cert and cert.pem else ()


def serving_tls(snapshot: Snapshot, config: RegistryConfig, namespace: str) -> ServingTls:
    """What the registry container serves: HTTP or HTTPS, and its two files when HTTPS."""
    objects = Objects(namespace, snapshot.items("configmaps"), snapshot.items("registry-secrets"))
    settings = _settings(config, objects)
    if isinstance(settings, ServingTls):
        return settings
    (cert_path, cert_setting), (key_path, key_setting) = settings
    files = [_read(config, objects, "certificate", cert_path, cert_setting),
             _read(config, objects, "key", key_path, key_setting)]
    return ServingTls(True, f"{cert_setting} and {key_setting}", files,
                      [s.resource for s in objects.read.values()])


Setting = tuple[str, str]  # (path, where it is set)


def _settings(config: RegistryConfig, objects: Objects
              ) -> tuple[Setting, Setting] | ServingTls:
    """The two paths, or the verdict without them (plain HTTP, or unknown). An env override
    wins over the file's setting."""
    env: dict[str, Setting] = {}
    for env_name, role in ((CERT_ENV, "certificate"), (KEY_ENV, "key")):
        variable = config.env.get(env_name)
        if variable is not None and isinstance(variable.value, Opaque):
            return ServingTls(None, f"{variable.origin} is {variable.value.why}")
        if variable is not None and variable.value:
            env[role] = (str(variable.value), variable.origin)
    from_file = _file_settings(config, objects) if len(env) < 2 else {}
    if isinstance(from_file, ServingTls):
        return from_file
    found = {**from_file, **env}
    if len(found) == 2:
        return found["certificate"], found["key"]
    if "certificate" in found:  # distribution registry.go: TLS when a certificate is named
        path, setting = found["certificate"]
        return ServingTls(True, f"{setting} is set but no key", [TlsFile(
            "certificate", path, setting, problem=f"no http.tls.key ({KEY_ENV}) goes with it: "
                                                  "the registry exits (\"open : no such file "
                                                  "or directory\")")])
    ignored = f" ({found['key'][1]} alone is ignored)" if found else ""
    return ServingTls(False, f"no {CERT_ENV} nor http.tls.certificate in {config.owner}'s "
                             f"configuration{ignored}")


def _file_settings(config: RegistryConfig, objects: Objects) -> dict[str, Setting] | ServingTls:
    """`http.tls.certificate`/`key` of the configuration file."""
    if config.unresolved:
        return ServingTls(None, f"its configuration file cannot be read: {config.unresolved}")
    if config.file_origin.startswith("built into image"):
        return {}  # the images' own config.yml serve plain HTTP
    mount = mount_for(config.container, config.container_field, config.pod_spec,
                      config.path or "")
    mounted = read_mounted_file(mount, objects) if mount else None
    if mounted is None or not isinstance(mounted.text, str):
        return {}  # the file's own problems are registry-config's
    try:
        document = load_yaml(mounted.text)
    except yaml.YAMLError:
        return {}
    tls = _mapping(_mapping(_mapping(document).get("http")).get("tls"))
    where = f"http.tls.%s in {config.path} ({mounted.origin})"
    return {name: (str(tls[name]), where % name) for name in ("certificate", "key")
            if isinstance(tls.get(name), str) and tls[name]}


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _read(config: RegistryConfig, objects: Objects, role: str, path: str,
          setting: str) -> TlsFile:
    mount = mount_for(config.container, config.container_field, config.pod_spec, path)
    if mount is None:
        return TlsFile(role, path, setting, unknown=f"no volume provides {path}: it would have "
                                                   "to be built into the image, which "
                                                   "registry-doctor cannot read")
    mounted = read_mounted_file(mount, objects)
    where = f"volume {mount.volume_name} at {mount.mount_path}"
    if mounted is None:
        return TlsFile(role, path, setting, unknown=f"{path} is on {where}, a {mount.type} "
                                                    "volume whose files the API does not show")
    secret = mounted.source.name if mounted.source and mounted.source.secret else None
    if mounted.problem:
        return TlsFile(role, path, setting, mounted.origin, secret=secret,
                       problem=str(mounted.problem))
    if mounted.text is None:
        return TlsFile(role, path, setting, mounted.origin, secret=secret,
                       problem=f"{where} ({mounted.origin}) has no file {path}: the registry "
                               f"exits (\"open {path}: no such file or directory\")")
    if isinstance(mounted.text, Opaque):
        return TlsFile(role, path, setting, mounted.origin, secret=secret,
                       unknown=f"{mounted.origin} is {mounted.text.why}")
    return TlsFile(role, path, setting, mounted.origin,
                   read_pem_file(path, mounted.text.encode()), secret)


def hostname_error(leaf: Certificate, host: str) -> str | None:
    """What a Go client (docker, skopeo, the registry's own pull-through) says when `leaf`
    does not cover `host`, None when it does. Go crypto/x509 `verify.go` (HostnameError; the
    Common Name stands in for missing SANs only in Go < 1.15, the docker of 3.x)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        ips = [ipaddress.ip_address(ip) for ip in leaf.ip_addresses]
        if address in ips:
            return None
        if not ips:
            return f"x509: cannot validate certificate for {host} because it doesn't contain " \
                   "any IP SANs"
        valid = ", ".join(leaf.ip_addresses)
    else:
        names = leaf.dns_names if leaf.has_san else tuple(filter(None, [leaf.common_name]))
        if any(name_matches(name, host) for name in names):
            return None
        valid = ", ".join(names)
    if not valid:
        return f"x509: certificate is not valid for any names, but wanted to match {host}"
    return f"x509: certificate is valid for {valid}, not {host}"


def issued_under(chain: Sequence[Certificate], authorities: Sequence[Certificate]) -> bool:
    """True when the server certificate leads, through the chain's own intermediates (each
    signature verified), to a certificate in `authorities` or one they signed."""
    if not chain:
        return False
    current, rest = chain[0], list(chain[1:])
    while True:
        if any(current.fingerprint == ca.fingerprint or current.signed_by(ca)
               for ca in authorities):
            return True
        issuer = next((c for c in rest if current.signed_by(c)), None)
        if issuer is None:
            return False
        rest.remove(issuer)
        current = issuer
