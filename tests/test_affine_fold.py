"""passes/affine.py: a chain of constant scales and offsets (ONNX batch norm that no conv absorbs) becomes one
multiply and one add, with ONNX Runtime's outputs within float rounding, and chains it must not fold kept."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx_models import NchwNet

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.ir.interpret import run_graph
from cerebro.compiler.passes import fold_constants
from cerebro.compiler.passes.affine import fold_affine_chains
from cerebro.frontends.onnx import import_onnx

RNG = np.random.default_rng(11)


def test_batch_norm_after_a_pool_is_one_multiply_and_add_and_matches_onnx_runtime() -> None:
    """The pool's output is read by the batch norm and by the residual add: the chain starts at one of its
    readers. ORT computes batch norm as x * scale + bias too, so the two agree to a few ulps."""
    n = NchwNet(RNG, (1, 6, 8, 8))
    pooled = n.op("MaxPool", ["x"], kernel_shape=[2, 2], strides=[1, 1])
    normed = n.op("Relu", [n.batch_norm(pooled, 6)])
    model = n.model(n.op("Add", [normed, pooled]))
    graph = fold_constants(import_onnx(model))
    ops = [node.op for node in graph.nodes]
    assert "div" not in ops and "sub" not in ops, ops
    assert ops.count("mul") == 1 and ops.count("add") == 2, ops  # x * s + t, the residual add
    x = RNG.standard_normal((1, 6, 8, 8)).astype(np.float32)
    (got,) = runtime.load(driver.build(import_onnx(model)))(x)
    (want,) = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _chain(steps: list[tuple[str, np.ndarray | None]], shared: int | None = None) -> Graph:
    """x[2, 5] through (op, constant) steps (None: a graph input instead of a constant); shared: the value
    after that many steps is an output too."""
    g = Graph("g")
    value = g.add_input((2, 5), DType.f32, "x")
    made = [value]
    for op, constant in steps:
        operand = g.add_input((1, 5), DType.f32, "d") if constant is None else g.const(constant, DType.f32)
        value = g.add1(op, value, operand)
        made.append(value)
    g.set_outputs([value] + ([made[shared]] if shared is not None else []))
    return g


def _row(*values: float) -> np.ndarray:
    return np.array([values], np.float64)


def test_divide_and_offsets_fold_within_rounding_of_the_chain() -> None:
    g = _chain([("sub", _row(0.5, -1, 2, 0, 3)), ("div", _row(1.5, 2, 0.25, 3, 7)), ("mul", _row(2.0)),
                   ("add", _row(-0.5, 1, 0, 2, 0.1))])
    x = RNG.standard_normal((2, 5)).astype(np.float32)
    (want,) = run_graph(g, [x])
    fold_affine_chains(g)
    assert [n.op for n in g.nodes] == ["mul", "add"]
    (got,) = run_graph(g, [x])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


CHAINS_KEPT = {
    "zero_divisor": [("sub", _row(1.0)), ("div", _row(2, 0, 1, 1, 1))],
    "not_constant": [("sub", _row(1.0)), ("div", None)],
    "no_divide": [("sub", _row(1.0)), ("mul", _row(2.0)), ("add", _row(-0.5))],
    "lone_divide": [("div", _row(3.0))],
    "scalars": [("div", _row(768.0)), ("add", _row(1e-5))],  # LayerNorm's variance: sum / n + eps
    # the sub's value is also an output: a chain of the sub alone, then a lone divide
    "read_twice": [("sub", _row(1.0)), ("div", _row(3.0))],
    # QuantizeLinear: round(x / scale), where x * (1 / scale) may land on the other side of a half
    "rounded": [("sub", _row(1.0)), ("div", _row(0.1))],
}


@pytest.mark.parametrize("case", CHAINS_KEPT)
def test_chains_it_must_not_fold_are_kept(case: str) -> None:
    g = _chain(CHAINS_KEPT[case], shared=1 if case == "read_twice" else None)
    if case == "rounded":
        g.set_outputs([g.add1("round", g.outputs[0])])
    ops = [n.op for n in g.nodes]
    fold_affine_chains(g)
    assert [n.op for n in g.nodes] == ops
