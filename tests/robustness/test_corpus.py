"""Every corpus entry (tests/robustness/corpus.py) through the engine and the fix planners
in-process (`check --fix` on a dump), rendered in every output format; a sample of each
category through the real CLI in a subprocess, and a sample of the wrong types in live mode
through the fake API server.

For each: no exception and no check failing on an internal error, every check still gives a
verdict with a reason, an exit code from 0 to 3, the input problem named (file, object,
field) where the entry says, and the base's verdicts kept where the bad input is extra."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.fix.flow import fix
from registry_doctor.doctor.fix.model import FixOptions
from registry_doctor.doctor.model import Report
from registry_doctor.doctor.render import FORMATS, render
from registry_doctor.doctor.snapshot.dump import load_dump
from tests.conftest import CLUSTERS, REPO
from tests.kubefake import FakeKubeAPI
from tests.robustness.corpus import Entry, corpus

CORPUS = corpus()
MIN_ENTRIES = 300
# Problem lines a report may show before it summarises the rest of a file's problems.
MAX_PROBLEM_LINES = 60


def run_engine(folder: Path) -> Report:
    """Every check, and the fixes their planners propose (`check --fix` on a dump: a plan);
    the opt-in node scan of cockpit-port-conflict included, so its reads face the corpus too."""
    config = RunConfig(from_dir=folder, node_pod_scan=True)
    return fix(config, FixOptions(allow_disruptive=True),
               engine.select_checks(list(all_checks()), config=config), printer=print)


@cache
def base_verdicts(base: str) -> dict[str, str]:
    return verdicts(run_engine(CLUSTERS / base))


def verdicts(report: Report) -> dict[str, str]:
    return {r.check: r.status.value for r in report.results}


def assert_sane(report: Report, entry: Entry) -> None:
    for result in report.results:
        assert result.summary.strip(), f"{entry.id}: {result.check} gives no reason"
        assert "internal error" not in result.summary, f"{entry.id}: {result.summary}"
    assert 0 <= report.exit_code <= 3
    problems = report.source.get("problems", [])
    assert len(problems) <= MAX_PROBLEM_LINES, f"{entry.id}: {len(problems)} problem lines"
    if entry.problem:
        assert any(all(re.search(p, line) for p in entry.problem) for line in problems), \
            f"{entry.id}: no problem line matches {entry.problem}; got {problems}"
    if entry.same_verdicts:
        assert verdicts(report) == base_verdicts(entry.base), entry.id
    if entry.mentions:
        check, pattern = entry.mentions
        result = report.result(check)
        assert result is not None
        shown = "\n".join([result.summary, *result.details])
        assert re.search(pattern, shown), f"{entry.id}: {check} says\n{shown}"


def test_the_corpus_is_big_and_covers_every_category() -> None:
    assert len(CORPUS) >= MIN_ENTRIES, len(CORPUS)
    assert len({e.id for e in CORPUS}) == len(CORPUS), "duplicate corpus ids"
    categories = {e.category for e in CORPUS}
    assert categories >= {"yaml", "json", "documents", "binary", "huge", "filesystem",
                          "truncated", "wrong-type", "odd-value", "pem"}, categories


@pytest.mark.parametrize("entry", CORPUS, ids=[e.id for e in CORPUS])
def test_engine_survives(entry: Entry, tmp_path: Path) -> None:
    report = run_engine(entry.write(tmp_path / "dump"))
    assert_sane(report, entry)
    for output in FORMATS:
        text = render(report, output)
        assert "internal error" not in text, f"{entry.id}: a planner failed:\n{text}"
        if output == "json":
            assert json.loads(text)["exit_code"] == report.exit_code
        elif output == "yaml":
            assert yaml.safe_load(text)["exit_code"] == report.exit_code


def _cli_sample() -> list[Entry]:
    """The first two entries of each category."""
    sample: dict[str, list[Entry]] = {}
    for entry in CORPUS:
        if len(sample.setdefault(entry.category, [])) < 2:
            sample[entry.category].append(entry)
    return [e for entries in sample.values() for e in entries]


@pytest.mark.parametrize("entry", _cli_sample(), ids=[e.id for e in _cli_sample()])
def test_cli_survives(entry: Entry, tmp_path: Path) -> None:
    folder = entry.write(tmp_path / "dump")
    run = subprocess.run([sys.executable, "-m", "registry_doctor.doctor.cli",
                          "check", "--from-dir", str(folder),
                          "-o", "json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "Traceback" not in run.stdout + run.stderr, run.stderr
    report = json.loads(run.stdout)
    assert run.returncode == report["exit_code"] in (0, 1, 2, 3)
    if entry.problem:
        assert any(all(re.search(p, line) for p in entry.problem)
                   for line in report["source"]["problems"]), report["source"]["problems"]


# Live mode over the same wrong types, served by the fake API server (which, unlike a real
# one, stores whatever it is given): a sample, skipping metadata the fake itself indexes.
LIVE_SAMPLE = [e for e in CORPUS if e.category == "wrong-type" and "/metadata/" not in e.id][::25]


@pytest.mark.parametrize("entry", LIVE_SAMPLE, ids=[e.id for e in LIVE_SAMPLE])
def test_live_mode_survives(entry: Entry, tmp_path: Path) -> None:
    dump = load_dump(entry.write(tmp_path / "dump"))
    with FakeKubeAPI(objects=dump.objects, logs=dump.logs) as api:
        config = RunConfig(kubeconfig=api.write_kubeconfig(tmp_path / "kubeconfig"),
                           probes=False)
        report = engine.run(config, engine.select_checks(list(all_checks()), config=config))
    for result in report.results:
        assert "internal error" not in result.summary, f"{entry.id}: {result.summary}"
    assert 0 <= report.exit_code <= 3
