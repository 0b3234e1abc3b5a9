"""Reading a dump lazily (doctor.snapshot.dumpindex) gives what the full parse gives.

Every fixture dump is judged twice, read lazily and fully parsed beforehand: the verdicts must
be identical. Tricky files (anchors, quoted values spanning lines, odd keys, indented Lists,
several documents, a broken piece) must answer every query with the objects the full parse
answers it with, in the same order. The cache of `serve` re-reads exactly the changed files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from registry_doctor.checks import all_checks
from registry_doctor.doctor import engine
from registry_doctor.doctor.config import RunConfig
from registry_doctor.doctor.snapshot.dump import load_dump, previous_log_path, write_dump
from registry_doctor.doctor.snapshot.dumpindex import DumpIndex
from registry_doctor.doctor.snapshot.kinds import CATALOGUE, LOG_TAIL_BYTES, Query
from registry_doctor.doctor.snapshot.offline import DumpSource
from registry_doctor.doctor.snapshot.scan import Unscannable, scan
from tests.casedump import discover_cases, materialize
from tests.conftest import CLUSTERS, REPO

CASES = discover_cases()
DUMPS = {"clusters/healthy": CLUSTERS / "healthy", "clusters/broken": CLUSTERS / "broken",
         "example": REPO / "doctor" / "examples" / "openshift-3.11-broken"}


def _verdicts(folder: Path, full: bool) -> tuple:
    config = RunConfig(from_dir=folder)
    checks = engine.select_checks(list(all_checks()), config=config)
    source = DumpSource(folder, load_dump(folder)) if full else DumpSource(folder)
    report = engine.run(config, checks, source)
    return report.results, report.collection_errors


@pytest.mark.parametrize("name", sorted(DUMPS))
def test_fixture_dumps_get_the_verdicts_of_a_full_parse(name: str) -> None:
    assert _verdicts(DUMPS[name], full=False) == _verdicts(DUMPS[name], full=True)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_check_cases_get_the_verdicts_of_a_full_parse(case, tmp_path: Path) -> None:
    folder = materialize(case, tmp_path / "dump")
    assert _verdicts(folder, full=False) == _verdicts(folder, full=True)


POD = """  kind: Pod
  metadata:
    name: {name}
{namespace}  spec:
    nodeName: {node}
    containers:
    - name: c
      image: x
