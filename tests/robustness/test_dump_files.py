"""How the dump loader treats odd files, beyond "no traceback" (tests/robustness/corpus.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from registry_doctor.doctor.snapshot.dump import load_dump
from tests.conftest import CLUSTERS

POD = ("default", "docker-registry-3-7kq2x")


def test_a_log_with_a_stray_byte_is_read_as_live_mode_reads_it(tmp_path: Path) -> None:
    """The API server's log endpoint returns bytes; live mode decodes them with replacement
    characters, so a dump must not lose the whole log for one bad byte."""
    shutil.copytree(CLUSTERS / "healthy", tmp_path / "dump")
    log = tmp_path / "dump" / "logs" / POD[0] / f"{POD[1]}.log"
    log.write_bytes(b"level=info msg=start\n\xff\xfe binary\nlevel=error msg=\"s3 failed\"\n")
    dump = load_dump(tmp_path / "dump")
    assert dump.problems == []
    assert dump.logs[POD].splitlines() == ["level=info msg=start", "\ufffd\ufffd binary",
                                           "level=error msg=\"s3 failed\""]


def test_a_symlink_loop_is_not_followed(tmp_path: Path) -> None:
    shutil.copytree(CLUSTERS / "healthy", tmp_path / "dump")
    (tmp_path / "dump" / "loop").symlink_to(tmp_path / "dump")
    assert len(load_dump(tmp_path / "dump").objects) == len(load_dump(CLUSTERS / "healthy")
                                                            .objects)
