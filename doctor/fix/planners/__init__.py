"""Planners of the storage and console checks, written beside the remediation machinery while
those checks were written on other branches; each check module hosts its planner with one
line, e.g. in checks/nfs_scaling.py:

    from registry_doctor.doctor.fix.planners.storage import plan_nfs_scaling as plan

(docs/remediation.md, "Planners"). Like checks, planners are pure: they read the snapshot.
"""

from __future__ import annotations

from registry_doctor.doctor.workload import WORKLOAD_COLLECTIONS

WORKLOADS = tuple(WORKLOAD_COLLECTIONS)  # every planner finds its workload in these
