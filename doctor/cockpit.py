"""Cockpit's certificate rules, for the registry console and for a host's own Cockpit.

Which file Cockpit serves and what it does with it depend on its version:
- the registry console image (cockpit/kubernetes, last built from Cockpit 195; OpenShift's
  registry-console images are builds of it) reads only `*.cert` files, each holding the
  certificates and then the unencrypted key (GLib's loader: the first `RSA PRIVATE KEY`, else
  the first `PRIVATE KEY` block; `ENCRYPTED PRIVATE KEY` cannot be decrypted);
- Cockpit >= 211 also reads `NAME.crt`, and wants the key in `NAME.key`: Cockpit 287's
  `cockpit-certificate-ensure --check` refuses a key inside the certificate file.
Both take the alphabetically last candidate (plain byte order), pair the key with the FIRST
certificate and take each next one as the issuer of the one before; when they do not chain,
every intermediate is dropped and the server certificate goes out alone.

The console image starts through its launcher (cockpit-project/cockpit 195,
`pkg/kubernetes/standalone/src/cockpit-kube-launch/main.go`): `remotectl certificate
/var/run/secrets/ws-certs.d/tls.crt /var/run/secrets/ws-certs.d/tls.key` first writes both
files, each followed by a newline, into `/etc/cockpit/ws-certs.d/tls.cert` (named after the
first file, `src/ws/remotectl-certificate.c`), which fails silently when that folder is a
read-only volume; then `remotectl certificate --ensure` generates 0-self-signed.cert when no
*.cert is there. cockpit-ws then logs the file it loaded, `Using certificate: PATH`
(`src/ws/main.c`): the console image prints `INFO: cockpit-ws: Using certificate: PATH` on
stderr (`src/common/cockpitlog.c` without a journal), Cockpit 287 prints it only with
G_MESSAGES_DEBUG=cockpit-ws.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from registry_doctor.doctor.findings import Finding
from registry_doctor.doctor.model import Status
from registry_doctor.doctor.pem import Certificate, PemFile, PrivateKeyInfo

SPLIT_KEY_SINCE = 211
DEFAULT_SELF_SIGNED = "0-self-signed.cert"
EXPIRY_WARNING = timedelta(days=30)
CERT_DIR = "/etc/cockpit/ws-certs.d"
Hosts = str | Sequence[str] | None  # the names browsers reach the server at
LAUNCHER_PAIR_DIR = "/var/run/secrets/ws-certs.d"
LAUNCHER_PAIR = ("tls.crt", "tls.key")
LAUNCHER_COMBINED = "tls.cert"  # remotectl names the combined file after the first one
_TAG = re.compile(r"^v?(\d+)(?:\.\d+)*$")
_USING_CERTIFICATE = re.compile(r"Using certificate: (\S+)")


@dataclass(frozen=True)
class CockpitVersion:
    number: int | None  # None: the console image, whose exact Cockpit (<= 195) is unknown
    description: str
    launcher: bool = True  # started by cockpit/kubernetes' cockpit-kube-launch (see above)

    @property
    def split_key(self) -> bool:
        return self.number is not None and self.number >= SPLIT_KEY_SINCE

    @property
    def suffixes(self) -> tuple[str, ...]:
        return (".cert", ".crt") if self.split_key else (".cert",)

    @property
    def tls_pair_folder(self) -> str:
        """Where this Cockpit takes a `kubernetes.io/tls` secret's tls.crt and tls.key from:
        the console image's launcher combines them from LAUNCHER_PAIR_DIR; a Cockpit >= 211
        started otherwise reads them in CERT_DIR."""
        return LAUNCHER_PAIR_DIR if self.launcher else CERT_DIR

    @property
    def reads(self) -> str:
        if self.split_key:
            return "NAME.cert or NAME.crt with the key in NAME.key"
        return "*.cert files holding the certificates and the key"


def version_of_image(image: str) -> CockpitVersion:
    """The Cockpit a console image runs. Only Cockpit's own images carry its version as tag
    (cockpit/ws:287); OpenShift's registry-console tags (v3.11, 1.4.1) are not Cockpit's."""
    reference = image.split("@", 1)[0]
    repository, _, tag = reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] \
        else (reference, "", "")
    name = repository.rsplit("/", 1)[-1]
    number = _TAG.match(tag)
    if name in ("ws", "cockpit-ws", "kubernetes") and number and "cockpit" in repository:
        version = int(number.group(1))
        return CockpitVersion(version, f"{image} runs Cockpit {version}",
                              launcher=name == "kubernetes")
    if name == "kubernetes" and "cockpit" in repository:
        return CockpitVersion(None, f"{image} is the cockpit/kubernetes console image "
                                    "(Cockpit <= 195)")
    return CockpitVersion(None, f"{image} taken for the registry console image (Cockpit <= 195, "
                                "built from cockpit/kubernetes)")


def logged_certificate(log: str) -> tuple[str, str] | None:
    """The certificate cockpit-ws last said it loaded, and that log line."""
    for line in reversed(log.splitlines()):
        found = _USING_CERTIFICATE.search(line)
        if found:
            return found.group(1), line.strip()
    return None


@dataclass(frozen=True)
class Choice:
    certificate: str | None  # the file Cockpit serves, None: it falls back to self-signed
    key: str | None  # NAME.key for Cockpit >= 211
    shadowed: tuple[str, ...]  # operator files that sort before the chosen one
    ignored: tuple[str, ...]  # certificate-looking files this version does not read


def choose(names: Iterable[str], version: CockpitVersion) -> Choice:
    names = sorted(set(names), key=lambda n: n.encode())  # strcmp order, as Cockpit sorts
    candidates = [n for n in names if n.endswith(version.suffixes)]
    chosen = candidates[-1] if candidates else None
    key = chosen.rsplit(".", 1)[0] + ".key" if chosen and version.split_key else None
    shadowed = tuple(n for n in candidates[:-1] if n != DEFAULT_SELF_SIGNED)
    ignored = tuple(n for n in names if n.endswith((".crt", ".pem")) and n not in candidates)
    return Choice(chosen, key, shadowed, ignored)


def served_chain(files: Mapping[str, PemFile], version: CockpitVersion
                 ) -> tuple[Certificate, ...]:
    """The certificates of the file Cockpit chooses, in its order (the first is sent first)."""
    chosen = choose(files, version).certificate
    return tuple(files[chosen].certificates) if chosen else ()


def judge_directory(files: Mapping[str, PemFile], version: CockpitVersion, hosts: Hosts,
                    now: datetime, writable: bool) -> list[Finding]:
    """What Cockpit `version` makes of a ws-certs.d folder holding `files`."""
    choice = choose(files, version)
    findings = [Finding(Status.OK, f"{name} is not read by this Cockpit, which reads "
                                   f"{version.reads}") for name in choice.ignored]
    if choice.certificate is None:
        return [*findings, _no_certificate(version, writable)]
    chosen = choice.certificate
    findings.append(Finding(Status.OK, f"Cockpit serves {chosen} (the alphabetically last "
                                       f"of {', '.join(version.suffixes)})"))
    findings += [Finding(Status.WARN, f"{name} is shadowed by {chosen}: Cockpit serves only "
                                      "the alphabetically last file") for name in choice.shadowed]
    default = chosen == DEFAULT_SELF_SIGNED
    if default:
        findings.append(Finding(Status.WARN, f"{chosen} is Cockpit's generated self-signed "
                                             "certificate: browsers refuse it"))
    pem = files[chosen]
    findings += [Finding(Status.CRIT, f"{chosen}: {problem}") for problem in pem.problems]
    if not pem.certificates:
        return [*findings, Finding(Status.CRIT, f"{chosen}: No PEM-encoded certificate found "
                                                "(Cockpit cannot start)")]
    key, key_findings = _served_key(pem, files, choice, version)
    findings += key_findings
    server = pem.certificates[0]
    if key is not None and key.public_key is not None:
        pairing, owner = _key_pairing(pem.certificates, key, chosen)
        findings.append(pairing)
        server = owner or server
    findings += judge_chain(pem.certificates, now, None if default else hosts, chosen,
                            note_self_signed=not default, server=server)
    return findings


def _no_certificate(version: CockpitVersion, writable: bool) -> Finding:
    wanted = " or ".join(f"*{s}" for s in version.suffixes)
    if writable:
        return Finding(Status.WARN, f"no {wanted} file: Cockpit generates {DEFAULT_SELF_SIGNED} "
                                    "and serves it; browsers refuse a self-signed certificate")
    return Finding(Status.CRIT, f"no {wanted} file: Cockpit cannot write its self-signed "
                                f"{DEFAULT_SELF_SIGNED} into the read-only volume and exits "
                                "(\"No certificate found in dir\")")


def _served_key(pem: PemFile, files: Mapping[str, PemFile], choice: Choice,
                version: CockpitVersion) -> tuple[PrivateKeyInfo | None, list[Finding]]:
    chosen = choice.certificate
    if not version.split_key:
        return _merged_key(pem, chosen)
    if pem.keys:
        return None, [Finding(Status.CRIT, f"{chosen} holds a private key: merged certificate "
                                           "and key files are unsupported (Cockpit >= "
                                           f"{SPLIT_KEY_SINCE} wants it in {choice.key})")]
    key_file = files.get(choice.key or "")
    if key_file is None:
        return None, [Finding(Status.CRIT, f"{choice.key} is missing: Cockpit >= "
                                           f"{SPLIT_KEY_SINCE} reads the key of {chosen} "
                                           "from it and cannot start")]
    problems = [Finding(Status.CRIT, f"{choice.key}: {p}") for p in key_file.problems]
    if not key_file.keys:
        return None, [*problems, Finding(Status.CRIT, f"{choice.key} holds no private key")]
    key = key_file.keys[0]
    return key, problems + _key_usable(key, choice.key or "", ("PKCS#8", "PKCS#1", "SEC1"))


def _merged_key(pem: PemFile, chosen: str | None) -> tuple[PrivateKeyInfo | None,
                                                            list[Finding]]:
    """GLib's choice in an old console: the first PKCS#1 key, else the first PKCS#8 one."""
    for label in ("RSA PRIVATE KEY", "PRIVATE KEY"):
        key = next((k for k in pem.keys if k.label == label), None)
        if key is not None:
            return key, _key_usable(key, chosen or "", ("PKCS#8", "PKCS#1"))
    if any(k.label == "ENCRYPTED PRIVATE KEY" for k in pem.keys):
        return None, [Finding(Status.CRIT, f"{chosen}: the key is encrypted: Cannot decrypt "
                                           "PEM-encoded private key (Cockpit cannot start)")]
    other = [k.label for k in pem.keys]
    reason = (f"its {other[0]} block is a layout this Cockpit does not read (only PKCS#1 "
              "'RSA PRIVATE KEY' and PKCS#8 'PRIVATE KEY')" if other else
              "the file needs at least two PEM blocks: the certificates, then the key")
    return None, [Finding(Status.CRIT, f"{chosen}: No PEM-encoded private key found: {reason}")]


