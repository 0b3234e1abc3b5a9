"""The `registry-doctor` command: a thin shell over the engine.

Start-up stays light: the engine, the Kubernetes client and the probes are imported inside the
commands that use them, so `--help` and `--version` cost little more than Python itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from registry_doctor.doctor import __version__
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.model import EXIT_USAGE, CheckOption

app = typer.Typer(
    name="registry-doctor",
    help="Diagnose, alert on and safely fix the OpenShift integrated container registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)



def _check_ids(incomplete: str) -> list[str]:
    """Shell completion of check ids (`--check`, `--skip`, `--fix-only`, `explain`)."""
    from registry_doctor.checks import all_metas

    return [meta.id for meta in all_metas() if meta.id.startswith(incomplete)]


def _formats(incomplete: str) -> list[str]:
    from registry_doctor.doctor.render import FORMATS

    return [name for name in FORMATS if name.startswith(incomplete)]


# Options shared by every command that reads a cluster.
CheckIds = Annotated[list[str], typer.Option("--check", "-c", help="Run only this check "
                                             "(repeatable).", show_default=False,
                                             autocompletion=_check_ids)]
SkipIds = Annotated[list[str], typer.Option("--skip", help="Do not run this check "
                                            "(repeatable).", show_default=False,
                                            autocompletion=_check_ids)]
FromDir = Annotated[Path | None, typer.Option(
    "--from-dir", help="Read objects from a dump folder (oc get -o yaml, must-gather) "
    "instead of a cluster.", show_default=False)]
Kubeconfig = Annotated[Path | None, typer.Option("--kubeconfig", help="Path to a kubeconfig.",
                                                 show_default=False)]
Context = Annotated[str | None, typer.Option("--context", help="Kubeconfig context to use.",
                                             show_default=False)]
PlatformId = Annotated[str, typer.Option(
    "--platform", help="The platform the registry runs on: auto (detect it), openshift3, "
    "openshift4 or kubernetes (docs/platforms.md).")]
Namespace = Annotated[str | None, typer.Option(
    "--namespace", "-n", show_default=False,
    help="Namespace of the registry and console (default: the platform's, e.g. default on "
    "OpenShift 3.x, openshift-image-registry on OpenShift 4).")]
Registry = Annotated[str | None, typer.Option(
    "--registry", show_default=False,
    help="Name of the registry workload (default: the platform's, e.g. docker-registry on "
    "OpenShift 3.x, image-registry on OpenShift 4).")]
Console = Annotated[str | None, typer.Option(
    "--console", show_default=False,
    help="Name of the console workload (default: the platform's, e.g. registry-console on "
    "OpenShift 3.x).")]
ConsoleOAuthClient = Annotated[str, typer.Option(
    "--console-oauth-client", help="The console's OAuthClient: the only one read and fixed.")]
RegistrySecrets = Annotated[list[str], typer.Option(
    "--registry-secret", help="A Secret of the registry a fix may change (repeatable; "
    "replaces the default list; --registry-secret= alone: none).")]
ConsoleSecrets = Annotated[list[str], typer.Option(
    "--console-secret", help="A Secret of the console a fix may change (repeatable; replaces "
    "the default list; --console-secret= alone: none).")]
Timeout = Annotated[float, typer.Option("--timeout", min=1,
                                        help="Deadline for the whole run, in seconds.")]
Output = Annotated[str, typer.Option(
    "--output", "-o", help="table, json, yaml, junit, sarif, nagios or prometheus "
    "(docs/output.md).", autocompletion=lambda incomplete: _formats(incomplete))]
MetaOutput = Annotated[str, typer.Option("--output", "-o", help="table or json.")]
Textfile = Annotated[Path | None, typer.Option(
    "--textfile", help="Also write the metrics to this node_exporter textfile (*.prom), "
    "atomically.", show_default=False)]
Probes = Annotated[bool | None, typer.Option(
    "--probes/--no-probes", help="Live probes (S3, TLS, OAuth, sockets). Default: on "
    "against a cluster, off with --from-dir.", show_default=False)]
ProbeTimeout = Annotated[float, typer.Option("--probe-timeout", min=0.1,
                                             help="Deadline of each probe, seconds.")]
LogTail = Annotated[int, typer.Option("--log-tail", min=0, help="Log lines read per pod.")]
NodeLocal = Annotated[bool, typer.Option(
    "--node-local", help="Also inspect this host: who holds the console port, "
    "local certificate folder.")]
RolloutTimeout = Annotated[float, typer.Option(
    "--rollout-timeout", min=1, help="How long a redeploy may take, in seconds.")]
Yes = Annotated[bool, typer.Option("--yes", help="Apply (default: only print the plan).")]
ConfigFile = Annotated[Path | None, typer.Option(
    "--config", help="Settings file with `acknowledge:` entries (docs/acknowledge.md). "
    "Default: registry-doctor.yaml in the working directory, if present.", show_default=False)]


def _usage_error(message: str) -> NoReturn:
    typer.echo(f"registry-doctor: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _check_output(output: str, report: bool = True) -> None:
    """`report`: any report format; else only the data formats (table, json, yaml)."""
    from registry_doctor.doctor.render import DATA_FORMATS, FORMATS

    known = FORMATS if report else DATA_FORMATS
    if output not in known:
        _usage_error(f"unknown output format {output!r} (choose from {', '.join(known)})")


def _check_dir(path: Path | None, flag: str) -> None:
    if path is not None and not path.is_dir():
        _usage_error(f"{flag} {path}: not a readable directory")


def _check_file(path: Path | None, flag: str) -> None:
    if path is not None and not path.is_file():
        _usage_error(f"{flag} {path}: not a readable file")


def _check_platform(platform: str) -> None:
    from registry_doctor.doctor.platform import ADAPTERS, AUTO

    if platform not in (AUTO, *ADAPTERS):
        _usage_error(f"--platform {platform}: choose from {', '.join([AUTO, *ADAPTERS])}")


def _check_url(url: str | None, flag: str) -> None:
    from urllib.parse import urlsplit

    from registry_doctor.doctor.kube import without_url_credentials

    if url is None:
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        _usage_error(f"{flag} {without_url_credentials(url)}: not an http(s) URL with a host "
                     "(e.g. http://prometheus.example.com:9090)")
    if "@" in parts.netloc:
        _usage_error(f"{flag} {without_url_credentials(url)}: credentials in the URL are not "
                     "supported: the queries are sent without any")


def _check_repository(name: str, flag: str) -> None:
    from registry_doctor.doctor.probes.canary import repository_problem

    problem = repository_problem(name)
    if problem:
        _usage_error(f"{flag} {problem}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"registry-doctor {__version__}")
        raise typer.Exit()


# The run options `check` and `serve` share (both shells over one engine), then the options
# each check brings in its metadata (CheckMeta.options).
_SHARED: list[tuple[str, object, object]] = [
    ("checks", CheckIds, []),
    ("skip", SkipIds, []),
    ("from_dir", FromDir, None),
    ("probes", Probes, None),
    ("kubeconfig", Kubeconfig, None),
    ("context", Context, None),
    ("platform", PlatformId, "auto"),
    ("namespace", Namespace, None),
    ("registry", Registry, None),
    ("console", Console, None),
    ("console_oauth_client", ConsoleOAuthClient, RunConfig.console_oauth_client),
    ("timeout", Timeout, 30.0),
    ("probe_timeout", ProbeTimeout, 5.0),
    ("log_tail", LogTail, 500),
    ("node_local", NodeLocal, False),
    ("config_file", ConfigFile, None),
]
# Shared by `check` only: what a fix may touch.
_FIX_SCOPE: list[tuple[str, object, object]] = [
    ("registry_secret", RegistrySecrets, list(RunConfig.registry_secrets)),
    ("console_secret", ConsoleSecrets, list(RunConfig.console_secrets)),
]


def _check_options() -> list[tuple[CheckOption, tuple[str, ...]]]:
    """Every check's options, once each, with the checks that declare them; from the checks'
    generated metadata (light: no check module is imported)."""
    from registry_doctor.checks import all_metas

    found: dict[str, tuple[CheckOption, tuple[str, ...]]] = {}
    for meta in all_metas():
        for option in meta.options:
            owners = found[option.flag][1] if option.flag in found else ()
            found[option.flag] = (option, (*owners, meta.id))
    return list(found.values())


def _check_option_parameter(option: CheckOption,
                            owners: tuple[str, ...]) -> tuple[str, object, object]:
    python_type: object = {"bool": bool, "int": int, "path": Path, "list": list[str]}.get(
        option.type, str)
    settings: dict[str, object] = {"help": f"{', '.join(owners)}: {option.help}",
                                   "show_default": option.default not in (None, (), False)}
    if option.type == "int":
        settings.update(min=option.minimum, max=option.maximum)
    default = list(option.default or ()) if option.type == "list" else option.default
    if default is None:
        python_type = python_type | None  # type: ignore[operator]
    return option.setting, Annotated[python_type, typer.Option(option.flag, **settings)], default


def _run_options(*, fixes: bool) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the shared run options and the checks' options (with `fixes`, also
    the fix options and the fix scope) as keyword parameters, passed in its `**options`."""
    import inspect

    def extend(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        own = [p.replace(kind=p.KEYWORD_ONLY) for p in signature.parameters.values()
               if p.kind is not p.VAR_KEYWORD]
        def parameters(added: list[tuple[str, object, object]]) -> list[inspect.Parameter]:
            return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                      annotation=annotation)
                    for name, annotation, default in added]

        checks = [_check_option_parameter(o, owners) for o, owners in _check_options()
                  if fixes or not o.fix]
        command.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*parameters(_SHARED), *own,
                        *parameters([*(_FIX_SCOPE if fixes else []), *checks])])
        return command

    return extend


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Diagnose, alert on and safely fix the OpenShift integrated container registry."""


@app.command()
@_run_options(fixes=True)
def check(
    output: Output = "table",
    fix: Annotated[bool, typer.Option(
        "--fix", help="Plan fixes for what fails and print the plan (nothing is changed).")
    ] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", help="With --fix: apply the plan's safe actions (docs/remediation.md).")
    ] = False,
    allow_disruptive: Annotated[bool, typer.Option(
        "--allow-disruptive", help="With --fix --yes: apply disruptive actions too.")] = False,
    fix_only: Annotated[list[str], typer.Option(
        "--fix-only", help="Fix only this check (repeatable; implies --fix, and applies its "
        "optional actions).", show_default=False, autocompletion=_check_ids)] = [],  # noqa: B006
    dry_run: Annotated[str, typer.Option(
        "--dry-run", help="With --fix: none, client (the plan), or server: also send the "
        "planned writes with dryRun=All where the server supports it.")] = "none",
    cooldown: Annotated[str, typer.Option(
        "--cooldown", help="Do not change (write or redeploy) an object a run changed again "
        "within this time (e.g. 1h, 30m, 0).")] = "1h",
    rollout_timeout: RolloutTimeout = 600.0,
    exit_policy: Annotated[str, typer.Option(
        "--exit-policy", help="With --fix: what the exit code reports. checks: the verdicts "
        "(0 ok, 1 warn, 2 crit, 3 unknown); fix, for cron jobs: 0 unless a fix failed (2) or "
        "nothing could be judged (3) (docs/cron.md).")] = "checks",
    textfile: Textfile = None,
    **options: object,
) -> None:
    """Run the checks and print a report. Exit code: 0 ok, 1 warn, 2 crit, 3 unknown.

    With --fix, plan fixes for what fails; with --fix --yes, apply them (docs/remediation.md).
    """
    _check_output(output)
    config = _with_acknowledgements(_run_config(options), options["config_file"])
    fix_options = None
    if exit_policy not in ("checks", "fix"):
        _usage_error(f"--exit-policy {exit_policy}: choose checks or fix")
    if fix or yes or fix_only or dry_run != "none" or exit_policy != "checks":
        fix_options = _fix_options(
            fix=fix or bool(fix_only), yes=yes, dry_run=dry_run,
            allow_disruptive=allow_disruptive, only=tuple(fix_only), cooldown=cooldown,
            rollout_timeout=rollout_timeout, **options)
    raise typer.Exit(_run_and_print(config, options["checks"], options["skip"], output,
                                    fix_options, exit_policy, textfile))


# Command parameters named after their flag where the RunConfig field name is longer.
_CONFIG_FIELDS = {"registry": "registry_name", "console": "console_name",
                  "log_tail": "log_tail_lines",
                  "registry_secret": "registry_secrets", "console_secret": "console_secrets"}


def _run_config(options: dict[str, object]):  # -> RunConfig, imported lazily
    """The run settings from a command's options (`check` and `serve` share them), once the
    folders they name are known to exist."""
    from dataclasses import fields

    _check_dir(options["from_dir"], "--from-dir")  # type: ignore[arg-type]
    _check_dir(options["cert_dir"], "--cert-dir")  # type: ignore[arg-type]
    _check_platform(str(options["platform"]))
    _check_url(options.get("prometheus_url"), "--prometheus-url")  # type: ignore[arg-type]
    _check_file(options.get("prometheus_token_file"), "--prometheus-token-file")  # type: ignore[arg-type]
    _check_file(options.get("prometheus_ca_file"), "--prometheus-ca-file")  # type: ignore[arg-type]
    if options.get("prometheus_token_file") and not str(
            options.get("prometheus_url") or "").startswith("https://"):
        _usage_error("--prometheus-token-file needs an https --prometheus-url: a token is "
                     "never sent in clear")
    if options.get("canary"):
        _check_repository(str(options["canary_repository"]), "--canary-repository")
    known = {f.name for f in fields(RunConfig)} - set(_NAMES.values())
    return RunConfig(**{_CONFIG_FIELDS.get(name, name):
                        tuple(v for v in value if v) if isinstance(value, list) else value
                        for name, value in options.items()
                        if _CONFIG_FIELDS.get(name, name) in known}, **_names_given(options))


_NAMES = {"namespace": "namespace", "registry": "registry_name", "console": "console_name"}


def _names_given(options: dict[str, object]) -> dict[str, object]:
    """RunConfig's names the admin gave (-n, --registry, --console), and which they are: the
    platform names the rest (doctor.platform)."""
    given = {field: options[flag] for flag, field in _NAMES.items()
             if options.get(flag) is not None}
    return {**given, "names_given": frozenset(given)}


def _with_acknowledgements(config, path: Path | None):  # RunConfig -> RunConfig
    """The run settings with the acknowledgements of --config (or ./registry-doctor.yaml)."""
    from dataclasses import replace

    from registry_doctor.checks import all_checks
    from registry_doctor.doctor.acknowledge import DEFAULT_CONFIG_FILE, ConfigError, load_config

    if path is None:
        path = Path(DEFAULT_CONFIG_FILE)
        if not path.is_file():
            return config
    try:
        return replace(config, acknowledgements=load_config(path, all_checks()))
    except ConfigError as error:
        _usage_error(str(error))


def _fix_options(*, from_dir: Path | None, fix: bool, yes: bool, dry_run: str,
                 cooldown: str, allow_disruptive: bool, only: tuple[str, ...],
                 rollout_timeout: float, **options: object):  # -> FixOptions
    """The fix settings: the fix flags, and the checks' fix options (their metadata)."""
    from dataclasses import fields

    from registry_doctor.doctor.fix.model import FixOptions
    from registry_doctor.doctor.quantity import QuantityError, parse_quantity

    if dry_run not in ("none", "client", "server"):
        _usage_error(f"--dry-run {dry_run}: choose none, client or server")
    if not fix:
        _usage_error("--yes, --dry-run and the fix options act on the plan of --fix: add --fix")
    if yes and dry_run != "none":
        _usage_error("--yes applies the plan, --dry-run does not: choose one")
    if from_dir is not None and (yes or dry_run == "server"):
        flag = "--yes" if yes else "--dry-run=server"
        _usage_error(f"{flag}: a dump (--from-dir) cannot be changed; drop {flag} to print "
                     "the plan, or run against the cluster to apply it")
    settable = {f.name for f in fields(FixOptions)}
    for option, _ in _check_options():
        value = options[option.setting]
        if option.type == "quantity" and value is not None:
            try:
                parse_quantity(str(value))
            except QuantityError:
                _usage_error(f"{option.flag} {value}: not a Kubernetes quantity (e.g. 100m, "
                             "256Mi, 20Gi)")
    return FixOptions(apply=yes, server_dry_run=dry_run == "server",
                      cooldown_seconds=_seconds(cooldown, "--cooldown"),
                      allow_disruptive=allow_disruptive, only=only,
                      rollout_timeout=rollout_timeout,
                      **{o.setting: options[o.setting] for o, _ in _check_options()
                         if o.setting in settable})


