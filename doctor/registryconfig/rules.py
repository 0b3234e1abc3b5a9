"""What the registry does with its storage section at start-up: the errors it dies on and the
settings it runs with but should not.

One rule set ("flavour") per registry build whose start-up rules differ, read from the
sources of each release (the S3 regions a build accepts, the drivers it has, its parameters
and the case of its messages):

- OpenShift's fork, openshift/image-registry release-3.8 to release-3.11, its vendored
  distribution `registry/storage/driver/s3-aws/s3.go` (a fixed list of S3 regions: 16 in 3.8,
  17 with eu-west-3 from 3.9; no `skipverify`; capitalised messages) and the drivers
  `pkg/cmd/dockerregistry/dockerregistry.go` imports. Earlier OpenShift registries were built
  inside openshift/origin and are not modelled: the nearest modelled version's rules apply.
- upstream distribution/distribution by release tag: 2.6 (13 regions in s3.go, no
  `skipverify`), 2.7 and 2.8 (the regions of the AWS SDK they vendor, aws-sdk-go 1.15.11 in
  vendor.conf: 18; `skipverify`; 2.8 lower-cases its messages) and 3.x (aws-sdk-go 1.55.5 in
  go.mod: 37 regions; the `oss` and `swift` drivers removed; more S3 storage classes).

The 2.8 rules are proven against Debian's docker-registry 2.8.2 in
tests/test_registryconfig_real.py; Debian links its own, newer aws-sdk-go, so its build knows
more regions than the `registry:2.8` image, and the corpus uses only regions both agree on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from registry_doctor.doctor.registryconfig.merge import STORAGE_OPTIONS, Params, driver_names
from registry_doctor.doctor.registryconfig.sources import Opaque, Problem
from registry_doctor.doctor.snapshot.redact import is_secret_setting

REMOTE_DRIVERS = frozenset({"s3", "s3aws", "gcs", "azure", "swift", "oss"})
S3_DRIVERS = frozenset({"s3", "s3aws"})
_STORAGE_CLASSES = ("NONE", "STANDARD", "REDUCED_REDUNDANCY")


@dataclass(frozen=True)
class Flavour:
    name: str
    regions: frozenset[str]
    drivers: frozenset[str]
    skipverify: bool  # knows the s3 `skipverify` parameter
    capitalised: bool  # its start-up errors begin with a capital letter
    storage_classes: tuple[str, ...] = _STORAGE_CLASSES
    versions: tuple[tuple[int, int], ...] = ()  # the (major, minor) releases it models
    label: str = ""  # "the OpenShift {} registry": named after the version it judges
    storage_options: frozenset[str] = STORAGE_OPTIONS  # storage sections that are no driver

    def says(self, message: str, capitalise: bool = True) -> str:
        """The registry's own message, as this flavour prints it."""
        text = message[0].upper() + message[1:] if self.capitalised and capitalise else message
        return f'"{text}"'

    @property
    def major(self) -> int:
        return self.versions[0][0] if self.versions else 0

    def named(self, version: tuple[int, int]) -> Flavour:
        return replace(self, name=self.label.format(f"{version[0]}.{version[1]}"))


_DRIVERS = frozenset({"filesystem", "inmemory", *REMOTE_DRIVERS})
_OPENSHIFT, _UPSTREAM = "the OpenShift {} registry", "the distribution {} registry"
# The regions of the AWS SDK distribution 2.7 and 2.8 vendor (aws-sdk-go 1.15.11,
# aws/endpoints/defaults.go: partitions aws, aws-cn, aws-us-gov).
_SDK_1_15_REGIONS = frozenset({
    "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
    "ca-central-1", "cn-north-1", "cn-northwest-1", "eu-central-1", "eu-west-1", "eu-west-2",
    "eu-west-3", "sa-east-1", "us-east-1", "us-east-2", "us-gov-west-1", "us-west-1",
    "us-west-2"})
# distribution 2.6's own list (s3-aws/s3.go init).
_DISTRIBUTION_2_6_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1",
    "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2", "sa-east-1",
    "cn-north-1", "us-gov-west-1"})
_OPENSHIFT_3_8_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2",
    "eu-central-1", "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1",
    "ap-northeast-2", "sa-east-1", "cn-north-1", "us-gov-west-1", "ca-central-1"})

DISTRIBUTION_2_6 = Flavour(
    name="the distribution 2.6 registry", regions=_DISTRIBUTION_2_6_REGIONS, drivers=_DRIVERS,
    skipverify=False, capitalised=True, versions=((2, 6),), label=_UPSTREAM)
