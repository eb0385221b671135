"""The README's recipes, followed as written on a copy of the package: adding an op is one catalogue
entry, adding a check is one registry entry and its function (and the schema regenerated); each then
works from a case file, and a wrong torch side of the new op fails."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import harness

ROOT = Path(harness.__file__).parent

NEW_OP = '''    Elementwise("{name}", T("pow", lambda pow: lambda x: pow(x, 3){wrong}), lambda x: x**3, X, doc="x^3"),
'''
NEW_CHECK = '''    Check("grad_again", "check_grad_again", (_p("autograd.grad once more", "backward"),), order=1),
'''
NEW_FUNCTION = '''

def check_grad_again(ctx: Prepared, index: int, check: CheckSpec) -> list[Comparison]:
    """The gradient of a scalar output once more, by autograd.grad (the recipe's example)."""
    def one(ctx: Prepared, index: int, check: CheckSpec, o: int, name: str) -> list[Comparison]:
        paths = {"autograd.grad once more": lambda p: autodiff.grad_autograd(ctx.function, ctx.primals[p], o)}
        return _compare_paths(ctx, check, _input_parts(ctx, _single_output_prefix(ctx, name)), paths,
                              lambda p, ref: _collect(ctx, ref, _gradient_by_input(ctx, ref, name, [arb(1)])))

    return _each_output(ctx, index, check, one)
'''


def _insert_after(path: Path, anchor: str, text: str) -> None:
    source = path.read_text()
    assert source.count(anchor) == 1, anchor
    path.write_text(source.replace(anchor, anchor + text))


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "src"
    shutil.copytree(ROOT, copy / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _harness(copy: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(copy), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=copy, env=env, capture_output=True,
                          text=True, timeout=600)


def test_adding_an_op_is_one_catalogue_entry(tmp_path):
    """The recipe followed twice on one copy (one process runs both): a right op passes, and one whose
    torch side is 2^-40 off fails, named as the new op's."""
    copy = _copy(tmp_path)
    for name, wrong in (("cube", ""), ("cubeoff", " * (1 + 2**-40)")):
        _insert_after(copy / "harness" / "catalogue" / "elementwise.py", "SMOOTH: tuple[Op, ...] = (\n",
                      NEW_OP.format(name=name, wrong=wrong))
        (copy / f"{name}.yaml").write_text(f"name: {name}\ninputs: {{x: {{points: [0.5, -1.25, 3]}}}}\n"
                                           f"expr: {name}(x) + sin(x)\nchecks: [value, grad, grad2]\n")
    done = _harness(copy, "run", "cube.yaml", "cubeoff.yaml", "--no-cache", "--reports", "r")
    report = json.loads((copy / "r" / "report.json").read_text())
    assert done.returncode == 1, done.stdout + done.stderr
    assert {r["name"]: r["status"] for r in report["results"]} == {"cube": "pass", "cubeoff": "fail"}
    assert "FAIL cubeoff [float64] value" in done.stdout
    listed = _harness(copy, "ops").stdout.splitlines()
    for name in ("cube", "cubeoff"):
        assert any(line.startswith(f"{name}: torch: torch.pow | exact definition: x**3") for line in listed)


def test_adding_a_check_is_one_registry_entry_and_its_function(tmp_path):
    copy = _copy(tmp_path)
    harness_dir = copy / "harness"
    _insert_after(harness_dir / "registry.py", "CHECKS: dict[str, Check] = {c.name: c for c in (\n", NEW_CHECK)
    source = (harness_dir / "checks.py").read_text()
    anchor = "\n\ndef runner(kind: str)"
    (harness_dir / "checks.py").write_text(source.replace(anchor, NEW_FUNCTION + anchor))
    # the schema regenerated, as the recipe says (python -m harness.registry prints its "check")
    printed = subprocess.run([sys.executable, "-m", "harness.registry"], cwd=copy, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(copy)}, timeout=120, check=True).stdout
    schema_path = harness_dir / "schema" / "case.schema.json"
    schema = json.loads(schema_path.read_text())
    schema["$defs"]["check"] = json.loads(printed)
    schema_path.write_text(json.dumps(schema, indent=2))
    (copy / "again.yaml").write_text("name: again\ninputs: {x: 0.75}\nexpr: exp(x) * x\n"
                                     "checks: [value, grad_again, {grad_again: {paths: [backward]}}]\n")
    done = _harness(copy, "run", "again.yaml", "--no-cache", "--reports", "r")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((copy / "r" / "report.json").read_text())
    ran = {(c["check"], c["path"]) for case in report["results"] for c in case["comparisons"]}
    assert ("grad_again", "autograd.grad once more") in ran
    import jsonschema
    import yaml

    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load((copy / "again.yaml").read_text()))
    paths = _harness(copy, "ops", "--paths").stdout
    assert "grad_again: autograd.grad once more [backward]" in paths
