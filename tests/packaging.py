"""What pyproject.toml tells setuptools to build: each installed package and the repository
folder it comes from (the package-dir mapping), and its package data."""

from __future__ import annotations

from setuptools.config.pyprojecttoml import read_configuration

from tests.conftest import REPO

SETUPTOOLS = read_configuration(REPO / "pyproject.toml", expand=False)["tool"]["setuptools"]


def package_folders() -> dict[str, str]:
    """Installed package name -> its folder, relative to the repository root."""
    mapping: dict[str, str] = SETUPTOOLS["package-dir"]
    folders = {}
    for package in SETUPTOOLS["packages"]:
        parent = max((name for name in mapping if package == name or
                      package.startswith(name + ".")), key=len)
        rest = package.removeprefix(parent).lstrip(".").replace(".", "/")
        folders[package] = f"{mapping[parent]}/{rest}".rstrip("/")
    return folders


def package_data() -> dict[str, list[str]]:
    """Installed package name -> glob patterns of its data files, relative to its folder."""
    return SETUPTOOLS["package-data"]