DISTRIBUTION_2_7 = Flavour(
    name="the distribution 2.7 registry", regions=_SDK_1_15_REGIONS, drivers=_DRIVERS,
    skipverify=True, capitalised=True, versions=((2, 7),), label=_UPSTREAM)
DISTRIBUTION_2 = Flavour(
    name="the distribution 2.8 registry", regions=_SDK_1_15_REGIONS, drivers=_DRIVERS,
    skipverify=True, capitalised=False, versions=((2, 8),), label=_UPSTREAM)
# distribution 3.0 and 3.1 vendor aws-sdk-go 1.55.5 (go.mod): these are its partitions' regions.
DISTRIBUTION_3 = Flavour(
    name="the distribution 3 registry",
    regions=frozenset({
        "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
        "ap-southeast-4", "ca-central-1", "ca-west-1", "cn-north-1", "cn-northwest-1",
        "eu-central-1", "eu-central-2", "eu-isoe-west-1", "eu-north-1", "eu-south-1",
        "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1",
        "me-south-1", "sa-east-1", "us-east-1", "us-east-2", "us-gov-east-1", "us-gov-west-1",
        "us-iso-east-1", "us-iso-west-1", "us-isob-east-1", "us-west-1", "us-west-2",
    }),
    # cmd/registry/main.go of v3.0.0 imports no oss or swift driver: they were removed.
    drivers=_DRIVERS - {"oss", "swift"}, skipverify=True, capitalised=False,
    storage_classes=(*_STORAGE_CLASSES, "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                     "OUTPOSTS", "GLACIER_IR"),
    versions=((3, 0), (3, 1)), label=_UPSTREAM,
    # configuration.go v3.0.0 Storage.Type: `tag` (its concurrencylimit) is an option; to 2.x
    # it is a second driver.
    storage_options=STORAGE_OPTIONS | {"tag"})

OPENSHIFT_3_8 = Flavour(
    name="the OpenShift 3.8 registry", regions=_OPENSHIFT_3_8_REGIONS, drivers=_DRIVERS,
    skipverify=False, capitalised=True, versions=((3, 8),), label=_OPENSHIFT)
OPENSHIFT_3 = Flavour(
    name="the OpenShift 3.11 registry", regions=_OPENSHIFT_3_8_REGIONS | {"eu-west-3"},
    drivers=_DRIVERS, skipverify=False, capitalised=True,
    versions=((3, 9), (3, 10), (3, 11)), label=_OPENSHIFT)

# Each image's modelled releases, oldest first: the last is the newest.
OPENSHIFT_RULES = (OPENSHIFT_3_8, OPENSHIFT_3)
UPSTREAM_RULES = (DISTRIBUTION_2_6, DISTRIBUTION_2_7, DISTRIBUTION_2, DISTRIBUTION_3)
# OpenShift 4's image registry (openshift/image-registry, release-4.x): distribution as the
# fork vendors it with a current aws-sdk-go (the regions of distribution 3's), every driver
# the operator configures (swift and oss included) and no `skipverify` (the operator gives the
# driver a CA bundle instead: spec.storage.s3.trustedCA). Its images are named by release
# digest, so no tag names a version: one rule set, which the platform names.
OPENSHIFT_4 = Flavour(name="the OpenShift 4 image registry", regions=DISTRIBUTION_3.regions,
                      drivers=_DRIVERS, skipverify=False, capitalised=False,
                      storage_classes=DISTRIBUTION_3.storage_classes, versions=((4, 0),),
                      label="the OpenShift {} image registry")
OPENSHIFT_4_RULES = (OPENSHIFT_4,)
_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:[.-]|$)")


def rules_for(image: str, family: Sequence[Flavour]) -> tuple[Flavour, str]:
    """The flavour whose rules judge `image` (by its tag), and the detail line that says which
    version's rules were applied and why."""
    reference = image.split("@")[0]
    name_part = reference.rsplit("/", 1)[-1]
    tag = name_part.split(":", 1)[1] if ":" in name_part else None
    newest = family[-1]
    found = _VERSION.match(tag) if tag else None
    if found is None:
        told = f"tag {tag}" if tag else ("a digest" if "@" in image else "no tag")
        return newest, (f"start-up rules of {newest.name} applied: image {image} ({told}) "
                        "does not say which version it runs, so those of the newest modelled "
                        "version were used")
    major = int(found[1])
    if found[2] is None:  # `registry:2` follows the newest release of its major version
        line = [f for f in family if any(v[0] == major for v in f.versions)]
        if line:
            return line[-1], (f"start-up rules of {line[-1].name} applied: image {image} "
                              f"(tag {tag}) follows the newest {major}.x release")
        version = (major, 0)
    else:
        version = (major, int(found[2]))
    exact = next((f for f in family if version in f.versions), None)
    if exact is not None:
        flavour = exact.named(version)
        return flavour, f"start-up rules of {flavour.name} applied (image {image})"
    nearest = min(family, key=lambda f: min(abs((v[0] - version[0]) * 100 + v[1] - version[1])
                                            for v in f.versions))
    return nearest, (f"start-up rules of {nearest.name} applied: image {image} (tag {tag}) "
                     f"runs {version[0]}.{version[1]}, which has no rules of its own modelled "
                     "here, so those of the nearest modelled version were used (its build "
                     "may differ, e.g. in the S3 regions it knows)")