def _key_usable(key: PrivateKeyInfo, where: str, layouts: tuple[str, ...]) -> list[Finding]:
    if key.encrypted:
        return [Finding(Status.CRIT, f"{where}: the key is {key.layout}: Cockpit cannot "
                                     "decrypt it and does not start")]
    if key.problem:
        return [Finding(Status.CRIT, f"{where}: {key.problem}")]
    if key.layout not in layouts:
        return [Finding(Status.CRIT, f"{where}: the key is {key.layout}, which this Cockpit "
                                     "does not read")]
    return [Finding(Status.OK, f"{where}: unencrypted {key.layout} key")]


def _key_pairing(certificates: Sequence[Certificate], key: PrivateKeyInfo,
                 where: str) -> tuple[Finding, Certificate | None]:
    """Whether the key belongs to the first certificate, and the certificate it belongs to."""
    owner = next((c for c in certificates if c.public_key == key.public_key), None)
    if owner is None:
        return Finding(Status.CRIT, f"{where}: the key matches none of the certificates: "
                                    "The certificate and the given key do not match"), None
    if owner.position != 1:
        return Finding(Status.CRIT, f"{where}: the server certificate is not first: the key "
                                    f"belongs to {owner.label}, but Cockpit pairs it with "
                                    f"{certificates[0].label}; every TLS handshake "
                                    "fails"), owner
    return Finding(Status.OK, f"{where}: the key belongs to the first certificate"), owner


