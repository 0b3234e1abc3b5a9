"""Probe: how full the registry's store claim is and how fast it fills, from the kubelet's
volume statistics.

The kubelet exports, per mounted claim, `kubelet_volume_stats_used_bytes`, `_capacity_bytes`,
`_inodes_used` and `_inodes` with the labels `namespace` and `persistentvolumeclaim`
(kubernetes `pkg/kubelet/metrics/collectors/volume_stats.go`); a Prometheus that scrapes the
kubelets has them (OpenShift 3.11 and 4 cluster monitoring, kube-prometheus). Sources, the
first one configured:

- `--prometheus-url`: two instant queries of its HTTP API (`/api/v1/query`): the four
  statistics of the claim, and `deriv(kubelet_volume_stats_used_bytes[1d])`, the last day's
  growth as Prometheus fits it (least squares);
- `--node-stats` (against a cluster): the summary API of the kubelets that run the registry's
  pods, through the API server (`nodes/<node>/proxy/stats/summary`: get on nodes/proxy, which
  reaches every kubelet API, so the admin opts in); one sample, no growth;
- a dump (`--from-dir`): `prometheus/kubelet_volume_stats.json`, the answer of that HTTP API
  to an instant query of the four statistics, either as they are now (a vector) or over the
  last day (`...[1d]`, a matrix: the growth is then fitted here as `deriv` fits it); else
  `stats-summary/<node>.json`, the kubelets' summary API answers (no growth).

The answer is a `VolumeMeasure`: the claim's `VolumeStats`, or why there are none.
"""

from __future__ import annotations

import json
import math
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.kube import without_url_credentials
from registry_doctor.doctor.probes import ProbeError
from registry_doctor.doctor.probes.http_get import get
from registry_doctor.doctor.snapshot import Snapshot
from registry_doctor.doctor.volumestats import (
    SAVED_FILE,
    SUMMARY_FOLDER,
    VolumeMeasure,
    VolumeStats,
)

STATISTICS = ("used_bytes", "capacity_bytes", "inodes_used", "inodes")
METRIC_PREFIX = "kubelet_volume_stats_"
DAY = 86400.0


def run(snapshot: Snapshot, config: RunConfig, timeout: float) -> VolumeMeasure:
    """The claim's statistics, or why there are none when no source is configured;
    ProbeError when the source named cannot answer for the claim."""
    store = snapshot.installation().store()
    if store is None or store.claim_name is None:
        return VolumeMeasure(unmeasured="the store is not a claim")
    namespace, claim = config.namespace, store.claim_name
    if config.prometheus_url:
        stats = query_prometheus(config.prometheus_url, namespace, claim, timeout,
                                 prometheus_access(config))
    elif config.node_stats and config.live:
        stats = node_summaries(snapshot, config, claim, timeout)
    elif config.from_dir is not None:
        saved = config.from_dir / SAVED_FILE
        summaries = sorted((config.from_dir / SUMMARY_FOLDER).glob("*.json"))
        if saved.is_file():
            stats = read_saved(saved, namespace, claim)
        elif summaries:
            stats = read_summaries(summaries, namespace, claim)
        else:
            return VolumeMeasure(unmeasured=f"the dump has neither {SAVED_FILE} nor "
                                 f"{SUMMARY_FOLDER}<node>.json")
    else:
        return VolumeMeasure(unmeasured="no --prometheus-url, and --node-stats is off")
    return VolumeMeasure(stats)


def selector(namespace: str, claim: str) -> str:
    return f'namespace="{_quoted(namespace)}",persistentvolumeclaim="{_quoted(claim)}"'


def statistics_query(namespace: str, claim: str) -> str:
    """The four statistics of one claim, one series each (the highest where several kubelets
    report the claim, as for a ReadWriteMany volume mounted on several nodes)."""
    names = "|".join(STATISTICS)
    return (f'max by (__name__) ({{__name__=~"{METRIC_PREFIX}({names})",'
            f'{selector(namespace, claim)}}})')


def growth_query(namespace: str, claim: str) -> str:
    """Bytes per second the claim grew by over the last day, fitted by least squares."""
    return f"max(deriv({METRIC_PREFIX}used_bytes{{{selector(namespace, claim)}}}[1d]))"


@dataclass(frozen=True)
class Access:
    """How requests reach Prometheus: extra headers (a bearer token) and TLS verification."""

    headers: dict[str, str] = field(default_factory=dict, repr=False)
    tls: ssl.SSLContext | None = None  # None: https unverified, as the other probes read

    @property
    def authenticated(self) -> bool:
        return "Authorization" in self.headers


