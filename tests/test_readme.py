"""The README's Python example runs as written (against examples/custom_function)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_python_api_example_runs_as_written():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def test_softplus" in b]
    sys.path.insert(0, str(ROOT / "examples" / "custom_function"))
    try:
        namespace: dict = {}
        exec(compile(block, "<README.md example>", "exec"), namespace)  # our own README, not case data
        namespace["test_softplus"]()
        namespace["test_softplus_anywhere"]()
    finally:
        sys.path.remove(str(ROOT / "examples" / "custom_function"))
        sys.modules.pop("activations", None)