def judge_chain(certificates: Sequence[Certificate], now: datetime, hosts: Hosts,
                where: str, note_self_signed: bool = True,
                server: Certificate | None = None) -> list[Finding]:
    """Order, completeness, validity dates and names of a chain that should start with the
    server certificate (`server`, when the key showed it elsewhere), for each of `hosts`."""
    findings = _order(certificates, where)
    leaf = server or certificates[0]
    top = certificates[-1]
    if leaf.self_issued:
        if note_self_signed:
            findings.append(Finding(Status.WARN, f"{where}: {leaf.label} is self-signed: "
                                                 "browsers refuse it unless every user "
                                                 "imports it"))
    elif len(certificates) == 1:
        findings.append(Finding(Status.WARN, f"{where}: holds only the server certificate, "
                                             f"issued by {leaf.issuer}: clients verify it only "
                                             "if they trust that issuer as a root; if it is an "
                                             "intermediate CA, append it"))
    elif top.is_ca and not top.self_issued:
        findings.append(Finding(Status.OK, f"{where}: chain ends at {top.label}, issued by "
                                           f"{top.issuer} (the clients' trusted root)"))
    for cert in certificates:
        findings += _dates(cert, now, where)
    hosts = [hosts] if isinstance(hosts, str) else list(hosts or ())
    findings += [_covers(leaf, host, where) for host in hosts]
    return findings


