"""The `registry-doctor` command: a thin shell over the engine.

Start-up stays light: the engine, the Kubernetes client and the probes are imported inside the
commands that use them, so `--help` and `--version` cost little more than Python itself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from doctor import __version__
from doctor.model import EXIT_USAGE

app = typer.Typer(
    name="registry-doctor",
    help="Diagnose, alert on and safely fix the OpenShift integrated container registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Options shared by every command that reads a cluster.
CheckIds = Annotated[list[str], typer.Option("--check", "-c", help="Run only this check "
                                             "(repeatable).", show_default=False)]
SkipIds = Annotated[list[str], typer.Option("--skip", help="Do not run this check "
                                            "(repeatable).", show_default=False)]
FromDir = Annotated[Path | None, typer.Option(
    "--from-dir", help="Read objects from a dump folder (oc get -o yaml, must-gather) "
    "instead of a cluster.", show_default=False)]
Kubeconfig = Annotated[Path | None, typer.Option("--kubeconfig", help="Path to a kubeconfig.",
                                                 show_default=False)]
Context = Annotated[str | None, typer.Option("--context", help="Kubeconfig context to use.",
                                             show_default=False)]
Namespace = Annotated[str, typer.Option("--namespace", "-n",
                                        help="Namespace of the registry and console.")]
Registry = Annotated[str, typer.Option("--registry", help="Name of the registry workload.")]
Console = Annotated[str, typer.Option("--console", help="Name of the console workload.")]
Timeout = Annotated[float, typer.Option("--timeout", min=1,
                                        help="Deadline for the whole run, in seconds.")]
Output = Annotated[str, typer.Option("--output", "-o", help="table, json or yaml.")]


def _usage_error(message: str) -> NoReturn:
    typer.echo(f"registry-doctor: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _check_output(output: str) -> None:
    from doctor.render import FORMATS

    if output not in FORMATS:
        _usage_error(f"unknown output format {output!r} (choose from {', '.join(FORMATS)})")


def _check_dir(path: Path | None, flag: str) -> None:
    if path is not None and not path.is_dir():
        _usage_error(f"{flag} {path}: not a readable directory")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"registry-doctor {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Diagnose, alert on and safely fix the OpenShift integrated container registry."""


@app.command()
def check(
    checks: CheckIds = [],  # noqa: B006 - typer needs a list default
    skip: SkipIds = [],  # noqa: B006
    output: Output = "table",
    from_dir: FromDir = None,
    probes: Annotated[bool | None, typer.Option(
        "--probes/--no-probes", help="Live probes (S3, TLS, OAuth, sockets). Default: on "
        "against a cluster, off with --from-dir.", show_default=False)] = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = "default",
    registry: Registry = "docker-registry",
    console: Console = "registry-console",
    timeout: Timeout = 30.0,
    probe_timeout: Annotated[float, typer.Option("--probe-timeout", min=0.1,
                                                 help="Deadline of each probe, seconds.")] = 5.0,
    log_tail: Annotated[int, typer.Option("--log-tail", min=0,
                                          help="Log lines read per pod.")] = 500,
    node_local: Annotated[bool, typer.Option(
        "--node-local", help="Also inspect this host: who holds the console port, "
        "local certificate folder.")] = False,
    console_port: Annotated[int, typer.Option("--console-port", min=1, max=65535,
                                              help="Port of Cockpit and the console.")] = 9090,
    cert_dir: Annotated[Path | None, typer.Option(
        "--cert-dir", help="A local Cockpit ws-certs.d folder to judge.",
        show_default=False)] = None,
    s3_write_probe: Annotated[bool, typer.Option(
        "--s3-write-probe", help="Also put and delete one marker object in the bucket.")
    ] = False,
    canary: Annotated[bool, typer.Option(
        "--canary", help="Also push and pull a small image through the registry.")] = False,
    oauth_probe: Annotated[bool, typer.Option(
        "--oauth-probe", help="Also ask the OAuth server to authorize the console's redirect "
        "URI (shows in the master log).")] = False,
) -> None:
    """Run the checks and print a report. Exit code: 0 ok, 1 warn, 2 crit, 3 unknown."""
    from doctor.config import RunConfig

    _check_output(output)
    _check_dir(from_dir, "--from-dir")
    _check_dir(cert_dir, "--cert-dir")
    config = RunConfig(
        namespace=namespace, registry_name=registry, console_name=console, from_dir=from_dir,
        kubeconfig=kubeconfig, context=context, probes=probes, timeout=timeout,
        probe_timeout=probe_timeout, log_tail_lines=log_tail, node_local=node_local,
        console_port=console_port, cert_dir=cert_dir, s3_write_probe=s3_write_probe,
        canary=canary, oauth_probe=oauth_probe)
    raise typer.Exit(_run_and_print(config, checks, skip, output))


