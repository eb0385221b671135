"""Targets: found as people name them, next to the case file first, sys.path left as it was,
inputs passed by parameter name."""

import subprocess
import sys
import textwrap
import xml.dom.minidom
from pathlib import Path

import pytest

from harness.cases import load_file
from harness.errors import HarnessError
from harness.run import Options, check_case
from harness.target import bind, from_callable, resolve

CASE = """
name: {name}
inputs: {inputs}
expr: {expr}
target: {target}
checks: [value, vjp]
"""


def _run(write_case, target, inputs="{x: {points: [-2.0, 0.5, 3.0]}}", expr="softplus(x)", name="c",
         file="case.yaml"):
    (case,) = load_file(write_case(CASE.format(name=name, inputs=inputs, expr=expr, target=target), file))
    return check_case(case, Options(allow_targets=True))


@pytest.mark.parametrize("target", [
    pytest.param("classic_functions:Softplus", id="module:Class"),
    pytest.param("classic_functions:Softplus.apply", id="module:Class.apply"),
    pytest.param("classic_functions:holder.softplus", id="module:obj.attr"),
])
def test_targets_as_people_name_them(write_case, target):
    (result,) = _run(write_case, target)
    assert result.status == "pass", result.message


def test_a_function_class_is_recognised_and_its_style_read():
    import classic_functions as cf

    assert from_callable(cf.Softplus).function_class is cf.Softplus
    assert from_callable(cf.Softplus.apply).style == "classic"
    assert from_callable(cf.SoftplusNew).style == "new"
    assert from_callable(cf.divide).function_class is None


@pytest.mark.parametrize("inputs, status", [
    pytest.param("{y: 2.0, x: 3.0}", "pass", id="listed-out-of-order"),
    pytest.param("{x: 3.0, y: 2.0}", "pass", id="in-order"),
])
def test_inputs_are_passed_by_parameter_name(write_case, inputs, status):
    for target in ("classic_functions:divide", "classic_functions:Div"):
        (result,) = _run(write_case, target, inputs=inputs, expr="x / y")
        assert result.status == status, result.message


def test_star_args_take_the_inputs_in_the_case_order(write_case):
    (right,) = _run(write_case, "classic_functions:divide_all", inputs="{x: 3.0, y: 2.0}", expr="x / y")
    assert right.status == "pass"
    (swapped,) = _run(write_case, "classic_functions:divide_all", inputs="{y: 2.0, x: 3.0}", expr="x / y")
    assert swapped.status == "fail"  # y / x against x / y: positional, as documented for *args


def test_one_input_binds_to_one_parameter_whatever_its_name(write_case):
    (result,) = _run(write_case, "classic_functions:LegendrePolynomial3", expr="0.5 * (5 * x**3 - 3 * x)")
    assert result.status == "pass", result.message


def test_builtins_without_a_signature_are_called_positionally(write_case):
    (result,) = _run(write_case, "torch:atan2", inputs="{y: 1.5, x: -0.5}", expr="atan2(y, x)")
    assert result.status == "pass", result.message


@pytest.mark.parametrize("inputs, message", [
    pytest.param("{x: 1.0, z: 2.0}", "target divide(x, y) has no parameter 'z' (inputs are passed by name)",
                 id="not-a-parameter"),
    pytest.param("{y: 1.0, w: 2.0}", "has no parameter 'w'", id="two-unknown"),
])
def test_inputs_that_match_no_parameter_are_one_line(write_case, inputs, message):
    (result,) = _run(write_case, "classic_functions:divide", inputs=inputs, expr="x" if "x" in inputs else "y")
    assert result.status == "error" and message in result.message and "\n" not in result.message


def test_a_missing_parameter_is_named():
    import classic_functions as cf

    with pytest.raises(HarnessError, match=r"Div.forward\(ctx, x, y\) needs 'y'"):
        bind(from_callable(cf.Div), ["x"], 1)


