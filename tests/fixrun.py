"""`python -m tests.fixrun KUBECONFIG CHECK [--claim-size S]`: `check --fix --yes
--allow-disruptive` with the stand-in of a check from another branch (tests/fixcluster.py), in a
process of its own, so tests can kill it mid-way (REGISTRY_DOCTOR_EXIT_AFTER_WRITES)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from doctor.config import RunConfig
from doctor.fix.flow import fix
from doctor.fix.model import FixOptions
from tests.fixcluster import STAND_INS


def main(argv: list[str]) -> int:
    kubeconfig, check, *rest = argv
    claim_size = rest[rest.index("--claim-size") + 1] if "--claim-size" in rest else None
    options = FixOptions(apply=True, allow_disruptive=True, claim_size=claim_size,
                         poll_seconds=0.05)
    config = RunConfig(kubeconfig=Path(kubeconfig), probes=False)
    report = fix(config, options, [STAND_INS[check]],
                 lambda line: print(json.dumps(line), flush=True))
    print(json.dumps(report.to_dict()))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
