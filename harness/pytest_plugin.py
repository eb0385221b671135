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
from harness.results import CaseResult, unsupported_reason
from harness.run import Options, check_case

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
        for dtype, device in ((d, v) for v in case.devices for d in case.dtypes):
            on = "" if case.devices == ("cpu",) else f" on {device}"
            for check in dict.fromkeys(c.kind for c in case.checks):
                item = CaseItem.from_parent(self, name=visible(f"{case.name}[{dtype}{on}]::{check}"), case=case,
                                            dtype=dtype, check=check, device=device)
                xfail = _xfail(case, dtype, check)
                if xfail is not None:
                    item.add_marker(pytest.mark.xfail(reason=visible(xfail.reason), strict=xfail.strict))
                yield item


def _xfail(case: Case, dtype: str, check: str) -> Any:
    if case.xfail is not None and case.xfail.applies(dtype):
        return case.xfail
    for spec in case.checks:
        if spec.kind == check and spec.xfail is not None and spec.xfail.applies(dtype):
            return spec.xfail
    return None


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
        if result.status == "error" and not result.comparisons:
            raise CaseFailure(result.message)
        bad = [c for c in result.comparisons if c.check == self.check and c.status in ("fail", "error")]
        if not bad:
            # an xfail check that passed: under pytest's xfail marker a clean return is an xpass
            bad = [c for c in result.comparisons
                   if c.check == self.check and c.status == "xfail" and self.get_closest_marker("xfail")]
        if bad:
            raise CaseFailure("\n".join(c.message for c in bad))
        if result.status == "xfail" and self.case.xfail is not None and self.case.xfail.applies(self.dtype):
            # the case's expected failure is in another check: this one is part of it, not an xpass
            pytest.xfail(visible(f"{self.case.xfail.reason} (the case fails in another check)"))
        mine = [c for c in result.comparisons if c.check == self.check]
        if all(c.status == "unsupported" for c in mine):  # (a check always makes a comparison)
            reasons = dict.fromkeys(unsupported_reason(c) for c in mine)
            _skip(f"no torch path of {self.check} can run: {'; '.join(reasons)}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailure):
            return "\n".join(visible(line) for line in str(excinfo.value).split("\n"))
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, visible(f"{self.case.name} [{self.dtype}] {self.check}")
