"""Property-based tests (hypothesis) of the parsers that judge text from the cluster:

- label and field selectors (doctor/snapshot/selectors.py), against the port of
  k8s.io/apimachinery in tests/kubefake/selectors.py and against workload selectors;
- the PEM reader (doctor/pem.py) on damaged real chains: truncated, re-wrapped, re-labelled,
  unarmoured; tests/test_pem.py covers arbitrary bytes;
- the OAuth redirect matcher (doctor/oauth.py) on arbitrary text; tests/test_oauth.py
  compares it with the osin port on well-formed URLs.
"""

from __future__ import annotations

import base64
import re
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry_doctor.doctor.oauth import match_redirect, redirect_accepted
from registry_doctor.doctor.pem import read_pem_file
from registry_doctor.doctor.snapshot.selectors import SelectorError, field_matcher, label_matcher
from registry_doctor.doctor.workload import Workload
from tests.certs import make_pki
from tests.kubefake import selectors as apimachinery

# Label grammar (apimachinery validation): [prefix/]name, name and value up to 63
# characters, alphanumeric at both ends, '-', '_', '.' inside.
names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,6}[A-Za-z0-9])?", fullmatch=True)
keys = st.one_of(names, st.builds(lambda p, n: f"{p}/{n}",
                                  st.sampled_from(["app.kubernetes.io", "example.com"]), names))
values = st.one_of(st.just(""), names)
labels = st.dictionaries(st.sampled_from(["app", "tier", "example.com/x", "a.b", "deploy"])
                         | keys, st.sampled_from(["web", "db", "", "1", "x.y"]) | values,
                         max_size=5)


@st.composite
def requirements(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(["app", "tier", "example.com/x"]) | keys)
    operator = draw(st.sampled_from(["=", "==", "!=", "in", "notin", "exists", "!"]))
    spaces = draw(st.sampled_from(["", " "]))
    if operator in ("in", "notin"):
        options = draw(st.lists(st.sampled_from(["web", "db", "1"]) | values, min_size=1,
                                max_size=3))
        return f"{key} {operator} ({spaces}{f',{spaces}'.join(options)})"
    if operator == "exists":
        return key
    if operator == "!":
        return f"!{key}"
    return f"{key}{spaces}{operator}{spaces}{draw(st.sampled_from(['web', 'db']) | values)}"


selectors = st.lists(requirements(), min_size=1, max_size=4).map(",".join)


def reference_matches(selector: str, obj_labels: dict[str, str]) -> bool:
    return all(r.matches(obj_labels) for r in apimachinery.parse_label_selector(selector))


@settings(max_examples=400, deadline=None)
@given(selectors, labels)
def test_label_selectors_agree_with_apimachinery(selector: str,
                                                 obj_labels: dict[str, str]) -> None:
    assert label_matcher(selector)(obj_labels) == reference_matches(selector, obj_labels)


@settings(max_examples=400, deadline=None)
@given(st.text(string.printable + "()!=,\u00e9\u2603", max_size=40))
def test_any_text_is_a_selector_or_a_selector_error(text: str) -> None:
    """Offline mode answers what the API server answers: a selector it refuses (400 Bad
    Request) is refused here too, and one it takes matches the same labels."""
    try:
        reference = apimachinery.parse_label_selector(text)
    except apimachinery.SelectorError:
        reference = None
    try:
        matcher = label_matcher(text)
    except SelectorError:
        assert reference is None, f"{text!r}: the API server takes it"
        return
    assert reference is not None, f"{text!r}: the API server refuses it"
    for sample in ({}, {"app": "web"}, {"a": ""}):
        assert matcher(sample) == all(r.matches(sample) for r in reference)


expressions = st.lists(st.fixed_dictionaries({
    "key": st.sampled_from(["app", "tier"]) | keys,
    "operator": st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]),
    "values": st.lists(st.sampled_from(["web", "db"]) | values, min_size=1, max_size=3),
}), max_size=3)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["Deployment", "DaemonSet", "DeploymentConfig"]),
       st.dictionaries(st.sampled_from(["app", "tier"]) | keys, values, max_size=3),
       expressions, labels)
def test_workload_selectors_select_what_the_api_server_selects(
        kind: str, match_labels: dict[str, str], match_expressions: list[dict[str, Any]],
        pod_labels: dict[str, str]) -> None:
    """The selector string built from a workload's spec.selector means what the LabelSelector
    means (a DeploymentConfig's selector is a plain map)."""
    if kind == "DeploymentConfig":
        selector: dict[str, Any] = dict(match_labels)
        match_expressions = []
    else:
        selector = {"matchLabels": match_labels, "matchExpressions": match_expressions}
    text = Workload(kind, "x", {"metadata": {"name": "x"}, "spec": {"selector": selector}}) \
        .label_selector()
    if text is None:
        assert not match_labels and not match_expressions
        return
    expected = all(pod_labels.get(k) == v for k, v in match_labels.items()) and all(
        _expression_matches(e, pod_labels) for e in match_expressions)
    assert label_matcher(text)(pod_labels) == expected == reference_matches(text, pod_labels)


def _expression_matches(expression: dict[str, Any], obj_labels: dict[str, str]) -> bool:
    key, values = expression["key"], expression["values"]
    return {"In": key in obj_labels and obj_labels[key] in values,
            "NotIn": obj_labels.get(key) not in values,
            "Exists": key in obj_labels,
            "DoesNotExist": key not in obj_labels}[expression["operator"]]


