"""Docs and metadata cannot drift: every check has a page whose generated block matches its
metadata, every page belongs to a check, and each page explains itself beyond the block."""

from __future__ import annotations

from pathlib import Path

from registry_doctor.checks import all_checks
from registry_doctor.doctor.docs import END, synced_text

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_each_check_page_matches_its_metadata() -> None:
    for check_id, check in all_checks().items():
        page = DOCS / "checks" / f"{check_id}.md"
        assert page.exists(), f"missing {page.relative_to(DOCS.parent)}"
        text = page.read_text()
        assert synced_text(check.meta, text) == text, \
            f"{page.name} is out of date: run python -m registry_doctor.doctor.docs"
        prose = text.partition(END)[2]
        assert "## How it decides" in prose and "## How to fix it" in prose, page.name
        sections = [s.strip() for s in prose.split("## ")[1:]]
        assert all("\n" in s for s in sections), f"{page.name} has an empty section"


def test_no_page_without_a_check() -> None:
    pages = {p.stem for p in (DOCS / "checks").glob("*.md")}
    assert pages == set(all_checks())


def test_check_metadata_is_complete() -> None:
    from registry_doctor.doctor.snapshot.kinds import known_collections

    for check_id, check in all_checks().items():
        meta = check.meta
        assert meta.id == check_id and meta.title and meta.description and meta.remediation
        unknown = set(meta.kinds) - known_collections()
        assert not unknown, f"{check_id} reads unknown collections {unknown}"
        plan_reads = set(check.plan.reads) if check.plan else set()
        assert not plan_reads - known_collections(), \
            f"{check_id}'s planner reads unknown collections {plan_reads - known_collections()}"


def test_readme_lists_every_check() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    for check_id in all_checks():
        assert f"(docs/checks/{check_id}.md)" in readme, f"README does not list {check_id}"


def test_list_and_explain_read_the_metadata_of_every_check() -> None:
    from registry_doctor.checks import all_metas

    assert all_metas() == [check.meta for check in all_checks().values()]


def test_every_slow_test_named_in_conftest_exists() -> None:
    from tests.conftest import SLOW_TESTS

    sources = "".join(p.read_text() for p in Path(__file__).parent.rglob("test_*.py"))
    assert not {name for name in SLOW_TESTS if f"def {name}(" not in sources}
