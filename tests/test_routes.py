"""Route hosts as routers admitted them (doctor/routes.py)."""

from registry_doctor.doctor.routes import (
    Admission,
    admissions,
    describe_refusal,
    destination_ca,
    refusals,
    served_hosts,
    termination,
)


def _route(spec_host="asked.example.com", ingress=None, tls=None):
    route = {"metadata": {"name": "r"}, "spec": {"host": spec_host, "to": {"name": "svc"}}}
    if tls:
        route["spec"]["tls"] = {"termination": tls}
    if ingress is not None:
        route["status"] = {"ingress": ingress}
    return route


def _ingress(host, status, reason=None):
    condition = {"type": "Admitted", "status": status}
    if reason:
        condition["reason"] = reason
    return {"host": host, "routerName": "default", "conditions": [condition]}


def test_served_hosts_are_the_admitted_ones_not_the_spec():
    route = _route(ingress=[_ingress("served.apps.example.com", "True")])
    assert served_hosts(route) == ["served.apps.example.com"]


def test_a_refused_route_serves_nothing_and_says_why():
    route = _route(ingress=[_ingress("asked.example.com", "False", "HostAlreadyClaimed")])
    assert served_hosts(route) == []
    assert admissions(route) == [Admission("default", "asked.example.com", False,
                                           "HostAlreadyClaimed")]


def test_without_status_the_spec_host_stands():
    assert served_hosts(_route()) == ["asked.example.com"]
    assert served_hosts(_route(spec_host=None)) == []


def test_termination_is_normalised_and_absent_for_plain_http():
    assert termination(_route(tls="Passthrough")) == "passthrough"
    assert termination(_route()) is None
    assert termination({"spec": {"tls": "garbage"}}) is None


def test_refusals_only_when_no_router_serves_the_route():
    claimed = _ingress("asked.example.com", "False", "HostAlreadyClaimed")
    assert [a.reason for a in refusals(_route(ingress=[claimed]))] == ["HostAlreadyClaimed"]
    assert refusals(_route(ingress=[claimed, _ingress("b.example.com", "True")])) == []
    assert refusals(_route()) == []


def test_a_refusal_is_described_with_the_routers_words():
    claimed = _ingress("asked.example.com", "False", "HostAlreadyClaimed")
    claimed["conditions"][0]["message"] = "route other already exposes asked.example.com"
    route = _route(ingress=[claimed])
    assert describe_refusal(route, refusals(route)[0]) == (
        "route r: router default refused host asked.example.com (status.ingress Admitted False, "
        "HostAlreadyClaimed: route other already exposes asked.example.com)")


def test_destination_ca_is_given_only_with_text():
    route = _route(tls="reencrypt")
    assert destination_ca(route) is None
    route["spec"]["tls"]["destinationCACertificate"] = "  "
    assert destination_ca(route) is None
    route["spec"]["tls"]["destinationCACertificate"] = "-----BEGIN CERTIFICATE-----"
    assert destination_ca(route) == "-----BEGIN CERTIFICATE-----"
