"""The exact stationary point of a scalar output, and what kind it is (for `minimize`)."""

from __future__ import annotations

from collections.abc import Sequence

import mpmath
import numpy as np
import sympy

from harness.symbolic import SymbolicOutput, closed

DIGITS = 40


def stationary_point(out: SymbolicOutput, start: Sequence[np.ndarray],
                     inputs: Sequence[str]) -> tuple[list[list[sympy.Expr | None]], str] | None:
    """Solve grad f = 0 near `start`: exactly when SymPy can (polynomials), else by SymPy's nsolve
    to 40 digits. Returns each input's values and 'minimum', 'maximum' or 'saddle point'."""
    gradient = out.gradient(0)
    if not gradient:
        return None
    binding = out.binding(0)
    symbols = [s for s, _ in gradient]
    equations = [closed(d) for _, d in gradient]
    guess = {s: float(start[inputs.index(binding[s][0])][binding[s][1]]) for s in symbols}
    solution = _exact_roots(equations, symbols, guess) or _numeric_root(equations, symbols, guess)
    if solution is None:
        return None
    values: list[list[sympy.Expr | None]] = [[None] * len(a) for a in start]
    for s in symbols:
        name, index = binding[s]
        values[inputs.index(name)][index] = solution[s]
    hessian = sympy.Matrix([[sympy.diff(e, t) for t in symbols] for e in equations]).subs(solution)
    eigen = np.linalg.eigvalsh(np.array(hessian.evalf(DIGITS).tolist(), dtype=float))
    kind = "minimum" if eigen.min() > 0 else ("maximum" if eigen.max() < 0 else "saddle point")
    return values, kind


def _exact_roots(equations: list[sympy.Expr], symbols: list[sympy.Symbol],
                 guess: dict[sympy.Symbol, float]) -> dict[sympy.Symbol, sympy.Expr] | None:
    if not all(e.is_polynomial(*symbols) for e in equations):
        return None
    if max(sympy.Poly(e, *symbols).total_degree() for e in equations) > 3:
        return None
    roots = [r for r in sympy.solve(equations, symbols, dict=True)
             if all(v.is_real for v in r.values()) and len(r) == len(symbols)]
    if not roots:
        return None
    return min(roots, key=lambda r: sum((float(r[s]) - guess[s]) ** 2 for s in symbols))


def _numeric_root(equations: list[sympy.Expr], symbols: list[sympy.Symbol],
                  guess: dict[sympy.Symbol, float]) -> dict[sympy.Symbol, sympy.Expr] | None:
    try:
        with mpmath.workdps(DIGITS):
            root = sympy.nsolve(equations, symbols, [guess[s] for s in symbols], prec=DIGITS)
    except (ValueError, ZeroDivisionError, TypeError):
        return None
    return {s: sympy.Float(root[i], DIGITS) for i, s in enumerate(symbols)}
