"""pyproject.toml: a bounded build backend and the license in the form it no longer warns about."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())


def test_the_build_backend_is_bounded_on_both_sides():
    (setuptools,) = [r for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")]
    assert re.fullmatch(r"setuptools>=\d+,<\d+", setuptools), setuptools
    low = int(re.search(r">=(\d+)", setuptools).group(1))
    assert low >= 77  # SPDX license strings (PEP 639) need 77; older forms print deprecation banners


def test_the_license_is_an_spdx_expression_not_a_table():
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert not any(c.startswith("License ::") for c in PYPROJECT["project"].get("classifiers", []))
