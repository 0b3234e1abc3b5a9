"""OAuth redirect URI matching, as the OpenShift 3.x OAuth server does it (openshift/osin
`urivalidate.go`: ValidateUriList / ValidateUri / ParseUrls).

The registered `redirectURIs` are tried in order. A requested URI is accepted by one when
neither has a fragment, the schemes are equal, the hosts (with port) are equal as strings, and
the paths, with dot segments resolved, are equal or the requested one lies below the registered
one ("/x" accepts "/x/y", not "/xy"). A registered URI that is not a URL at all ends the search
with an error: the URIs after it are never tried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PORT = re.compile(r":[0-9]*$")
# Characters Go's url.Parse accepts in a host (net/url shouldEscape in host mode).
_HOST_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:\[\]<>\"%\x80-\U0010ffff]*$")


class UrlError(ValueError):
    """The text is not a URL Go's net/url would parse."""


@dataclass(frozen=True)
class Url:
    scheme: str  # lower-cased, as Go does
    host: str  # host[:port] exactly as written, without user info
    path: str  # percent-decoded
    fragment: str


def parse_url(text: str) -> Url:
    """The parts of `text` the OAuth server compares, parsed like Go's url.Parse."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise UrlError("invalid control character in URL")
    rest, _, fragment = text.partition("#")
    scheme_match = _SCHEME.match(rest)
    if rest.startswith(":"):
        raise UrlError("missing protocol scheme")
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    rest = rest[scheme_match.end():] if scheme_match else rest
    rest = rest.partition("?")[0]
    host = ""
    if scheme and not rest.startswith("/"):
        return Url(scheme, "", "", _decode(fragment))  # opaque, e.g. "mailto:x"
    if rest.startswith("//") and (scheme or not rest.startswith("///")):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        host = _host(authority.rpartition("@")[2])
    elif not scheme and ":" in rest.partition("/")[0]:
        raise UrlError("first path segment in URL cannot contain colon")
    return Url(scheme, host, _decode(rest), _decode(fragment))


def _host(host: str) -> str:
    if not _HOST_CHARS.match(host):
        raise UrlError(f"invalid character in host name {host!r}")
    if host.startswith("["):
        if "]" not in host:
            raise UrlError("missing ']' in host")
        port = host[host.index("]") + 1:]
        if port and not _PORT.fullmatch(port):
            raise UrlError(f"invalid port {port!r} after host")
    elif ":" in host and not _PORT.search(host):
        raise UrlError(f"invalid port {host[host.rindex(':'):]!r} after host")
    _decode(host)
    return host


def _decode(text: str) -> str:
    if _BAD_ESCAPE.search(text):
        raise UrlError(f"invalid URL escape in {text!r}")
    return unquote(text, errors="surrogateescape")


def resolve_dots(path: str) -> str:
    """The path with '.' and '..' segments resolved against "/", as Go's URL.ResolveReference
    does it (net/url resolvePath): a trailing '.' or '..' leaves a trailing slash."""
    written = "/"  # Go builds the result after a leading slash it drops again at the end
    first = True
    elements = (path if path.startswith("/") else "/" + path).split("/")
    for element in elements:
        if element == ".":
            first = False
        elif element == "..":
            parent = written[1:].rfind("/")
            first = parent == -1
            written = "/" + (written[1:][:parent] if parent != -1 else "")
        else:
            written += ("" if first else "/") + element
            first = False
    if elements[-1] in (".", ".."):
        written += "/"
    return written[1:] if written.startswith("//") else written


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # why not (or which rule accepted)
    stops_search: bool = False  # not a URL: the OAuth server gives up on the whole list


def redirect_accepted(registered: str, requested: str) -> Verdict:
    """One registered URI against the requested one (osin ValidateUri)."""
    if not registered or not requested:
        return Verdict(False, "a URL is blank", stops_search=True)
    try:
        base, wanted = parse_url(registered), parse_url(requested)
    except UrlError as error:
        return Verdict(False, f"not a URL: {error}", stops_search=True)
    if base.fragment or wanted.fragment:
        return Verdict(False, "a URL has a #fragment")
    if base.scheme != wanted.scheme:
        return Verdict(False, f"scheme {wanted.scheme or 'none'} is not {base.scheme or 'none'}")
    if base.host != wanted.host:
        return Verdict(False, f"host {wanted.host or 'none'} is not {base.host or 'none'} "
                              "(compared as written, port included)")
    base_path, wanted_path = resolve_dots(base.path), resolve_dots(wanted.path)
    if base_path == wanted_path:
        return Verdict(True, "same scheme, host and path")
    if wanted_path.startswith(base_path.rstrip("/") + "/"):
        return Verdict(True, f"path {wanted_path} lies below {base_path}")
    return Verdict(False, f"path {wanted_path} is neither {base_path} nor below it")


@dataclass(frozen=True)
class Match:
    accepted_by: str | None  # the registered URI that accepted, None: HTTP 400 invalid_request
    verdicts: tuple[tuple[str, Verdict], ...]  # each registered URI the server tried


def match_redirect(registered: list[str], requested: str) -> Match:
    """osin ValidateUriList: the first registered URI that accepts wins; one that is not a URL
    ends the search."""
    tried = []
    for uri in registered:
        verdict = redirect_accepted(uri, requested)
        tried.append((uri, verdict))
        if verdict.accepted:
            return Match(uri, tuple(tried))
        if verdict.stops_search:
            break
    return Match(None, tuple(tried))
