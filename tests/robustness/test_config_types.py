"""config.yml with a wrong type at every storage key, in the file and through REGISTRY_*
environment overrides: registry-doctor's "refuses to start" must agree with the real
`docker-registry serve` on each (the harness of tests/test_registryconfig_real.py), and a
problem it raises must name the key. The hand-written corpus there covers chosen cases; this
one is generated, so a key the resolver forgets is caught."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_registryconfig_real import assert_agrees, judged

# Every storage key the 2.8 registry and the 3.11 fork read (s3-aws/s3.go), valid.
S3 = {"accesskey": "AKIAEXAMPLE", "secretkey": "secret", "region": "us-east-1",
      "regionendpoint": "http://127.0.0.1:9", "bucket": "images", "encrypt": False,
      "keyid": "key", "secure": True, "skipverify": False, "v4auth": True,
      "chunksize": 5242880, "rootdirectory": "/registry", "storageclass": "STANDARD",
      "objectacl": "private"}
OPTIONS = {"delete": {"enabled": True}, "redirect": {"disable": False},
           "cache": {"blobdescriptor": "inmemory"},
           "maintenance": {"uploadpurging": {"enabled": True, "age": "168h",
                                             "interval": "24h", "dryrun": False},
                           "readonly": {"enabled": False}}}
BASES = {"s3": {"version": 0.1, "storage": {"s3": S3, **OPTIONS}},
         "filesystem": {"version": 0.1, "storage": {"filesystem": {"rootdirectory": "{root}"},
                                                     **OPTIONS}}}
WRONG = {"string": "garbage", "list": ["garbage"], "integer": 7, "null": None,
         "mapping": {"garbage": 1}, "boolean": True}
# REGISTRY_* values are parsed as YAML before they are applied.
WRONG_ENV = {"list": "[garbage]", "mapping": "{garbage: 1}", "integer": "7", "empty": "",
             "boolean": "true"}

Path_ = tuple[str, ...]  # keys from the top of config.yml


def _paths(node: Any, prefix: Path_ = ()) -> list[Path_]:
    """Every key below `storage` (sections and leaves), and `version`."""
    if not isinstance(node, dict):
        return [prefix]
    found = [prefix] if prefix else []
    for key, value in node.items():
        found += _paths(value, (*prefix, key))
    return found


def _replaced(document: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


def _get(document: dict[str, Any], path: Path_) -> Any:
    for key in path:
        document = document[key]
    return document


FILE_CASES = [(base, path, label) for base, document in BASES.items()
              for path in _paths(document) for label, value in WRONG.items()
              if type(_get(document, path)) is not type(value)]
ENV_CASES = [(path, label) for path in _paths(BASES["s3"]["storage"]["s3"], ("storage", "s3"))
             for label in WRONG_ENV]


@pytest.mark.parametrize(("base", "path", "label"), FILE_CASES,
                         ids=[f"{b}:{'.'.join(p)}={v}" for b, p, v in FILE_CASES])
def test_a_wrong_type_in_the_file(base: str, path: Path_, label: str, tmp_path: Path) -> None:
    document = _replaced(BASES[base], path, WRONG[label])
    text = yaml.safe_dump(document, sort_keys=False).replace("{root}", str(tmp_path / "root"))
    verdict = assert_agrees(text, {}, tmp_path)
    field = ".".join(path)
    assert all(field.startswith(p.field) or p.field.startswith(field) or p.field == "storage"
               for p in verdict.fatal), [str(p) for p in verdict.fatal]


@pytest.mark.parametrize(("path", "label"), ENV_CASES,
                         ids=[f"{'.'.join(p)}={v}" for p, v in ENV_CASES])
def test_a_wrong_type_from_the_environment(path: Path_, label: str, tmp_path: Path) -> None:
    text = yaml.safe_dump(BASES["s3"], sort_keys=False)
    variable = "REGISTRY_" + "_".join(p.upper() for p in path)
    verdict = assert_agrees(text, {variable: WRONG_ENV[label]}, tmp_path)
    assert all(p.field.startswith(".".join(path[:2])) for p in verdict.fatal), \
        [str(p) for p in verdict.fatal]


VERSIONS = ["0.10", "00.1", "+0.1", "1.0", "0.1.0", "'0.1'", "0x1", "1", "''", "~", "[0.1]"]


@pytest.mark.parametrize("version", VERSIONS)
def test_version_as_written(version: str, tmp_path: Path) -> None:
    """yaml.v2 hands `version` to the registry as the scalar's text: 0.10 is not 0.1."""
    text = f"version: {version}\nstorage:\n  inmemory: {{}}\n"
    verdict = assert_agrees(text, {}, tmp_path)
    assert all(p.field == "version" for p in verdict.fatal)


