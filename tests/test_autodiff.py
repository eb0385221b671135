import numpy as np
import torch

from harness import autodiff
from harness.catalogue import OPS
from harness.expr import parse
from harness.numbers import FORMATS
from harness.reference import fold


def function(text, inputs):
    tree = fold(parse(text, ops=set(OPS), names=set(inputs)), FORMATS["float64"], {})
    return autodiff.build_function({"y": tree}, list(inputs))


def test_runs_the_real_torch_ops():
    f = function("softplus(x, beta=2) + x[1]", ["x"])
    x = torch.tensor([0.5, -1.0], dtype=torch.float64)
    (y,) = f(x)
    assert torch.equal(y, torch.nn.functional.softplus(x, beta=2.0) + x[1])


def test_first_order_paths_agree_on_a_simple_function():
    f = function("x*x*y", ["x", "y"])
    primals = (torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64))
    v = torch.tensor([1.0, -1.0], dtype=torch.float64)
    expected = [np.array([6.0, -12.0]), np.array(1.0 - 4.0)]
    for path in (autodiff.vjp_backward, autodiff.vjp_autograd, autodiff.vjp_sum, autodiff.vjp_func):
        got = path(f, primals, 0, v)
        assert all(np.array_equal(g, e) for g, e in zip(got, expected)), path.__name__


def test_second_order_paths():
    f = function("x*x*x", ["x"])
    primals = (torch.tensor([2.0], dtype=torch.float64),)
    v, w = torch.ones(1, dtype=torch.float64), (torch.ones(1, dtype=torch.float64),)
    assert autodiff.grad2_double_backward(f, primals, 0, v, w)[0].tolist() == [12.0]
    assert autodiff.hvp_forward_over_reverse(f, primals, 0, v, w)[0].tolist() == [12.0]
    assert autodiff.hessian_func(f, primals, 0, v)[0][0].tolist() == [[12.0]]
    assert autodiff.hessian_double_backward(f, primals, 0, v)[0][0].tolist() == [[12.0]]


def test_forward_mode_and_jacobians():
    f = function("exp(x)", ["x"])
    primals = (torch.tensor([0.0, 1.0], dtype=torch.float64),)
    tangents = (torch.tensor([1.0, 2.0], dtype=torch.float64),)
    assert np.allclose(autodiff.jvp_func(f, primals, tangents)[0], [1.0, 2 * np.e])
    assert np.allclose(autodiff.jvp_forward_ad(f, primals, tangents)[0], [1.0, 2 * np.e])
    assert np.allclose(autodiff.jacobian_rev(f, primals, 0)[0], np.diag([1.0, np.e]))
    assert np.allclose(autodiff.jacobian_fwd(f, primals, 0)[0], np.diag([1.0, np.e]))


def test_unused_inputs_get_zero_gradients():
    f = autodiff.build_function({"y": fold(parse("x*2", ops=set(OPS), names={"x", "z"}), FORMATS["float64"], {})},
                                ["x", "z"])
    primals = (torch.tensor(1.0, dtype=torch.float64), torch.tensor(5.0, dtype=torch.float64))
    assert [g.tolist() for g in autodiff.grad_autograd(f, primals, 0)] == [2.0, 0.0]
