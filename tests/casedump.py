"""Fixture cases: a cluster dump (a base under fixtures/clusters plus the case's own objects)
and the verdict a check must reach on it.

A case folder holds `case.yaml` and optional object files, `logs/` and previous containers'
logs in `oc adm inspect`'s layout (`namespaces/<ns>/pods/<pod>/<c>/<c>/logs/previous.log`):

    base: healthy                 # start from tests/fixtures/clusters/healthy (optional)
    platform: kubernetes          # the platform it is (default openshift3): the live twin's API
                                  # is that platform's (PROFILE_OF_PLATFORM) unless `api` says
    remove: [Pod/default/name]    # drop objects of the base (kind/namespace/name, or kind/name)
    config: {namespace: other}    # RunConfig overrides (optional)
    live: true                    # also judge it through the fake API server (default true)
    api: openshift-4.14           # the fake's version profile there (default: the platform's)
    expect:
      status: crit
      summary: "regular expression searched in the summary"
      details: ["text that some detail line contains", ...]
      resources: [Pod/monitoring/name, ...]   # Kind/namespace/name the result must list
      plan:                       # when the check has a planner and fails: what it plans,
        - scale-to-one dc/docker-registry in default   # each action's name and target
        - choose-claim            # (a manual step has no target); [] when it plans nothing
    fix: {claim_size: 20Gi}       # FixOptions for that plan (optional)

Objects in the case folder replace base objects of the same kind, namespace and name. The
dump's side files (doctor.snapshot.dump.SIDE_FILES, e.g. the kubelet's volume statistics as a
Prometheus query answered them) are copied from the case folder as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from registry_doctor.doctor.snapshot.dump import (
    SIDE_FILES,
    SIDE_FOLDERS,
    Dump,
    load_dump,
    parse_documents,
    write_dump,
)

FIXTURES = Path(__file__).parent / "fixtures"
CASE_FILE = "case.yaml"


@dataclass
class Case:
    check: str
    name: str
    folder: Path
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.check}/{self.name}"

    @property
    def expect(self) -> dict[str, Any]:
        return self.spec["expect"]

    @property
    def api(self) -> str:
        """The fake API server's version profile for the live run (tests/kubefake/profiles.py):
        the case's `api`, else its platform's."""
        return str(self.spec.get("api") or PROFILE_OF_PLATFORM[self.spec.get("platform",
                                                                              "openshift3")])


# The API each platform's cases are judged through live (tests/kubefake/profiles.py).
PROFILE_OF_PLATFORM = {"openshift3": "openshift-3.11", "openshift4": "openshift-4.14",
                       "kubernetes": "kubernetes-1.33"}


def discover_cases() -> list[Case]:
    cases = []
    for case_file in sorted((FIXTURES / "checks").glob(f"*/*/{CASE_FILE}")):
        folder = case_file.parent
        spec = yaml.safe_load(case_file.read_text())
        cases.append(Case(folder.parent.name, folder.name, folder, spec))
    return cases


def _identity(obj: dict[str, Any]) -> str:
    metadata = obj["metadata"]
    namespace = metadata.get("namespace")
    return "/".join(p for p in (obj["kind"], namespace, metadata["name"]) if p)


def case_dump(case: Case) -> Dump:
    base_name = case.spec.get("base")
    dump = load_dump(FIXTURES / "clusters" / base_name) if base_name else Dump()
    assert not dump.problems, dump.problems
    objects = {_identity(o): o for o in dump.objects}
    for name in case.spec.get("remove", []):
        assert objects.pop(name, None) is not None, f"{case.id}: nothing to remove at {name}"
    overlay = load_dump(case.folder)
    for path in sorted(case.folder.glob("*.y*ml")):
        if path.name != CASE_FILE:
            found, problems = parse_documents(path.read_text(), path.name)
            assert not problems, problems
            objects.update((_identity(o), o) for o in found)
    return Dump(objects=list(objects.values()), logs={**dump.logs, **overlay.logs},
                previous_logs={**dump.previous_logs, **overlay.previous_logs})


def materialize(case: Case, out: Path) -> Path:
    """Write the case's merged dump to `out`, where --from-dir and the fake API can read it."""
    dump = case_dump(case)
    write_dump(out, {"objects": dump.objects}, dump.logs, include_secrets=True,
               previous_logs=dump.previous_logs)
    side_files = [*SIDE_FILES, *(str(path.relative_to(case.folder))
                                 for folder in SIDE_FOLDERS
                                 for path in sorted((case.folder / folder).glob("*"))
                                 if path.is_file())]
    for side_file in side_files:
        if (case.folder / side_file).is_file():
            (out / side_file).parent.mkdir(parents=True, exist_ok=True)
            (out / side_file).write_bytes((case.folder / side_file).read_bytes())
    return out