def _order(certificates: Sequence[Certificate], where: str) -> list[Finding]:
    findings = []
    seen: dict[str, Certificate] = {}
    for index, cert in enumerate(certificates):
        if cert.fingerprint in seen:
            findings.append(Finding(Status.WARN, f"{where}: {cert.label} repeats "
                                                 f"{seen[cert.fingerprint].label}"))
            continue
        seen[cert.fingerprint] = cert
        following = certificates[index + 1:]
        if not following or following[0].fingerprint in seen or cert.self_issued:
            continue
        if following[0].signed_by(cert):
            findings.append(Finding(Status.CRIT, f"{where}: reversed: {following[0].label} is "
                                                 f"issued by {cert.label}; each certificate "
                                                 "must be followed by its issuer"))
        elif not cert.signed_by(following[0]):
            findings.append(_not_issuer(cert, following, where))
    return findings


def _not_issuer(cert: Certificate, following: Sequence[Certificate], where: str) -> Finding:
    issuer = next((c for c in following[1:] if cert.signed_by(c)), None)
    dropped = "Cockpit then drops every intermediate and sends the server certificate alone"
    if issuer is not None:
        return Finding(Status.CRIT, f"{where}: misordered chain: {cert.label} is issued by "
                                    f"{issuer.label}, which must come right after it; {dropped}")
    return Finding(Status.CRIT, f"{where}: {following[0].label} did not issue {cert.label} "
                                f"(signature checked, not only names): a stranger in the "
                                f"chain; {dropped}")


def _dates(cert: Certificate, now: datetime, where: str) -> list[Finding]:
    if cert.not_after < now:
        return [Finding(Status.CRIT, f"{where}: {cert.label} expired on "
                                     f"{cert.not_after:%Y-%m-%d}")]
    if cert.not_before > now:
        return [Finding(Status.CRIT, f"{where}: {cert.label} is not valid before "
                                     f"{cert.not_before:%Y-%m-%d}")]
    if cert.not_after - now < EXPIRY_WARNING:
        days = (cert.not_after - now).days
        return [Finding(Status.WARN, f"{where}: {cert.label} expires in {days} days "
                                     f"({cert.not_after:%Y-%m-%d})")]
    return []


def _covers(leaf: Certificate, host: str, where: str) -> Finding:
    if not leaf.has_san:
        return Finding(Status.CRIT, f"{where}: {leaf.label} has no subjectAltName: browsers "
                                    f"ignore the CN and refuse it for {host}")
    if any(name_matches(name, host) for name in leaf.dns_names):
        return Finding(Status.OK, f"{where}: {leaf.label} covers {host}")
    names = ", ".join(leaf.dns_names + leaf.ip_addresses) or "none"
    return Finding(Status.CRIT, f"{where}: {leaf.label} does not cover the console route host "
                                f"{host} (its names: {names})")


def name_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching: a wildcard stands for exactly one whole left-most label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == host
    first, _, rest = host.partition(".")
    return bool(first) and rest == pattern[2:] and "." in rest

