"""The registry's effective configuration, resolved from its workload as the registry process
resolves it (distribution `configuration/`), from snapshot objects only:

1. the file's path: the first `*.yml`/`*.yaml` word of the container's command and args (after
   `$(VAR)` expansion), else `$REGISTRY_CONFIGURATION_PATH`, else the image's default;
2. the file: the secret, configmap or projected volume mounted over that path, else the file
   built into a known image (OpenShift's `/config.yml`, upstream's
   `/etc/docker/registry/config.yml`);
3. the `REGISTRY_STORAGE*` environment overrides (`merge.py`);
4. the start-up rules of the storage section (`rules.py`), for the image's flavour.

Only what the checks judge is modelled: the file must parse, `version` must be 0.1, and the
storage section. Other sections and other `REGISTRY_*` variables are not judged.

Secret values never leave this module: `describe()` says `storage.s3.secretkey set (env ...
from secret s3-keys key secretkey)`; only the S3 probe reads `credentials()`.
"""

from __future__ import annotations

import configparser
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from registry_doctor.doctor.model import Resource
from registry_doctor.doctor.registryconfig.merge import (
    YAML_LOADER,
    Origin,
    Unresolvable,
    apply_env,
    driver_names,
    load_yaml,
    storage_from_yaml,
    yaml_error,
    yaml_tag,
)
from registry_doctor.doctor.registryconfig.rules import (
    OPENSHIFT_4_RULES,
    OPENSHIFT_RULES,
    REMOTE_DRIVERS,
    S3_DRIVERS,
    UPSTREAM_RULES,
    Flavour,
    go_text,
    rules_for,
    storage_problems,
)
from registry_doctor.doctor.registryconfig.sources import (
    MASKED,
    EnvVar,
    Mount,
    MountedFile,
    Objects,
    Opaque,
    Problem,
    container_env,
    mount_for,
    read_mounted_file,
)
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.snapshot.redact import is_secret_setting
from registry_doctor.doctor.workload import WORKLOAD_KINDS, Workload, as_list

__all__ = ["CONFIG_KINDS", "OPENSHIFT4_IMAGE", "REMOTE_DRIVERS", "S3_DRIVERS", "Credentials",
           "Image", "Mount", "Problem", "RegistryConfig", "mount_for", "resolve"]

# The snapshot collections resolution reads: checks using it list these in META.kinds.
CONFIG_KINDS = (*WORKLOAD_KINDS, "configmaps", "registry-secrets")


@dataclass(frozen=True)
class Image:
    """What a known registry image does when the pod does not say."""

    rules: tuple[Flavour, ...]  # the releases whose rules are modelled, oldest first
    command_path: str | None  # the path its default command passes
    env_path: str | None  # its REGISTRY_CONFIGURATION_PATH
    builtin: str | None  # the storage part of the file it ships at its default path
    # A file of CA certificates the registry trusts beyond the system's, when the image adds
    # what is mounted there to its trust store at start (`update-ca-trust extract`).
    trusted_ca: str | None = None


# openshift/origin images/dockerregistry/config.yml (3.11), storage part.
OPENSHIFT_BUILTIN = """version: 0.1
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /registry
  delete:
    enabled: true
"""
# distribution-library-image config-example.yml (the `registry:2` image), storage part.
UPSTREAM_BUILTIN = """version: 0.1
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
"""
# The `registry:3` image reads /etc/distribution/config.yml (distribution v3.0.0 Dockerfile:
# `serve /etc/distribution/config.yml`); distribution-library-image's config-example.yml of
# the 3.x releases, storage part, enables delete.
UPSTREAM_3_BUILTIN = """version: 0.1
storage:
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  tag:
    concurrencylimit: 5
"""
OPENSHIFT_IMAGE = Image(OPENSHIFT_RULES, None, "/config.yml", OPENSHIFT_BUILTIN)
UPSTREAM_IMAGE = Image(UPSTREAM_RULES, "/etc/docker/registry/config.yml", None,
                       UPSTREAM_BUILTIN)
UPSTREAM_3_IMAGE = Image(UPSTREAM_RULES, "/etc/distribution/config.yml", None,
                         UPSTREAM_3_BUILTIN)
