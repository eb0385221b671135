from fractions import Fraction

import jsonschema
import pytest
import yaml
from tests_support import ROOT_CASES

from harness.cases import BadCase, Case, load_file, load_paths, load_text, schema
from harness.expr import Num


def test_single_case_with_exact_numbers(load_one):
    case = load_one("""
        name: q
        inputs:
          x: [[0.1, 2], [1/3, 1e-3]]
        constants: {a: 1/3, b: pi}
        expr: a*x + b
        checks: [value]
        dtype: [float32, float64]
    """)
    assert isinstance(case, Case)
    (x,) = case.inputs
    assert x.shape == (2, 2)
    assert x.points[0][0] == Num(Fraction(1, 10))
    assert x.points[0][3] == Num(Fraction(1, 1000))
    assert case.dtypes == ("float32", "float64")
    assert [n for n, _ in case.constants] == ["a", "b"]


def test_several_cases_and_points(write_case):
    path = write_case("""
        cases:
          - name: one
            inputs: {x: {points: [0, 1, 2]}}
            expr: x*x
            checks: [grad]
          - name: two
            inputs: {x: {shape: [5], sample: {uniform: [-1, 1]}, edges: [0, 1]}}
            expr: exp(x)
            checks: [value, {vjp: {v: random}}]
            seed: 3
    """)
    one, two = load_file(path)
    assert one.n_points == 3
    values = two.inputs[0].points[0]
    assert len(values) == 5 and values[:2] == (Num(Fraction(0)), Num(Fraction(1)))
    again = load_file(path)[1]
    assert again.inputs == two.inputs  # the same seed draws the same points


@pytest.mark.parametrize("text, line, message", [
    pytest.param("name: a\ninputs: {x: 1}\nexpr: softpluss(x)\nchecks: [value]\n", 3,
                 "unknown op 'softpluss' (did you mean 'softplus'?)", id="misspelled-op"),
    pytest.param("name: a\ninputs: {x: 1}\nexpr: x\nchecks: [valeu]\n", 4,
                 "unknown check 'valeu' (did you mean 'value'?)", id="misspelled-check"),
    pytest.param("name: a\ninputs: {x: 1}\nexpr: x\nchecks: [value]\ndtyp: float32\n", 5,
                 "unknown key 'dtyp' (did you mean 'dtype'?)", id="unknown-key"),
    pytest.param("name: a\ninputs: {x: .nan}\nexpr: x\nchecks: [value]\n", 2,
                 "non-finite number '.nan'", id="non-finite"),
    pytest.param("name: a\ninputs: {x: 1.0}\nexpr: x\nchecks: [value]\ntolerance: {ulps: .inf}\n", 5,
                 "must be a finite number, got inf", id="infinity-outside-inputs"),
    pytest.param("name: a\ninputs: {x: [[1, 2], [3]]}\nexpr: x\nchecks: [value]\n", 2,
                 "ragged nested list", id="ragged"),
    pytest.param("name: a\ninputs: {x: 1}\nexpr: x\nchecks: [value]\ndtype: float128\n", 5,
                 "unknown dtype 'float128'", id="dtype"),
    pytest.param("name: a\ninputs: {x: 1}\nexpr: x + y\nchecks: [value]\n", 3, "unknown name 'y'", id="unknown-name"),
    pytest.param("name: a\ninputs: {x: 1, y: 2}\nexpr: x\nchecks: [value]\n", 2, "input 'y' is not used", id="unused"),
    pytest.param("name: a\ninputs: {x: 1}\nchecks: [value]\n", 1, "needs 'expr:' or 'outputs:' (or a 'target:'",
                 id="no-expr"),
    pytest.param("name: a\ninputs: {x: 1}\nexpr: x\noutputs: {y: x}\nchecks: [value]\n", 1,
                 "exactly one of 'expr:' and 'outputs:'", id="expr-and-outputs"),
    pytest.param("name: a\ninputs: [1, 2]\nexpr: x\nchecks: [value]\n", 2, "inputs must be a mapping",
                 id="list-for-map"),
    pytest.param("name: a\ninputs: {x: {sample: {uniform: [2, 1]}}}\nexpr: x\nchecks: [value]\n", 2,
                 "uniform needs low < high", id="bad-bounds"),
    pytest.param("name: a\ninputs: {x: 1}\nexpr: x\nchecks: [value]\ntarget: 'os.system'\n", 5,
                 "target must be 'package.module:function'", id="target-form"),
    pytest.param("name: a\ninputs: {x: 1}\nexpr: x\nexpr: y\nchecks: [value]\n", 4, "duplicate key 'expr'",
                 id="dup-key"),
    pytest.param("name: a\ninputs: {x: 1\n", 3, "malformed YAML", id="malformed"),
])
def test_errors_name_file_line_and_value(write_case, text, line, message):
    path = write_case(text)
    (bad,) = load_file(path)
    assert isinstance(bad, BadCase)
    assert bad.message.startswith(f"{path}:{line}: "), bad.message
    assert message in bad.message
    assert "\n" not in bad.message