# Parameters whose values are credentials: never shown, whatever their source.

MIB, GIB = 2**20, 2**30
# s3 integer parameters: name -> (minimum, maximum), distribution getParameterAsInt64.
_S3_INTEGERS = {
    "chunksize": (5 * MIB, 5 * GIB),
    "multipartcopychunksize": (5 * MIB, 5 * GIB),
    "multipartcopymaxconcurrency": (1, 2**63 - 1),
    "multipartcopythresholdsize": (0, 5 * GIB),
}
_OBJECT_ACLS = ("private", "public-read", "public-read-write", "authenticated-read",
                "aws-exec-read", "bucket-owner-read", "bucket-owner-full-control")
_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}
_GO_DURATION = re.compile(r"[-+]?(0|((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+)")
_AWS_ENDPOINT_REGION = re.compile(r"(?:^|\.)s3[.-](?:dualstack\.)?([a-z]{2}(?:-[a-z]+)+-\d)"
                                  r"\.amazonaws\.com")

class Describer(Protocol):
    """Evidence about a setting; never shows a secret value."""

    def describe(self, field: str) -> str:
        """e.g. 'storage.s3.bucket=images (env REGISTRY_STORAGE_S3_BUCKET of dc/x)'."""

    def visible(self, field: str) -> bool:
        """Whether the value of `field` may be shown."""


