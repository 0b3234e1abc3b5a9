"""Planners for the storage checks: ephemeral-storage, nfs-scaling, s3-reachability.

The registry's store is the volume holding the filesystem driver's root directory of its
effective configuration (doctor.registryconfig), the one the checks judge.
"""

from __future__ import annotations

import copy
from typing import Any

from registry_doctor.doctor.config import REGISTRY
from registry_doctor.doctor.fix.model import DISRUPTIVE, SAFE, Action, Permission
from registry_doctor.doctor.fix.permissions import PATCH_OPERATOR_CONFIG, PATCH_WORKLOAD, REDEPLOY
from registry_doctor.doctor.fix.plan import PlanContext, planner
from registry_doctor.doctor.platform.store import (
    EACH_POD_ITS_OWN,
    ONE_POD_ONLY,
    POD_LIFETIME,
    SHARED_NFS,
    stalled_rollout,
)
from registry_doctor.doctor.registryconfig import CONFIG_KINDS
from registry_doctor.doctor.workload import Workload, as_dict, as_list

CREATE_CLAIM = Permission("", "persistentvolumeclaims", ("get", "create"),
                          "ephemeral-storage: create the registry's claim", disruptive=True)
PATCH_SERVICE = Permission("", "services", ("get", "patch"),
                           "nfs-scaling: sessionAffinity ClientIP on the registry Service",
                           names=(REGISTRY,))
OPERATOR_CONFIG = "registry-operator-config"  # read where an operator owns the configuration
LOST_IMAGES = ("the images in the pods' emptyDir are lost: the new pods start with an empty "
               "store; push them again, or copy them out first (skopeo copy)")


def store_volume(ctx: PlanContext, workload: Workload) -> tuple[int, dict[str, Any]] | None:
    """The registry's store volume and its index in spec.template.spec.volumes."""
    store = ctx.installation.store()
    for index, volume in enumerate(as_list(workload.pod_spec.get("volumes"))):
        if store is not None and as_dict(volume).get("name") == store.name:
            return index, as_dict(volume)
    return None


@planner(*PATCH_WORKLOAD, *REDEPLOY, CREATE_CLAIM, PATCH_OPERATOR_CONFIG,
         reads=(*CONFIG_KINDS, "persistentvolumeclaims", OPERATOR_CONFIG))
def plan_ephemeral_storage(ctx: PlanContext) -> list[Action]:
    """Replace the registry's emptyDir store with a claim: an existing one (--claim-name) or
    one created (--claim-size, --storage-class; ReadWriteMany when several pods share it).
    Where an operator owns the configuration: its spec.storage.pvc."""
    workload = ctx.registry()
    found = store_volume(ctx, workload) if workload else None
    if workload is None or found is None or "emptyDir" not in found[1]:
        return []
    index, volume = found
    options = ctx.options
    shared = workload.replicas is None or workload.replicas > 1
    name = options.claim_name or f"{workload.name}-claim"
    claim = ctx.snapshot.named("persistentvolumeclaims", name)
    actions: list[Action] = []
    if ctx.operated:
        return [_operator_claim(ctx, workload, shared)]
    if claim is None and not options.claim_size:
        return [ctx.manual("choose-claim", f"choose the claim for {workload.ref}'s store",
                           [f"rerun with --claim-name of an existing claim, or --claim-size "
                            f"(e.g. 20Gi, and --storage-class) to create {name}"])]
    if claim is not None:
        modes = ", ".join(map(str, as_list(as_dict(claim.get("spec")).get("accessModes"))))
        if shared and "ReadWriteMany" not in modes:
            return [ctx.manual("choose-claim", f"pvc/{name} cannot hold {workload.ref}'s store",
                               [f"pvc/{name} is {modes or 'without access modes'}: the pods "
                                f"of {workload.ref} share it and need ReadWriteMany; choose "
                                "another claim"])]
    else:
        claim = _claim(name, workload.namespace, options.claim_size or "",
                       options.storage_class, shared)
        actions.append(ctx.create(claim, "create-claim", f"create pvc/{name} "
                                  f"({options.claim_size}, "
                                  f"{claim['spec']['accessModes'][0]})", risk=DISRUPTIVE,
                                  redeploy=workload))
    after = copy.deepcopy(workload.obj)
    after["spec"]["template"]["spec"]["volumes"][index] = {
        "name": volume["name"], "persistentVolumeClaim": {"claimName": name}}
    notes = [LOST_IMAGES]
    if not shared and workload.rolling:
        after["spec"]["strategy"] = _recreate(workload)
        notes.append(f"the claim is ReadWriteOnce: the strategy becomes Recreate, since a "
                     f"{workload.rolling} one stalls when the new pod lands on another node "
                     "(nfs-scaling warns of it)")
    actions.append(ctx.patch(workload.obj, after, "use-claim",
                             f"store {workload.ref}'s images on pvc/{name} instead of the "
                             f"emptyDir of volume {volume['name']}", risk=DISRUPTIVE,
                             redeploy=workload, notes=notes))
    return actions


