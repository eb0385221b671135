"""Benchmark: the first check of a new expression in a process against a repeated one (run on demand).

In one fresh process (symbolic cache off): torch's own import, then the harness's import, then the
sin case of benchmarks/gradcheck_vs_harness.py (n float64 inputs; value, vjp, grad2) checked once
(the first check: symbolic work, compilation of the closed forms and error model, torch's lazy
imports behind torch.func), then the same case again (the best of `repeats`). In a second fresh
process, torch's own one-time costs are paid first and timed apart: its lazy import of
torch._dynamo, and what the first forward-mode derivative, vjp and vmap in a process cost torch
(it loads and TorchScript-compiles its forward-AD decompositions, torch._decomp.
decompositions_for_jvp: 0.4 s here), paid by a few lines of plain torch on another op than the
case's (torch.func.jvp over torch.func.grad, vjp and vmap of torch.exp on one element), as any
program using those pays them once. Both views are in the table.

    python benchmarks/first_run.py [n] [repeats]   (default 1000 5)
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
n, repeats, dynamo_first = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
t = time.perf_counter(); import torch; torch_import = time.perf_counter() - t
dynamo = torch_once = 0.0
if dynamo_first:
    t = time.perf_counter(); import torch._dynamo; dynamo = time.perf_counter() - t
    t = time.perf_counter()  # torch's own first forward-over-reverse, vjp and vmap, on one element
    one = torch.ones(1, dtype=torch.float64)
    torch.func.jvp(torch.func.grad(lambda v: torch.exp(v).sum()), (one,), (one,))
    torch.func.vjp(torch.exp, one)[1](one)
    torch.func.vmap(torch.exp)(one)
    torch_once = time.perf_counter() - t
t = time.perf_counter()
from harness import cache
from harness.cases import load_text
from harness.run import Options, check_case
harness_import = time.perf_counter() - t
cache.use(None)
text = ("name: first\ninputs: {x: {shape: [%d], sample: {uniform: [-3, 3]}}}\nexpr: sin(x)\n"
        "checks: [value, vjp, grad2]\ndtype: float64\n" % n)
(case,) = load_text(text)
t = time.perf_counter(); (r,) = check_case(case, Options()); first = time.perf_counter() - t
assert r.status == "pass", r.message
again = []
for _ in range(repeats):
    (case,) = load_text(text)
    t = time.perf_counter(); check_case(case, Options()); again.append(time.perf_counter() - t)
print(json.dumps({"torch": torch_import, "dynamo": dynamo, "once": torch_once, "harness": harness_import,
                  "first": first,
                  "repeat": min(again)}))
"""


def run(n: int, repeats: int, dynamo_first: bool) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(n), str(repeats), "1" if dynamo_first else "0"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(n: int, repeats: int) -> None:
    cold, warm = run(n, repeats, False), run(n, repeats, True)
    print(f"sin, n = {n}, value + vjp + grad2, symbolic cache off; seconds")
    print("| process | import torch | torch._dynamo first | torch's first jvp/vjp/vmap | import harness |"
          " first check | repeated | first / repeated |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in (("as a user's", cold), ("torch's one-time costs paid first", warm)):
        print(f"| {name} | {r['torch']:.2f} | {r['dynamo']:.2f} | {r['once']:.2f} | {r['harness']:.2f} |"
              f" {r['first']:.3f} | {r['repeat']:.3f} | {r['first'] / r['repeat']:.1f} |")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args + [1000, 5][len(args):]))