def test_one_bad_case_does_not_stop_the_others(write_case):
    path = write_case("""
        cases:
          - {name: good, inputs: {x: 1}, expr: x, checks: [value]}
          - {name: bad, inputs: {x: 1}, expr: nope(x), checks: [value]}
          - {name: also-good, inputs: {x: 2}, expr: x, checks: [value]}
    """)
    kinds = [type(c).__name__ for c in load_file(path)]
    assert kinds == ["Case", "BadCase", "Case"]


def test_a_case_that_breaks_the_yaml_conversion_is_only_that_case(write_case):
    # a duplicate key, a tag, a non-mapping item: each is its case's error, with its name and line
    path = write_case("""
        cases:
          - {name: good, inputs: {x: 1}, expr: x, checks: [value]}
          - {name: dup, inputs: {x: 1, x: 2}, expr: x, checks: [value]}
          - {name: tagged, inputs: {x: !!python/none 1}, expr: x, checks: [value]}
          - 17
          - {name: also-good, inputs: {x: 2}, expr: x, checks: [value]}
    """)
    loaded = load_file(path)
    assert [type(c).__name__ for c in loaded] == ["Case", "BadCase", "BadCase", "BadCase", "Case"]
    assert loaded[1].name == "dup" and "duplicate key 'x'" in loaded[1].message and ":4:" in loaded[1].message
    assert loaded[2].name == "tagged" and "tag" in loaded[2].message


def test_empty_file_and_duplicate_names(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "a.yaml").write_text("name: same\ninputs: {x: 1}\nexpr: x\nchecks: [value]\n")
    (tmp_path / "b.yaml").write_text("name: same\ninputs: {x: 1}\nexpr: x\nchecks: [value]\n")
    loaded = load_paths([str(tmp_path)])
    messages = [c.message for c in loaded if isinstance(c, BadCase)]
    assert any("empty file" in m for m in messages)
    assert any("duplicate case name 'same'" in m for m in messages)


def test_yaml_alias_bomb_is_refused(write_case):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi"))
    (bad,) = load_file(write_case(bomb))
    assert "alias bomb" in bad.message


def test_bundled_cases_match_the_shipped_schema():
    validator = jsonschema.Draft202012Validator(schema())
    files = sorted(ROOT_CASES.rglob("*.yaml"))
    assert files
    for f in files:
        errors = list(validator.iter_errors(yaml.safe_load(f.read_text())))
        assert not errors, f"{f}: {errors[0].message}"


def test_the_schema_s_checks_are_the_registry_s():
    """The shipped schema's `check` is what harness.registry derives: each check's own options, nothing
    else (regenerate it with `python -m harness.registry`)."""
    from harness.registry import check_schema

    assert schema()["$defs"]["check"] == check_schema()
    validator = jsonschema.Draft202012Validator(schema())
    case = {"name": "a", "inputs": {"x": 1}, "expr": "x"}
    assert validator.is_valid({**case, "checks": ["value", {"vjp": {"v": "ones"}}, {"derivative": {"order": 3}}]})
    for wrong in ({"value": {"v": "ones"}}, {"jvp": {"v": "ones"}}, {"derivative": None}, "derivative",
                  {"minimize": {"order": 2}}, {"vjp": {}, "grad": {}}):
        assert not validator.is_valid({**case, "checks": [wrong]}), wrong
        (bad,) = load_text(yaml.safe_dump({**case, "checks": [wrong]}))  # the loader refuses it too
        assert isinstance(bad, BadCase), wrong


def test_schema_rejects_what_the_loader_rejects():
    validator = jsonschema.Draft202012Validator(schema())
    assert not validator.is_valid({"name": "a", "inputs": {"x": 1}, "checks": ["value"]})  # no expr
    assert not validator.is_valid({"name": "a", "inputs": {"x": 1}, "expr": "x", "checks": ["valeu"]})


def test_the_output_of_expr_is_y_unless_an_input_has_that_name():
    (case,) = load_text("name: c\ninputs: {x: 0.5}\nexpr: x\nchecks: [value]\n")
    assert [name for name, _ in case.outputs] == ["y"]
    (case,) = load_text("name: c\ninputs: {x: 0.5, y: 2}\nexpr: x * y\nchecks: [value]\n")
    assert [name for name, _ in case.outputs] == ["out"]


def test_a_folder_walk_skips_hidden_folders_and_installed_packages(tmp_path):
    for junk in (".venv/lib/x.yaml", "node_modules/p/y.yml", ".github/workflows/ci.yaml", "a/site-packages/z.yaml"):
        (tmp_path / junk).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / junk).write_text("- not a case\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.yaml").write_text("name: good\ninputs: {x: 0.5}\nexpr: x\nchecks: [value]\n")
    assert [c.name for c in load_paths([str(tmp_path)])] == ["good"]
