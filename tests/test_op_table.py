"""The op table (compiler/ir/ops.py OPS, compiler/ir/fused.py FUSED_OPS) declares everything about
every op, and every declared op has an emitter: a new op cannot forget its reference, cost or role."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cerebro.compiler.codegen import EMITTERS
from cerebro.compiler.driver import lower, node_flops
from cerebro.compiler.ir import DType, Graph, IRError, dtype_from_numpy, verify
from cerebro.compiler.ir.fused import FUSED, FUSED_OPS, ROW_KERNEL
from cerebro.compiler.ir.interpret import run_graph
from cerebro.compiler.ir.ops import OPS, OpDef, Role


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_declares_everything(name: str) -> None:
    op = OPS[name]
    assert isinstance(op, OpDef) and op.name == name
    assert isinstance(op.role, Role) and isinstance(op.folds, bool) and op.kind
    for field in ("rule", "reference", "cost"):
        assert callable(getattr(op, field)), f"{name} has no {field}"
    for field in ("attrs", "optional", "lowered"):
        assert all(isinstance(a, str) for a in getattr(op, field)), f"{name}.{field}"
    assert not set(op.attrs) & set(op.optional), f"{name}: an attribute is both required and optional"


def test_every_op_has_an_emitter() -> None:
    """A view is its input's storage (no code: codegen/module.py skips it); every other op has code."""
    declared = set(OPS) | set(FUSED_OPS)
    coded = declared - {name for name, op in OPS.items() if op.role is Role.VIEW}
    assert not coded - set(EMITTERS), f"ops without an emitter in compiler/codegen: {sorted(coded - set(EMITTERS))}"
    assert not set(EMITTERS) - coded, "an emitter for a view or for an op the table does not declare"


def test_every_fused_op_declares_everything() -> None:
    assert set(FUSED_OPS) == {FUSED, ROW_KERNEL}
    for name, op in FUSED_OPS.items():
        assert op.name == name and op.attrs and callable(op.cost) and callable(op.reference)
        assert op.body and all(isinstance(role, Role) for role in op.body)
        assert name not in OPS, "a fused op is no primitive"


def test_only_data_movement_and_elementwise_ops_fold() -> None:
    """Folding a matmul or a reduction could make weights of any size; the table says which fold."""
    folding = {op.role for op in OPS.values() if op.folds}
    assert folding == {Role.ELEMENTWISE, Role.VIEW, Role.BROADCAST, Role.LAYOUT}


def _doubling_step() -> Graph:
    """A loop body: carry -> carry * 2 (for the loop's defaults below)."""
    body = Graph("step")
    carry = body.add_input((3,), DType.f32, "carry")
    body.set_outputs([body.add1("add", carry, carry)])
    return body


OPTIONAL_DEFAULTS = {  # op: (input arrays, required attrs, the optional attrs at their defaults)
    "slice": ([np.arange(24.0).reshape(4, 6)], {"start": (1, 0), "limit": (3, 6)}, {"strides": (1, 1)}),
    "pad": ([np.arange(6.0).reshape(2, 3)], {"lo": (1, 0), "hi": (0, -1), "value": 7.0}, {"interior": (0, 0)}),
    "take": ([np.arange(6.0).reshape(2, 3), np.array([2, -1, 5])], {"axis": 1}, {"mode": "clip"}),
    "argsort": ([np.array([[2.0, -0.0, np.nan, 0.0, -1.0]])], {}, {"order": "canonical", "descending": False,
                                                                          "k": 5}),
    "conv": ([np.arange(30.0).reshape(1, 5, 3, 2), np.ones((2, 2, 2, 4))],
             {"strides": (1, 1), "padding": ((1, 0), (0, 1))},
             {"lhs_dilation": (1, 1), "rhs_dilation": (1, 1), "groups": 1}),
    "loop": ([np.arange(3, dtype=np.float32)],
             {"body": _doubling_step(), "num_consts": 0, "num_carry": 1, "length": 4, "cond": None},
             {"reverse": False, "scratch": 0}),
    "matmul_integer": ([np.arange(6, dtype=np.uint8).reshape(2, 3), np.arange(-6, 6, dtype=np.int8).reshape(3, 4),
                        np.array([1, 200], np.uint8), np.array([0, -3, 5, 127], np.int8)], {}, {"transpose_b": False}),
    "conv_integer": ([np.arange(24, dtype=np.uint8).reshape(1, 4, 3, 2), np.arange(-12, 12, dtype=np.int8).reshape(
        3, 2, 2, 2), np.array(5, np.uint8), np.array([0, -3, 5], np.int8)], {"strides": (1, 1),
                                                                               "padding": ((1, 0), (0, 1))},
                     {"rhs_dilation": (1, 1), "groups": 1}),
}


def _one_node(op: str, args: list[np.ndarray], attrs: dict) -> list[np.ndarray]:
    graph = Graph(op)
    inputs = [graph.add_input(a.shape, dtype_from_numpy(a.dtype), f"in{i}") for i, a in enumerate(args)]
    graph.set_outputs([graph.add1(op, *inputs, **attrs)])
    verify(graph)
    return run_graph(graph, args)


@pytest.mark.parametrize("op", sorted(OPTIONAL_DEFAULTS))
def test_an_absent_optional_attribute_means_its_default(op: str) -> None:
    assert set(OPTIONAL_DEFAULTS) == {name for name, declaration in OPS.items() if declaration.optional}
    args, required, defaults = OPTIONAL_DEFAULTS[op]
    assert set(defaults) == set(OPS[op].optional)
    np.testing.assert_array_equal(_one_node(op, args, required)[0], _one_node(op, args, {**required, **defaults})[0])


