"""Small kernels' compile time: pools over pixels (NHWC) differing only in their sizes share one node function
(codegen/window.py takes the sizes as arguments) with the bits of the constant build and of jax.jit;
reductions go through the hand-tiled LLVM pipeline (llvm_parts.PIPELINES) with O3's bits; a 32-byte block
transpose is written in the AVX form (one instruction per shuffle) with numpy's values."""

from __future__ import annotations

import re

import jax
import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import build, driver
from cerebro.compiler.codegen import SIZES
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.targets import resolve_target
from cerebro.frontends.jax import trace

jax.config.update("jax_platforms", "cpu")
RNG = np.random.default_rng(12)
NODE_FUNCTION = re.compile(r'^define [^\n]*@"?(node\d+_\w+)"?\([^\n]*\n(.*?)^}', re.S | re.M)


def _pool(kind: str, window: int, stride: int, pad: int):  # noqa: ANN202
    init, op = {"max": (-np.inf, jax.lax.max), "sum": (0.0, jax.lax.add)}[kind]
    return lambda x: jax.lax.reduce_window(x, init, op, (1, window, window, 1), (1, stride, stride, 1),
                                           ((0, 0), (pad, pad), (pad, pad), (0, 0)))


# groups of NHWC pools that differ only in their sizes (each group one function: the same path and plan)
GROUPS = {
    "cnn 2x2/2 max (28x28x32, 14x14x64)": (_pool("max", 2, 2, 0), [(1, 28, 28, 32), (1, 14, 14, 64)]),
    "stem 3x3/2 pad 1 max (carry path)": (_pool("max", 3, 2, 1), [(1, 20, 24, 64), (2, 11, 9, 128)]),
    "DenseNet 2x2/2 average (sum, per pixel)": (_pool("sum", 2, 2, 0), [(1, 16, 16, 128), (1, 8, 6, 256)]),
    "odd vectors (3x3/1 max, 48 and 80 channels)": (_pool("max", 3, 1, 1), [(1, 9, 13, 48), (2, 7, 5, 80)]),
}


def _functions(graph: Graph, op: str) -> list[str]:
    _, text, _, _ = driver.lower(graph)
    return [body for name, body in NODE_FUNCTION.findall(text) if name.endswith(f"_{op}")]


@pytest.mark.parametrize("group", GROUPS, ids=str)
def test_pools_differing_in_sizes_share_one_function(group: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pool, shapes = GROUPS[group]
    xs = [RNG.standard_normal(shape).astype(np.float32) for shape in shapes]
    edges = [x.copy() for x in xs]  # NaN and signed zeros: the same bits as the constant build
    edges[0].flat[::7] = np.nan
    edges[-1].flat[::5] = -0.0

    def pools(*args):  # noqa: ANN002, ANN202
        return tuple(pool(x) for x in args)

    traced = trace(pools, *xs, name="pools")
    assert len(_functions(traced.graph, "reduce_window")) == 1
    shared = runtime.load(driver.build(traced.graph))
    two = runtime.load(driver.build(traced.graph), threads=2)
    runs = [shared(*traced.flatten_inputs(*inputs)) for inputs in (xs, edges)]
    split = two(*traced.flatten_inputs(*edges))
    monkeypatch.delitem(SIZES, "reduce_window")
    assert len(_functions(traced.graph, "reduce_window")) == len(shapes)
    alone = runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(*edges))
    for got, edge, threads, constant, want in zip(*runs, split, alone, jax.jit(pools)(*xs), strict=True):
        np.testing.assert_array_equal(edge, constant)  # the bits of the sizes as constants
        np.testing.assert_array_equal(threads, constant)  # two threads share the output rows
        if "sum" in group:
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, atol=1e-6)  # XLA may sum in another order
        else:
            np.testing.assert_array_equal(got, np.asarray(want))  # max: exact


def test_pools_of_other_windows_or_partial_vectors_keep_their_own_functions() -> None:
    """Window, strides and padding are the code's constants: pools differing in them do not share; nor do
    blocks that are not whole 64-byte vectors (24 and 40 channels: sizes as constants, no run-time tail)."""
    xs = [RNG.standard_normal((1, 12, 12, 32)).astype(np.float32) for _ in range(3)]
    xs += [RNG.standard_normal((1, 12, 12, c)).astype(np.float32) for c in (24, 40)]

    def pools(a, b, c, d, e):  # noqa: ANN001, ANN202
        return (_pool("max", 2, 2, 0)(a), _pool("max", 3, 2, 1)(b), _pool("max", 3, 2, 0)(c),
                _pool("max", 2, 2, 0)(d), _pool("max", 2, 2, 0)(e))

    traced = trace(pools, *xs, name="pools")
    assert len(_functions(traced.graph, "reduce_window")) == 5
    for got, want in zip(runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(*xs)), pools(*xs),
                         strict=True):
        np.testing.assert_array_equal(got, np.asarray(want))


@pytest.mark.parametrize("dtype, form", [(DType.f32, "vunpcklps"), (DType.f64, "vunpcklpd"),
                                         (DType.i16, "vpunpcklwd")], ids=lambda v: getattr(v, "name", v))
def test_block_transpose_shuffles_are_single_instructions(dtype: DType, form: str) -> None:
    """On AVX-512 a 32-byte block's transpose is unpacks, inserts and 128-bit permutes, no vpermt2 with an index
    vector (the perfect shuffle's form); 16-byte rows (8 x i16) keep punpck. Values: numpy's."""
    target = resolve_target("x86_64-v4")
    graph = Graph("transpose")
    xv = graph.add_input((37, 45), dtype, "x")
    graph.set_outputs([graph.add1("transpose", xv, perm=(1, 0))])
    _, text, _, _ = driver.lower(graph, target)
    assembly = driver.compile_assembly(text, target)
    assert form in assembly and "vpermt2" not in assembly and "vpermi2" not in assembly
    x = (RNG.standard_normal((37, 45)) * 100).astype(dtype.numpy)
    (got,) = runtime.load(build(graph))(x)
    np.testing.assert_array_equal(got, x.T)