@pytest.mark.parametrize("target, message", [
    pytest.param("no_such_module_xyz:f", "no module 'no_such_module_xyz' next to the case file", id="no-module"),
    pytest.param("classic_functions:Nope", "classic_functions has no attribute 'Nope'", id="no-attribute"),
    pytest.param("classic_functions:holder.nope", "classic_functions.holder has no attribute 'nope'",
                 id="no-attribute-deep"),
])
def test_import_failures_are_one_line(write_case, target, message):
    (result,) = _run(write_case, target)
    assert result.status == "error" and message in result.message and "\n" not in result.message


def test_a_module_is_found_next_to_the_case_file_then_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "nextto_mod.py").write_text("import torch\nf = torch.sin\n")
    (tmp_path / "cwd_mod.py").write_text("import torch\nf = torch.sin\n")
    monkeypatch.chdir(tmp_path)
    before = list(sys.path)
    for module in ("nextto_mod", "cwd_mod"):
        case = tmp_path / "suite" / f"{module}.yaml"
        case.write_text(CASE.format(name=module, inputs="{x: 0.5}", expr="sin(x)", target=f"{module}:f"))
        (result,) = check_case(load_file(case)[0], Options(allow_targets=True))
        assert result.status == "pass", result.message
        assert sys.path == before
    monkeypatch.delitem(sys.modules, "nextto_mod")
    monkeypatch.delitem(sys.modules, "cwd_mod")


def test_a_module_that_fails_on_import_is_one_line_and_sys_path_is_restored(tmp_path):
    (tmp_path / "broken_mod.py").write_text("import torch\nraise ValueError('no GPU here')\n")
    before = list(sys.path)
    with pytest.raises(HarnessError, match=r"cannot import target 'broken_mod:f': ValueError: no GPU here"):
        resolve("broken_mod:f", str(tmp_path / "case.yaml"))
    assert sys.path == before


def test_two_modules_of_one_name_in_two_folders_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "twin_mod.py").write_text("f = abs\n")
    try:
        assert resolve("twin_mod:f", str(tmp_path / "a" / "c.yaml")).callable is abs
        with pytest.raises(HarnessError, match="already imported from .*a/twin_mod.py; .*b/twin_mod.py has the same"):
            resolve("twin_mod:f", str(tmp_path / "b" / "c.yaml"))
    finally:
        sys.modules.pop("twin_mod", None)


