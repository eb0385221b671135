"""Benchmark: start-up, side by side in one run (run on demand).

Wall time of fresh processes, the median of `repeats` runs each:
- `harness --version`, `harness --help` and `harness ops` (no torch, no SymPy);
- two pairs, each a Python script that imports torch and checks sin at one point, beside `harness run`
  of the same one-point case with the symbolic cache off:
  gradcheck (the anchor) beside `checks: [value, grad]`, and gradcheck + gradgradcheck beside
  `checks: [value, grad, grad2]`;
- torch's own one-time costs, reported apart: `import torch`, and `import torch._dynamo`, which torch
  imports lazily the first time forward-mode AD runs over a backward graph (grad2's forward-over-reverse
  path, `torch.func.jvp` of `torch.func.grad`; `torch.autograd.forward_ad` over `autograd.grad` does
  the same).

    python benchmarks/startup.py [repeats]   (default 5)
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness as harness_package

POINT = "import torch\nx = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)\n"
GRADCHECK = POINT + "assert torch.autograd.gradcheck(torch.sin, (x,))\n"
GRADGRADCHECK = GRADCHECK + "assert torch.autograd.gradgradcheck(torch.sin, (x,))\n"
CASE = "name: sin\ninputs: {{x: 0.5}}\nexpr: sin(x)\nchecks: [{checks}]\n"


def _seconds(commands: dict[str, list[str]], repeats: int, cwd: str) -> dict[str, float]:
    """The median wall time of each command; the rounds interleave the commands, so that a slow spell
    of the machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=cwd, check=True, capture_output=True)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def main(repeats: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "grad.yaml").write_text(CASE.format(checks="value, grad"))
        Path(folder, "grad2.yaml").write_text(CASE.format(checks="value, grad, grad2"))
        harness = [sys.executable, "-m", "harness"]
        run = harness + ["run", "--no-cache", "--reports", "r"]
        rows = {  # name: (command, the row it is measured against)
            "harness --version": (harness + ["--version"], "gradcheck script (anchor)"),
            "harness --help": (harness + ["--help"], "gradcheck script (anchor)"),
            "harness ops": (harness + ["ops"], "gradcheck script (anchor)"),
            "import torch (torch's own cost)": ([sys.executable, "-c", "import torch"], "gradcheck script (anchor)"),
            "import torch._dynamo (torch's own cost)": ([sys.executable, "-c", "import torch._dynamo"],
                                                        "gradcheck script (anchor)"),
            "gradcheck script (anchor)": ([sys.executable, "-c", GRADCHECK], "gradcheck script (anchor)"),
            "harness run grad.yaml: value, grad": (run + ["grad.yaml"], "gradcheck script (anchor)"),
            "gradcheck + gradgradcheck script": ([sys.executable, "-c", GRADGRADCHECK],
                                                 "gradcheck + gradgradcheck script"),
            "harness run grad2.yaml: value, grad, grad2": (run + ["grad2.yaml"], "gradcheck + gradgradcheck script"),
        }
        # Byte-compiled first, as an installed wheel is: with PYTHONDONTWRITEBYTECODE set (it is on some
        # machines) an editable install would otherwise compile the package's source on every start.
        compileall.compile_dir(str(Path(harness_package.__file__).parent), quiet=1)
        measured = _seconds({name: command for name, (command, _) in rows.items()}, repeats, folder)
    print("| command | seconds | against | ratio |")
    print("|---|---|---|---|")
    for name, seconds in measured.items():
        against = rows[name][1]
        print(f"| {name} | {seconds:.2f} | {against} | {seconds / measured[against]:.2f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
