"""s3-reachability: a registry on S3 can reach its bucket with its own credentials.

"Deploying a Registry on Existing Clusters" (OpenShift Origin 3.x docs),
"Use Amazon S3 as a Storage Back-end": since distribution 2.2 the S3 driver does not
contact S3 at start-up, so a wrong bucket, key or region shows only when a push or pull fails
(distribution `registry/storage/driver/s3-aws/s3.go`). The check judges the S3 parameters
statically and, when probes run, reaches the bucket as the registry would (doctor/probes/s3.py).
"""

from __future__ import annotations

from dataclasses import asdict, replace

from registry_doctor.doctor.check import CheckContext, NotEvaluable
from registry_doctor.doctor.fix.planners.storage import plan_s3_reachability as plan  # noqa: F401 (its planner)
from registry_doctor.doctor.model import (
    CheckMeta,
    CheckOption,
    Remediation,
    Resource,
    Result,
    Severity,
    Status,
)
from registry_doctor.doctor.probe_results import S3Reach
from registry_doctor.doctor.registryconfig import CONFIG_KINDS, S3_DRIVERS

META = CheckMeta(
    id="s3-reachability",
    title="S3 bucket reachable with the registry's credentials",
    severity=Severity.CRIT,
    kinds=CONFIG_KINDS,
    probes=("s3",),
    description=(
        "Only when the storage driver is s3. Statically: the S3 parameters the registry "
        "checks at start-up (region, bucket, booleans, chunk sizes, storage class, object "
        "ACL, v4auth on AWS) and settings it starts with but should not (keyid without "
        "encrypt, half a key pair, region and endpoint in different regions). Live (probes "
        "on): DNS, TCP and TLS to the endpoint, HeadBucket and a one-key list under "
        "rootdirectory signed with the registry's credentials, the bucket's region against "
        "the configured one, and with --s3-write-probe a put and delete of one marker object. "
        "Each failure is named: DNS, connection refused, timeout, TLS verification, "
        "InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied, NoSuchBucket, region "
        "mismatch."
    ),
    remediation=(
        "Correct the S3 setting the finding names in the file or variable it comes from "
        "(`$cli edit secret/<name> -n $namespace` for a mounted config.yml, `$cli set env "
        "$registry -n $namespace REGISTRY_STORAGE_S3_<NAME>=...` for overrides), then "
        "`$cli $rollout $registry -n $namespace`."
    ),
    platform_remediation={
        "openshift4": (
            "Correct the S3 setting the finding names in the operator's Config CR "
            "(`$cli edit $owner`: `spec.storage.s3` bucket, region, regionEndpoint, trustedCA), "
            "or the keys in secret image-registry-private-configuration-user in $namespace "
            "(REGISTRY_STORAGE_S3_ACCESSKEY, REGISTRY_STORAGE_S3_SECRETKEY), which the operator "
            "prefers to the cloud credentials it is given; it rolls the registry out."),
    },
    options=(
        CheckOption("--s3-write-probe", "s3_write_probe", "Also put and delete one marker "
                    "object in the bucket.", type="bool", default=False),
    ),
)

# Probe failure reason -> (what it means, how to fix it); {names} come from the probe data.
FAILURES: dict[str, tuple[str, str]] = {
    "dns": ("the S3 endpoint's name does not resolve: {detail}",
            "Correct storage.s3.regionendpoint, or fix DNS for that name on the nodes."),
    "refused": ("nothing accepts connections at the S3 endpoint: {detail}",
                "Check the port in storage.s3.regionendpoint and that the S3 service runs; "
                "set secure: false only if it serves plain HTTP."),
    "connect": ("the S3 endpoint cannot be reached: {detail}",
                "Check routes, proxies and egress firewall rules between the nodes and the "
                "endpoint."),
    "timeout": ("the S3 endpoint does not answer in time: {detail}",
                "Check egress firewall rules and proxies between the nodes and {endpoint}; the "
                "registry's requests hang the same way."),
    "tls-verify": ("the S3 endpoint's TLS certificate is not trusted: {detail}",
                   "Give the endpoint a certificate from a CA the registry image trusts, or "
                   "add that CA to the image; the OpenShift 3.11 registry ignores skipverify."),
    "tls": ("TLS to the S3 endpoint fails: {detail}",
            "If the endpoint serves plain HTTP, set storage.s3.secure: false or an http:// "
            "regionendpoint."),
    "InvalidAccessKeyId": ("S3 does not know the access key ({credentials}): {detail}",
                           "Put a valid access key and its secret key where the registry "
                           "reads them: {credentials}."),
    "SignatureDoesNotMatch": ("the secret key does not match the access key ({credentials}): "
                              "{detail}",
                              "Correct the secret key in {credentials}; check also that "
                              "storage.s3.region is the bucket's region."),
    "AccessDenied": ("the credentials may not use bucket {bucket} ({credentials}): {detail}",
                     "Grant the key s3:ListBucket, s3:GetBucketLocation and "
                     "s3:ListBucketMultipartUploads on the bucket, and s3:PutObject, "
                     "s3:GetObject, s3:DeleteObject, s3:ListMultipartUploadParts and "
                     "s3:AbortMultipartUpload on its objects."),
    "NoSuchBucket": ("bucket {bucket} does not exist at {endpoint}: {detail}",
                     "Create the bucket in region {region} or correct storage.s3.bucket; "
                     "images pushed before are gone with it."),
    "region-mismatch": ("bucket {bucket} is in {bucket_region}, the registry signs for "
                        "{region}: {detail}",
                        "Set storage.s3.region to {bucket_region} (and regionendpoint, if "
                        "set, to that region's endpoint)."),
    "s3-error": ("S3 refuses the registry's requests: {detail}",
                 "See the S3 error code; the registry's own requests fail the same way."),
}


