from fractions import Fraction

import pytest

from harness.catalogue import ELEMENTWISE, OPS
from harness.errors import HarnessError
from harness.expr import Call, Const, Index, Name, Num, is_elementwise, parse, unparse

OPS_NAMES = set(OPS)


def p(text, names=("x", "y")):
    return parse(text, ops=OPS_NAMES, names=set(names))


def test_literals_are_exact_decimals():
    assert p("0.1") == Num(Fraction(1, 10))
    assert p("1e-30") == Num(Fraction(1, 10**30))
    assert p("1_000.5") == Num(Fraction(2001, 2))


def test_operators_become_catalogue_calls():
    tree = p("-x + 2*y**3 / x - y @ x")
    cube = Call("pow", (Name("y"), Num(Fraction(3))))
    quotient = Call("div", (Call("mul", (Num(Fraction(2)), cube)), Name("x")))
    assert tree == Call("sub", (Call("add", (Call("neg", (Name("x"),)), quotient)),
                                Call("matmul", (Name("y"), Name("x")))))


def test_calls_keywords_constants_and_indexing():
    assert p("softplus(x, beta=2)") == Call("softplus", (Name("x"),), (("beta", Fraction(2)),))
    assert p("pi * x") == Call("mul", (Const("pi"), Name("x")))
    assert p("x[0, 1:3]") == Index(Name("x"), (0, (1, 3, None)))


@pytest.mark.parametrize("text, message", [
    pytest.param("x.__class__", "attribute access is not allowed", id="attribute"),
    pytest.param("__import__('os')", "'__import__' is not allowed", id="dunder-call"),
    pytest.param("lambda: 1", "a lambda is not allowed", id="lambda"),
    pytest.param("[v for v in x]", "a comprehension is not allowed", id="comprehension"),
    pytest.param("f'{x}'", "an f-string is not allowed", id="f-string"),
    pytest.param("'abc'", "only numbers are allowed", id="string"),
    pytest.param("x if x else y", "an if-expression is not allowed", id="ifexp"),
    pytest.param("softpluss(x)", "unknown op 'softpluss' (did you mean 'softplus'?)", id="misspelled-op"),
    pytest.param("z + 1", "unknown name 'z'", id="unknown-name"),
    pytest.param("x**(10**10)", "too large", id="huge-exponent"),
    pytest.param("x +", "invalid expression", id="syntax"),
    pytest.param("exp", "op 'exp' must be called", id="uncalled-op"),
    pytest.param("x[y]", "indices must be integer literals", id="tensor-index"),
    pytest.param("exp(x, **{'a': 1})", "'**' arguments are not allowed", id="double-star"),
])
def test_rejected(text, message):
    with pytest.raises(HarnessError, match=None) as info:
        p(text)
    assert message in str(info.value)


def test_depth_and_size_limits():
    with pytest.raises(HarnessError, match="nested deeper"):
        p("(" * 80 + "x" + ")+1" * 80)
    balanced = "x"
    for _ in range(11):  # 2048 leaves, depth 11
        balanced = f"({balanced}+{balanced})"
    with pytest.raises(HarnessError, match="more than 2000 nodes"):
        p(balanced)


def test_elementwise_detection():
    assert is_elementwise(p("exp(x) * y + 1"), ELEMENTWISE)
    assert not is_elementwise(p("sum(x)"), ELEMENTWISE)
    assert not is_elementwise(p("x[0] + y"), ELEMENTWISE)


def test_transform_replaces_what_the_rewrite_returns_and_rebuilds_the_rest_left_to_right():
    from harness.expr import Seq, transform

    tree = parse("stack([x + 2, sum(y[0] * 3, dim=0)])", ops={"add", "mul", "sum", "stack"}, names={"x", "y"})
    seen = []

    def rewrite(node):
        seen.append(type(node).__name__ + (f":{node.id}" if isinstance(node, Name) else ""))
        return Num(node.value + 1) if isinstance(node, Num) else None

    out = transform(tree, rewrite, keyword=lambda k, v: v + 5 if k == "dim" else v)
    assert unparse(out) == "stack([x + 3, sum(y[0] * 4, dim=5)])"
    assert seen == ["Call", "Seq", "Call", "Name:x", "Num", "Call", "Call", "Index", "Name:y", "Num"]
    assert isinstance(out.args[0], Seq) and tree.args[0].items[0].args[1].value == Fraction(2)  # a new tree
    whole = transform(tree, lambda n: Name("z") if isinstance(n, Seq) else None)
    assert unparse(whole) == "stack(z)"  # a replaced node's subtrees are not visited
