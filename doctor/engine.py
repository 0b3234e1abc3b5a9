"""The engine: select checks, collect one snapshot, run probes, evaluate, return one report.

The CLI and the exporter are thin shells over `run()`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from registry_doctor.checks import all_checks
from registry_doctor.doctor import acknowledge
from registry_doctor.doctor.check import (
    Check,
    CheckContext,
    NotApplicable,
    NotEvaluable,
    ProbeResult,
)
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import Report, Result, Status
from registry_doctor.doctor.platform import adapter, choose
from registry_doctor.doctor.probes import ProbeError, probe_function, selected_probes
from registry_doctor.doctor.snapshot import Snapshot, Source, collect
from registry_doctor.doctor.snapshot.kinds import LOG_COLLECTIONS, closure
from registry_doctor.doctor.snapshot.redact import redact_result

log = logging.getLogger(__name__)


class UsageError(ValueError):
    """The caller asked for something that does not exist (e.g. an unknown check id)."""


def select_checks(include: Sequence[str] = (), exclude: Sequence[str] = (),
                  config: RunConfig | None = None) -> list[Check]:
    """The checks to run: `include` (default: all, opt-in ones when their flag is set)
    minus `exclude`. Excluding all of them is a usage error: a run of no check would exit
    3, "nothing could be judged", which Nagios and cron read as a cluster they cannot see."""
    checks = all_checks()
    unknown = sorted((set(include) | set(exclude)) - set(checks))
    if unknown:
        raise UsageError(f"unknown check id: {', '.join(unknown)} "
                         f"(known: {', '.join(checks)})")
    config = config or RunConfig()
    chosen = [checks[i] for i in dict.fromkeys(include)] if include else [
        c for c in checks.values() if not c.meta.opt_in or getattr(config, c.meta.opt_in)]
    selected = [c for c in chosen if c.meta.id not in set(exclude)]
    if not selected:
        among = "every check --check names" if include else "every check that runs by default"
        raise UsageError(f"no check left to run: --skip {', '.join(sorted(set(exclude)))} "
                         f"removes {among}")
    return selected


def open_source(config: RunConfig) -> Source:
    """The dump folder, or the cluster through the client layer (imported only then)."""
    if config.from_dir is not None:
        from registry_doctor.doctor.snapshot.offline import DumpSource

        return DumpSource(config.from_dir)
    from registry_doctor.doctor.kube import KubeClient
    from registry_doctor.doctor.snapshot.live import LiveSource

    return LiveSource(KubeClient(config.kubeconfig, config.context))


def run(config: RunConfig, checks: Sequence[Check], source: Source | None = None) -> Report:
    return inspect(config, checks, source)[0]


def inspect(config: RunConfig, checks: Sequence[Check], source: Source | None = None,
            also: Iterable[str] = ()) -> tuple[Report, Snapshot]:
    """`run`, also answering the snapshot the verdicts were reached on, with the collections
    `also` in it (what fix planners read)."""
    started = time.monotonic()
    if source is None:
        source = open_source(config)
    config = settle(config, source)
    snapshot = collect(source, {k for c in checks for k in c.meta.kinds} | set(also), config,
                       config.platform)
    probes = run_probes(snapshot, config, {p for c in checks for p in c.meta.probes})
    # Redacted after acknowledging: the `acknowledgements` result quotes annotations too.
    results = tuple(map(redact_result, acknowledge.apply(
        [evaluate(check, snapshot, config, probes) for check in checks],
        config.acknowledgements, acknowledge.object_finder(snapshot.collections),
        known_checks=all_checks())))
    return Report(
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source={**snapshot.source, "platform": snapshot.platform,
                "platform_evidence": config.platform_evidence,
                "namespace": config.namespace, "registry": config.registry_name},
        results=results,
        duration_seconds=time.monotonic() - started,
        collection_errors=dict(snapshot.errors),
        source_failure="; ".join(dict.fromkeys(snapshot.source_failures.values())) or None,
    ), snapshot


def snapshot(config: RunConfig, wanted: Iterable[str]) -> Snapshot:
    """The collections `wanted`, read as a run reads them (`registry-doctor snapshot`)."""
    source = open_source(config)
    config = settle(config, source)
    return collect(source, wanted, config, config.platform)


def settle(config: RunConfig, source: Source) -> RunConfig:
    """`config` with its platform chosen (with `auto`, recognised from the source) and the
    names the admin left to the platform filled in; settling it again changes nothing."""
    if config.platform_evidence:
        return config
    platform, evidence = choose(config.platform, source, config.timeout)
    return replace(adapter(platform).settle(config, source), platform=platform,
                   platform_evidence=evidence, names_given=None)


def unreachable_report(config: RunConfig, checks: Sequence[Check], cause: str) -> Report:
    """Every check `unknown` with one cause, e.g. no cluster credentials."""
    return Report(
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source={"type": "cluster", "namespace": config.namespace,
                "registry": config.registry_name, "error": cause},
        results=tuple(Result(c.meta.id, c.meta.title, Status.UNKNOWN, cause) for c in checks),
        source_failure=cause,
    )


def probe_report(config: RunConfig, check: Check, probe: ProbeResult,
                 source: dict[str, Any]) -> Report:
    """The report of one check judged on a probe taken without a cluster (`registry-doctor
    canary --url`): the same verdict logic, report schema and exit code as `check`."""
    snapshot = Snapshot(config=config, source=source)
    return Report(
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source=source,
        results=(redact_result(evaluate(check, snapshot, config, {probe.probe: probe})),),
        duration_seconds=probe.duration_seconds,
    )


def run_probes(snapshot: Snapshot, config: RunConfig,
               probe_ids: Iterable[str]) -> dict[str, ProbeResult]:
    wanted = selected_probes(probe_ids, config)
    if not wanted:
        return {}
    pool = ThreadPoolExecutor(len(wanted), thread_name_prefix="probe")
    futures = {p: pool.submit(_run_probe, p, snapshot, config) for p in wanted}
    wait(futures.values(), timeout=config.probe_timeout + 1)
    pool.shutdown(wait=False, cancel_futures=True)  # a stuck probe must not hold the run
    return {
        p: f.result() if f.done() else ProbeResult(
            p, error=f"probe did not finish within {config.probe_timeout:g}s")
        for p, f in futures.items()
    }


def _run_probe(probe_id: str, snapshot: Snapshot, config: RunConfig) -> ProbeResult:
    started = time.monotonic()
    try:
        data = probe_function(probe_id)(snapshot, config, config.probe_timeout)
        return ProbeResult(probe_id, data, duration_seconds=time.monotonic() - started)
    except ProbeError as error:
        return ProbeResult(probe_id, error=str(error),
                           duration_seconds=time.monotonic() - started)


def evaluate(check: Check, snapshot: Snapshot, config: RunConfig,
             probes: dict[str, ProbeResult]) -> Result:
    ctx = CheckContext(check.meta, snapshot.for_reader(f"check {check.meta.id}",
                                                       check.meta.kinds), config, probes)
    if check.meta.platforms and snapshot.platform not in check.meta.platforms:
        if snapshot.source_failures:  # unreadable, the platform is a guess: no reason to skip
            return ctx.result(Status.UNKNOWN,
                              "; ".join(dict.fromkeys(snapshot.source_failures.values())))
        return ctx.result(Status.SKIP, f"does not apply to platform {snapshot.platform}: "
                          f"{check.meta.platform_note}")
    failed = [k for k in check.meta.kinds if k in snapshot.errors
              and k not in LOG_COLLECTIONS and k not in check.meta.quotes_only]
    # What a failed collection's scope depended on failing first is the root cause.
    roots = [d for k in failed for d in sorted(closure({k}) - {k}) if d in snapshot.errors]
    causes = [snapshot.errors[k] for k in (*roots, *failed)]
    if causes:
        return ctx.result(Status.UNKNOWN, "; ".join(dict.fromkeys(causes)))
    try:
        return check.evaluate(ctx)
    except NotEvaluable as reason:
        return ctx.result(Status.UNKNOWN, str(reason))
    except NotApplicable as reason:
        return ctx.result(Status.SKIP, str(reason))
    except Exception as error:  # a check bug must not cost the other checks their verdicts
        log.exception("check %s failed", check.meta.id)
        return ctx.result(Status.UNKNOWN, f"internal error in check {check.meta.id}: "
                          f"{type(error).__name__}: {error}")
