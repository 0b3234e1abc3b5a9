"""The wheel, built for real: everything under one import name (registry_doctor), nothing at
the top level another distribution could collide with, the docs pages the output links to
shipped inside, and the installed package runs from the wheel's files alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from registry_doctor import doctor
from registry_doctor.checks import all_metas
from tests.conftest import REPO
from tests.packaging import package_folders

DIST_INFO = f"registry_doctor-{doctor.__version__}.dist-info"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of what pyproject names, so the checkout gets no build/ or egg-info."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source)
    for top in {folder.split("/")[0] for folder in package_folders().values()}:
        shutil.copytree(REPO / top, source / top, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index",
                            "--no-build-isolation", "-q", "-w", str(out), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    [built] = out.glob("registry_doctor-*.whl")
    return built


def names_in(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_name(wheel: Path) -> None:
    assert {name.split("/")[0] for name in names_in(wheel)} == {"registry_doctor", DIST_INFO}
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"{DIST_INFO}/entry_points.txt").decode()
    assert "registry-doctor = registry_doctor.doctor.cli:main" in entry_points
    assert "kubectl-registry_doctor = registry_doctor.doctor.cli:main" in entry_points


@pytest.mark.slow
def test_every_module_and_linked_page_is_in_the_wheel(wheel: Path) -> None:
    """A folder left out of pyproject's package list would install a package missing modules."""
    shipped = set(names_in(wheel))
    for package, folder in package_folders().items():
        for module in (REPO / folder).glob("*.py"):
            assert f"{package.replace('.', '/')}/{module.name}" in shipped, module
    for meta in all_metas():
        assert f"registry_doctor/{meta.docs}" in shipped, meta.docs
    packages = {f"registry_doctor.{p.parent.relative_to(REPO).as_posix().replace('/', '.')}"
                for top in ("doctor", "checks", "exporter") for p in (REPO / top).rglob("*.py")}
    assert packages <= set(package_folders()), sorted(packages - set(package_folders()))


@pytest.mark.slow
def test_the_wheels_files_alone_run_the_command(wheel: Path, tmp_path: Path) -> None:
    """Unpacked on PYTHONPATH (the dependencies from this interpreter): the bundled example,
    its check and the docs page the report links to, all read from the unpacked files."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
    installed = tmp_path / "site" / "registry_doctor"
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli", *args],
                              capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)

    where = subprocess.run([sys.executable, "-c", "import registry_doctor.doctor as d; "
                            "print(d.__file__)"], capture_output=True, text=True, env=env)
    assert where.stdout.strip() == str(installed / "doctor" / "__init__.py"), where.stderr
    example = installed / "doctor" / "examples" / "openshift-3.11-broken"
    run = cli("check", "--from-dir", str(example), "-c", "besteffort-qos", "-o", "json")
    assert run.returncode == 2 and '"besteffort-qos"' in run.stdout, run.stderr
    page = cli("docs", "besteffort-qos")
    assert page.returncode == 0
    assert page.stdout == (installed / "docs" / "checks" / "besteffort-qos.md").read_text()
    assert cli("docs").stdout.startswith(f"{installed / 'docs'}\n")


def test_no_metadata_names_a_repository_that_does_not_exist() -> None:
    """There is no public repository: the chart and the package name none (the docs ship)."""
    chart = (REPO / "helm" / "registry-doctor" / "Chart.yaml").read_text()
    project = (REPO / "pyproject.toml").read_text()
    assert "github.com" not in chart + project
