"""pytest plugin: case files collected as test items, one per case, dtype and check.

`pytest cases/` collects the YAML files under the paths named on the command line, and under the
folders of the `harness_cases` ini option (so that a plain `pytest` collects them too); no other
YAML file of a project is touched. Each becomes items per case, dtype, device and check, run
through the same `check_case` as `harness run`. A failure shows the report's message
text, not a traceback; `xfail:` maps to pytest's xfail; pytest-xdist (`-n auto`) runs items in
parallel. Registered through the `pytest11` entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.cases import BadCase, Case, Limits, load_file
from harness.errors import unexpected
from harness.report.text import visible
from harness.results import CaseResult
from harness.run import Options, check_case, check_outcome, expected_failure, runs

_ROOTS = pytest.StashKey[tuple[Path, ...]]()  # the opted-in paths, resolved
LOAD_SECONDS = 300.0  # loading one file, as `harness run --timeout`'s default
_RESULTS: dict[tuple[str, int], list[CaseResult]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness")
    group.addoption("--harness-allow-target", action="store_true", help="let case files import their target:")
    parser.addini("harness_cases", "collect YAML case files in these folders too", type="paths", default=[])


def _is_case_file(file_path: Path, config: pytest.Config) -> bool:
    """A YAML file named on the command line, under a folder named there, or under a folder of the
    `harness_cases` ini option: an opt-in, never a guess from folder names."""
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    if _ROOTS not in config.stash:  # once per session: pytest asks for every file of the tree
        root = config.invocation_params.dir
        typed = [a for a in config.invocation_params.args if not str(a).startswith("-")]
        named = [(root / str(a).split("::")[0]).resolve() for a in typed]
        config.stash[_ROOTS] = (*named, *(Path(p).resolve() for p in config.getini("harness_cases")))
    resolved = file_path.absolute().resolve()
    return any(resolved == n or n in resolved.parents for n in config.stash[_ROOTS])


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if _is_case_file(file_path, parent.config):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self) -> Any:
        """One item per case, dtype and check; a bad file or case is one failing item, and pytest
        goes on collecting (a collection error would stop the whole session)."""
        for case in load_file(self.path, Limits(timeout=LOAD_SECONDS)):
            try:
                items = list(self._items(case))
            except Exception as exc:  # the case's boundary
                items = [self._bad(BadCase(case.name, case.file, case.line,
                                           f"{case.file}:{case.line}: {unexpected(exc)}"))]
            yield from items

    def _bad(self, case: BadCase) -> CaseItem:
        return CaseItem.from_parent(self, name=visible(f"{case.name} (bad case file)"), case=case, dtype="-",
                                    check="-")

    def _items(self, case: Case | BadCase) -> Any:
        if isinstance(case, BadCase):
            yield self._bad(case)
            return
        for dtype, device in runs(case):
            on = "" if case.devices == ("cpu",) else f" on {device}"
            for check in dict.fromkeys(c.kind for c in case.checks):
                item = CaseItem.from_parent(self, name=visible(f"{case.name}[{dtype}{on}]::{check}"), case=case,
                                            dtype=dtype, check=check, device=device)
                xfail = expected_failure(case, dtype, check)
                if xfail is not None:
                    item.add_marker(pytest.mark.xfail(reason=visible(xfail.reason), strict=xfail.strict))
                yield item


def _skip(reason: str) -> None:
    """Skip the item, reported at the case file's line (the item's location), not this module's."""
    raise pytest.skip.Exception(visible(reason), _use_item_location=True)


class CaseFailure(Exception):
    """A case's comparisons failed: the report text says where and by how much."""


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case | BadCase, dtype: str, check: str, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case, self.dtype, self.check, self.device = case, dtype, check, device

    def runtest(self) -> None:
        if isinstance(self.case, BadCase):
            raise CaseFailure(self.case.message)
        key = (self.case.file, self.case.line)
        if key not in _RESULTS:  # one run per case serves all its items in this process
            allow = bool(self.config.getoption("harness_allow_target"))
            _RESULTS[key] = check_case(self.case, Options(allow_targets=allow, allow_flag="--harness-allow-target"))
        (result,) = [r for r in _RESULTS[key] if r.dtype == self.dtype and r.device == self.device]
        outcome = check_outcome(self.case, result, self.check)
        if outcome.kind == "fail" or (outcome.kind == "xfail" and not outcome.elsewhere):
            raise CaseFailure(outcome.text)  # under its xfail marker, pytest reports the expected failure
        if outcome.kind == "xfail":  # the case's failure is in another check: this one is part of it, not an xpass
            pytest.xfail(visible(outcome.text))
        if outcome.kind == "skip":
            _skip(outcome.text)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailure):
            return "\n".join(visible(line) for line in str(excinfo.value).split("\n"))
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, visible(f"{self.case.name} [{self.dtype}] {self.check}")