def go_text(value: Any) -> str:
    """`fmt.Sprint` of a decoded YAML value, as the registry prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "<nil>" if value is None else str(value)


def storage_problems(storage: dict[str, Any] | None, flavour: Flavour,
                     describer: Describer) -> list[Problem]:
    drivers = driver_names(storage, flavour.storage_options)
    if not drivers:
        return [Problem(True, "storage", "the storage section names no driver: the registry "
                        "refuses to "
                        "start (\"no storage configuration provided\")")]
    if len(drivers) > 1:
        return [Problem(True, "storage", f"the storage section names {len(drivers)} drivers "
                        f"({', '.join(drivers)}), "
                        "some from the environment: the registry panics \"multiple storage "
                        f"drivers specified in configuration or environment: "
                        f"{', '.join(drivers)}\"")]
    assert storage is not None
    driver = drivers[0]
    problems = []
    if driver not in flavour.drivers:
        problems.append(Problem(True, f"storage.{driver}", f"storage.{driver} is not a storage "
                                f"driver "
                                f"{flavour.name} has: it panics "
                                f"{flavour.says(f'StorageDriver not registered: {driver}')}"))
    elif driver in S3_DRIVERS:
        problems += s3_problems(storage[driver] or {}, f"storage.{driver}", flavour, describer)
    return problems + _option_problems(storage, describer.describe)


def s3_problems(params: dict[str, Any], prefix: str, flavour: Flavour,
                describer: Describer) -> list[Problem]:
    """distribution `s3-aws` FromParameters and New, in their order."""
    rules = _S3Rules(params, prefix, flavour, describer)
    rules.required("region", "no region parameter provided")
    rules.region()
    rules.required("bucket", "no bucket parameter provided")
    for name in ("encrypt", "secure", "skipverify", "v4auth"):
        rules.boolean(name)
    for name, (low, high) in _S3_INTEGERS.items():
        rules.integer(name, low, high)
    rules.storage_class()
    rules.object_acl()
    rules.v4auth_on_aws()
    rules.warnings()
    return rules.problems


class _S3Rules:
    def __init__(self, params: dict[str, Any], prefix: str, flavour: Flavour,
                 describer: Describer) -> None:
        self.params, self.prefix, self.flavour = params, prefix, flavour
        self.describer = describer
        self.problems: list[Problem] = []

    def _fatal(self, name: str, what: str, says: str, hint: str = "",
               capitalise: bool = True) -> None:
        self.problems.append(Problem(True, f"{self.prefix}.{name}", f"{what}: "
                                     f"{self.flavour.name} panics "
                                     f"{self.flavour.says(says, capitalise)} at start-up{hint}",
                                     scope="s3"))

    def _warn(self, name: str, message: str) -> None:
        self.problems.append(Problem(False, f"{self.prefix}.{name}", message, scope="s3"))

    def _value(self, name: str) -> Any:
        """The parameter, or None when absent or unreadable here (then noted once)."""
        value = self.params.get(name)
        if isinstance(value, Opaque):
            if not is_secret_setting((*self.prefix.split("."), name)):
                self._warn(name, f"{self._shown(name)} cannot be read here: not checked")
            return None
        return value

    def _shown(self, name: str) -> str:
        return self.describer.describe(f"{self.prefix}.{name}")

    def _text(self, name: str) -> str:
        """The value as the registry's message would print it, unless it is secret."""
        if not self.describer.visible(f"{self.prefix}.{name}"):
            return "<hidden>"
        return go_text(self.params.get(name))

    def required(self, name: str, says: str) -> None:
        raw = self.params.get(name)
        if not isinstance(raw, Opaque) and (raw is None or go_text(raw) == ""):
            self._fatal(name, self._shown(name), says)

    def region(self) -> None:
        region, endpoint = self._value("region"), self.params.get("regionendpoint")
        if region is None or go_text(region) == "" or endpoint not in (None, ""):
            return
        if go_text(region) not in self.flavour.regions:
            self._fatal("region", f"{self._shown('region')} is not an AWS region this registry "
                        "knows", f"invalid region provided: {self._text('region')}",
                        "; set regionendpoint (e.g. https://s3.<region>.amazonaws.com), which "
                        "skips the check, or use a region it lists")

    def boolean(self, name: str) -> None:
        value = self._value(name)
        if name == "skipverify" and not self.flavour.skipverify:
            if value is not None:
                self._warn(name, f"{self._shown(name)} is ignored by {self.flavour.name}, "
                           "which always verifies the endpoint's TLS certificate")
            return
        if value is None or isinstance(value, bool):
            return
        if not isinstance(value, str) or value not in _GO_BOOLS:
            label = "skipVerify" if name == "skipverify" else name
            self._fatal(name, f"{self._shown(name)} is not a boolean",
                        f"the {label} parameter should be a boolean")

    def integer(self, name: str, low: int, high: int) -> None:
        value = self._value(name)
        if value is None:
            return
        number = _go_int(value)
        if number is None:
            says = (f"{name} parameter must be an integer, {self._text(name)} invalid"
                    if isinstance(value, str) else f"invalid value for {name}: {self._text(name)}")
            self._fatal(name, f"{self._shown(name)} is not an integer", says, capitalise=False)
        elif not low <= number <= high:
            printed = self._text(name) if self._text(name) == "<hidden>" else str(number)
            self._fatal(name, f"{self._shown(name)} is out of range [{low}, {high}]",
                        f"the {name} {printed} parameter should be a number between {low} and "
                        f"{high} (inclusive)")

    def storage_class(self) -> None:
        value = self._value("storageclass")
        classes = self.flavour.storage_classes
        if value is not None and (not isinstance(value, str) or value.upper() not in classes):
            self._fatal("storageclass", f"{self._shown('storageclass')} is not one of "
                        f"{', '.join(classes)}", "the storageclass parameter must be "
                        f"one of [{' '.join(classes)}], {self._text('storageclass')} "
                        "invalid")

    def object_acl(self) -> None:
        value = self._value("objectacl")
        if value is not None and value not in _OBJECT_ACLS:
            self._fatal("objectacl", f"{self._shown('objectacl')} is not one of "
                        f"{', '.join(_OBJECT_ACLS)} (case matters)",
                        f"invalid value for objectacl parameter: {self._text('objectacl')}")

    def v4auth_on_aws(self) -> None:
        v4auth = self._value("v4auth")
        endpoint = go_text(self.params.get("regionendpoint") or "")
        disabled = v4auth is False or (isinstance(v4auth, str) and _GO_BOOLS.get(v4auth) is False)
        if disabled and (endpoint == "" or "s3.amazonaws.com" in endpoint):
            self._fatal("v4auth", f"{self._shown('v4auth')} with Amazon S3 "
                        f"({endpoint or 'no regionendpoint'})",
                        "on Amazon S3 this storage driver can only be used with v4 "
                        "authentication", "; remove v4auth (it defaults to true)")

    def warnings(self) -> None:
        params = self.params
        if params.get("keyid") not in (None, "") and not _truthy(params.get("encrypt")):
            self._warn("keyid", f"{self._shown('keyid')} is ignored: encrypt is not true, so "
                       "objects are stored without the KMS key")
        keys = [k for k in ("accesskey", "secretkey") if params.get(k) not in (None, "")]
        if len(keys) == 1:
            missing = "secretkey" if keys == ["accesskey"] else "accesskey"
            self._warn(missing, f"{self._shown(keys[0])} but {missing} is not set: the "
                       "registry ignores half a key pair and falls back to AWS_* variables, "
                       "~/.aws/credentials or the instance role")
        region = params.get("region")
        match = _AWS_ENDPOINT_REGION.search(go_text(params.get("regionendpoint") or ""))
        if match and isinstance(region, str) and match.group(1) != region:
            self._warn("region", f"{self._shown('region')} but regionendpoint is in "
                       f"{match.group(1)}: requests are signed for the wrong region, so the "
                       "registry starts but cannot read or write")


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and _GO_BOOLS.get(value) is True)