def prometheus_access(config: RunConfig) -> Access:
    """A Prometheus behind an authenticating proxy (OpenShift cluster monitoring's
    `prometheus-k8s`, an oauth-proxy that takes a bearer token, e.g. of an account with
    cluster-monitoring-view) gets the token of --prometheus-token-file, only over https
    verified against --prometheus-ca-file (else the system's CAs)."""
    token_file, ca_file = config.prometheus_token_file, config.prometheus_ca_file
    if token_file is None and ca_file is None:
        return Access()
    try:
        tls = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as error:
        raise ProbeError(f"--prometheus-ca-file {ca_file}: not a readable CA bundle "
                         f"({getattr(error, 'strerror', None) or error})") from None
    if token_file is None:
        return Access(tls=tls)
    if not str(config.prometheus_url).startswith("https://"):
        raise ProbeError("--prometheus-token-file needs an https --prometheus-url: a token is "
                         "never sent in clear")
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ProbeError(f"--prometheus-token-file {token_file}: cannot read it "
                         f"({getattr(error, 'strerror', None) or 'not text'})") from None
    if not token or any(c.isspace() for c in token):
        raise ProbeError(f"--prometheus-token-file {token_file}: not one token")
    return Access({"Authorization": f"Bearer {token}"}, tls)


def query_prometheus(url: str, namespace: str, claim: str, timeout: float,
                     access: Access | None = None) -> VolumeStats:
    """Both queries within `timeout` in all."""
    access = access or Access()
    base = url.rstrip("/")
    shown = without_url_credentials(base)
    deadline = time.monotonic() + timeout
    values: dict[str, tuple[float, float]] = {}
    for sample in _query(base, shown, statistics_query(namespace, claim), deadline, access):
        name = str(sample["metric"].get("__name__", "")).removeprefix(METRIC_PREFIX)
        values[name] = _point(sample.get("value"), shown)
    if "used_bytes" not in values and "inodes_used" not in values:
        raise ProbeError(f"{shown} has no {METRIC_PREFIX}* series for claim {claim} in "
                         f"namespace {namespace}: does it scrape the kubelets, and is the "
                         "claim mounted?")
    growth = _query(base, shown, growth_query(namespace, claim), deadline, access)
    per_second = _point(growth[0].get("value"), shown)[1] if growth else None
    return _stats(f"Prometheus {shown}", values,
                  None if per_second is None else per_second * DAY)


