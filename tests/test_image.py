"""The container image, built and run for real (docs/image.md).

scripts/build-image.sh builds the Dockerfile with Debian's buildah on a Debian 12 minbase made
by mmdebstrap, the stand-in for debian:bookworm-slim (apt reaches Debian's archive, pip PyPI).
podman runs the image as the Helm chart does: the image's own user, or an arbitrary UID in group
0 as OpenShift's restricted SCC assigns, on a read-only root filesystem with only /tmp writable,
no capabilities, no privilege escalation, no network. Images and containers live in a store of
the tests' own, removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from registry_doctor.doctor import __version__
from registry_doctor.doctor.cli import app
from tests.exporting import REPO, scrape_until
from tests.tools import find_tool, free_port, server

pytestmark = pytest.mark.slow

IMAGE = "localhost/registry-doctor:test"
DUMP = REPO / "doctor" / "examples" / "openshift-3.11-broken"
OPENSHIFT_USER = "1000660000:0"  # a UID from the namespace's range, group 0

# This sandbox lacks CAP_SYS_RESOURCE, so podman's default rlimits (nofile=1048576) cannot be
# set; and its cgroups are a v1/v2 hybrid with a controller on v2, which crun refuses and runc
# accepts. tmp_dir keeps podman's run-time state out of the host's /run/libpod.
ENGINE_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
tmp_dir = "{home}/libpod"
"""
STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{home}/storage"
runroot = "{home}/run"
"""
# How the chart's pods run (helm/registry-doctor/templates/_helpers.tpl): readOnlyRootFilesystem,
# an emptyDir on /tmp, capabilities dropped, allowPrivilegeEscalation false.
HARDENED = ["--rm", "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]


@dataclass
class Podman:
    binary: str
    env: dict[str, str]

    def command(self, *args: str, user: str | None = None, network: str = "none") -> list[str]:
        as_user = ["--user", user] if user else []
        return [self.binary, "run", *HARDENED, "--network", network, *as_user, *args]

    def run(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args, user=user), env=self.env,
                              capture_output=True, text=True, timeout=300)

    def image_config(self) -> dict:
        inspect = subprocess.run([self.binary, "image", "inspect", IMAGE], env=self.env,
                                 capture_output=True, text=True, check=True)
        return json.loads(inspect.stdout)[0]["Config"]


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    for tool in ("mmdebstrap", "buildah", "runc"):
        find_tool(tool)
    binary = find_tool("podman")
    if os.geteuid() != 0:
        pytest.skip("mmdebstrap and buildah build the image as root here")
    home = tmp_path_factory.mktemp("containers")
    (home / "containers.conf").write_text(ENGINE_CONF.format(home=home))
    (home / "storage.conf").write_text(STORAGE_CONF.format(home=home))
    env = os.environ | {"CONTAINERS_CONF": str(home / "containers.conf"),
                        "CONTAINERS_STORAGE_CONF": str(home / "storage.conf")}
    build = subprocess.run(["bash", str(REPO / "scripts" / "build-image.sh"), IMAGE], env=env,
                           capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, f"image build failed:\n{build.stderr[-6000:]}"
    try:
        yield Podman(binary, env)
    finally:
        subprocess.run([binary, "rmi", "--all", "--force"], env=env, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def verdicts(report_json: str) -> list[tuple[str, str, str]]:
    return [(r["check"], r["status"], r["summary"]) for r in json.loads(report_json)["results"]]


def here(*args: str) -> tuple[int, str]:
    """The same command run by this checkout's code, outside the image."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_image_runs_as_a_numeric_non_root_user_in_group_0(podman: Podman) -> None:
    config = podman.image_config()
    # Numeric, so the kubelet can verify runAsNonRoot without an /etc/passwd entry.
    assert config["User"].isdigit() and int(config["User"]) > 0
    assert config["Entrypoint"] == ["registry-doctor"] and config["Cmd"] == ["serve"]
    assert "9709/tcp" in config["ExposedPorts"]
    ids = podman.run("--entrypoint", "python3", IMAGE, "-c",
                     "import os; print(os.getuid(), os.getgid())")
    assert ids.stdout.split() == [config["User"], "0"], ids.stderr


@pytest.mark.parametrize("user", [None, OPENSHIFT_USER], ids=["image-user", "openshift-uid"])
def test_root_filesystem_is_read_only_and_only_tmp_is_writable(podman: Podman,
                                                               user: str | None) -> None:
    probe = """
import errno, os
for folder in ("/", "/opt/registry-doctor", "/tmp"):
    try:
        with open(os.path.join(folder, "probe"), "w"):
            print(folder, "writable")
    except OSError as error:
        print(folder, errno.errorcode[error.errno])
"""
    result = podman.run("--entrypoint", "python3", IMAGE, "-c", probe, user=user)
    assert result.stdout.splitlines() == [
        "/ EROFS", "/opt/registry-doctor EROFS", "/tmp writable"], result.stderr


def test_the_build_hosts_pip_settings_stay_out_of_the_image(podman: Podman) -> None:
    """scripts/build-image.sh mounts a CA bundle and pip.conf for the build's pip only."""
    leftovers = podman.run("--entrypoint", "python3", IMAGE, "-c",
                           "import os; print([p for p in ('/root/.config', '/etc/pip.conf')"
                           " if os.path.exists(p)])", user="0")
    assert leftovers.stdout == "[]\n", leftovers.stderr


def test_version_in_the_image_is_this_checkout(podman: Podman) -> None:
    result = podman.run(IMAGE, "--version")
    assert (result.returncode, result.stdout) == (0, f"registry-doctor {__version__}\n"), \
        result.stderr


@pytest.mark.parametrize("user", [None, OPENSHIFT_USER], ids=["image-user", "openshift-uid"])
def test_check_from_dir_in_the_image_gives_this_checkouts_verdicts(podman: Podman,
                                                                   user: str | None) -> None:
    inside = podman.run("--volume", f"{DUMP}:/dump:ro", IMAGE,
                        "check", "--from-dir", "/dump", "-o", "json", user=user)
    exit_code, report = here("check", "--from-dir", str(DUMP), "-o", "json")
    assert inside.returncode == exit_code == 2, inside.stderr  # the example dump is broken
    assert verdicts(inside.stdout) == verdicts(report)


def test_demo_runs_the_dump_shipped_in_the_image(podman: Podman) -> None:
    inside = podman.run(IMAGE, "demo", "-o", "json")
    exit_code, report = here("demo", "-o", "json")
    assert inside.returncode == exit_code, inside.stderr
    assert verdicts(inside.stdout) == verdicts(report)


def test_serve_exports_the_verdicts_and_stops_on_sigterm(podman: Podman,
                                                         tmp_path: Path) -> None:
    """The image's default command, as the chart's Deployment runs it; SIGTERM reaches the
    exporter as PID 1 and it exits 0 (podman run passes the signal and the exit code on)."""
    port = free_port()
    command = podman.command("--volume", f"{DUMP}:/dump:ro", IMAGE, "serve", "--from-dir",
                             "/dump", "--listen", f"127.0.0.1:{port}", network="host")
    log = tmp_path / "serve.log"
    with server(command, port, log, env=podman.env, ready_timeout=120) as process:
        scrape = scrape_until(f"http://127.0.0.1:{port}", lambda s: bool(s.statuses()),
                              "registry_doctor_check_status series")
    assert process.returncode == 0, log.read_text(errors="replace")
    _, report = here("check", "--from-dir", str(DUMP), "-o", "json")
    assert scrape.statuses() == {check: status for check, status, _ in verdicts(report)}