def evaluate(ctx: CheckContext) -> Result:
    workload = ctx.registry()
    config = ctx.configuration()
    if config.unresolved:
        raise NotEvaluable(config.unresolved)
    if config.driver is None:
        cause = config.fatal[0] if config.fatal else "no storage driver"
        raise NotEvaluable(f"cannot tell the storage driver: {cause} (see registry-config)")
    resources = [workload.resource, *config.resources]
    if config.driver not in S3_DRIVERS:
        return ctx.result(Status.SKIP, f"storage driver is {config.driver}, not s3",
                          [config.source_line], resources)
    s3 = [p for p in config.problems if p.scope == "s3"]
    details = [config.source_line, *config.settings(), *map(str, s3)]
    fatal = [p for p in s3 if p.fatal]
    if fatal:
        more = f" (and {len(fatal) - 1} more, below)" if len(fatal) > 1 else ""
        return ctx.failed(f"{fatal[0]}{more}", details, resources)
    if config.fatal:
        raise NotEvaluable(f"the registry would not start: {config.fatal[0]} (see "
                           "registry-config)")
    probe = ctx.probe("s3", S3Reach)
    if probe is None:
        status = Status.WARN if s3 else Status.OK
        return ctx.result(status, f"S3 settings {'need attention' if s3 else 'are valid'}; "
                          "the bucket was not probed (probes are off: they run against a "
                          "cluster, or with --probes)", details, resources)
    if probe.error:
        raise NotEvaluable(f"the S3 probe could not run: {probe.error}")
    metrics = {"s3_probe_duration_seconds": probe.duration_seconds}  # docs/exporter.md
    return _judge_probe(ctx, probe.data, details + _step_lines(probe.data), resources, bool(s3),
                        metrics)


def _judge_probe(ctx: CheckContext, data: S3Reach, details: list[str],
                 resources: list[Resource], warned: bool, metrics: dict[str, float]) -> Result:
    failure = data.failure
    names = {**asdict(data), "detail": failure.detail if failure else ""}
    if failure and failure.reason == "no-credentials":
        raise NotEvaluable(f"reached {data.endpoint} but cannot sign as the registry: "
                           f"credentials: {data.credentials}")
    if failure:
        meaning, fix = FAILURES[failure.reason]
        result = ctx.failed(f"{failure.step} failed: {meaning.format(**names)}", details,
                            resources, metrics)
        return replace(result, remediation=Remediation(fix.format(**names), META.docs))
    if data.bucket_region and data.bucket_region != data.region:
        meaning, fix = FAILURES["region-mismatch"]
        names["detail"] = f"{data.endpoint} accepted the requests, AWS S3 would not"
        result = ctx.result(Status.WARN, meaning.format(**names), details, resources, metrics)
        return replace(result, remediation=Remediation(fix.format(**names), META.docs))
    wrote = " and wrote a marker" if data.write_probe else ""
    summary = (f"bucket {data.bucket} at {data.endpoint} answered{wrote} in "
               f"{sum(s.seconds for s in data.steps):.2f}s")
    if warned:
        return ctx.result(Status.WARN, f"{summary}, but S3 settings need attention", details,
                          resources, metrics)
    return ctx.result(Status.OK, summary, details, resources, metrics)


def _step_lines(data: S3Reach) -> list[str]:
    steps = ", ".join(f"{s.step} {'ok' if s.ok else 'FAILED'} {s.seconds:.3f}s"
                      for s in data.steps)
    return [f"probe of {data.endpoint} bucket {data.bucket} prefix "
            f"'{data.prefix}' with credentials from {data.credentials}: {steps}"]