# Property-based: generated configurations (hypothesis), the real registry as the oracle.
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 6_000_000_000),
                    st.sampled_from(["", "garbage", "us-east-1", "eu-north-1", "true", "0",
                                     "STANDARD", "private", "http://127.0.0.1:9", "5242880"]))
values = st.one_of(scalars, st.lists(scalars, max_size=2),
                   st.dictionaries(st.sampled_from(["a", "enabled"]), scalars, max_size=2))
OPTION_PATHS = [p for p in _paths(OPTIONS) if not isinstance(_get(OPTIONS, p), dict)]


@st.composite
def storages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid storage section with a few keys dropped or changed: near the edge, where
    the registry's verdict can go either way."""
    driver = draw(st.sampled_from(["s3", "filesystem", "inmemory"]))
    params = {"s3": S3, "filesystem": {"rootdirectory": "{root}"}, "inmemory": {}}[driver]
    dropped = draw(st.sets(st.sampled_from(sorted(params) or ["-"]), max_size=2))
    params = {k: v for k, v in params.items() if k not in dropped}
    params.update(draw(st.dictionaries(st.sampled_from(sorted(S3)), values, max_size=1))
                  if driver == "s3" else {})
    storage = {driver: params, **copy.deepcopy(OPTIONS)}
    for path in draw(st.lists(st.sampled_from(OPTION_PATHS), max_size=1)):
        storage = _replaced(storage, path, draw(values))
    if draw(st.integers(0, 9)) == 0:
        storage["inmemory" if driver != "inmemory" else "filesystem"] = {}
    return storage


@settings(max_examples=80, deadline=None)
@given(storage=storages(), env=st.dictionaries(
    st.sampled_from([f"REGISTRY_STORAGE_S3_{k.upper()}" for k in S3] + ["REGISTRY_STORAGE",
                     "REGISTRY_STORAGE_DELETE_ENABLED"]),
    st.sampled_from(["", "garbage", "us-west-2", "true", "7", "[a]", "{a: 1}", "s3"]),
    max_size=1))
def test_generated_configurations_start_exactly_when_the_registry_does(
        storage: dict[str, Any], env: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        text = yaml.safe_dump({"version": 0.1, "storage": storage}, sort_keys=False)
        assert_agrees(text.replace("{root}", f"{folder}/root"), env, Path(folder))


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(sorted(S3)), value=scalars)
def test_an_environment_override_is_the_same_as_the_file(key: str, value: Any) -> None:
    """REGISTRY_STORAGE_S3_<KEY>=<value as YAML> over a file without the key resolves to what
    the file with `key: value` resolves to (configuration.Parser's overwriteMap)."""
    without = {k: v for k, v in S3.items() if k != key}
    in_file = judged(yaml.safe_dump({"version": 0.1, "storage": {"s3": {**without,
                                                                        key: value}}}), {})
    from_env = judged(yaml.safe_dump({"version": 0.1, "storage": {"s3": without}}),
                      {f"REGISTRY_STORAGE_S3_{key.upper()}": _yaml_text(value)})
    assert in_file.storage == from_env.storage
    assert [p.field for p in in_file.fatal] == [p.field for p in from_env.fatal]


def _yaml_text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
