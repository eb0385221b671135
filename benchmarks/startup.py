"""Benchmark: start-up, side by side in one run (run on demand).

Wall time of fresh processes, the median of `repeats` runs each:
- `harness --version` and `harness --help` (no torch, no SymPy);
- a Python script that imports torch and runs gradcheck + gradgradcheck on sin at one point (the anchor);
- `harness run` of the same one-point case (value, grad, grad2), symbolic cache off;
- `python -c "import torch"` alone: torch's own one-time import cost, reported apart.

    python benchmarks/startup.py [repeats]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRADCHECK = ("import torch\nx = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)\n"
             "assert torch.autograd.gradcheck(torch.sin, (x,)) and torch.autograd.gradgradcheck(torch.sin, (x,))\n")
CASE = "name: sin\ninputs: {x: 0.5}\nexpr: sin(x)\nchecks: [value, grad, grad2]\n"


def _seconds(command: list[str], repeats: int, cwd: str) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "sin.yaml").write_text(CASE)
        harness = [sys.executable, "-m", "harness"]
        rows = {
            "harness --version": harness + ["--version"],
            "harness --help": harness + ["--help"],
            "import torch (torch's own cost)": [sys.executable, "-c", "import torch"],
            "gradcheck + gradgradcheck script (anchor)": [sys.executable, "-c", GRADCHECK],
            "harness run sin.yaml --no-cache": harness + ["run", "sin.yaml", "--no-cache", "--reports", "r"],
        }
        measured = {name: _seconds(command, repeats, folder) for name, command in rows.items()}
    anchor = measured["gradcheck + gradgradcheck script (anchor)"]
    print("| command | seconds | x anchor |")
    print("|---|---|---|")
    for name, seconds in measured.items():
        print(f"| {name} | {seconds:.2f} | {seconds / anchor:.2f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
