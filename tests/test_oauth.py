"""OAuth redirect matching (openshift/osin urivalidate.go): properties of doctor.oauth, and
agreement with the osin port in tests/osin.py on generated well-formed URLs."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from registry_doctor.doctor.oauth import match_redirect, redirect_accepted, resolve_dots
from tests.osin import UriValidationError, resolve_path, validate_uri

segments = st.lists(st.sampled_from(["a", "b", "ab", ".", "..", "", "x y", "%41"]), max_size=4)
hosts = st.sampled_from(["h.example.com", "H.example.com", "h.example.com:443",
                         "h.example.com:8443",
                         "other.example.com", "user@h.example.com"])


@st.composite
def urls(draw: st.DrawFn, fragment: bool = True) -> str:
    scheme = draw(st.sampled_from(["https", "http", "HTTPS"]))
    parts = draw(segments)
    path = "/" + "/".join(parts) if parts else draw(st.sampled_from(["", "/"]))
    query = draw(st.sampled_from(["", "?a=b", "?"]))
    tail = draw(st.sampled_from(["", "#f", "#"])) if fragment else ""
    return f"{scheme}://{draw(hosts)}{path}{query}{tail}"


def osin_accepts(registered: str, requested: str) -> bool:
    try:
        validate_uri(registered, requested)
    except UriValidationError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(urls(), urls())
def test_agrees_with_the_osin_port(registered: str, requested: str) -> None:
    assert redirect_accepted(registered, requested).accepted == \
        osin_accepts(registered, requested), (registered, requested)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", ".", "..", "", "c.d"]), max_size=8))
def test_dot_segments_resolve_as_go_does(parts: list[str]) -> None:
    path = "/" + "/".join(parts)
    assert resolve_dots(path) == resolve_path("/", path)


@given(urls(fragment=False))
def test_a_uri_accepts_itself(uri: str) -> None:
    assert redirect_accepted(uri, uri).accepted


@given(urls(fragment=False), st.sampled_from(["x", "x/y", "callback"]))
def test_a_uri_accepts_paths_below_it(uri: str, below: str) -> None:
    base = uri.partition("?")[0].rstrip("/")
    assert redirect_accepted(uri, f"{base}/{below}").accepted


@given(urls(fragment=False), urls(fragment=False))
def test_scheme_and_host_must_be_equal(registered: str, requested: str) -> None:
    parts = [u.split("://", 1) for u in (registered, requested)]
    (scheme_a, rest_a), (scheme_b, rest_b) = parts
    host_a, host_b = (r.split("/", 1)[0].split("?")[0].rpartition("@")[2]
                      for r in (rest_a, rest_b))
    assume(scheme_a.lower() != scheme_b.lower() or host_a != host_b)
    assert not redirect_accepted(registered, requested).accepted


@given(urls(fragment=False))
def test_a_fragment_is_never_accepted(uri: str) -> None:
    assert not redirect_accepted(uri, uri + "#x").accepted
    assert not redirect_accepted(uri + "#x", uri).accepted


def test_the_console_cases_of_facts_section_6() -> None:
    registered = "https://console.apps.example.com"
    assert redirect_accepted(registered, "https://console.apps.example.com/").accepted
    assert redirect_accepted(registered, "https://console.apps.example.com/x").accepted
    assert not redirect_accepted(registered, "http://console.apps.example.com/").accepted
    assert not redirect_accepted(registered, "https://console.apps.example.com:443/").accepted
    assert not redirect_accepted("https://h/a", "https://h/ab").accepted
    assert not redirect_accepted("https://h/a", "https://h/a/../b").accepted
    # dot segments are resolved, not refused: /a/x/../y is /a/y, below /a
    assert redirect_accepted("https://h/a", "https://h/a/x/../y").accepted


def test_the_first_accepting_uri_wins_and_a_non_url_ends_the_search() -> None:
    wanted = "https://new.example.com/"
    match = match_redirect(["https://old.example.com", "https://new.example.com"], wanted)
    assert match.accepted_by == "https://new.example.com" and len(match.verdicts) == 2
    stopped = match_redirect(["https://bad host", "https://new.example.com"], wanted)
    assert stopped.accepted_by is None and len(stopped.verdicts) == 1
    assert "not a URL" in stopped.verdicts[0][1].reason
    assert match_redirect([], wanted).accepted_by is None