def test_a_missing_required_attribute_is_named() -> None:
    with pytest.raises(IRError, match=r"missing attributes \['limit'\]"):
        _one_node("slice", [np.zeros((2, 2))], {"start": (0, 0)})


def test_an_undeclared_attribute_is_refused() -> None:
    """A misspelt optional attribute would otherwise silently mean its default."""
    with pytest.raises(IRError, match=r"unknown attributes \['stride'\]"):
        _one_node("slice", [np.zeros((4, 4))], {"start": (0, 0), "limit": (4, 4), "stride": (2, 2)})


def test_node_flops_follows_the_declared_costs() -> None:
    graph = Graph("cost")
    a, b = graph.add_input((3, 4), DType.f32, "a"), graph.add_input((4, 5), DType.f32, "b")
    product = graph.add1("matmul", a, b)
    curved = graph.add1("exp", product)
    flat = graph.add1("reshape", curved, shape=(15,))
    total = graph.add1("reduce_sum", flat, axes=(0,))
    graph.set_outputs([total])
    costs = [node_flops(node) for node in graph.nodes]
    assert costs == [2 * 3 * 5 * 4, 20 * 15, 0, 15]
    assert [OPS[node.op].cost(node) for node in graph.nodes] == costs


def _lowered() -> Graph:
    """exp(x) * x + 1 (a fused loop), a @ w + bias then relu (an epilogue), softmax (a row kernel)."""
    graph = Graph("fused")
    x, a = graph.add_input((4, 8), DType.f32, "x"), graph.add_input((4, 8), DType.f32, "a")
    one = graph.add1("broadcast_in_dim", graph.const(np.float32(1)), shape=(4, 8), broadcast_dimensions=())
    loop = graph.add1("add", graph.add1("mul", graph.add1("exp", x), x), one)
    bias = graph.add1("broadcast_in_dim", graph.const(np.arange(16, dtype=np.float32)), shape=(4, 16),
                      broadcast_dimensions=(1,))
    zero = graph.add1("broadcast_in_dim", graph.const(np.float32(0)), shape=(4, 16), broadcast_dimensions=())
    dense = graph.add1("max", graph.add1("add", graph.add1("matmul", a, graph.const(np.ones((8, 16), np.float32))),
                                         bias), zero)
    top = graph.add1("broadcast_in_dim", graph.add1("reduce_max", x, axes=(1,)), shape=(4, 8),
                     broadcast_dimensions=(0,))
    shifted = graph.add1("exp", graph.add1("sub", x, top))
    total = graph.add1("broadcast_in_dim", graph.add1("reduce_sum", shifted, axes=(1,)), shape=(4, 8),
                       broadcast_dimensions=(0,))
    graph.set_outputs([loop, dense, graph.add1("div", shifted, total)])
    return lower(graph)[0]


def test_fused_ops_cost_their_body_and_an_epilogue_counts_with_its_host() -> None:
    graph = _lowered()
    by_op = {node.op: node for node in graph.nodes}
    assert {FUSED, ROW_KERNEL, "matmul"} <= set(by_op)
    assert node_flops(by_op[FUSED]) == 20 * 32 + 32 + 32  # exp, mul, add
    assert node_flops(by_op["matmul"]) == 2 * 4 * 16 * 8 + 64 + 64  # the product, + bias, max 0
    softmax = 32 + 32 + 20 * 32 + 32 + 32  # reduce_max, sub, exp, reduce_sum, div (broadcasts: loads)
    assert node_flops(by_op[ROW_KERNEL]) == softmax + sum(
        OPS[inner.op].cost(inner) for inner in by_op[ROW_KERNEL].attrs["nodes"] if inner.op == "broadcast_in_dim")


def test_verify_rejects_a_fused_load_outside_its_buffer() -> None:
    graph = _lowered()
    verify(graph, lowered=True)
    fused = next(node for node in graph.nodes if node.op == FUSED)
    vid, slot, strides = fused.attrs["loads"][0]
    fused.attrs["loads"] = ((vid, slot, (strides[0] + 1,) + tuple(strides[1:])),) + tuple(fused.attrs["loads"][1:])
    with pytest.raises(IRError, match="outside input"):
        verify(graph, lowered=True)


def test_verify_rejects_a_row_kernel_reading_what_it_neither_loads_nor_makes() -> None:
    graph = _lowered()
    rows = next(node for node in graph.nodes if node.op == ROW_KERNEL)
    rows.attrs["loads"] = rows.attrs["loads"][1:]
    with pytest.raises(IRError, match="neither loads nor makes"):
        verify(graph, lowered=True)


def test_verify_rejects_an_epilogue_load_past_the_extra_inputs() -> None:
    graph = _lowered()
    matmul = next(node for node in graph.nodes if node.op == "matmul")
    epilogue = matmul.attrs["epilogue"]
    vid, slot, _, col = epilogue.loads[0]
    matmul.attrs["epilogue"] = dataclasses.replace(epilogue, loads=((vid, slot, 16 * 4, col),) + epilogue.loads[1:])
    with pytest.raises(IRError, match="outside input"):
        verify(graph, lowered=True)


def test_verify_rejects_a_lowered_attribute_the_op_does_not_declare() -> None:
    graph = Graph("exp")
    graph.set_outputs([graph.add1("exp", graph.add_input((4, 8), DType.f32, "x"))])
    graph.nodes[0].attrs["packed_b"] = 8
    assert "packed_b" not in OPS["exp"].lowered
    with pytest.raises(IRError, match=r"exp cannot carry \['packed_b'\]"):
        verify(graph, lowered=True)