def _go_int(value: Any) -> int | None:
    """getParameterAsInt64: an integer, or a string `strconv.ParseInt(s, 0, 64)` accepts."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    text = value[1:] if value[:1] in "+-" else value
    if "_" in text and (text.startswith("_") or text.endswith("_") or "__" in text):
        return None
    try:
        number = int(text, 0) if not re.fullmatch(r"0[0-7_]+", text) else int(text, 8)
    except ValueError:
        return None
    number = -number if value.startswith("-") else number
    return number if -(2**63) <= number < 2**63 else None


def _option_problems(storage: dict[str, Any], describe: Callable[[str], str]) -> list[Problem]:
    problems = []
    delete = storage.get("delete") or {}
    if delete.get("enabled") is not True:
        problems.append(Problem(False, "storage.delete.enabled",
                                f"{describe('storage.delete.enabled')}"
                                ": deleting blobs is disabled, so image pruning fails with "
                                "\"operation unsupported\"; set it to true (a YAML boolean)"))
    if "redirect" in storage and not isinstance((storage["redirect"] or {}).get("disable"), bool):
        problems.append(Problem(True, "storage.redirect.disable",
                                f"{describe('storage.redirect.disable')}, not a boolean: the "
                                "registry panics \"invalid type "
                                "for redirect config\" at start-up"))
    maintenance = storage.get("maintenance") or {}
    for option, check in (("uploadpurging", _upload_purging), ("readonly", _read_only)):
        if option in maintenance:
            problems += check(maintenance[option], f"storage.maintenance.{option}")
    return problems


def _yaml_map(value: Any, field: str) -> Problem | None:
    """Maintenance options must be maps written in the file (Go map[interface{}]interface{})."""
    if isinstance(value, dict) and not isinstance(value, Params):
        return None
    why = ("a map created by environment variables" if isinstance(value, Params)
           else "not a map")
    name = field.rsplit(".", 1)[1]
    return Problem(True, field, f"{field} is {why}: the registry panics \"{name} config key must "
                   "contain additional keys\" at start-up")


def _upload_purging(value: Any, field: str) -> list[Problem]:
    problem = _yaml_map(value, field)
    if problem or value.get("enabled") is False:
        return [problem] if problem else []
    reasons = []
    for key, label in (("age", "duration"), ("interval", "interval")):
        if key not in value:
            reasons.append(f"{key} missing")
        elif not isinstance(value[key], str):
            reasons.append(f"{key} is not a string")
        elif not _GO_DURATION.fullmatch(value[key]):
            reasons.append(f"Cannot parse {label}: time: invalid duration \"{value[key]}\"")
    if "dryrun" not in value:
        reasons.append("dryrun missing")
    elif not isinstance(value["dryrun"], bool):
        reasons.append("cannot parse dryrun")
    if not reasons:
        return []
    return [Problem(True, field, f"{field} is enabled but {'; '.join(reasons)}: the registry "
                    f"panics \"Unable to parse upload purge configuration: {reasons[0]}\" at "
                    "start-up (age and interval are Go durations such as 168h, dryrun a "
                    "boolean)")]


def _read_only(value: Any, field: str) -> list[Problem]:
    problem = _yaml_map(value, field)
    if problem:
        return [problem]
    enabled = value.get("enabled")
    if "enabled" in value and not isinstance(enabled, bool):
        return [Problem(True, f"{field}.enabled", f"{field}.enabled is not a boolean: the "
                        "registry panics "
                        "\"readonly's enabled config key must have a boolean value\"")]
    if enabled:
        return [Problem(False, f"{field}.enabled", f"{field}.enabled is true: the registry "
                        "refuses every push")]
    return []
