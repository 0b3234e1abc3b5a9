"""Write doctor/snapshot/kube_schema.json: the field types of every kind in the snapshot
catalogue, as the API server decodes them, for checking dump files (doctor/snapshot/shape.py).

Kubernetes kinds come from the models of the `kubernetes` client (its OpenAPI types); the
OpenShift 3.11 kinds, which that client does not know, are declared below from openshift/api
(release-3.11: apps/v1, route/v1, oauth/v1). Run it after adding a kind to the catalogue:

    python scripts/gen-kube-schema.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from kubernetes import client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from registry_doctor.doctor.snapshot.kinds import CATALOGUE  # noqa: E402
from registry_doctor.doctor.snapshot.shape import SCHEMA_FILE  # noqa: E402

SCALARS = {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
           "datetime": "string", "date": "string", "bytes": "string"}  # bytes: base64 text
# resource.Quantity is a string in the client's models; the API server also takes a number.
QUANTITY_MAPS = {"limits", "requests", "overhead", "allocatedResources", "default",
                 "defaultRequest", "max", "min", "maxLimitRequestRatio", "capacity"}
QUANTITIES = {"sizeLimit", "quantity"}
# `object` in the models is IntOrString everywhere in these kinds except managed fields.
FREE_FORM = {("V1ManagedFieldsEntry", "fieldsV1")}

# Kinds whose client model is not named V1<kind> (core/v1 Event is CoreV1Event).
MODEL_NAMES = {"Event": "CoreV1Event"}

OPENSHIFT = {
    "kinds": {"DeploymentConfig": "DeploymentConfig", "Route": "Route",
              "OAuthClient": "OAuthClient", "Config": "ImageRegistryConfig",
              "ImagePruner": "ImagePruner", "ClusterOperator": "ClusterOperator"},
    "types": {
        # OpenShift 4 (openshift/api imageregistry/v1 types.go, types_imagepruner.go and
        # config/v1 types_cluster_operator.go): the fields the checks read, the rest any.
        "ImageRegistryConfig": {"apiVersion": "string", "kind": "string",
                                "metadata": "V1ObjectMeta", "spec": "ImageRegistrySpec",
                                "status": "OperatorStatus"},
        "ImageRegistrySpec": {"managementState": "string", "logLevel": "string",
                              "operatorLogLevel": "string", "httpSecret": "string",
                              "proxy": "any", "storage": "any", "readOnly": "boolean",
                              "disableRedirect": "boolean", "requests": "any",
                              "defaultRoute": "boolean", "routes": "[any]",
                              "replicas": "integer", "logging": "integer",
                              "resources": "V1ResourceRequirements",
                              "nodeSelector": "{string}", "tolerations": "[any]",
                              "rolloutStrategy": "string", "affinity": "any",
                              "topologySpreadConstraints": "[any]",
                              "unsupportedConfigOverrides": "any",
                              "observedConfig": "any"},
        "OperatorStatus": {"conditions": "[OperatorCondition]", "readyReplicas": "integer",
                           "storage": "any", "storageManaged": "boolean",
                           "observedGeneration": "integer", "version": "string",
                           "generations": "[any]"},
        "OperatorCondition": {"type": "string", "status": "string", "reason": "string",
                              "message": "string", "lastTransitionTime": "string"},
        "ImagePruner": {"apiVersion": "string", "kind": "string", "metadata": "V1ObjectMeta",
                        "spec": "any", "status": "OperatorStatus"},
        "ClusterOperator": {"apiVersion": "string", "kind": "string",
                            "metadata": "V1ObjectMeta", "spec": "any",
                            "status": "ClusterOperatorStatus"},
        "ClusterOperatorStatus": {"conditions": "[OperatorCondition]", "versions": "[any]",
                                  "relatedObjects": "[any]", "extension": "any"},
        "DeploymentConfig": {"apiVersion": "string", "kind": "string",
                             "metadata": "V1ObjectMeta", "spec": "DeploymentConfigSpec",
                             "status": "DeploymentConfigStatus"},
        "DeploymentConfigSpec": {"strategy": "any", "minReadySeconds": "integer",
                                 "triggers": "[any]", "replicas": "integer",
                                 "revisionHistoryLimit": "integer", "test": "boolean",
                                 "paused": "boolean", "selector": "{string}",
                                 "template": "V1PodTemplateSpec"},
        "DeploymentConfigStatus": {"latestVersion": "integer", "observedGeneration": "integer",
                                   "replicas": "integer", "updatedReplicas": "integer",
                                   "availableReplicas": "integer",
                                   "unavailableReplicas": "integer", "details": "any",
                                   "conditions": "[any]", "readyReplicas": "integer"},
        "Route": {"apiVersion": "string", "kind": "string", "metadata": "V1ObjectMeta",
                  "spec": "RouteSpec", "status": "any"},
        "RouteSpec": {"host": "string", "subdomain": "string", "path": "string",
                      "to": "RouteTargetReference", "alternateBackends": "[RouteTargetReference]",
                      "port": "RoutePort", "tls": "TLSConfig", "wildcardPolicy": "string"},
        "RouteTargetReference": {"kind": "string", "name": "string", "weight": "integer"},
        "RoutePort": {"targetPort": "intstr"},
        "TLSConfig": {"termination": "string", "certificate": "string", "key": "string",
                      "caCertificate": "string", "destinationCACertificate": "string",
                      "insecureEdgeTerminationPolicy": "string"},
        "OAuthClient": {"apiVersion": "string", "kind": "string", "metadata": "V1ObjectMeta",
                        "secret": "string", "additionalSecrets": "[string]",
                        "respondWithChallenges": "boolean", "redirectURIs": "[string]",
                        "grantMethod": "string", "scopeRestrictions": "[any]",
                        "accessTokenMaxAgeSeconds": "integer",
                        "accessTokenInactivityTimeoutSeconds": "integer"},
    },
}


def field_type(owner: str, field: str, model_type: str, pending: list[str]) -> str:
    if match := re.fullmatch(r"List\[(.+)\]", model_type):
        return f"[{field_type(owner, field, match[1], pending)}]"
    if match := re.fullmatch(r"Dict\[str, (.+)\]", model_type):
        inner = "quantity" if field in QUANTITY_MAPS else field_type(owner, field, match[1],
                                                                     pending)
        return f"{{{inner}}}"
    if model_type == "object":
        return "any" if (owner, field) in FREE_FORM else "intstr"
    if model_type == "str" and field in QUANTITIES:
        return "quantity"
    if model_type in SCALARS:
        return SCALARS[model_type]
    pending.append(model_type)
    return model_type


def model_types(roots: list[str]) -> dict[str, dict[str, str]]:
    types: dict[str, dict[str, str]] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in types:
            continue
        model = getattr(client, name)
        types[name] = {model.attribute_map[attr]: field_type(name, model.attribute_map[attr],
                                                             kind, pending)
                       for attr, kind in sorted(model.openapi_types.items())}
    return types


def main() -> int:
    kinds = dict(OPENSHIFT["kinds"])
    roots = ["V1PodTemplateSpec"]
    for kind in sorted({c.kind for c in CATALOGUE.values()} - set(kinds)):
        model = MODEL_NAMES.get(kind, f"V1{kind}")
        if not hasattr(client, model):
            print(f"no model for kind {kind}: declare it like the OpenShift kinds",
                  file=sys.stderr)
            return 1
        kinds[kind] = model
        roots.append(model)
    schema = {"kinds": dict(sorted(kinds.items())),
              "types": dict(sorted({**model_types(roots), **OPENSHIFT["types"]}.items()))}
    SCHEMA_FILE.write_text(json.dumps(schema, indent=0, sort_keys=False) + "\n")
    print(f"wrote {SCHEMA_FILE.relative_to(REPO)}: {len(kinds)} kinds, "
          f"{len(schema['types'])} types")
    return 0


if __name__ == "__main__":
    sys.exit(main())
