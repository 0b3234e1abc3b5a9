"""Every dependency is bounded on both sides, and the suite runs inside those bounds."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from packaging.requirements import Requirement
from setuptools.config.pyprojecttoml import read_configuration

from tests.conftest import REPO

PROJECT = read_configuration(REPO / "pyproject.toml", expand=False)["project"]
REQUIREMENTS = [Requirement(text) for text in
                PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]]


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=str)
def test_bounded_and_installed_within_the_bounds(requirement: Requirement) -> None:
    operators = {spec.operator for spec in requirement.specifier}
    assert operators & {">=", "=="} and operators & {"<", "<=", "=="}, \
        f"{requirement}: needs a lower and an upper bound"
    installed = version(requirement.name)
    assert requirement.specifier.contains(installed, prereleases=True), \
        f"{requirement.name} {installed} is outside {requirement.specifier}"
