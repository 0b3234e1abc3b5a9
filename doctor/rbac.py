"""The Kubernetes permissions registry-doctor needs, derived from the checks' metadata.

A check names the snapshot collections it reads (`CheckMeta.kinds`); the catalogue says what
each collection asks the API server (`doctor/snapshot/kinds.py`: group, resource, get or list,
namespace or cluster). So the read-only RBAC of the Helm chart is computed, never written by
hand: `python -m doctor.rbac` writes `helm/registry-doctor/files/read-access.yaml` (every
grant with the checks that need it; the chart grants what the checks it runs need) and the
permissions table of docs/helm.md. `--check` only compares them (the test suite does).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from doctor.model import CheckMeta
from doctor.snapshot.kinds import CATALOGUE, LOG_COLLECTIONS, Collection, closure

REPO = Path(__file__).resolve().parent.parent
READ_ACCESS_FILE = REPO / "helm" / "registry-doctor" / "files" / "read-access.yaml"
DOCS_FILE = REPO / "docs" / "helm.md"
DOCS_BEGIN = "<!-- generated from the checks' metadata by `python -m doctor.rbac`: do not edit -->"
DOCS_END = "<!-- end of generated permissions -->"

# Where a grant applies: the registry (and console) namespace only, through a Role there, or
# every namespace / cluster-scoped objects, through a ClusterRole.
NAMESPACE, CLUSTER = "namespace", "cluster"


@dataclass(frozen=True, order=True)
class Grant:
    """One verb on one resource, in one scope."""

    scope: str
    api_group: str
    resource: str
    verb: str

    @property
    def openshift(self) -> bool:
        return self.api_group.endswith(".openshift.io")


@dataclass(frozen=True, order=True)
class Rule:
    """A Role or ClusterRole rule: the verbs one resource needs in one scope."""

    scope: str
    api_group: str
    resource: str
    verbs: tuple[str, ...]


def _scope(collection: Collection) -> str:
    return NAMESPACE if collection.namespaced and not collection.all_namespaces else CLUSTER


def collection_grant(name: str) -> Grant:
    """What reading collection `name` asks of the API server."""
    if name in LOG_COLLECTIONS:  # one GET of pods/log per pod of the pods collection
        return Grant(_scope(CATALOGUE[LOG_COLLECTIONS[name]]), "", "pods/log", "get")
    collection = CATALOGUE[name]
    return Grant(_scope(collection), collection.group, collection.resource, collection.verb)


def check_grants(meta: CheckMeta) -> set[Grant]:
    """Everything a check reads, including what its collections' scopes are computed from."""
    return {collection_grant(name) for name in closure(set(meta.kinds))}


def grants_by_check(metas: Iterable[CheckMeta]) -> dict[Grant, list[str]]:
    """Each grant any of `metas` needs, with the ids of the checks that need it."""
    needed: dict[Grant, list[str]] = {}
    for meta in metas:
        for grant in check_grants(meta):
            needed.setdefault(grant, []).append(meta.id)
    return dict(sorted(needed.items()))


def read_rules(metas: Iterable[CheckMeta], openshift: bool = True) -> list[Rule]:
    """The rules that let exactly these checks read what they need; OpenShift API groups
    only when the cluster is OpenShift."""
    verbs: dict[tuple[str, str, str], set[str]] = {}
    for grant in grants_by_check(metas):
        if openshift or not grant.openshift:
            verbs.setdefault((grant.scope, grant.api_group, grant.resource), set()).add(grant.verb)
    return [Rule(*key, tuple(sorted(v))) for key, v in sorted(verbs.items())]


def read_access_text(metas: Iterable[CheckMeta]) -> str:
    """The chart's `files/read-access.yaml`."""
    metas = list(metas)
    document = {
        "checks": {m.id: {"optIn": m.opt_in or ""} for m in metas},
        "grants": [{"scope": g.scope, "apiGroup": g.api_group, "resource": g.resource,
                    "verb": g.verb, "checks": ids}
                   for g, ids in grants_by_check(metas).items()],
    }
    return ("# Generated from the checks' metadata by `python -m doctor.rbac`: do not edit.\n"
            "# Every read a check needs; the chart grants those of the checks it runs\n"
            "# (templates/_helpers.tpl, readRules); docs/helm.md explains each.\n"
            + yaml.safe_dump(document, sort_keys=False, width=100))


def _collections_for(grant: Grant, metas: list[CheckMeta]) -> list[str]:
    names = closure({k for m in metas for k in m.kinds})
    return sorted(n for n in names if collection_grant(n) == grant)


def permissions_table(metas: Iterable[CheckMeta]) -> str:
    """The table of docs/helm.md: each read permission, what it reads and which checks."""
    metas = list(metas)
    where = {NAMESPACE: "Role in `registry.namespace`", CLUSTER: "ClusterRole"}
    lines = ["| granted by | API group | resource | verb | reads (snapshot collections) "
             "| for checks |", "|---|---|---|---|---|---|"]
    for grant, ids in grants_by_check(metas).items():
        group = f"`{grant.api_group}`" if grant.api_group else "core"
        suffix = " (OpenShift only)" if grant.openshift else ""
        collections = ", ".join(f"`{c}`" for c in _collections_for(grant, metas))
        checks = ", ".join(f"[`{i}`](checks/{i}.md)" for i in ids)
        lines.append(f"| {where[grant.scope]} | {group}{suffix} | `{grant.resource}` | "
                     f"`{grant.verb}` | {collections} | {checks} |")
    return "\n".join(lines)


def synced_docs(current: str, metas: Iterable[CheckMeta]) -> str:
    if DOCS_BEGIN not in current or DOCS_END not in current:
        raise ValueError(f"{DOCS_FILE.name}: the markers of the permissions table are missing")
    before, _, rest = current.partition(DOCS_BEGIN)
    after = rest.partition(DOCS_END)[2]
    return f"{before}{DOCS_BEGIN}\n{permissions_table(metas)}\n{DOCS_END}{after}"


def main(argv: list[str]) -> int:
    from checks import all_checks

    metas = [c.meta for c in all_checks().values()]
    wanted = {READ_ACCESS_FILE: read_access_text(metas),
              DOCS_FILE: synced_docs(DOCS_FILE.read_text(), metas)}
    stale = [path for path, text in wanted.items()
             if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(REPO)} is out of date: run python -m doctor.rbac")
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