def _operator_claim(ctx: PlanContext, workload: Workload, shared: bool) -> Action:
    """spec.storage.pvc of the operator's Config: the claim named by --claim-name, else the
    one the operator creates itself for an empty `claim` (image-registry-storage,
    ReadWriteMany, 100Gi: cluster-image-registry-operator `pkg/storage/pvc/pvc.go`). It
    accepts a ReadWriteOnce claim only with one replica and the Recreate strategy."""
    owner, name = ctx.installation.owner, ctx.options.claim_name
    claim = ctx.snapshot.named("persistentvolumeclaims", name) if name else None
    if name and claim is None:
        return ctx.manual("choose-claim", f"pvc/{name} does not exist in {workload.namespace}",
                          [f"create it, or rerun without --claim-name: the operator then "
                           f"creates its own ReadWriteMany claim for {owner}"])
    modes = [str(m) for m in as_list(as_dict((claim or {}).get("spec")).get("accessModes"))]
    spec: dict[str, Any] = {"storage": {"emptyDir": None, "pvc": {"claim": name or ""}}}
    notes = [LOST_IMAGES]
    if claim is not None and "ReadWriteMany" not in modes:
        if shared:
            return ctx.manual("choose-claim", f"pvc/{name} cannot hold {workload.ref}'s store",
                              [f"pvc/{name} is {', '.join(modes) or 'without access modes'}: "
                               "the operator refuses it for more than one replica; choose a "
                               "ReadWriteMany claim"])
        spec["rolloutStrategy"] = "Recreate"
        notes.append("the claim is ReadWriteOnce: the operator accepts it only with the "
                     "Recreate rollout strategy, set with it")
    where = f"pvc/{name}" if name else "a claim the operator creates (image-registry-storage)"
    return ctx.configure(spec, "use-claim", f"store the images on {where} instead of the "
                         f"emptyDir, through {owner} spec.storage", risk=DISRUPTIVE, notes=notes)


def _claim(name: str, namespace: str, size: str, storage_class: str | None,
           shared: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteMany" if shared else "ReadWriteOnce"],
                            "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"app.kubernetes.io/managed-by": "registry-doctor"}},
            "spec": spec}


@planner(*PATCH_WORKLOAD, PATCH_SERVICE, PATCH_OPERATOR_CONFIG,
         reads=(*CONFIG_KINDS, "persistentvolumeclaims", "persistentvolumes", "storageclasses",
                "services", OPERATOR_CONFIG))