def _query(base: str, shown: str, promql: str, deadline: float,
           access: Access) -> list[dict]:
    answer = get(f"{base}/api/v1/query?{urlencode({'query': promql})}",
                 max(deadline - time.monotonic(), 0.1), headers=access.headers, tls=access.tls)
    if answer.status in (401, 403) or 300 <= answer.status < 400:
        # An authenticating proxy refuses, or sends the browser to its login page.
        raise ProbeError(f"{shown} answered HTTP {answer.status} instead of the query: "
                         + ("it did not accept the token of --prometheus-token-file"
                            if access.authenticated else "it wants credentials (give "
                            "--prometheus-token-file, or a URL that needs none)"))
    try:
        document = json.loads(answer.body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ProbeError(f"{shown}/api/v1/query answered HTTP {answer.status} without a "
                         "Prometheus JSON answer: is it a Prometheus URL?")
    if document.get("status") != "success":
        raise ProbeError(f"{shown} refused the query {promql}: "
                         f"{document.get('errorType', 'error')}: {document.get('error', '')}")
    return _samples(document, shown)


def node_summaries(snapshot: Snapshot, config: RunConfig, claim: str,
                   timeout: float) -> VolumeStats:
    """The claim's volume in the summary API of the kubelets running the registry's pods,
    read through the API server (`/api/v1/nodes/<node>/proxy/stats/summary`, verb get on
    nodes/proxy); the fullest where several nodes mount it."""
    from registry_doctor.doctor.kube import KubeClient, KubeError, Target

    nodes = sorted({str(pod["spec"]["nodeName"]) for pod in snapshot.installation().pods()
                    if isinstance(pod.get("spec"), dict) and pod["spec"].get("nodeName")})
    if not nodes:
        raise ProbeError("no registry pod is scheduled on a node: no kubelet to ask")
    deadline = time.monotonic() + timeout
    found: list[tuple[float, dict[str, Any], str]] = []
    try:
        client = KubeClient(config.kubeconfig, config.context)
        for node in nodes:
            summary = client.request(
                "GET", f"/api/v1/nodes/{quote(node, safe='')}/proxy/stats/summary",
                Target("get", "nodes/proxy", name=node),
                timeout=max(deadline - time.monotonic(), 0.1))
            found += [(float(_number(v.get("usedBytes")) or 0), v, node)
                      for v in summary_volumes(summary, config.namespace, claim)]
    except KubeError as error:
        raise ProbeError(f"the kubelet summary API: {error}") from None
    return _fullest(found, f"the summary API of {', '.join(nodes)}", claim,
                     "the kubelet summary API of node {node} (through the API server)")


def read_summaries(paths: list[Path], namespace: str, claim: str) -> VolumeStats:
    """The claim's volume in summary API answers saved in a dump, one file per node."""
    found: list[tuple[float, dict[str, Any], str]] = []
    for path in paths:
        shown = f"the dump's {SUMMARY_FOLDER}{path.name}"
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ProbeError(f"cannot read {shown}: {error}") from None
        found += [(float(_number(v.get("usedBytes")) or 0), v, shown)
                  for v in summary_volumes(summary, namespace, claim)]
    return _fullest(found, f"the dump's {SUMMARY_FOLDER}", claim, "{node}")


def _fullest(found: list[tuple[float, dict[str, Any], str]], where: str, claim: str,
             source: str) -> VolumeStats:
    """The statistics of the fullest of the claim's volumes (one per node that mounts it)."""
    if not found:
        raise ProbeError(f"{where} has no volume of claim {claim}: is it mounted?")
    _, volume, node = max(found, key=lambda entry: entry[0])
    return VolumeStats(source.format(node=node),
                       *(_number(volume.get(key)) for key in
                         ("usedBytes", "capacityBytes", "inodesUsed", "inodes")), None, None)


def summary_volumes(summary: Any, namespace: str, claim: str) -> list[dict[str, Any]]:
    """The volumes of a kubelet summary (`pods[].volume[]`) that are the claim's."""
    pods = summary.get("pods") if isinstance(summary, dict) else None
    return [volume for pod in (pods if isinstance(pods, list) else []) if isinstance(pod, dict)
            for volume in (pod.get("volume") if isinstance(pod.get("volume"), list) else [])
            if isinstance(volume, dict) and isinstance(volume.get("pvcRef"), dict)
            and (volume["pvcRef"].get("namespace"), volume["pvcRef"].get("name"))
            == (namespace, claim)]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def read_saved(path: Path, namespace: str, claim: str) -> VolumeStats:
    """The claim's statistics in a saved answer of the Prometheus HTTP API."""
    shown = f"the dump's {SAVED_FILE}"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise ProbeError(f"cannot read {shown}: {error}") from None
    if not isinstance(document, dict) or document.get("status") != "success":
        raise ProbeError(f"{shown} is not a successful Prometheus API answer "
                         '({"status": "success", "data": {...}})')
    values: dict[str, tuple[float, float]] = {}
    histories: dict[str, list[tuple[float, float]]] = {}
    for sample in _samples(document, shown):
        labels = sample["metric"]
        if (labels.get("namespace"), labels.get("persistentvolumeclaim")) != (namespace, claim):
            continue
        name = str(labels.get("__name__", "")).removeprefix(METRIC_PREFIX)
        points = ([_point(p, shown) for p in sample.get("values") or []]
                  if "values" in sample else [_point(sample.get("value"), shown)])
        if name not in STATISTICS or not points:
            continue
        if name not in values or points[-1][1] > values[name][1]:
            values[name], histories[name] = points[-1], points
    if not values:
        raise ProbeError(f"{shown} has no {METRIC_PREFIX}* series for claim {claim} in "
                         f"namespace {namespace}")
    return _stats(shown, values, slope(histories.get("used_bytes", [])) * DAY
                  if len(histories.get("used_bytes", [])) > 1 else None)


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of (time, value) points, as PromQL's deriv() fits it."""
    count = len(points)
    mean_t = sum(t for t, _ in points) / count
    mean_v = sum(v for _, v in points) / count
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread if spread else 0.0


def _stats(source: str, values: dict[str, tuple[float, float]],
           growth: float | None) -> VolumeStats:
    def value(name: str) -> float | None:
        return values[name][1] if name in values and math.isfinite(values[name][1]) else None

    return VolumeStats(source, value("used_bytes"), value("capacity_bytes"),
                       value("inodes_used"), value("inodes"),
                       growth if growth is not None and math.isfinite(growth) else None,
                       max((t for t, _ in values.values()), default=None))


def _samples(document: dict[str, Any], shown: str) -> list[dict[str, Any]]:
    data = document.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list) or not all(
            isinstance(s, dict) and isinstance(s.get("metric"), dict) for s in result):
        raise ProbeError(f"{shown}: data.result is not a list of samples with metric labels")
    return result


def _point(value: Any, shown: str) -> tuple[float, float]:
    """A sample `[<unix time>, "<value>"]` as numbers."""
    try:
        time, number = value
        return float(time), float(number)
    except (TypeError, ValueError):
        raise ProbeError(f"{shown}: a sample is not [<time>, \"<value>\"]: {value!r}") from None


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
