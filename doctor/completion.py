"""Shell completion scripts. The shell asks the program itself (`_REGISTRY_DOCTOR_COMPLETE=
complete_bash registry-doctor ...`), so the answers, check ids included, are never stale."""

from __future__ import annotations


def complete_variable(prog_name: str) -> str:
    """The environment variable click/typer read completion requests from."""
    return f"_{prog_name}_COMPLETE".replace("-", "_").upper()


def completion_script(shell: str, prog_name: str = "registry-doctor") -> str:
    from typer._completion_shared import get_completion_script

    script = get_completion_script(prog_name=prog_name, complete_var=complete_variable(prog_name),
                                   shell=shell)
    return script.rstrip("\n") + "\n"