CUSTOM_IMAGE = Image(UPSTREAM_RULES, None, None, None)
# OpenShift 4's image registry (openshift/image-registry: its Dockerfile sets
# REGISTRY_CONFIGURATION_PATH=/config.yml, `images/dockerregistry/config.yml` keeps the storage
# part of 3.11's). The operator overrides the storage section whole with REGISTRY_STORAGE
# (cluster-image-registry-operator `pkg/resource/podtemplatespec.go`). Its images are named by
# release digest, so the platform names this image (doctor.platform.openshift4).
# The operator copies the CA of spec.storage.s3.trustedCA (else the cloud config's) into
# ConfigMap image-registry-certificates, key storage-ca-bundle.pem, mounted over the image's
# anchors (`pkg/resource/caconfig.go`), which the container's command extracts into its store.
OPENSHIFT4_IMAGE = Image(OPENSHIFT_4_RULES, None, "/config.yml", OPENSHIFT_BUILTIN,
                         "/etc/pki/ca-trust/source/anchors/storage-ca-bundle.pem")
# image name (last path component, no tag) -> what it does
IMAGES = {"origin-docker-registry": OPENSHIFT_IMAGE, "ose-docker-registry": OPENSHIFT_IMAGE,
          "registry": UPSTREAM_IMAGE}
FILESYSTEM_ROOT = "/var/lib/registry"  # the filesystem driver's default rootdirectory


def image_name(image: str) -> str:
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


@dataclass(frozen=True, repr=False)
class Credentials:
    """The S3 keys the registry would sign with, for the probe only. `source` says where they
    come from and never holds a value."""

    source: str
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    @property
    def usable(self) -> bool:
        return bool(self.access_key and self.secret_key)

    def __repr__(self) -> str:
        return f"Credentials(source={self.source!r})"