def _run_and_print(config: object, checks: list[str], skip: list[str], output: str) -> int:
    from doctor import engine
    from doctor.kube import KubeError
    from doctor.render import render, use_color

    try:
        selected = engine.select_checks(checks, skip, config)
    except engine.UsageError as error:
        _usage_error(str(error))
    progress = sys.stderr.isatty() and output == "table"
    if progress:
        sys.stderr.write("registry-doctor: collecting cluster state...\r")
        sys.stderr.flush()
    try:
        report = engine.run(config, selected)
    except KubeError as error:
        report = engine.unreachable_report(config, selected, str(error))
    finally:
        if progress:
            sys.stderr.write("\033[2K\r")
    sys.stdout.write(render(report, output, color=use_color(sys.stdout)))
    return report.exit_code


@app.command()
def demo(output: Output = "table") -> None:
    """Run every check on a bundled dump of a broken OpenShift 3.11 registry (no cluster)."""
    from importlib.resources import files

    from doctor.config import RunConfig

    _check_output(output)
    example = Path(str(files("doctor") / "examples" / "openshift-3.11-broken"))
    code = _run_and_print(RunConfig(from_dir=example), [], [], output)
    if output == "table":
        typer.echo(f"(demo of `registry-doctor check --from-dir {example}`, which exits {code}; "
                   "the demo itself exits 0)")


@app.command("list")
def list_checks() -> None:
    """List the checks with their severity."""
    from checks import all_checks
    from doctor.render import render_meta_list

    typer.echo(render_meta_list([c.meta for c in all_checks().values()]), nl=False)


@app.command()
def explain(check_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Explain a check: what it reads, how it decides, how to fix what it finds."""
    from checks import all_checks
    from doctor.render import render_explain

    found = all_checks().get(check_id)
    if found is None:
        _usage_error(f"unknown check id: {check_id} (known: {', '.join(all_checks())})")
    typer.echo(render_explain(found.meta), nl=False)


@app.command()
def snapshot(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the dump to.")],
    checks: CheckIds = [],  # noqa: B006
    from_dir: FromDir = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = "default",
    registry: Registry = "docker-registry",
    console: Console = "registry-console",
    timeout: Timeout = 30.0,
    include_secrets: Annotated[bool, typer.Option(
        "--include-secrets", help="Keep secret values (default: redacted).")] = False,
) -> None:
    """Write what the checks read to a dump folder that --from-dir can read back."""
    from doctor import engine
    from doctor.config import RunConfig
    from doctor.kube import KubeError
    from doctor.snapshot import collect
    from doctor.snapshot.dump import write_dump

    _check_dir(from_dir, "--from-dir")
    config = RunConfig(namespace=namespace, registry_name=registry, console_name=console,
                       from_dir=from_dir, kubeconfig=kubeconfig, context=context,
                       timeout=timeout)
    try:
        selected = engine.select_checks(checks, (), config)
        snap = collect(engine.open_source(config), {k for c in selected for k in c.meta.kinds},
                       config)
        written = write_dump(out, snap.collections, snap.logs, include_secrets)
    except engine.UsageError as error:
        _usage_error(str(error))
    except KubeError as error:
        typer.echo(f"registry-doctor: {error}", err=True)
        raise typer.Exit(3) from None
    except OSError as error:
        typer.echo(f"registry-doctor: cannot write {out}: {error.strerror}", err=True)
        raise typer.Exit(3) from None
    for name, cause in sorted(snap.errors.items()):
        typer.echo(f"registry-doctor: {name} not collected: {cause}", err=True)
    typer.echo(f"wrote {len(written)} files to {out}"
               + ("" if include_secrets else " (secret values redacted)"))


def _click_exceptions():  # -> the click exceptions module
    try:  # recent typer releases vendor click
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


def main() -> None:
    """Console entry point: usage errors exit 64 with one line, never a traceback."""
    exceptions = _click_exceptions()
    try:
        code = app(standalone_mode=False)
    except exceptions.NoArgsIsHelpError as error:
        typer.echo(error.format_message())
        code = 0
    except exceptions.UsageError as error:
        typer.echo(f"registry-doctor: {error.format_message()}", err=True)
        code = EXIT_USAGE
    except exceptions.Abort:
        code = 130
    except exceptions.Exit as exit_:
        code = exit_.exit_code
    except BrokenPipeError:  # `registry-doctor check | head`
        code = 0
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
