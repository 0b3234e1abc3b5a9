"""`registry-doctor serve`: the engine on a schedule, its last report as Prometheus metrics.

- `scheduler`: the thread running the engine every interval; the immutable run state.
- `daemon`: the process: options, signals, start and graceful shutdown.
- `collector`: turns the cached report into metric families at scrape time.
- `server`: the HTTP endpoints /metrics, /healthz, /readyz.
- `alerts`: generates the per-check alert rules in `rules/registry-doctor.rules.yml`.
- `logs`: JSON-line logging.

See docs/exporter.md for the metrics, the alerts and their meaning.
"""
