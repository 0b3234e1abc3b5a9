"""What a fix may touch: the registry's and its console's own objects, named by configuration.

Names found in the cluster (a DeploymentConfig's OPENSHIFT_OAUTH_CLIENT_ID, a Route's host, the
Secrets a pod template mounts) are never trusted to choose a target: whoever can edit those
objects in the registry namespace could otherwise make the remediation CronJob write where
they cannot (e.g. add their host to the redirect URIs of `openshift-web-console`). Every
planned action passes `confine` (doctor.fix.plan.make_plan), whichever planner made it; the
chart's RBAC names the same objects (`resourceNames`, docs/helm.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from registry_doctor.doctor import config as symbols
from registry_doctor.doctor.config import RunConfig, setting
from registry_doctor.doctor.fix.journal import FAILED, UNFINISHED, VERIFIED, RunRecord
from registry_doctor.doctor.fix.model import (
    CREATE,
    DENIED,
    MANUAL,
    PLANNED,
    Action,
    FixOptions,
    ObjectRef,
)
from registry_doctor.doctor.fix.patch import MISSING
from registry_doctor.doctor.snapshot.kinds import OPERATOR_CONFIG_NAME
from registry_doctor.doctor.workload import WORKLOAD_COLLECTIONS

WORKLOAD_KINDS = frozenset(kind for kind, _ in WORKLOAD_COLLECTIONS.values())
OAUTH_CLIENT = "OAuthClient"
OPERATOR_CONFIG = "Config"  # OpenShift 4: configs.imageregistry.operator.openshift.io
REDIRECT_URIS = "redirectURIs"


@dataclass(frozen=True)
class Allowed:
    """The names one kind may have, and the setting that names them."""

    names: tuple[str, ...]
    setting: str  # "--registry (chart value registry.name)"

    def describe(self, kind: str) -> str:
        names = ", ".join(self.names) if self.names else "none"
        return f"{kind} {names} ({self.setting})"


@dataclass(frozen=True)
class Managed:
    """The objects fixes may change, all in `namespace` but the cluster-scoped OAuthClient and
    OpenShift 4 operator Config."""

    namespace: str
    kinds: dict[str, tuple[Allowed, ...]]
    console_hosts: tuple[str, ...]

    @classmethod
    def of(cls, config: RunConfig, options: FixOptions) -> Managed:
        workloads = (Allowed((config.registry_name,), setting(symbols.REGISTRY)),
                     Allowed((config.console_name,), setting(symbols.CONSOLE)))
        claim = options.claim_name or f"{config.registry_name}-claim"
        return cls(config.namespace, {
            **{kind: workloads for kind in WORKLOAD_KINDS},
            "Service": workloads,
            "Secret": (Allowed(config.registry_secrets, setting(symbols.REGISTRY_SECRETS)),
                       Allowed(config.console_secrets, setting(symbols.CONSOLE_SECRETS))),
            "PersistentVolumeClaim": (Allowed((claim,), "--claim-name, default <registry>-claim"),),
            OAUTH_CLIENT: (Allowed((config.console_oauth_client,),
                                   setting(symbols.CONSOLE_OAUTH_CLIENT)),),
            # Where OpenShift 4's fixes are made: the operator's one Config, cluster-scoped.
            OPERATOR_CONFIG: (Allowed((OPERATOR_CONFIG_NAME,), "the image registry operator's "
                                      "configuration, OpenShift 4"),),
        }, tuple(config.console_hosts))

    def refusal(self, ref: ObjectRef) -> str | None:
        """Why `ref` is not an object fixes may touch, or None when it is."""
        allowed = self.kinds.get(ref.kind)
        if allowed is None:
            return f"{ref} is of a kind no fix of registry-doctor changes"
        if ref.namespace not in (None, self.namespace):
            return (f"{ref} is outside the registry's namespace {self.namespace} "
                    "(--namespace, chart value registry.namespace)")
        if any(ref.name in a.names for a in allowed):
            return None
        return (f"{ref} is not one of the objects registry-doctor manages: "
                + "; ".join(a.describe(ref.kind) for a in allowed))

    def redirect_refusal(self, action: Action) -> str | None:
        """An OAuthClient change may only add redirect URIs on the configured console hosts."""
        for change in action.changes:
            if change.path[:1] != (REDIRECT_URIS,):
                return f"it changes {'.'.join(map(str, change.path))} of {action.target}; " \
                       f"a fix may only add to its {REDIRECT_URIS}"
            added = change.new if isinstance(change.new, list) else [change.new]
            kept = change.old if isinstance(change.old, list) else [change.old]
            removed = [uri for uri in kept if uri is not MISSING and uri not in added]
            if removed:
                return (f"it would remove {', '.join(map(str, removed))} from the "
                        f"{REDIRECT_URIS} of {action.target}; a fix may only add to them")
            for uri in added:
                if uri is MISSING or uri in kept:
                    continue
                host = urlsplit(str(uri)).hostname or ""
                if host not in self.console_hosts:
                    configured = ", ".join(self.console_hosts) or "none"
                    return (f"it would register {uri} with {action.target}: host {host or '?'} "
                            f"is not a configured console host ({configured}; --console-host, "
                            "chart value registry.consoleHosts)")
        return None


def refusal(action: Action, managed: Managed) -> str | None:
    """Why the action may not be applied, naming the object and where its name came from."""
    for ref in (action.target, action.redeploy):
        if ref is None or action.operation == MANUAL:
            continue
        why = managed.refusal(ref)
        if why:
            return why
    if action.target is not None and action.target.kind == OAUTH_CLIENT:
        return managed.redirect_refusal(action)
    return None


def confine_journal(runs: Iterable[RunRecord], config: RunConfig, options: FixOptions
                    ) -> list[RunRecord]:
    """The runs whose unfinished or standing units would write outside the set, those units
    marked failed (so neither recovery nor `rollback` writes for them). The journal is a
    Secret in the registry namespace: whoever may write it must not steer a run elsewhere."""
    managed = Managed.of(config, options)
    touched = []
    for run in runs:
        for unit in run.units:
            refs = [*(w.object for w in unit.writes if w.operation != CREATE), *unit.workloads]
            why = next((r for r in map(managed.refusal, refs) if r), None)
            if why and unit.state in (*UNFINISHED, VERIFIED):
                unit.state, unit.message = FAILED, f"refused: {why} (named by the journal)"
                touched.append(run)
    return list({id(run): run for run in touched}.values())


def refused_message(why: str, named_by: str) -> str:
    return f"refused: {why}" + (f"; {named_by}" if named_by else "")


def confine(actions: Iterable[Action], config: RunConfig, options: FixOptions) -> list[Action]:
    """Every planned action whose targets are outside the managed set, refused (denied)."""
    managed = Managed.of(config, options)
    confined = []
    for action in actions:
        why = refusal(action, managed) if action.state == PLANNED else None
        if why:
            action = action.moved(DENIED, refused_message(why, action.named_by))
        confined.append(action)
    return confined
