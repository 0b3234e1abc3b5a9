"""Remediation: fixes planned as data, then applied by one executor (docs/remediation.md).

Pure (no I/O, importable by checks): `model` (actions, object references, permissions),
`patch` (JSON patches, diffs, redaction), `plan` (the planner API and `make_plan`),
`planners/` (planners hosted here for checks developed on other branches), `permissions`.

Client layer (talks to the API server through `doctor.kube.KubeClient`, never imports
`kubernetes` itself): `cluster` (requests), `lease`, `journal` (backups and run states),
`rollout` (redeploy and wait), `executor` (preflight, apply, verify, roll back, recover) and
`flow` (what `check --fix` and `rollback` run).
"""