"""

TRICKY = {
    # kubectl's shape, and the same List with its items indented
    "list.yaml": "apiVersion: v1\nkind: List\nitems:\n"
                 + "".join("- apiVersion: v1\n" + POD.format(
                     name=f"p{i}", namespace=f"    namespace: {ns}\n", node=f"n{i % 2}")
                           for i, ns in enumerate(["default", "other", '"quoted"', "'single'"]))
                 + "metadata: {}\n",
    "indented.yaml": "kind: PodList\nitems:\n  - kind: Pod\n    metadata:\n      name: i1\n"
                     "      namespace: other\n  -\n    kind: Pod\n    metadata:\n      name: i2\n",
    # no namespace, a null one, an empty one: all three are the default namespace
    "defaults.yaml": "kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: d1\n"
                     "- kind: Pod\n  metadata:\n    name: d2\n    namespace: ~\n"
                     "- kind: Pod\n  metadata:\n    name: d3\n    namespace: ''\n",
    "documents.yaml": "# two pods\n---\nkind: Pod\nmetadata:\n  name: m1\n  namespace: other\n"
                      "--- # the second\nkind: Pod\nmetadata:\n  name: m2\nspec:\n"
                      "  nodeName: 'n1'\n---\n",
    "anchors.yaml": "kind: List\nitems:\n- kind: Pod\n  metadata: &meta\n    name: a1\n"
                    "    namespace: other\n- kind: Pod\n  metadata: *meta\n",
    # a double-quoted value going on past its line, holding lines that look like structure
    "spanning.yaml": 'kind: List\nitems:\n- kind: Secret\n  metadata:\n    name: s1\n'
                     '    annotations:\n      a: "x\n- kind: Pod\n    namespace: other\n  y"\n',
    "flow.yaml": "kind: List\nitems:\n- kind: Pod\n  metadata: {name: f1, namespace: other}\n"
                 "- kind: Pod\n  metadata:\n    name: f2\n    labels: {a: [1,\n      2]}\n",
    "quoted-key.yaml": 'kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: q1\n'
                       '    "namespace": other\n- "kind": Pod\n  metadata:\n    name: q2\n',
    "twice.yaml": "kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: t1\n"
                  "    namespace: default\n    namespace: other\n",
    "nested.yaml": "kind: List\nitems:\n- kind: PodList\n  items:\n  - kind: Pod\n"
                   "    metadata:\n      name: n1\n      namespace: other\n",
    "block.yaml": "kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: b1\n"
                  "    annotations:\n      text: |\n        namespace: default\n"
                  "        - kind: Secret\n    namespace: other\n",
    "typed.yaml": "kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: y1\n"
                  "    namespace: 7\n- kind: Pod\n  metadata:\n    name: y2\n"
                  "    namespace: no\n",
    "object.json": '{"kind": "Pod", "metadata": {"name": "j1", "namespace": "other"}}',
    "comments.yml": "kind: List # a list\nitems: # of pods\n# between\n- kind: Pod  # one\n"
                    "  metadata:\n    # the name\n    name: c1\n    namespace: other # here\n",
}
BROKEN_PIECE = ("kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: ok1\n"
                "- kind: Pod\n  metadata:\n    name: bad\n    labels: {a: b\n")
QUERIES = [Query(), Query(namespace="default"), Query(namespace="other"),
           Query(namespace="quoted"), Query(namespace="single"),
           Query(field_selector="spec.nodeName=n1"), Query(field_selector="spec.nodeName=="),
           Query(namespace="other", name="q1"), Query(field_selector="spec.nodeName!=n1")]
COLLECTIONS = [CATALOGUE["registry-pods"], CATALOGUE["console-secrets"],
               CATALOGUE["persistentvolumes"]]


def _answers(source: DumpSource) -> list[list[dict]]:
    return [source.fetch(collection, query, 10) for collection in COLLECTIONS
            for query in QUERIES]


def test_every_query_answers_what_the_full_parse_answers(tmp_path: Path) -> None:
    for name, text in TRICKY.items():
        (tmp_path / name).write_text(text)
    full = DumpSource(tmp_path, load_dump(tmp_path))
    assert _answers(DumpSource(tmp_path)) == _answers(full)
    assert any(_answers(full)), "the queries match something"


def test_the_scanner_gives_up_on_what_it_cannot_vouch_for() -> None:
    for name in ("anchors.yaml", "spanning.yaml", "flow.yaml"):
        with pytest.raises(Unscannable):
            scan(TRICKY[name].encode(), name)
    pieces = scan(TRICKY["list.yaml"].encode(), "list.yaml")
    assert [(p.where, p.kind, p.fields) for p in pieces] == [
        (f"list.yaml items[{i}]", "Pod", (ns, f"n{i % 2}"))
        for i, ns in enumerate(["default", "other", "quoted", "single"])]
    quoted_namespace, quoted_kind = scan(TRICKY["quoted-key.yaml"].encode(), "q")
    assert quoted_namespace.fields[0] is None and quoted_kind.kind is None


def test_a_broken_piece_loses_its_whole_file_as_the_full_parse_does(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN_PIECE)
    source = DumpSource(tmp_path)
    assert source.fetch(CATALOGUE["registry-pods"], Query(namespace="default"), 10) == []
    assert source.describe()["problems"] == load_dump(tmp_path).problems


def test_problems_are_named_as_the_full_parse_names_them(tmp_path: Path) -> None:
    (tmp_path / "pods.yaml").write_text(
        "kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: p\n  spec:\n"
        "    containers: nope\n")
    source = DumpSource(tmp_path)
    source.fetch(CATALOGUE["registry-pods"], Query(namespace="default"), 10)
    assert source.describe()["problems"] == load_dump(tmp_path).problems != []


def test_serve_rereads_only_the_files_that_changed(tmp_path: Path) -> None:
    shutil.copytree(CLUSTERS / "healthy", tmp_path / "dump")
    first = DumpIndex(tmp_path / "dump")
    changed = tmp_path / "dump" / "console.yaml"
    changed.write_text(changed.read_text().replace("registry-console", "console-renamed"))
    os.utime(changed, ns=(1, 1))  # a new stamp even within the file system's time resolution
    second = DumpIndex(tmp_path / "dump")
    kept = {f.relative for f in second.files if any(f is g for g in first.files)}
    assert kept == {f.relative for f in first.files} - {"console.yaml"}
    assert _verdicts(tmp_path / "dump", full=False) == _verdicts(tmp_path / "dump", full=True)


def test_symlinks_leaving_the_dump_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("kind: Secret\nmetadata:\n  name: stolen\n")
    dump = tmp_path / "dump"
    shutil.copytree(CLUSTERS / "healthy", dump)
    (dump / "link.yaml").symlink_to(outside / "secret.yaml")
    (dump / "folder").symlink_to(outside)
    (dump / "inside.yaml").symlink_to(dump / "registry.yaml")
    names = {o["metadata"]["name"] for o in load_dump(dump).objects}
    assert "stolen" not in names
    relatives = {f.relative for f in DumpIndex(dump).files}
    assert "inside.yaml" in relatives and not relatives & {"link.yaml", "folder/secret.yaml"}


def test_a_log_tail_is_bounded_in_lines_and_bytes_as_the_api_bounds_it(tmp_path: Path) -> None:
    shutil.copytree(CLUSTERS / "healthy", tmp_path / "dump")
    log = tmp_path / "dump" / "logs" / "default" / "docker-registry-3-7kq2x.log"
    log.write_text("".join(f"line {i} {'x' * 1000}\n" for i in range(3000)))
    lazy = DumpSource(tmp_path / "dump")
    full = DumpSource(tmp_path / "dump", load_dump(tmp_path / "dump"))
    for lines in (0, 1, 10, 500):
        tail = lazy.pod_log("default", "docker-registry-3-7kq2x", lines, 10)
        assert tail == full.pod_log("default", "docker-registry-3-7kq2x", lines, 10)
        assert len(tail.encode()) <= LOG_TAIL_BYTES
        assert tail.startswith(f"line {3000 - lines} ") if lines else tail == ""


def test_a_process_reading_many_dumps_keeps_only_the_last_few(tmp_path: Path) -> None:
    from registry_doctor.doctor.snapshot import dumpindex

    for number in range(dumpindex.MAX_CACHED_FOLDERS + 2):
        (tmp_path / str(number)).mkdir()
        (tmp_path / str(number) / "pod.yaml").write_text(TRICKY["documents.yaml"])
        DumpIndex(tmp_path / str(number))
    assert len(dumpindex._FOLDERS) == dumpindex.MAX_CACHED_FOLDERS
    assert (tmp_path / "5").resolve() in dumpindex._FOLDERS


def test_previous_logs_are_read_where_oc_adm_inspect_saves_them(tmp_path: Path) -> None:
    """namespaces/<ns>/pods/<pod>/<container>/<container>/logs/previous.log, its kubelet
    timestamps removed, bounded as a current tail; the lazy and the full reading agree."""
    shutil.copytree(CLUSTERS / "healthy", tmp_path / "dump")
    folder = tmp_path / "dump" / "namespaces" / "default" / "pods" / "docker-registry-3-7kq2x"
    logs = folder / "registry" / "registry" / "logs"
    logs.mkdir(parents=True)
    (logs / "previous.log").write_text("".join(
        f"2019-06-03T09:38:{i % 60:02d}.204377812Z line {i} {'x' * 100}\n" for i in range(2000)))
    (logs / "current.log").write_text("2019-06-03T09:39:00.000000000Z not a previous log\n")
    lazy = DumpSource(tmp_path / "dump")
    full = DumpSource(tmp_path / "dump", load_dump(tmp_path / "dump"))
    for lines in (1, 10, 1000):
        tail = lazy.previous_log("default", "docker-registry-3-7kq2x", "registry", lines, 10)
        assert tail == full.previous_log("default", "docker-registry-3-7kq2x", "registry",
                                         lines, 10)
        assert tail is not None and tail.startswith(f"line {2000 - lines} ")
        assert len(tail.encode()) <= LOG_TAIL_BYTES
    for source in (lazy, full):  # no previous instance: none, as the API answers
        assert source.previous_log("default", "docker-registry-3-7kq2x", "other", 10, 10) \
            is None
        assert source.previous_log("default", "registry-console-2-q8xvd", "registry-console",
                                   10, 10) is None


def test_a_written_previous_log_hides_secrets_and_reads_back(tmp_path: Path) -> None:
    line = ('level=error err="Get https://admin:hunter2pass@s3.example.com/b: AccessDenied: '
            'Access Denied" REGISTRY_STORAGE_S3_SECRETKEY=wJalrXUtnFEMIK7MDENGbPxRfiCY')
    key = ("default", "docker-registry-3-7kq2x", "registry")
    write_dump(tmp_path / "dump", {}, {}, previous_logs={key: line + "\n"})
    written = (tmp_path / "dump" / previous_log_path(*key)).read_text()
    assert "hunter2pass" not in written and "wJalrXUtnFEMIK7MDENGbPxRfiCY" not in written
    assert "AccessDenied: Access Denied" in written
    assert load_dump(tmp_path / "dump").previous_logs == {key: written}
    assert DumpSource(tmp_path / "dump").previous_log(*key, 10, 10) == written.rstrip("\n")