def test_a_checkouts_own_xml_package_never_replaces_the_standard_library(tmp_path):
    """The target's folder is first on sys.path only while it is imported: junit.xml is written
    by the standard library's xml, not by a folder named xml/ next to the case."""
    (tmp_path / "xml").mkdir()
    (tmp_path / "xml" / "__init__.py").write_text("raise ImportError('the checkout xml/ was imported')\n")
    (tmp_path / "user_mod.py").write_text("import torch\nf = torch.sin\n")
    (tmp_path / "case.yaml").write_text(CASE.format(name="c", inputs="{x: 0.5}", expr="sin(x)", target="user_mod:f"))
    harness = Path(sys.executable).with_name("harness")
    done = subprocess.run([str(harness), "run", "case.yaml", "--allow-target", "--reports", "r"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    xml.dom.minidom.parse(str(tmp_path / "r" / "junit.xml"))


def test_the_flag_that_allows_targets_is_named_as_the_caller_spells_it(write_case):
    (case,) = load_file(write_case(CASE.format(name="c", inputs="{x: 0.5}", expr="sin(x)", target="torch:sin")))
    (cli,) = check_case(case, Options())
    (plugin,) = check_case(case, Options(allow_flag="--harness-allow-target"))
    assert cli.message.endswith("imports of user code need --allow-target")
    assert plugin.message.endswith("imports of user code need --harness-allow-target")


def test_show_takes_the_flag(write_case, capsys):
    from harness.cli import main

    path = write_case(textwrap.dedent(CASE.format(name="c", inputs="{x: 0.5}", expr="softplus(x)",
                                                  target="classic_functions:Softplus")))
    assert main(["show", str(path), "--allow-target"]) == 0
    out = capsys.readouterr().out
    assert "[float64] pass" in out and "vjp > torch.func.vjp: unsupported: Softplus: torch.func transforms" in out


# ---------------------------------------------------------------- what an attacker's pass found

MODULE = '''
import time
import torch


class Exp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x)


class Scale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale=2.0, y=None):
        ctx.save_for_backward(x, y)
        return x * y * scale

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return grad * y * 2.0, None, grad * x * 2.0


class KeywordOnly(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, *, y):
        return x * y

    @staticmethod
    def backward(ctx, grad):
        return grad, None


class Div(torch.nn.Module):
    def forward(self, x, y):
        return x / y


div_module = Div()


def exits(x):
    raise SystemExit(3)


def swallows_the_timeout(x):
    try:
        while True:
            pass
    except BaseException:
        pass
    time.sleep(30)
    return torch.exp(x)


def mimics_torch(x):
    torch._check(False, lambda: "In order to use an autograd.Function with functorch transforms (vmap, grad, jvp,"
                 " jacrev, ...), it must override the setup_context staticmethod.")
    return x


def vmaps_a_classic_function(x):
    return torch.func.vmap(Exp.apply)(x.reshape(1, -1)).reshape(x.shape)


def mutates(x):
    y = torch.exp(x)
    x.add_(1.0)
    return y


def by_key(x):
    return {"c": torch.cos(x), "s": torch.sin(x)}


def wrong_keys(x):
    return {"foo": torch.sin(x), "bar": torch.cos(x)}


def returns_none(x):
    return None
'''


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "attack_mod.py").write_text(MODULE)
    yield tmp_path
    for name in [m for m in sys.modules if m == "attack_mod"]:
        del sys.modules[name]


def _case_in(folder, target, expr="exp(x)", inputs="{x: {points: [0.5, -1.0]}}", checks="[value, vjp]",
             extra="", options=None):
    path = folder / "case.yaml"
    path.write_text(f"name: c\ninputs: {inputs}\nexpr: {expr}\ntarget: {target}\nchecks: {checks}\n{extra}")
    (case,) = load_file(path)
    assert not hasattr(case, "message"), case.message
    return check_case(case, options or Options(allow_targets=True))


def test_an_exit_called_by_user_code_is_that_cases_error(folder):
    (result,) = _case_in(folder, "attack_mod:exits", checks="[value]")
    assert result.status == "error" and "the target raised SystemExit(3)" in result.message


def test_an_exit_at_import_is_one_line(tmp_path):
    (tmp_path / "exits_at_import.py").write_text("raise SystemExit(4)\n")
    with pytest.raises(HarnessError, match=r"cannot import target 'exits_at_import:f': SystemExit: 4"):
        resolve("exits_at_import:f", str(tmp_path / "case.yaml"))


def test_user_code_that_swallows_the_timeout_still_times_out(folder):
    (result,) = _case_in(folder, "attack_mod:swallows_the_timeout", checks="[value]",
                         options=Options(allow_targets=True, timeout=1.0))
    assert result.status == "error" and "timed out after 1 s" in result.message


def test_torchs_words_from_torch_check_in_user_code_are_an_error(folder):
    (result,) = _case_in(folder, "attack_mod:mimics_torch", expr="x", checks="[value]")
    forward = {c.path: c for c in result.comparisons}["forward"]
    assert forward.status == "error" and result.status == "error"


def test_a_plain_function_that_vmaps_a_classic_function_itself_is_an_error_not_unsupported(folder):
    (result,) = _case_in(folder, "attack_mod:vmaps_a_classic_function", checks="[value]")
    forward = {c.path: c for c in result.comparisons}["forward"]
    assert forward.status == "error" and "setup_context" in forward.message


def test_a_module_instance_is_bound_by_its_forwards_names(folder):
    (result,) = _case_in(folder, "attack_mod:div_module", expr="x / y", inputs="{y: 2.0, x: 3.0}", checks="[value]")
    assert result.status == "pass", result.message


def test_a_dict_is_matched_to_the_outputs_by_key(folder):
    path = folder / "case.yaml"
    for target, status in (("by_key", "pass"), ("wrong_keys", "error")):
        path.write_text(f"name: c\ninputs: {{x: 0.5}}\noutputs: {{s: sin(x), c: cos(x)}}\n"
                        f"target: attack_mod:{target}\nchecks: [value]\n")
        (result,) = check_case(load_file(path)[0], Options(allow_targets=True))
        assert result.status == status, result.message
    assert "keys ['bar', 'foo'], the case's outputs are ['s', 'c']" in result.comparisons[0].message


def test_a_none_result_says_what_was_expected(folder):
    (result,) = _case_in(folder, "attack_mod:returns_none", checks="[value]")
    assert "target returned NoneType, expected a tensor" in result.comparisons[0].message


def test_what_a_target_does_to_its_inputs_stays_with_that_call(folder):
    (result,) = _case_in(folder, "attack_mod:mutates", checks="[value]")
    assert {c.path: c.status for c in result.comparisons} == {"forward": "pass", "traced forward = expr": "pass",
                                                              "torch.func.vmap over the points": "pass"}


def test_function_parameters_with_defaults_between_inputs_are_filled_in(folder):
    (result,) = _case_in(folder, "attack_mod:Scale", expr="2 * x * y", inputs="{y: 3.0, x: 0.5}", checks="[value]")
    assert result.status == "pass", result.message
    (kw,) = _case_in(folder, "attack_mod:KeywordOnly", expr="x * y", inputs="{x: 1.0, y: 2.0}", checks="[value]")
    assert kw.status == "error" and "'y' is keyword-only, which autograd.Function.apply cannot pass" in kw.message


def test_a_module_with_a_standard_library_name_is_refused(tmp_path):
    (tmp_path / "html.py").write_text("import torch\nf = torch.exp\n")
    case = tmp_path / "case.yaml"
    case.write_text(CASE.format(name="c", inputs="{x: 0.5}", expr="exp(x)", target="html:f"))
    (result,) = check_case(load_file(case)[0], Options(allow_targets=True))
    assert result.status == "error" and ("standard-library" in result.message or "already imported" in result.message)
    import html

    assert hasattr(html, "escape")  # still the standard library's


def test_a_sibling_module_of_the_same_name_in_another_folder_is_refused(tmp_path):
    for folder, body in (("a", "import torch\nf = torch.exp\n"), ("b", "import torch\nf = torch.sin\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "helper_sib.py").write_text(body)
        (tmp_path / folder / f"mod_{folder}.py").write_text("from helper_sib import f\n")
    try:
        resolve("mod_a:f", str(tmp_path / "a" / "c.yaml"))
        with pytest.raises(HarnessError, match="'helper_sib' is already imported from .*a/helper_sib.py"):
            resolve("mod_b:f", str(tmp_path / "b" / "c.yaml"))
    finally:
        for name in ("helper_sib", "mod_a", "mod_b"):
            sys.modules.pop(name, None)


def test_a_symlinked_case_file_finds_modules_next_to_the_link(tmp_path):
    (tmp_path / "L").mkdir()
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "case.yaml").write_text(CASE.format(name="c", inputs="{x: 0.5}", expr="exp(x)",
                                                          target="linked_mod:f"))
    (tmp_path / "L" / "linked_mod.py").write_text("import torch\nf = torch.exp\n")
    (tmp_path / "L" / "link.yaml").symlink_to(tmp_path / "R" / "case.yaml")
    try:
        assert resolve("linked_mod:f", str(tmp_path / "L" / "link.yaml")).callable is not None
    finally:
        sys.modules.pop("linked_mod", None)


def test_sys_path_is_the_same_list_afterwards(tmp_path):
    (tmp_path / "rebinds_path.py").write_text("import sys\nsys.path = ['/nowhere'] + sys.path\nf = abs\n")
    before = sys.path
    try:
        resolve("rebinds_path:f", str(tmp_path / "c.yaml"))
    finally:
        sys.modules.pop("rebinds_path", None)
    assert sys.path is before and "/nowhere" not in sys.path


def test_show_says_why_a_case_could_not_run(write_case, capsys):
    from harness.cli import main

    path = write_case(CASE.format(name="c", inputs="{x: 0.5}", expr="exp(x)", target="no_module_here:f"))
    main(["show", str(path)])
    assert "imports of user code need --allow-target" in capsys.readouterr().out
