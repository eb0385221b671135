"""Exact verification of PyTorch derivatives against SymPy, at the exact binary inputs.

`harness.check(fn, expr, **inputs)` and `harness.assert_derivatives(...)` are the Python API
(harness.api); they are imported on first use, so that `import harness` stays light.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("check", "assert_derivatives", "HarnessWarning"):
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


__all__ = ["HarnessWarning", "assert_derivatives", "check"]