@dataclass
class RegistryConfig:
    owner: str  # "dc/docker-registry"
    container_field: str  # "spec.template.spec.containers[registry]"
    image: str
    flavour: Flavour
    rules_line: str = ""  # which version's start-up rules apply, and why
    path: str | None = None
    path_origin: str = ""  # how the path was chosen
    file_origin: str = ""  # where the file's text came from, with the volume
    file_source: str = ""  # the same, short: "secret registry-config key config.yml"
    file_secret: bool = False  # the file is in a Secret
    storage: dict[str, Any] | None = None
    origins: dict[str, Origin] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unresolved: str | None = None  # why the configuration cannot be known from here
    env: dict[str, EnvVar] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)  # configmaps and secrets read
    container: dict[str, Any] = field(default_factory=dict)
    pod_spec: dict[str, Any] = field(default_factory=dict)
    # Where the effective http.secret comes from (never its value); None: unset or empty,
    # so each registry process makes a random one (distribution registry/handlers/app.go).
    http_secret: str | None = None
    # The object the configuration is written from, when not `owner` itself (OpenShift 4:
    # the operator's Config CR writes the Deployment's env).
    managed_by: str = ""
    # The AWS shared-credentials file `storage.s3.credentialsconfigpath` names, as mounted
    # (OpenShift 4.7+: secret image-registry-private-configuration key credentials): read
    # only by `credentials()`, never shown.
    credentials_file: MountedFile | None = field(default=None, repr=False)
    # The extra CA certificates the registry trusts for its storage (Image.trusted_ca).
    trusted_ca: MountedFile | None = None

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.fatal]

    @property
    def driver(self) -> str | None:
        """The storage driver, when the configuration names exactly one."""
        drivers = driver_names(self.storage, self.flavour.storage_options)
        return drivers[0] if len(drivers) == 1 and self.unresolved is None else None

    @property
    def params(self) -> dict[str, Any]:
        return (self.storage or {}).get(self.driver or "") or {}

    @property
    def source_line(self) -> str:
        """Evidence: where the configuration comes from."""
        overrides = sorted(n for n in self.env if n.startswith("REGISTRY_STORAGE"))
        line = f"{self.owner} config file {self.path} ({self.file_origin}; path from " \
               f"{self.path_origin})"
        line += f", overridden by env {', '.join(overrides)}" if overrides else ""
        return line + (f" (the operator writes them from {self.managed_by})"
                       if self.managed_by else "")

    @property
    def filesystem_root(self) -> str:
        """Where the filesystem driver keeps images."""
        root = self.params.get("rootdirectory")
        return go_text(root) if root not in (None, "") else FILESYSTEM_ROOT

    def describe_root(self) -> str:
        field = f"storage.{self.driver}.rootdirectory"
        if self.params.get("rootdirectory") in (None, ""):
            return f"{field} not set: the driver's default {FILESYSTEM_ROOT}"
        return self.describe(field)

    def settings(self) -> list[str]:
        """Evidence: every parameter of the driver, secrets hidden, one line per source."""
        by_origin: dict[str, list[str]] = {}
        for key in sorted(self.params):
            field = f"storage.{self.driver}.{key}"
            by_origin.setdefault(self.origin(field).text, []).append(
                self.describe(field, origin=False))
        return [f"from {origin}: {', '.join(items)}" for origin, items in by_origin.items()]

    def storage_mount(self) -> Mount | None:
        """The volume holding the filesystem driver's root directory; None: the container's
        own writable layer."""
        return mount_for(self.container, self.container_field, self.pod_spec,
                         self.filesystem_root)

    def value(self, dotted: str) -> Any:
        node: Any = {"storage": self.storage}
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def origin(self, dotted: str) -> Origin:
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            found = self.origins.get(".".join(parts[:end]))
            if found:
                return found
        return Origin(self.file_source)

    def visible(self, dotted: str) -> bool:
        return not is_secret_setting(dotted.split(".")) and not self.origin(dotted).secret

    def describe(self, dotted: str, origin: bool = True) -> str:
        value = self.value(dotted)
        source = self.origin(dotted).text
        where = f" ({source})" if origin else ""
        if value is None:
            changed = any(dotted == f or dotted.startswith(f + ".") for f in self.origins)
            return f"{dotted} not set" + (f" (after {source})" if changed and origin else "")
        hidden = not self.visible(dotted)
        if isinstance(value, Opaque) and not (hidden and value == MASKED):
            return f"{dotted} {value}{where}"
        if hidden:  # a masked secret reads as the original does: set
            return f"{dotted} set{where}"
        return f"{dotted}={_show(self._redacted(value, dotted))}{where}"

    def _redacted(self, value: Any, dotted: str) -> Any:
        """`value` with every part that may not be shown replaced: a secret setting whole, even
        when its value parsed as a mapping (its keys are the secret's text)."""
        if not self.visible(dotted):
            return "<hidden>"
        if isinstance(value, dict):
            return {str(k): self._redacted(v, f"{dotted}.{k}") for k, v in value.items()}
        return str(value) if isinstance(value, Opaque) else value

    def credentials(self) -> Credentials:
        """The first source of aws-sdk-go's chain the registry uses that can be read here."""
        access, secret = self.params.get("accesskey"), self.params.get("secretkey")
        if access not in (None, "") and secret not in (None, ""):
            source = (f"storage.{self.driver}.accesskey/secretkey "
                      f"({self.origin(f'storage.{self.driver}.secretkey').text})")
            if isinstance(access, Opaque) or isinstance(secret, Opaque):
                return Credentials(f"{source}, not readable here")
            return Credentials(source, go_text(access), go_text(secret))
        if self.params.get("credentialsconfigpath") not in (None, ""):
            return self._credentials_file()
        ids = [self.env[n] for n in ("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY") if n in self.env]
        keys = [self.env[n] for n in ("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY") if n in self.env]
        if ids and keys and ids[0].value and keys[0].value:
            token = self.env.get("AWS_SESSION_TOKEN")
            source = f"{ids[0].origin} and {keys[0].origin}"
            if any(isinstance(v.value, Opaque) for v in (ids[0], keys[0], token) if v):
                return Credentials(f"{source}, not readable here")
            return Credentials(source, str(ids[0].value), str(keys[0].value),
                               str(token.value) if token else None)
        return Credentials("none in the configuration or the container's environment: the "
                           "registry would use ~/.aws/credentials in the pod or the node's "
                           "instance role, which registry-doctor cannot use from here")

    def _credentials_file(self) -> Credentials:
        """The `[default]` profile of the shared-credentials file the driver is pointed at
        (aws-sdk-go's format; the operator writes that profile: `pkg/storage/s3/s3.go`)."""
        path = go_text(self.params.get("credentialsconfigpath"))
        found = self.credentials_file
        if found is None:
            return Credentials(f"credentials file {path}, which no secret or configmap volume "
                               "provides: not readable here")
        source = f"credentials file {path} ({found.origin})"
        if not isinstance(found.text, str):
            return Credentials(f"{source}, not readable here")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(found.text)
        except configparser.Error:
            return Credentials(f"{source}: not an AWS shared-credentials file")
        profile = parser["default"] if parser.has_section("default") else {}
        access, secret = (profile.get(k) for k in ("aws_access_key_id", "aws_secret_access_key"))
        if not access or not secret:
            return Credentials(f"{source}: no aws_access_key_id and aws_secret_access_key in "
                               "its [default] profile")
        return Credentials(source, access, secret, profile.get("aws_session_token"))


