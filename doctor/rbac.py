"""The Kubernetes permissions registry-doctor needs, derived from the checks' metadata.

A check names the snapshot collections it reads (`CheckMeta.kinds`); the catalogue says what
each collection asks the API server (`doctor/snapshot/kinds.py`: group, resource, get or list,
namespace or cluster). So the read-only RBAC of the Helm chart is computed, never written by
hand: `python -m registry_doctor.doctor.rbac` writes
`helm/registry-doctor/files/read-access.yaml` (every grant with the checks that need it; the
chart grants what the checks it runs need) and the permissions table of docs/helm.md. `--check`
only compares them (the test suite does).

The remediation CronJob's writes come the same way from the fix planners' declarations
(`doctor.fix.permissions.permission_rows`): `helm/registry-doctor/files/write-access.yaml` and
the second table of docs/helm.md.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from registry_doctor.doctor import config as symbols
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix.permissions import FIXED_NAMES, permission_rows
from registry_doctor.doctor.generated import sync
from registry_doctor.doctor.model import CheckMeta
from registry_doctor.doctor.platform import AUTO, FALLBACK
from registry_doctor.doctor.probes import PROBE_API_READS
from registry_doctor.doctor.snapshot.kinds import CATALOGUE, LOG_COLLECTIONS, Collection, closure

if TYPE_CHECKING:
    from registry_doctor.doctor.check import Check

REPO = Path(__file__).resolve().parent.parent
READ_ACCESS_FILE = REPO / "helm" / "registry-doctor" / "files" / "read-access.yaml"
WRITE_ACCESS_FILE = READ_ACCESS_FILE.with_name("write-access.yaml")
DOCS_FILE = REPO / "docs" / "helm.md"
DOCS_BEGIN = ("<!-- generated from the checks' metadata by "
              "`python -m registry_doctor.doctor.rbac`: do not edit -->")
DOCS_END = "<!-- end of generated permissions -->"
WRITE_DOCS_BEGIN = ("<!-- generated from the fix planners by "
                    "`python -m registry_doctor.doctor.rbac`: do not edit -->")
WRITE_DOCS_END = "<!-- end of generated write permissions -->"
MACHINERY = "machinery"  # permission_rows' neededBy of what every applying run does

# Where a grant applies: the registry (and console) namespace only, through a Role there, or
# every namespace / cluster-scoped objects, through a ClusterRole.
NAMESPACE, CLUSTER = "namespace", "cluster"


@dataclass(frozen=True, order=True)
class Grant:
    """One verb on one resource, in one scope; on the objects `names` stands for alone (name
    symbols, doctor.config) when given."""

    scope: str
    api_group: str
    resource: str
    verb: str
    names: tuple[str, ...] = ()
    opt_in: str = ""  # a RunConfig flag (chart: checks.optIn) without which it is not needed
    platforms: tuple[str, ...] = ()  # only on these platforms (chart value `platform`); (): all

    @property
    def openshift(self) -> bool:
        return self.api_group.endswith(".openshift.io")


@dataclass(frozen=True, order=True)
class Rule:
    """A Role or ClusterRole rule: the verbs one resource needs in one scope, on the objects
    named (`resourceNames`) or, with no names, on every object there."""

    scope: str
    api_group: str
    resource: str
    verbs: tuple[str, ...]
    names: tuple[str, ...] = ()


def _scope(collection: Collection) -> str:
    return NAMESPACE if collection.namespaced and not collection.all_namespaces else CLUSTER


def collection_grant(name: str) -> Grant:
    """What reading collection `name` asks of the API server."""
    if name in LOG_COLLECTIONS:  # one GET of pods/log per pod of the pods collection
        return Grant(_scope(CATALOGUE[LOG_COLLECTIONS[name]]), "", "pods/log", "get")
    collection = CATALOGUE[name]
    return Grant(_scope(collection), collection.group, collection.resource, collection.verb,
                 collection.names, collection.opt_in, collection.platforms)


def check_grants(meta: CheckMeta) -> set[Grant]:
    """Everything a check reads, including what its collections' scopes are computed from
    and what its probes read through the client layer."""
    return {collection_grant(name) for name in closure(set(meta.kinds))} | {
        Grant(CLUSTER, group, resource, verb, opt_in=flag)
        for probe in meta.probes for group, resource, verb, flag in PROBE_API_READS.get(probe, ())}


def grants_by_check(metas: Iterable[CheckMeta]) -> dict[Grant, list[str]]:
    """Each grant any of `metas` needs, with the ids of the checks that need it."""
    needed: dict[Grant, list[str]] = {}
    for meta in metas:
        for grant in check_grants(meta):
            needed.setdefault(grant, []).append(meta.id)
    return dict(sorted(needed.items()))


def object_names(symbols: Iterable[str], config: RunConfig) -> tuple[str, ...] | None:
    """The names symbols stand for with this configuration, sorted; () for no symbols (every
    object), None when symbols name no object at all (an empty list in the values): then
    nothing is granted, as a rule with empty resourceNames would grant every object."""
    symbols = tuple(symbols)
    known = {**config.object_names(), **FIXED_NAMES}
    names = tuple(sorted({n for s in symbols for n in known[s] if n}))
    return None if symbols and not names else names


def merged(entries: Iterable[tuple[str, str, str, Iterable[str], tuple[str, ...] | None]]
           ) -> list[Rule]:
    """(scope, group, resource, verbs, names) entries as rules: verbs united per resource and
    names, sorted; entries whose names are None (no object) dropped."""
    verbs: dict[tuple[str, str, str, tuple[str, ...]], set[str]] = {}
    for scope, group, resource, granted, names in entries:
        if names is not None:
            verbs.setdefault((scope, group, resource, names), set()).update(granted)
    return [Rule(scope, group, resource, tuple(sorted(v)), names)
            for (scope, group, resource, names), v in sorted(verbs.items())]


def read_rules(metas: Iterable[CheckMeta], openshift: bool = True,
               config: RunConfig = RunConfig()) -> list[Rule]:
    """The rules that let exactly these checks read what they need, by name where the
    configuration names the objects; OpenShift API groups only when the cluster is
    OpenShift; with a platform chosen, only the checks and reads of that platform."""
    platform = _chart_platform(config.platform, openshift)
    metas = [m for m in metas if not m.platforms or platform in m.platforms]
    return merged((g.scope, g.api_group, g.resource, (g.verb,), object_names(g.names, config))
                  for g in grants_by_check(metas) if (openshift or not g.openshift)
                  and (not g.opt_in or getattr(config, g.opt_in))
                  and (not g.platforms or platform in g.platforms))


def row_scope(row: dict[str, Any]) -> str:
    return CLUSTER if row["clusterScoped"] else NAMESPACE


def write_rows(rows: Iterable[dict[str, Any]], check_ids: Iterable[str], openshift: bool = True,
               disruptive: bool = False, platform: str = AUTO) -> list[dict[str, Any]]:
    """The rows of `permission_rows` an applying run of these checks may need: their planners'
    (OpenShift-only ones on OpenShift, disruptive-only ones with --allow-disruptive, those of
    one platform there) and the machinery's, which only a run with something to fix needs."""
    ids = set(check_ids)
    platform = _chart_platform(platform, openshift)
    usable = [r for r in rows if (openshift or not r["openshiftOnly"])
              and (disruptive or not r["disruptiveOnly"])
              and (not r.get("platforms") or platform in r["platforms"])]
    if not any(r["neededBy"] in ids for r in usable):
        return []
    return [r for r in usable if r["neededBy"] in ids or r["neededBy"] == MACHINERY]