field_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), names, st.just(""))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["spec.nodeName", "status.phase", "metadata.name"]),
       st.sampled_from(["=", "==", "!="]), st.sampled_from(["node-1", "true", "1", ""]) | names,
       field_values)
def test_field_selectors_agree_with_apimachinery(path: str, operator: str, value: str,
                                                 actual: Any) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {}, "status": {}}
    section, _, field = path.partition(".")
    obj[section][field] = actual
    selector = f"{path}{operator}{value}"
    expected = all(r.matches(obj) for r in apimachinery.parse_field_selector(selector))
    assert field_matcher(selector)(obj) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(string.printable + "\u00e9", max_size=40),
       st.dictionaries(st.sampled_from(["spec", "status"]), st.dictionaries(
           st.sampled_from(["nodeName", "phase"]), field_values), max_size=2))
def test_any_text_is_a_field_selector_or_a_selector_error(text: str,
                                                          obj: dict[str, Any]) -> None:
    try:
        matcher = field_matcher(text)
    except SelectorError:
        return
    assert matcher(obj) in (True, False)


# PEM: a real chain (leaf, intermediate) and key, damaged in the ways files get damaged.
PKI = make_pki(key_kind="rsa")
CHAIN = PKI.chain_pem()
KEY = PKI.leaf.key_pem()
FINGERPRINTS = tuple(c.fingerprint for c in read_pem_file("chain", CHAIN).certificates)
BLOCK_LINES = [number for number, line in enumerate(CHAIN.decode().splitlines(), 1)
               if line.startswith("-----BEGIN")]


def test_the_chain_reads_cleanly() -> None:
    pem = read_pem_file("chain", CHAIN)
    assert len(FINGERPRINTS) >= 2 and not pem.problems


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(CHAIN)))
def test_a_truncated_chain_keeps_its_whole_certificates_and_names_the_cut(cut: int) -> None:
    pem = read_pem_file("chain", CHAIN[:cut])
    found = tuple(c.fingerprint for c in pem.certificates)
    assert found == FINGERPRINTS[:len(found)]
    begun = len(re.findall(rb"-----BEGIN [A-Z ]+-----\n", CHAIN[:cut]))
    ended = len(re.findall(rb"-----END [A-Z ]+-----\n", CHAIN[:cut] + b"\n"))
    if begun > ended:  # cut after a whole BEGIN line, before its whole END line
        opened = BLOCK_LINES[begun - 1]
        assert any(p.startswith(f"line {opened}:") for p in pem.problems), pem.problems


def _rewrap(pem: bytes, width: int, newline: str, indent: str) -> bytes:
    out = []
    for block in re.findall(rb"-----BEGIN ([A-Z ]+)-----\s+(.*?)-----END \1-----", pem, re.S):
        label, body = block[0].decode(), b"".join(block[1].split()).decode()
        lines = [body[i:i + width] for i in range(0, len(body), width)]
        out.append(newline.join([f"-----BEGIN {label}-----", *(indent + x for x in lines),
                                 f"-----END {label}-----", ""]))
    return "".join(out).encode()


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 200), st.sampled_from(["\n", "\r\n"]), st.sampled_from(["", " ", "\t"]),
       st.binary(max_size=60).filter(lambda b: b"-----" not in b))
def test_wrapping_line_endings_and_junk_outside_blocks_change_nothing(
        width: int, newline: str, indent: str, junk: bytes) -> None:
    text = junk + b"\n" + _rewrap(CHAIN + KEY, width, newline, indent) + b"\n" + junk
    pem = read_pem_file("chain", text)
    assert tuple(c.fingerprint for c in pem.certificates) == FINGERPRINTS
    assert [k.public_key for k in pem.keys] == [read_pem_file("k", KEY).keys[0].public_key]
    assert not pem.problems


@pytest.mark.parametrize("label", ["CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"])
def test_a_mismatched_end_label_is_named(label: str) -> None:
    damaged = CHAIN.replace(b"-----END CERTIFICATE-----", f"-----END {label}S-----".encode(), 1)
    pem = read_pem_file("chain", damaged)
    assert len(pem.certificates) == len(FINGERPRINTS) - 1
    assert any(f"BEGIN CERTIFICATE closed by END {label}S" in p for p in pem.problems)


def test_an_unarmoured_der_certificate_is_no_pem() -> None:
    der = base64.b64decode(b"".join(CHAIN.split(b"-----")[2].split()))
    pem = read_pem_file("leaf.der", der)
    assert not pem.certificates and pem.problems == ("no PEM block (-----BEGIN ...-----) found",)


urls_or_garbage = st.one_of(
    st.text(max_size=60),
    st.builds("{}://{}{}".format, st.sampled_from(["https", "http", "HTTPS", "", "a+b"]),
              st.text(string.printable + "\u00e9[]%@:", max_size=20),
              st.text(string.printable + "%\u2603", max_size=20)))


@settings(max_examples=500, deadline=None)
@given(st.lists(urls_or_garbage, max_size=4), urls_or_garbage)
def test_redirect_matching_is_total_and_consistent(registered: list[str],
                                                   requested: str) -> None:
    """Any text: a verdict with a reason, never an exception; the list's answer is the first
    URI that accepts, unless one that is not a URL comes first."""
    match = match_redirect(registered, requested)
    first = None
    for uri in registered:
        verdict = redirect_accepted(uri, requested)
        assert verdict.reason
        if verdict.accepted:
            first = uri
            break
        if verdict.stops_search:
            break
    assert match.accepted_by == first