def _show(value: Any) -> str:
    if isinstance(value, str) and value and not _reads_as_text(value):
        return repr(value)  # "true" the string, not true the boolean
    if isinstance(value, str | int | float | bool) or value is None:
        return go_text(value) if not isinstance(value, str) else value or "''"
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip()


def _reads_as_text(value: str) -> bool:
    try:
        return isinstance(load_yaml(value), str)
    except yaml.YAMLError:
        return True


def resolve(snapshot: Snapshot, workload: Workload, platform_image: Image | None = None,
            managed_by: str = "") -> RegistryConfig:
    """The effective configuration of the registry container of `workload`; `platform_image`:
    what its image does, when the platform knows and its name does not tell; `managed_by`: the
    object that writes it."""
    found = workload.main_container(snapshot.config.registry_container)
    if found is None:
        return RegistryConfig(workload.ref, "spec.template.spec.containers", "",
                              UPSTREAM_RULES[-1],
                              unresolved=f"{workload.ref} spec.template.spec.containers "
                                         "lists no container")
    index, container = found
    container_field = workload.container_path(container, index)
    image = str(container.get("image") or "")
    known = platform_image or IMAGES.get(image_name(image), CUSTOM_IMAGE)
    flavour, rules_line = _rules(image, known, platform_image is not None)
    if known is UPSTREAM_IMAGE and flavour.major >= 3:
        known = UPSTREAM_3_IMAGE
    config = RegistryConfig(workload.ref, container_field, image, flavour, rules_line,
                            container=container, pod_spec=workload.pod_spec_with_claims,
                            managed_by=managed_by)
    objects = Objects(workload.namespace, snapshot.items("configmaps"),
                      snapshot.items("registry-secrets"))
    config.env = container_env(container, f"{workload.ref} {container_field}", workload.ref,
                               objects, config.problems)
    try:
        text = _config_file(config, container, workload.pod_spec_with_claims, known, objects)
        if text is not None:
            _merge(config, text)
    except Unresolvable as reason:
        config.unresolved = str(reason)
    config.credentials_file = _credentials_file(config, objects)
    config.trusted_ca = _mounted(config, known.trusted_ca, objects)
    config.resources = [s.resource for s in objects.read.values()]
    return config


def _credentials_file(config: RegistryConfig, objects: Objects) -> MountedFile | None:
    path = config.params.get("credentialsconfigpath")
    if config.driver not in S3_DRIVERS or not isinstance(path, str):
        return None
    return _mounted(config, path, objects)


def _mounted(config: RegistryConfig, path: str | None, objects: Objects) -> MountedFile | None:
    """The file at `path` of the registry container, from the volume mounted there."""
    if not path:
        return None
    mount = mount_for(config.container, config.container_field, config.pod_spec, path)
    return read_mounted_file(mount, objects) if mount else None