def write_rules(rows: Iterable[dict[str, Any]], check_ids: Iterable[str], openshift: bool = True,
                disruptive: bool = False, config: RunConfig = RunConfig()) -> list[Rule]:
    """The remediation Role and ClusterRole rules: doctor.rbac.write_rows, merged."""
    return merged((row_scope(r), r["apiGroup"], r["resource"], r["verbs"],
                   object_names(r["names"], config))
                  for r in write_rows(rows, check_ids, openshift, disruptive, config.platform))


def _chart_platform(platform: str, openshift: bool) -> str:
    """The platform chosen; unchosen, what the chart's `platform` value defaults to."""
    return platform if platform != AUTO else FALLBACK if openshift else "kubernetes"


def read_access_text(metas: Iterable[CheckMeta]) -> str:
    """The chart's `files/read-access.yaml`."""
    metas = list(metas)
    document = {
        "checks": {m.id: {"optIn": m.opt_in or "", "platforms": list(m.platforms)}
                   for m in metas},
        "grants": [{"scope": g.scope, "apiGroup": g.api_group, "resource": g.resource,
                    "verb": g.verb, "names": list(g.names), "optIn": g.opt_in,
                    "platforms": list(g.platforms), "checks": ids}
                   for g, ids in grants_by_check(metas).items()],
    }
    return ("# Generated from the checks' metadata by `python -m registry_doctor.doctor.rbac`: "
            "do not edit.\n"
            "# Every read a check needs; the chart grants those of the checks it runs\n"
            "# (templates/_helpers.tpl, readRules); docs/helm.md explains each.\n"
            + yaml.safe_dump(document, sort_keys=False, width=100))


