"""Shared helpers: write case YAML to a temporary file and check it."""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from harness import cache
from harness.cases import BadCase, Case, load_file
from harness.results import CaseResult
from harness.run import Options, check_case

# the symbolic cache of this test session (and the processes it starts): a fresh folder, never ~/.cache,
# made by the first process (pytest-xdist's controller) and shared by its workers, which inherit it
if "HARNESS_TEST_CACHE" not in os.environ:
    os.environ["HARNESS_TEST_CACHE"] = tempfile.mkdtemp(prefix="harness-test-cache-")
os.environ["HARNESS_CACHE"] = os.environ["HARNESS_TEST_CACHE"]
cache.use(Path(os.environ["HARNESS_CACHE"]))

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # meta_functions for target: cases


@pytest.fixture
def write_case(tmp_path: Path):
    def write(text: str, name: str = "case.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def load_one(write_case):
    def load(text: str) -> Case | BadCase:
        (case,) = load_file(write_case(text))
        return case

    return load


@pytest.fixture
def run_case(load_one):
    def run(text: str, allow_targets: bool = True) -> list[CaseResult]:
        return check_case(load_one(text), Options(allow_targets=allow_targets))

    return run