def _rules(image: str, known: Image, platforms: bool = False) -> tuple[Flavour, str]:
    """The start-up rules of the release the image's tag names; for an image that is not a
    known registry image its tag says nothing about the distribution inside: the newest. The
    image a platform names (`platforms`) has the rules of that platform's registry."""
    if platforms:
        return known.rules[-1], (f"start-up rules of {known.rules[-1].name} applied: the "
                                 f"platform's registry image ({image or '(none)'})")
    if known is not CUSTOM_IMAGE:
        return rules_for(image, known.rules)
    newest = known.rules[-1]
    return newest, (f"start-up rules of {newest.name} applied: image {image or '(none)'} is "
                    "not a known registry image, so its tag does not say which registry "
                    "version it runs; those of the newest modelled version were used")


def _config_file(config: RegistryConfig, container: dict[str, Any], pod_spec: dict[str, Any],
                 image: Image, objects: Objects) -> str | None:
    """Set the path and origin of the file; its text, or None when it cannot load."""
    config.path, config.path_origin = _config_path(container, config.env, image)
    mount = mount_for(container, config.container_field, pod_spec, config.path)
    if mount is None:
        if config.path == (image.command_path or image.env_path) and image.builtin:
            config.file_origin = f"built into image {config.image}"
            config.file_source = f"{config.path} built into the image"
            return image.builtin
        if image is CUSTOM_IMAGE:
            raise Unresolvable(f"{config.owner} reads its configuration from {config.path}, "
                               f"which no volume provides: it may be built into image "
                               f"{config.image or '(none)'}, which registry-doctor cannot read")
        config.file_origin = config.file_source = "no volume provides it"
        config.problems.append(Problem(True, config.container_field, f"{config.owner} reads "
                                       f"its configuration from {config.path}, but no volume "
                                       f"mounts it and image {config.image} has no such file: "
                                       "the registry exits (\"no such file or directory\")"))
        return None
    mounted = read_mounted_file(mount, objects)
    where = f"volume {mount.volume_name} at {mount.mount_path}"
    if mounted is None:
        raise Unresolvable(f"{config.owner} reads its configuration from {config.path} on "
                           f"{where}, a {mount.type} volume whose files the API does not show")
    config.file_origin = f"{mounted.origin}, {where}"
    config.file_source = mounted.origin
    config.file_secret = mounted.source is not None and mounted.source.secret
    if mounted.problem:
        config.problems.append(mounted.problem)
    elif mounted.text is None:
        config.problems.append(Problem(True, mount.field, f"{config.owner} reads its "
                                       f"configuration from {config.path}, but {where} "
                                       f"({mounted.origin}) has no such file: the registry "
                                       "exits (\"no such file or directory\")"))
    elif isinstance(mounted.text, Opaque):
        raise Unresolvable(f"{config.owner} reads its configuration from {config.path} "
                           f"({mounted.origin}), which is {mounted.text.why}")
    else:
        return mounted.text
    return None


_K8S_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_SHELL_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _config_path(container: dict[str, Any], env: dict[str, EnvVar],
                 image: Image) -> tuple[str, str]:
    known = {n: str(v.value) for n, v in env.items() if not isinstance(v.value, Opaque)}
    if image.env_path:
        known.setdefault("REGISTRY_CONFIGURATION_PATH", image.env_path)
    words = _argv_words(container, known)
    for word in words:
        if word.endswith((".yml", ".yaml")):
            return word, "the container's command and args"
    if not words and image.command_path:
        return image.command_path, "the image's default command"
    variable = env.get("REGISTRY_CONFIGURATION_PATH")
    if variable is not None:
        if isinstance(variable.value, Opaque):
            raise Unresolvable(f"{variable.origin} sets the configuration path and is "
                               f"{variable.value.why}")
        return str(variable.value), variable.origin
    if image.env_path:
        return image.env_path, "REGISTRY_CONFIGURATION_PATH of the image"
    raise Unresolvable("the container names no configuration file (no *.yml argument, no "
                       "REGISTRY_CONFIGURATION_PATH) and its image's default is unknown")


