"""The layering rules, checked on the source: only the client layer imports `kubernetes`, only
probes import `boto3` or open sockets, checks are pure, and start-up imports stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

IO_MODULES = {"kubernetes", "boto3", "botocore", "urllib3", "requests", "socket", "ssl", "http",
              "subprocess", "registry_doctor.doctor.kube", "registry_doctor.doctor.probes"}
# module root -> the only places allowed to import it
ALLOWED = {"kubernetes": ("doctor/kube.py",), "boto3": ("doctor/probes/",),
           "botocore": ("doctor/probes/",)}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sources() -> list[Path]:
    return [p for folder in ("doctor", "checks", "exporter") for p in (REPO / folder).rglob("*.py")]


def test_checks_do_no_io() -> None:
    for path in (REPO / "checks").glob("*.py"):
        io = {m for m in imports_of(path) if m.split(".")[0] in IO_MODULES or
              any(m == io or m.startswith(io + ".") for io in IO_MODULES)}
        assert not io, f"{path.name} imports {sorted(io)}: checks must be pure"


def test_client_libraries_only_in_their_layer() -> None:
    for path in sources():
        relative = path.relative_to(REPO).as_posix()
        for module in imports_of(path):
            root = module.split(".")[0]
            if root in ALLOWED:
                assert relative.startswith(ALLOWED[root]), f"{relative} imports {module}"


def test_cli_start_up_does_not_import_heavy_libraries() -> None:
    code = ("import sys, registry_doctor.doctor.cli; heavy = {'kubernetes', 'boto3', 'botocore', "
            "'prometheus_client', 'cryptography', 'registry_doctor.doctor.engine', 'yaml'} "
            "& set(sys.modules); print(sorted(heavy))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr


def test_offline_run_never_loads_the_kubernetes_client() -> None:
    code = ("import sys\nfrom registry_doctor.doctor.cli import main\n"
            "sys.argv = ['registry-doctor', 'demo']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('LOADED' if {'kubernetes', 'boto3'} & set(sys.modules) else 'CLEAN')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.stdout.strip().endswith("CLEAN"), run.stdout[-300:] + run.stderr
