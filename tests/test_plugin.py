"""The kubectl/oc plugin (run by the real kubectl), its krew manifest, and shell completion."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from setuptools.config.pyprojecttoml import read_configuration

from registry_doctor.doctor import __version__
from tests.conftest import CLUSTERS, REPO
from tests.tools import find_tool

PLUGIN = "kubectl-registry_doctor"
SCRIPTS = read_configuration(REPO / "pyproject.toml", expand=False)["project"]["scripts"]


def _krew_build():  # plugins/krew/build.py, which is no package
    spec = importlib.util.spec_from_file_location("krew_build", REPO / "plugins/krew/build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


krew_build = _krew_build()
CHECK_IDS = sorted(p.stem for p in (REPO / "docs" / "checks").glob("*.md"))


def console_script(folder: Path, name: str) -> Path:
    """What pip writes for a [project.scripts] entry: an executable calling module:function."""
    entry = SCRIPTS[name]
    module, function = entry.split(":")
    path = folder / name
    path.write_text(f"#!{sys.executable}\nimport sys\nfrom {module} import {function}\n"
                    f"sys.exit({function}())\n")
    path.chmod(0o755)
    return path


def run(args: list[str], bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO, env={
        "PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(bin_dir),
        **env})


@pytest.fixture()
def plugin_bin(tmp_path: Path) -> Path:
    console_script(tmp_path, PLUGIN)
    return tmp_path


def test_kubectl_runs_the_entry_point_as_a_plugin(plugin_bin: Path) -> None:
    kubectl = find_tool("kubectl")
    version = run([kubectl, "registry-doctor", "--version"], plugin_bin)
    assert (version.returncode, version.stdout) == (0, f"registry-doctor {__version__}\n")
    listed = run([kubectl, "plugin", "list"], plugin_bin)
    assert str(plugin_bin / PLUGIN) in listed.stdout, listed.stdout + listed.stderr
    helped = run([kubectl, "registry-doctor", "check", "--help"], plugin_bin)
    assert "Usage: kubectl registry-doctor check" in helped.stdout
    checked = run([kubectl, "registry-doctor", "check", "--from-dir", str(CLUSTERS / "broken"),
                   "-c", "besteffort-qos", "-o", "nagios"], plugin_bin)
    assert checked.returncode == 2  # kubectl passes the plugin's exit code on
    assert checked.stdout.startswith("REGISTRY-DOCTOR CRITICAL - 1 crit")


def test_krew_manifest_names_the_plugin_command_and_its_archive() -> None:
    manifest = yaml.safe_load(krew_build.MANIFEST.read_text())
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    # metadata.name is the command and the file name; krew links bin as kubectl-<name, _>.
    assert manifest["metadata"]["name"] == krew_build.MANIFEST.stem == "registry-doctor"
    spec = manifest["spec"]
    assert spec["version"] == f"v{__version__}"
    assert spec["shortDescription"] and spec["description"] and spec["caveats"]
    [platform] = spec["platforms"]
    assert platform["bin"] == PLUGIN == "kubectl-" + manifest["metadata"]["name"].replace(
        "-", "_")
    assert SCRIPTS[PLUGIN] == SCRIPTS["registry-doctor"]
    assert platform["files"] == [{"from": PLUGIN, "to": "."}]
    assert {e["key"] for e in platform["selector"]["matchExpressions"]} == {"os"}
    assert platform["uri"].endswith(krew_build.archive_name())
    assert krew_build.main(["--check"]) == 0  # sha256 and version match the archive


def test_the_krew_archive_launcher_runs_under_kubectl(tmp_path: Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(krew_build.archive_bytes())) as tar:
        assert tar.getnames() == [PLUGIN]
        tar.extractall(tmp_path, filter="data")
    python3 = tmp_path / "python3"  # the python3 the caveats ask for: this environment's
    python3.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python3.chmod(0o755)
    version = run([find_tool("kubectl"), "registry-doctor", "--version"], tmp_path)
    assert (version.returncode, version.stdout) == (0, f"registry-doctor {__version__}\n"), \
        version.stderr


# --- shell completion --------------------------------------------------------------------

@pytest.fixture()
def doctor_bin(tmp_path: Path) -> Path:
    console_script(tmp_path, "registry-doctor")
    return tmp_path


def bash_complete(bin_dir: Path, line: str) -> list[str]:
    """Source the script `completion bash` prints into a real bash and complete `line`."""
    script = run(["registry-doctor", "completion", "bash"], bin_dir).stdout
    words = line.split(" ")
    program = f"""{script}
COMP_WORDS=({' '.join(f"'{w}'" for w in words)})
COMP_CWORD={len(words) - 1}
_registry_doctor_completion registry-doctor
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = run(["bash", "--norc", "--noprofile", "-c", program], bin_dir)
    assert done.returncode == 0, done.stderr
    return [w for w in done.stdout.splitlines() if w]


def test_bash_completes_commands_options_and_check_ids(doctor_bin: Path) -> None:
    assert "check" in bash_complete(doctor_bin, "registry-doctor ch")
    assert bash_complete(doctor_bin, "registry-doctor check --check ") == CHECK_IDS
    assert bash_complete(doctor_bin, "registry-doctor check --skip ce") == ["cert-chain-order"]
    assert bash_complete(doctor_bin, "registry-doctor explain s3") == ["s3-reachability"]
    assert "--textfile" in bash_complete(doctor_bin, "registry-doctor check --te")
    assert bash_complete(doctor_bin, "registry-doctor check -o na") == ["nagios"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_ask_the_program_for_check_ids(doctor_bin: Path,
                                                           shell: str) -> None:
    script = run(["registry-doctor", "completion", shell], doctor_bin).stdout
    assert "_REGISTRY_DOCTOR_COMPLETE=complete_" + shell in script
    # What the script runs when the user presses tab (zsh/fish are not installed here).
    answer = run(["registry-doctor"], doctor_bin, _REGISTRY_DOCTOR_COMPLETE=f"complete_{shell}",
                 _TYPER_COMPLETE_ARGS="registry-doctor check --fix-only eph",
                 _TYPER_COMPLETE_FISH_ACTION="get-args")
    assert "ephemeral-storage" in answer.stdout
    assert "besteffort-qos" not in answer.stdout


def test_unknown_shell_is_a_usage_error(doctor_bin: Path) -> None:
    done = run(["registry-doctor", "completion", "tcsh"], doctor_bin)
    assert done.returncode == 64 and "choose from bash, zsh, fish" in done.stderr


def test_plugin_completion_uses_the_plugin_name(plugin_bin: Path) -> None:
    script = run([PLUGIN, "completion", "bash"], plugin_bin).stdout
    assert f"complete -o default -F _kubectl_registry_doctor_completion {PLUGIN}" in script
    assert os.access(plugin_bin / PLUGIN, os.X_OK)