def _argv_words(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """command + args as the process sees them: Kubernetes `$(VAR)` expanded, and the script
    of `sh -c` split into words with `$VAR` expanded."""
    def kube(match: re.Match[str]) -> str:
        return "$" if match.group(0) == "$$" else env.get(match.group(1), match.group(0))

    argv = [_K8S_REFERENCE.sub(kube, str(w)) for w in
            as_list(container.get("command")) + as_list(container.get("args"))]
    words: list[str] = []
    for position, word in enumerate(argv):
        if position and argv[position - 1] == "-c":
            script = _SHELL_REFERENCE.sub(
                lambda m: env.get(m.group(1) or m.group(2), ""), word)
            try:
                words += shlex.split(script)
            except ValueError:
                words += script.split()
        else:
            words.append(word)
    return words


def version_node(text: str) -> yaml.Node | None:
    """The `version` node of a configuration that parses to a map: yaml.v2 decodes it into a
    string from the scalar's text as written (`0.10` stays "0.10"), not from its value."""
    root = yaml.compose(text, Loader=YAML_LOADER)
    if not isinstance(root, yaml.MappingNode):  # an empty file
        return None
    found = [value for key, value in root.value
             if isinstance(key, yaml.ScalarNode) and key.value == "version"]
    return found[-1] if found else None


def version_refusal(node: yaml.Node | None) -> str | None:
    """What the registry says when it refuses `version` (configuration.Version: unsigned
    "major.minor"; only 0.1 is known), None when it accepts it."""
    if node is None or node.tag == "tag:yaml.org,2002:null":
        return "unsupported version"  # yaml.v2 never calls Version.UnmarshalYAML on null
    if not isinstance(node, yaml.ScalarNode):
        return "yaml: unmarshal errors"
    parts = node.value.split(".")
    for position, part in enumerate(parts[:2]):
        if not re.fullmatch(r"[0-9]+", part):
            return f"strconv.ParseUint: parsing '{part}': invalid syntax"
        if position == 0 and len(parts) == 1:
            return "panic: runtime error: index out of range"  # Version.minor() indexes [1]
    return None if node.value == "0.1" else "unsupported version"


def _shown_node(node: yaml.Node | None) -> str:
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        return node.value
    return "(not set)" if node is None or isinstance(node, yaml.ScalarNode) else \
        f"a YAML {yaml_tag(node)}"


def _http_secret(config: RegistryConfig, document: dict[str, Any]) -> str | None:
    """Where http.secret is set: REGISTRY_HTTP_SECRET overrides the file's (distribution
    `configuration/parser.go`: env over file); an empty value is no secret."""
    variable = config.env.get("REGISTRY_HTTP_SECRET")
    if variable is not None:
        return variable.origin if variable.value != "" else None
    http = document.get("http")
    secret = http.get("secret") if isinstance(http, dict) else None
    return f"http.secret in {config.file_source}" if secret not in (None, "") else None


def _merge(config: RegistryConfig, text: str) -> None:
    try:
        document = load_yaml(text)
    except yaml.YAMLError as error:
        reason = yaml_error(error, config.file_secret)
        config.problems.append(Problem(True, "config", f"{config.path} ({config.file_origin}) "
                                       f"is not valid YAML ({reason}): the registry refuses to "
                                       "start"))
        return
    if document is None:
        document = {}
    if not isinstance(document, dict):
        config.problems.append(Problem(True, "config", f"{config.path} ({config.file_origin}) "
                                       f"is a YAML {yaml_tag(document)}, not a map: the registry "
                                       "refuses to start (\"cannot unmarshal "
                                       f"!!{yaml_tag(document)}\")"))
        return
    config.http_secret = _http_secret(config, document)
    version = version_node(text)
    refusal = version_refusal(version)
    if refusal:
        config.problems.append(Problem(True, "version", f"version={_shown_node(version)} in "
                                       f"{config.path} ({config.file_origin}): the registry "
                                       f"refuses to start (\"{refusal}\"); it must be 0.1"))
    problems: list[Problem] = []
    storage = storage_from_yaml(document.get("storage"), problems,
                                config.flavour.storage_options)
    storage = apply_env(storage, config.env.values(), config.origins, problems)
    config.storage = storage
    config.problems += problems
    if not any(p.fatal for p in problems):
        config.problems += storage_problems(storage, config.flavour, config)

