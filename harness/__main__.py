"""`python -m harness`: as the `harness` command. Python puts the working directory first on
sys.path for `-m`; it is taken off before anything else is imported, so a checkout's own `xml/`
or `json/` never stands in for the standard library's (targets are still found there: see
harness.target)."""

import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()) and not sys.flags.safe_path:
    del sys.path[0]

from harness.cli import main  # noqa: E402

raise SystemExit(main())