def write_access_text(checks: Sequence[Check]) -> str:
    """The chart's `files/write-access.yaml`."""
    return ("# Generated from the fix planners by `python -m registry_doctor.doctor.rbac`: "
            "do not edit.\n"
            "# Every write `check --fix --yes` may make (doctor.fix.permissions); the chart\n"
            "# grants those of the checks its CronJob runs (templates/_helpers.tpl, writeRules).\n"
            + yaml.safe_dump({"fixedNames": {k: list(v) for k, v in FIXED_NAMES.items()},
                              "rows": permission_rows(checks)}, sort_keys=False, width=100))


# Where the chart takes each name symbol from (templates/_helpers.tpl, objectNames).
CHART_VALUES = {symbol: value for symbol, (_, value) in symbols.NAME_SETTINGS.items()}


def _resource_cell(resource: str, names: Iterable[str]) -> str:
    """`secrets` named by `registry.secrets`: how the docs' tables show a resource."""
    named = [f"`{CHART_VALUES[n]}`" if n in CHART_VALUES else
             ", ".join(f"`{v}`" for v in FIXED_NAMES[n]) for n in names]
    return f"`{resource}`" + (f" named by {' and '.join(named)}" if named else "")


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
        when = f" with `checks.optIn.{grant.opt_in}` only" if grant.opt_in else ""
        when += f" with `platform: {' or '.join(grant.platforms)}` only" \
            if grant.platforms else ""
        collections = ", ".join(f"`{c}`" for c in _collections_for(grant, metas))
        checks = ", ".join(f"[`{i}`](checks/{i}.md)" for i in ids)
        lines.append(f"| {where[grant.scope]}{when} | {group}{suffix} | "
                     f"{_resource_cell(grant.resource, grant.names)} | "
                     f"`{grant.verb}` | {collections} | {checks} |")
    return "\n".join(lines)


def write_permissions_table(checks: Sequence[Check]) -> str:
    """The write table of docs/helm.md: each rule of the remediation roles, when the chart
    grants it, which checks' fixes need it and what for."""
    where = {NAMESPACE: "Role in `registry.namespace`", CLUSTER: "ClusterRole"}
    merged_rows: dict[tuple[str, str, str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for row in permission_rows(checks):
        key = (row_scope(row), row["apiGroup"], row["resource"], tuple(row["names"]))
        merged_rows.setdefault(key, []).append(row)
    lines = ["| granted by | API group | resource | verbs | granted when | needed by | for |",
             "|---|---|---|---|---|---|---|"]
    for (scope, group, resource, names), rows in sorted(merged_rows.items()):
        verbs = ", ".join(f"`{v}`" for v in sorted({v for r in rows for v in r["verbs"]}))
        when = [c for c, key in (("OpenShift", "openshiftOnly"),
                                 ("`allowDisruptive`", "disruptiveOnly"))
                if all(r[key] for r in rows)]
        platforms = sorted({p for r in rows for p in r.get("platforms", ())})
        if platforms and all(r.get("platforms") for r in rows):
            when.append(f"`platform: {' or '.join(platforms)}`")
        needed = sorted({r["neededBy"] for r in rows})
        by = ", ".join(n if n == MACHINERY else f"[`{n}`](checks/{n}.md)" for n in needed)
        why = "; ".join(dict.fromkeys(r["why"] for r in rows))
        lines.append(f"| {where[scope]} | {f'`{group}`' if group else 'core'} | "
                     f"{_resource_cell(resource, names)} | "
                     f"{verbs} | {' and '.join(when) or 'always'} | {by} | {why} |")
    return "\n".join(lines)


def _between(current: str, begin: str, end: str, table: str) -> str:
    if begin not in current or end not in current:
        raise ValueError(f"{DOCS_FILE.name}: the markers of a permissions table are missing")
    before, _, rest = current.partition(begin)
    after = rest.partition(end)[2]
    return f"{before}{begin}\n{table}\n{end}{after}"


def synced_docs(current: str, checks: Sequence[Check]) -> str:
    text = _between(current, DOCS_BEGIN, DOCS_END, permissions_table(c.meta for c in checks))
    return _between(text, WRITE_DOCS_BEGIN, WRITE_DOCS_END, write_permissions_table(checks))


def main(argv: list[str]) -> int:
    from registry_doctor.checks import all_checks

    checks = list(all_checks().values())
    wanted = {READ_ACCESS_FILE: read_access_text(c.meta for c in checks),
              WRITE_ACCESS_FILE: write_access_text(checks),
              DOCS_FILE: synced_docs(DOCS_FILE.read_text(), checks)}
    return sync(wanted, argv, "python -m registry_doctor.doctor.rbac")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