def _seconds(text: str, flag: str) -> float:
    """`90`, `90s`, `30m`, `1h`, `2d` as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        _usage_error(f"{flag} {text}: not a duration (e.g. 1h, 30m, 90s, 0)")
    if value < 0:
        _usage_error(f"{flag} {text}: must not be negative")
    return value


def _run_and_print(config: object, checks: list[str], skip: list[str], output: str,
                   fix_options: object = None, exit_policy: str = "checks",
                   textfile: Path | None = None) -> int:
    from registry_doctor.doctor import engine
    from registry_doctor.doctor.kube import KubeConfigError, KubeError
    from registry_doctor.doctor.platform import NamesNeeded
    from registry_doctor.doctor.render import render, use_color

    selected = _select_checks(checks, skip, config)
    if fix_options is not None:
        _select_checks(list(fix_options.only), [], config)  # known ids only
    progress = sys.stderr.isatty() and output == "table"
    if progress:
        sys.stderr.write("registry-doctor: collecting cluster state...\r")
        sys.stderr.flush()
    try:
        if fix_options is None:
            report = engine.run(config, selected)
        else:
            from registry_doctor.doctor.fix.flow import fix

            report = fix(config, fix_options, selected, _print_json_line)
    except (KubeConfigError, NamesNeeded) as error:
        _usage_error(str(error))
    except KubeError as error:
        report = engine.unreachable_report(config, selected, str(error))
    finally:
        if progress:
            sys.stderr.write("\033[2K\r")
    sys.stdout.write(render(report, output, color=use_color(sys.stdout)))
    if textfile is not None:
        _write_textfile(report, textfile)
    if exit_policy == "checks":
        return report.exit_code
    return _fix_exit_code(report, exit_policy)


def _fix_exit_code(report: object, policy: str) -> int:
    """The exit code by `policy`, and why on stderr (the job's log): the report's own exit
    code stays that of the verdicts."""
    from registry_doctor.doctor.fix.exitpolicy import exit_code, fix_failures

    code = exit_code(report, policy)  # type: ignore[arg-type]
    failures = fix_failures(report)  # type: ignore[arg-type]
    if failures:
        why = "a fix failed: " + "; ".join(failures)
    elif code:
        why = "nothing could be judged (see the report)"
    else:
        why = f"no fix failed; the verdicts' exit code is {report.exit_code}"  # type: ignore
    typer.echo(f"registry-doctor: exit {code} (--exit-policy {policy}): {why}", err=True)
    return code


def _check_credentials(config: object) -> None:
    """Credentials that cannot be loaded are a usage error before the first run, not a
    failure of every run."""
    if config.from_dir is not None:  # type: ignore[attr-defined]
        return
    from registry_doctor.doctor.kube import KubeClient, KubeConfigError

    try:
        KubeClient(config.kubeconfig, config.context)  # type: ignore[attr-defined]
    except KubeConfigError as error:
        _usage_error(str(error))


def _write_textfile(report: object, path: Path) -> None:
    from registry_doctor.doctor.formats.prometheus import write_textfile

    try:
        write_textfile(report, path)
    except OSError as error:
        typer.echo(f"registry-doctor: cannot write --textfile {path}: {error.strerror}",
                   err=True)
        raise typer.Exit(3) from None


def _print_json_line(line: dict) -> None:
    """One event of an applied fix, at once: a run killed later has still logged it."""
    import json

    sys.stdout.write(json.dumps(line, sort_keys=False) + "\n")
    sys.stdout.flush()


def _select_checks(checks: list[str], skip: list[str], config: object) -> list:
    from registry_doctor.doctor import engine

    try:
        return engine.select_checks(checks, skip, config)
    except engine.UsageError as error:
        _usage_error(str(error))


@app.command()
@_run_options(fixes=False)
def serve(
    listen: Annotated[str, typer.Option(
        "--listen", help="Address of the metrics endpoint, HOST:PORT.")] = "0.0.0.0:9709",
    interval: Annotated[str, typer.Option(
        "--interval", help="Time between runs, e.g. 60s, 5m, 1h.")] = "60s",
    **options: object,
) -> None:
    """Run the checks every --interval and serve the last report as Prometheus metrics
    (/metrics, /healthz, /readyz; docs/exporter.md). Stops cleanly on SIGTERM."""
    config = _with_acknowledgements(_run_config(options), options["config_file"])
    from registry_doctor.exporter import daemon

    try:
        host, port = daemon.parse_listen(listen)
        seconds = daemon.parse_interval(interval)
    except ValueError as error:
        _usage_error(str(error))
    selected = _select_checks(options["checks"], options["skip"], config)
    _check_credentials(config)
    raise typer.Exit(daemon.serve(config, selected, host, port, seconds))


@app.command()
def demo(output: Output = "table") -> None:
    """Run every check on a bundled dump of a broken OpenShift 3.11 registry (no cluster)."""
    from importlib.resources import files

    from registry_doctor.doctor.config import RunConfig

    _check_output(output)
    example = Path(str(files("registry_doctor.doctor") / "examples" / "openshift-3.11-broken"))
    # A dump asks no RBAC: the node scan shows the example's Prometheus on the console's port.
    code = _run_and_print(RunConfig(from_dir=example, node_pod_scan=True), [], [], output)
    if output == "table":
        typer.echo(f"(demo of `registry-doctor check --from-dir {example} --node-pod-scan`, "
                   f"which exits {code}; "
                   "the demo itself exits 0)")


@app.command()
def canary(
    url: Annotated[str, typer.Option(
        "--url", help="The registry: https://host[:port] or http://host:port (a bare host "
        "means https).", show_default=False)],
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Do not verify the registry's TLS certificate.")] = False,
    username: Annotated[str | None, typer.Option(
        "--username", envvar="REGISTRY_DOCTOR_USERNAME", help="User for basic auth or the "
        "registry's token service.", show_default=False)] = None,
    password: Annotated[str | None, typer.Option(
        "--password", envvar="REGISTRY_DOCTOR_PASSWORD", help="Password of --username "
        "(better from the environment variable: it stays out of the process list).",
        show_default=False)] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="REGISTRY_DOCTOR_TOKEN", help="A token, e.g. `oc whoami -t`, sent "
        "as password with any user name as the OpenShift registry expects.",
        show_default=False)] = None,
    repository: Annotated[str, typer.Option(
        "--repository", help="Repository to push the canary image into.")
    ] = "registry-doctor/canary",
    reads: Annotated[int, typer.Option(
        "--reads", min=1, max=32, help="Reads of the pushed image, each on fresh connections "
        "(a round-robin balancer over N replicas needs N to reach them all).")] = 4,
    timeout: Annotated[float, typer.Option("--timeout", min=1,
                                           help="Deadline for the whole canary, seconds.")
                       ] = 30.0,
    output: Output = "table",
    textfile: Textfile = None,
) -> None:
    """Push, read back and delete a small image through any registry URL (the check
    push-pull-canary outside a cluster). Exit code as `check`: 0 ok, 1 warn, 2 crit, 3 unknown."""
    import time

    from registry_doctor.checks import all_checks
    from registry_doctor.doctor import engine
    from registry_doctor.doctor.check import ProbeResult
    from registry_doctor.doctor.config import RunConfig
    from registry_doctor.doctor.probes.canary import Target, run_canary
    from registry_doctor.doctor.probes.registry_client import Address, Credentials
    from registry_doctor.doctor.render import render, use_color

    _check_output(output)
    _check_repository(repository, "--repository")
    if token and (username or password):
        _usage_error("use either --token or --username/--password, not both")
    if bool(username) != bool(password):
        _usage_error("--username and --password go together (or use --token)")
    try:
        address = Address.parse(url)
    except ValueError as error:
        _usage_error(f"--url {error}")
    credentials = Credentials.token(token) if token else Credentials(username, password)
    started = time.monotonic()
    data = run_canary([Target("url", address, f"registry {address}", verify_tls=not insecure)],
                      credentials, repository, timeout, reads)
    probe = ProbeResult("canary", data, duration_seconds=time.monotonic() - started)
    config = RunConfig(probes=True, canary=True, canary_repository=repository,
                       probe_timeout=timeout)
    report = engine.probe_report(config, all_checks()["push-pull-canary"], probe,
                                 {"type": "url", "url": str(address)})
    sys.stdout.write(render(report, output, color=use_color(sys.stdout)))
    if textfile is not None:
        _write_textfile(report, textfile)
    raise typer.Exit(report.exit_code)


@app.command("list")
def list_checks(output: MetaOutput = "table") -> None:
    """List the checks with their severity."""
    from registry_doctor.checks import all_metas
    from registry_doctor.doctor.render import meta_document, render_meta_list

    metas = all_metas()
    _echo_meta(output, [meta_document(m) for m in metas], lambda: render_meta_list(metas))


@app.command()
def explain(check_id: Annotated[str, typer.Argument(metavar="ID", autocompletion=_check_ids)],
            output: MetaOutput = "table") -> None:
    """Explain a check: what it reads, how it decides, how to fix what it finds."""
    from registry_doctor.checks import all_metas
    from registry_doctor.doctor.render import meta_document, render_explain

    metas = {meta.id: meta for meta in all_metas()}
    if check_id not in metas:
        _usage_error(f"unknown check id: {check_id} (known: {', '.join(metas)})")
    _echo_meta(output, meta_document(metas[check_id]), lambda: render_explain(metas[check_id]))


def _echo_meta(output: str, document: object, table: Callable[[], str]) -> None:
    if output not in ("table", "json"):
        _usage_error(f"unknown output format {output!r} (choose from table, json)")
    if output == "json":
        import json

        typer.echo(json.dumps(document, indent=2))
    else:
        typer.echo(table(), nl=False)


@app.command()
def snapshot(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the dump to.")],
    checks: CheckIds = [],  # noqa: B006
    from_dir: FromDir = None,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    platform: PlatformId = "auto",
    namespace: Namespace = None,
    registry: Registry = None,
    console: Console = None,
    timeout: Timeout = 30.0,
    include_secrets: Annotated[bool, typer.Option(
        "--include-secrets",
        help="Keep secret values (default: redacted), readable by the owner only.")] = False,
) -> None:
    """Write what the checks read (all they may read, without --check) to a dump folder that
    --from-dir can read back."""
    from registry_doctor.doctor import engine
    from registry_doctor.doctor.config import RunConfig
    from registry_doctor.doctor.kube import KubeConfigError, KubeError
    from registry_doctor.doctor.platform import NamesNeeded
    from registry_doctor.doctor.snapshot.dump import write_dump
    from registry_doctor.doctor.snapshot.kinds import known_collections

    _check_dir(from_dir, "--from-dir")
    _check_platform(platform)
    config = RunConfig(platform=platform, from_dir=from_dir, kubeconfig=kubeconfig,
                       context=context, timeout=timeout,
                       **_names_given({"namespace": namespace, "registry": registry,
                                       "console": console}))
    try:
        # Without --check, everything the catalogue knows: a dump is for later questions too.
        wanted = ({k for c in engine.select_checks(checks, (), config) for k in c.meta.kinds}
                  if checks else known_collections())
        snap = engine.snapshot(config, wanted)
        # A collection that could not be read is left out, not written as an empty list: the
        # dump must not say "there are none" where the cluster did not answer.
        collected = {k: v for k, v in snap.collections.items() if k not in snap.errors}
        written = write_dump(out, collected, snap.logs, include_secrets,
                             snap.previous_logs)
    except (engine.UsageError, KubeConfigError, NamesNeeded) as error:
        _usage_error(str(error))
    except KubeError as error:
        typer.echo(f"registry-doctor: {error}", err=True)
        raise typer.Exit(3) from None
    except OSError as error:
        typer.echo(f"registry-doctor: cannot write {out}: {error.strerror}", err=True)
        raise typer.Exit(3) from None
    for name, cause in sorted(snap.errors.items()):
        typer.echo(f"registry-doctor: {name} not collected, left out of the dump: {cause}",
                   err=True)
    typer.echo(f"wrote {len(written)} files to {out}"
               + ("" if include_secrets else " (secret values redacted)"))
    if snap.errors:  # an incomplete dump: checks reading it would take those objects as absent
        raise typer.Exit(3)


@app.command()
def rollback(
    run: Annotated[str | None, typer.Option(
        "--run", help="The run to undo (default: the newest with standing changes).",
        show_default=False)] = None,
    clear: Annotated[bool, typer.Option(
        "--clear", help="Do not undo: let cron apply again the fixes rolled back in --run.")
    ] = False,
    yes: Yes = False,
    kubeconfig: Kubeconfig = None,
    context: Context = None,
    namespace: Namespace = None,
    timeout: Timeout = 30.0,
    rollout_timeout: RolloutTimeout = 600.0,
) -> None:
    """Restore the objects a `check --fix --yes` run changed, from its backups, and redeploy.
    A rolled-back fix is not applied again by `check --fix --yes` until its objects change or
    `--run RUN --clear --yes` lifts that.
    Exit code: 0 restored (or nothing to do), 2 not all restored, 3 cluster unreachable or
    another run holds the lock, 64 no such run."""
    from registry_doctor.checks import all_checks
    from registry_doctor.doctor.config import RunConfig
    from registry_doctor.doctor.fix.flow import rollback as roll_back
    from registry_doctor.doctor.fix.model import FixOptions
    from registry_doctor.doctor.kube import KubeConfigError, KubeError

    config = RunConfig(kubeconfig=kubeconfig, context=context, timeout=timeout,
                       **_names_given({"namespace": namespace}))
    options = FixOptions(apply=yes, rollout_timeout=rollout_timeout)
    try:
        if clear and not run:
            _usage_error("--clear needs --run RUN")
        result = roll_back(config, options, list(all_checks().values()), run,
                           _print_json_line, clear)
    except KubeConfigError as error:
        _usage_error(str(error))
    except KubeError as error:
        typer.echo(f"registry-doctor: {error}", err=True)
        raise typer.Exit(3) from None
    typer.echo("\n".join(result.lines))
    raise typer.Exit(result.code)


@app.command()
def permissions(output: Output = "table") -> None:
    """The RBAC rules `check --fix --yes` needs, per check and for its own machinery."""
    from registry_doctor.checks import all_checks
    from registry_doctor.doctor.fix.permissions import merged_rules, permission_rows

    _check_output(output, report=False)
    rows = permission_rows(list(all_checks().values()))
    document = {"rules": merged_rules(rows), "needs": rows}
    if output == "json":
        import json

        typer.echo(json.dumps(document, indent=2))
    elif output == "yaml":
        import yaml

        typer.echo(yaml.safe_dump(document, sort_keys=False), nl=False)
    else:
        width = max(len(r["neededBy"]) for r in rows)
        for row in rows:
            resource = f"{row['resource']}.{row['apiGroup']}" if row["apiGroup"] \
                else row["resource"]
            typer.echo(f"{row['neededBy']:<{width}}  {resource:<48} "
                       f"{','.join(row['verbs']):<18} {row['why']}")


def _page_names(incomplete: str) -> list[str]:
    from registry_doctor.doctor.links import page_names

    return [name for name in page_names() if name.startswith(incomplete)]


@app.command()
def docs(page: Annotated[str | None, typer.Argument(
        metavar="[PAGE]", help="A check id, a page name (exporter, remediation) or the path the "
        "output shows (docs/checks/<id>.md).", autocompletion=_page_names)] = None) -> None:
    """Print a docs page installed with registry-doctor (Markdown). Without PAGE: the folder
    the pages are installed in and their names."""
    from registry_doctor.doctor.links import DOCS_FOLDER, find_page, page_names

    if page is None:
        typer.echo(f"{DOCS_FOLDER}\n" + "".join(f"  {name}\n" for name in page_names()), nl=False)
        return
    found = find_page(page)
    if found is None:
        _usage_error(f"docs {page}: no such page (`registry-doctor docs` lists them)")
    typer.echo(found.read_text(), nl=False)


@app.command()
def completion(shell: Annotated[str, typer.Argument(
        help="bash, zsh or fish.", autocompletion=lambda incomplete: [
            s for s in COMPLETION_SHELLS if s.startswith(incomplete)])]) -> None:
    """Print the shell completion script (commands, options, check ids), e.g.
    `source <(registry-doctor completion bash)`; docs/plugin.md says where to install it."""
    from registry_doctor.doctor.completion import completion_script

    if shell not in COMPLETION_SHELLS:
        _usage_error(f"completion {shell}: choose from {', '.join(COMPLETION_SHELLS)}")
    typer.echo(completion_script(shell, _prog_name()), nl=False)


COMPLETION_SHELLS = ("bash", "zsh", "fish")


PLUGIN_NAME = "kubectl-registry_doctor"  # pyproject [project.scripts]; oc runs it too


def _prog_name() -> str:
    """`kubectl-registry_doctor` when run as the kubectl/oc plugin, else `registry-doctor`."""
    return PLUGIN_NAME if Path(sys.argv[0]).name == PLUGIN_NAME else "registry-doctor"


def _usage_name() -> str:
    """How help and usage lines name the command: as the admin typed it."""
    return "kubectl registry-doctor" if _prog_name() == PLUGIN_NAME else "registry-doctor"


def _answer_completion_request() -> None:
    """The shell asks for completions through an environment variable; answer and exit."""
    import os

    from registry_doctor.doctor.completion import complete_variable

    prog_name = _prog_name()
    if os.environ.get(complete_variable(prog_name)):
        from typer._completion_classes import completion_init

        completion_init()  # typer's bash/zsh/fish answer formats
        app(prog_name=prog_name)  # standalone: exits with the answer printed


# Where the exceptions of the command-line parser live: typer >= 0.2x vendors click (its
# `_click` has no Abort or Exit: typer defines those itself), older typer re-exports click's.
_PARSER_EXCEPTION_MODULES = ("typer", "typer._click.exceptions", "click.exceptions")


def _parser_exceptions(name: str) -> tuple[type[BaseException], ...]:
    """Every class called `name` that the installed typer may raise, whichever click it uses."""
    from importlib import import_module

    found: list[type[BaseException]] = []
    for module_name in _PARSER_EXCEPTION_MODULES:
        try:
            candidate = getattr(import_module(module_name), name, None)
        except ImportError:
            continue
        if isinstance(candidate, type) and candidate not in found:
            found.append(candidate)
    return tuple(found)


def _exit_code(error: Exception) -> int:
    """The exit code of an exception the parser raised; any other exception is re-raised."""
    if isinstance(error, _parser_exceptions("NoArgsIsHelpError")):
        typer.echo(error.format_message())  # type: ignore[attr-defined]
        return 0
    if isinstance(error, _parser_exceptions("UsageError")):
        typer.echo(f"registry-doctor: {error.format_message()}", err=True)  # type: ignore
        return EXIT_USAGE
    if isinstance(error, _parser_exceptions("Abort")):
        return 130
    if isinstance(error, _parser_exceptions("Exit")):
        return error.exit_code  # type: ignore[attr-defined]
    raise error


def _silence_stdout() -> None:
    """The reader of stdout went away (`registry-doctor list | head -0`): point stdout at
    /dev/null so the interpreter's last flush cannot fail again on exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main() -> None:
    """Console entry point: usage errors exit 64 with one line, never a traceback."""
    _answer_completion_request()
    for stream in (sys.stdout, sys.stderr):  # evidence a terminal cannot encode: escaped
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = app(standalone_mode=False, prog_name=_usage_name())
        sys.stdout.flush()
    except BrokenPipeError:  # `registry-doctor check -o json | head -c 10`
        _silence_stdout()
        code = 1  # the output was cut short; typer exits 1 too when its echo meets the pipe
    except Exception as error:
        code = _exit_code(error)
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
