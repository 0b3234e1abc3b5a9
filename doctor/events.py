"""Events as evidence: when each happened and how a check quotes it.

Kubernetes API reference, Event (core/v1): the recorder aggregates repeats of one event into
`count` and `lastTimestamp`; events.k8s.io clients set `eventTime` instead; the API server
expires them after --event-ttl (one hour by default).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from registry_doctor.doctor.workload import as_dict

EVENTS_PER_OBJECT = 3  # newest first: enough to explain, few enough to read
UNDATED = datetime(1970, 1, 1, tzinfo=timezone.utc)  # sorts last among newest first


def event_lines(events: list[dict[str, Any]]) -> list[str]:
    """The first EVENTS_PER_OBJECT `events` as evidence: reason, count, last time, message."""
    return [f"{e.get('reason')} (x{e.get('count', 1)}, last "
            f"{e.get('lastTimestamp') or e.get('eventTime') or '?'}): "
            f"{str(e.get('message', '')).strip()}" for e in events[:EVENTS_PER_OBJECT]]


def warnings_about(events: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    """The Warning events about one object, newest first (undated ones last)."""
    about = [e for e in events if e.get("type") == "Warning"
             and as_dict(e.get("involvedObject")).get("kind") == kind
             and as_dict(e.get("involvedObject")).get("name") == name]
    return sorted(about, key=lambda e: event_time(e) or UNDATED, reverse=True)


def event_time(event: dict[str, Any]) -> datetime | None:
    return (rfc3339(event.get("lastTimestamp")) or rfc3339(event.get("eventTime"))
            or rfc3339(event.get("firstTimestamp"))
            or rfc3339(as_dict(event.get("metadata")).get("creationTimestamp")))


def rfc3339(value: object) -> datetime | None:
    """An RFC 3339 time as the API server writes it; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None
