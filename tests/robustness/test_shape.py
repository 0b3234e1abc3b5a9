"""Field types of dump objects (doctor/snapshot/shape.py): what the API server would refuse is
named by path, what it accepts is not, and no value is ever quoted."""

from __future__ import annotations

import json
from typing import Any

from registry_doctor.doctor.snapshot.dump import parse_documents
from registry_doctor.doctor.snapshot.kinds import CATALOGUE
from registry_doctor.doctor.snapshot.shape import (
    MAX_PROBLEMS_PER_OBJECT,
    known_kinds,
    type_problems,
)


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
            "spec": spec}


def test_every_catalogue_kind_has_field_types() -> None:
    """A new collection needs `python scripts/gen-kube-schema.py`."""
    assert {c.kind for c in CATALOGUE.values()} <= known_kinds()


def test_wrong_types_are_named_by_path() -> None:
    problems = type_problems(pod(containers=[{"name": "c", "resources": {"limits": []}},
                                             "junk"], hostNetwork="yes", priority=True))
    assert problems == [
        "spec.containers[0].resources.limits: expected a mapping, found a list",
        "spec.containers[1]: expected a mapping, found a string",
        "spec.hostNetwork: expected true or false, found a string",
        "spec.priority: expected an integer, found a boolean",
    ]


def test_what_the_api_server_accepts_passes() -> None:
    accepted = pod(containers=[{"name": "c", "ports": [{"containerPort": 5000}],
                                "readinessProbe": {"httpGet": {"port": "http"}},
                                "resources": {"limits": {"cpu": 1, "memory": "1Gi"},
                                              "requests": {"cpu": 0.5}}}],
                   volumes=None, nodeSelector={}, unknownField=[1, 2])
    assert type_problems(accepted) == []
    assert type_problems({"kind": "NotAKindWeKnow", "metadata": {"name": 1}}) == []


def test_map_keys_and_values_are_checked() -> None:
    obj = pod()
    obj["metadata"]["labels"] = {"app": 5, 3: "x"}
    assert type_problems(obj) == ["metadata.labels[app]: expected a string, found an integer",
                                  "metadata.labels: key 3 is an integer, not a string"]


def test_problems_are_bounded_per_object() -> None:
    problems = type_problems(pod(containers=list(range(50))))
    assert len(problems) == MAX_PROBLEMS_PER_OBJECT + 1
    assert problems[-1] == f"... and {50 - MAX_PROBLEMS_PER_OBJECT} more type errors"


def test_secret_values_are_never_quoted() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
              "data": {"key": ["c3VwZXItc2VjcmV0LXZhbHVl"]}, "stringData": "super-secret-value"}
    _, problems = parse_documents(json.dumps(secret), "secret.json")
    assert problems == [
        "secret.json: Secret n/s: data[key]: expected a string, found a list",
        "secret.json: Secret n/s: stringData: expected a mapping, found a string",
    ]


def test_aliases_cannot_make_the_check_exponential() -> None:
    """Three levels of lists of 300 aliases: 27 million values from a few kilobytes. The file
    is refused before anything walks it (checks, shape checks and the redactor alike)."""
    items = ", ".join(["{key: k, path: p}"] * 300)
    text = ("kind: Pod\nmetadata: {name: p}\n"
            f"a: &source {{configMap: {{name: c, items: [{items}]}}}}\n"
            f"b: &volume {{projected: {{sources: [{', '.join(['*source'] * 300)}]}}}}\n"
            f"spec: {{volumes: [{', '.join(['*volume'] * 300)}]}}\n")
    assert len(text) < 20_000
    objects, problems = parse_documents(text, "aliases.yaml")
    assert objects == []
    assert problems == ["aliases.yaml: refused: its YAML aliases (*name) expand to more values "
                        "than the file has characters (an alias bomb?)"]