def plan_nfs_scaling(ctx: PlanContext) -> list[Action]:
    """Several registry pods on storage they cannot share: scale to one. On shared NFS: pin
    each client to one pod (Service sessionAffinity ClientIP). One pod on a store that
    attaches to one node, with a rolling strategy: Recreate."""
    workload, store = ctx.registry(), ctx.installation.store()
    stalled = stalled_rollout(ctx.installation)
    if workload is not None and stalled is not None:
        return [recreate_strategy(ctx, workload, stalled.what)]
    if workload is None or store is None or not (workload.replicas or 0) > 1:
        return []
    sharing = store.sharing(ctx.snapshot)
    verdict = sharing.verdict
    if verdict in (EACH_POD_ITS_OWN, ONE_POD_ONLY):
        data_lost = store.type in POD_LIFETIME
        kind = store.type if verdict == EACH_POD_ITS_OWN else \
            f"{sharing.what}, a {sharing.block} block device" if sharing.block else \
            f"{', '.join(store.access_modes) or 'no access modes'} claim {store.claim_name}"
        notes = [f"the images only the removed pods held in their {store.type} are lost"] \
            if data_lost else _kept_claims(workload, store.name)
        summary = f"scale {workload.ref} from {workload.replicas} to 1 replica: its store " \
                  f"({kind}) cannot be shared"
        risk = DISRUPTIVE if data_lost else SAFE
        if ctx.operated:
            return [ctx.configure({"replicas": 1}, "scale-to-one", f"{summary} (through "
                                  f"{ctx.installation.owner} spec.replicas)", risk=risk,
                                  notes=notes)]
        after = copy.deepcopy(workload.obj)
        after["spec"]["replicas"] = 1
        return [ctx.patch(workload.obj, after, "scale-to-one", summary, risk=risk, notes=notes)]
    service = ctx.installation.service
    if ctx.operated:  # the operator owns the Service and reverts a sessionAffinity set there
        return []
    if verdict != SHARED_NFS or service is None \
            or as_dict(service.get("spec")).get("sessionAffinity") == "ClientIP":
        return []
    after = copy.deepcopy(service)
    after["spec"]["sessionAffinity"] = "ClientIP"
    return [ctx.patch(service, after, "session-affinity",
                      f"set sessionAffinity ClientIP on svc/{service['metadata']['name']}: "
                      "each client keeps talking to one registry pod",
                      notes=["also export the NFS share with no_wdelay (OpenShift 3.x docs, "
                             'registry "Known Issues")'])]


def _kept_claims(workload: Workload, volume: str) -> list[str]:
    """Scaling a StatefulSet down keeps the removed pods' claims (its
    persistentVolumeClaimRetentionPolicy whenScaled is Retain unless set to Delete)."""
    if volume not in workload.claim_templates:
        return []
    removed = workload.pod_claim_names(volume)[1:]
    return [f"the claims of the removed pods ({', '.join(removed)}) are kept unless "
            "spec.persistentVolumeClaimRetentionPolicy.whenScaled is Delete; the images only "
            "they hold are no longer served"]


def recreate_strategy(ctx: PlanContext, workload: Workload, store: str) -> Action:
    """Stop the old pod before starting the new one, so it releases a volume that attaches to
    one node. Changing the strategy alone starts no rollout."""
    summary = f"use the Recreate strategy for {workload.ref}: its store ({store}) attaches " \
              "to one node, so a new pod must wait for the old one to stop"
    notes = ["the registry is down while the new pod starts, at each rollout"]
    if ctx.operated:
        return ctx.configure({"rolloutStrategy": "Recreate"}, "recreate-strategy",
                             f"{summary} (through {ctx.installation.owner} spec.rolloutStrategy)",
                             notes=notes)
    after = copy.deepcopy(workload.obj)
    after["spec"]["strategy"] = _recreate(workload)
    return ctx.patch(workload.obj, after, "recreate-strategy", summary, notes=notes)


def _recreate(workload: Workload) -> dict[str, Any]:
    """The workload's strategy as Recreate, keeping the fields both strategy types share."""
    kept = {k: v for k, v in as_dict(workload.spec.get("strategy")).items()
            if k in ("resources", "activeDeadlineSeconds", "labels", "annotations")}
    return {**kept, "type": "Recreate"}


@planner(*REDEPLOY, reads=CONFIG_KINDS)
def plan_s3_reachability(ctx: PlanContext) -> list[Action]:
    """Credentials and endpoints are for a person to correct; a redeploy then picks them up.
    Where an operator owns the configuration, they are corrected there and it rolls out."""
    workload = ctx.registry()
    if ctx.operated:
        owner = ctx.installation.owner
        return [ctx.manual("correct-s3-settings", "correct the registry's S3 settings", [
            f"correct the S3 settings the check names in {owner} spec.storage.s3 "
            f"(`oc edit {owner}`), or the keys in secret "
            f"image-registry-private-configuration-user in {ctx.installation.namespace}",
            "the operator rolls the registry out with them"])]
    steps = ["correct the S3 settings the check names (region, regionendpoint, bucket, "
             "credentials) in the registry's configuration secret or env",
             "then redeploy the registry: registry-doctor check --fix --yes --fix-only "
             "s3-reachability"]
    actions = [ctx.manual("correct-s3-settings", "correct the registry's S3 settings", steps)]
    if workload is not None:
        actions.append(ctx.redeploy(workload, "redeploy", f"redeploy {workload.ref} to pick up "
                                    "a corrected configuration", optional=True))
    return actions
