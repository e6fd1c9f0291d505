"""Stages as tables of calls walked by one loop (codegen/calls.py), and copies and elementwise loops taking
their sizes as arguments (codegen/layout.py copy_form, codegen/elementwise.py size_arguments).

The model is swin_t's pattern in two stages of different sizes, as an ONNX graph: a cyclic shift (torch.roll:
Slice + Concat), window partition (Reshape, Transpose), attention within the windows, the reverse, a
residual Add, then patch merging (strided Slices, Concat). Many distinct call lists, and nodes that share a
function across the stages' sizes."""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen import SIZES, elementwise, layout
from cerebro.compiler.codegen import kernel_key as kernel_key_module
from cerebro.frontends.jax import trace
from cerebro.frontends.onnx import import_onnx

_RNG = np.random.default_rng(14)
WINDOW, SHIFT = 4, 2
SHARED_OPS = ("broadcast_in_dim", "transpose", "slice", *elementwise.ELEMENTWISE)


class _Graph:
    """An ONNX graph under construction: named nodes and initializers."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []

    def const(self, array: np.ndarray) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: object) -> str:
        name = f"v{len(self.nodes)}"
        self.nodes.append(helper.make_node(kind, list(inputs), [name], **attrs))
        return name

    def slice(self, x: str, axis: int, start: int, end: int, step: int = 1) -> str:
        start, end, axis, step = (self.const(np.array([n], np.int64)) for n in (start, end, axis, step))
        return self.op("Slice", x, start, end, axis, step)

    def roll(self, x: str, shift: int, size: int, axes: tuple[int, ...]) -> str:
        """torch.roll(x, shift, axes) as torch exports it: two slices and a concat per axis."""
        for axis in axes:
            cut = (-shift) % size
            x = self.op("Concat", self.slice(x, axis, cut, size), self.slice(x, axis, 0, cut), axis=axis)
        return x

    def reshape(self, x: str, shape: tuple[int, ...]) -> str:
        return self.op("Reshape", x, self.const(np.array(shape, np.int64)))


def _stage(g: _Graph, x: str, side: int, channels: int) -> str:
    """One shifted-window block of swin_t (one head) on a (1, side, side, channels) input, then patch merging."""
    rows = side // WINDOW
    shifted = g.roll(x, -SHIFT, side, (1, 2))
    windows = g.reshape(g.op("Transpose", g.reshape(shifted, (1, rows, WINDOW, rows, WINDOW, channels)),
                             perm=(0, 1, 3, 2, 4, 5)), (rows * rows, WINDOW * WINDOW, channels))
    q, k, v = (g.op("MatMul", windows, g.const((_RNG.standard_normal((channels, channels)) / channels ** 0.5)
                                                 .astype(np.float32))) for _ in range(3))
    scores = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=(0, 2, 1))),
                  g.const(np.array(channels ** -0.5, np.float32)))
    bias = g.const(_RNG.standard_normal((1, WINDOW * WINDOW, WINDOW * WINDOW)).astype(np.float32))
    attended = g.op("MatMul", g.op("Softmax", g.op("Add", scores, bias), axis=-1), v)
    back = g.reshape(g.op("Transpose", g.reshape(attended, (1, rows, rows, WINDOW, WINDOW, channels)),
                          perm=(0, 1, 3, 2, 4, 5)), (1, side, side, channels))
    y = g.op("Add", x, g.roll(back, SHIFT, side, (1, 2)))
    quarters = [g.slice(g.slice(y, 1, i, side, 2), 2, j, side, 2) for j in (0, 1) for i in (0, 1)]
    return g.op("Concat", *quarters, axis=3)


def _model() -> bytes:
    g = _Graph()
    x = _stage(g, _stage(g, "x", 16, 8), 8, 32)
    graph = helper.make_graph(g.nodes, "swin_like", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                    [1, 16, 16, 8])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _defined(cbx_text: str) -> list[str]:
    return re.findall(r'^define [^@]*@"?([\w.]+)"?\(', cbx_text, re.M)


def _build(data: bytes) -> tuple[list[str], bytes]:
    graph = import_onnx(data)
    _, text, _, _ = driver.lower(graph)
    return _defined(text), driver.build(graph)


def test_swin_pattern_matches_onnxruntime_with_shared_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its slices, window transposes and elementwise loops of both stages' sizes share functions, its stages
    are table entries walked by cerebro_entry (no function per call list), and the result matches ONNX
    Runtime; the same bits with every size a constant (no sharing), on one thread and two."""
    data = _model()
    x = _RNG.standard_normal((1, 16, 16, 8)).astype(np.float32)
    (want,) = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    names, shared = _build(data)
    assert [n for n in names if not n.startswith(("node", "copy_rows", "epilogue."))] == ["cerebro_entry"], names
    slices = [n for n in names if n.endswith("_slice")]
    # the residual adds of both stages run in the concatenation that rolls the window back (ir/hosts.py)
    assert not [n for n in names if n.endswith("_add")] and any(n.endswith(".copied") for n in names), names
    got = [runtime.load(shared, threads=threads)(x)[0] for threads in (1, 2)]
    for op in SHARED_OPS:
        monkeypatch.delitem(SIZES, op)
    alone_names, alone = _build(data)
    assert len([n for n in alone_names if n.endswith("_slice")]) > 2 * len(slices), alone_names
    (constant,) = runtime.load(alone)(x)
    for result in got:
        np.testing.assert_array_equal(result, constant)
        np.testing.assert_allclose(result, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,src_strides,offset,shared", [
    ((3, 5, 7), (70, 14, 2), 1, True),          # strided rows, inner run constant (short)
    ((2, 300), (600, 1), 3, False),             # a long inner run: a run-time count
    ((4, 9, 16), (144, 1, 9), 0, True),         # a transpose: vector tiles
    ((5, 20, 17), (340, 1, 20), 0, False),      # a transpose: scalar tiles with edges
    ((6, 4), (0, 1), 0, True),                  # a broadcast: stride 0 stays a constant
])
def test_copy_form_numbers_rebuild_the_copy(shape: tuple, src_strides: tuple, offset: int, shared: bool) -> None:
    """copy_form's fixed numbers plus its run-time ones say everything: the numbers not fixed, taken back,
    give the same list; what it fixes is a 0/1 stride, a zero offset or a short inner run."""
    dst = tuple(int(s) for s in np.cumprod((1,) + shape[:0:-1])[::-1])
    form, numbers = layout.copy_form(shape, src_strides, offset, dst, 0, 4, shared)
    runtime_numbers = iter([n for n, fixed in zip(numbers, form.fixed) if fixed is None])
    assert [next(runtime_numbers) if fixed is None else fixed for fixed in form.fixed] == numbers
    assert all(f in (0, 1) or f < layout.RUNTIME_RUN for f in form.fixed if f is not None)


def _layernorm64(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    x = x.astype(np.float64)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


EPSILONS = (1e-5, 1e-6)


def test_layernorms_differing_in_epsilon_share_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two layernorms of one shape with other epsilons are one row kernel: rows.py loads its one-element
    constants through their pointers (kernel_key.LOADED_OPS), so their values are not part of its code;
    each still uses its own epsilon (against float64), and with the values in the key they are two."""
    xs = [_RNG.standard_normal((2, 8, 8, 64)).astype(np.float32) * 1e-3 for _ in EPSILONS]
    gamma, beta = _RNG.standard_normal(64).astype(np.float32), _RNG.standard_normal(64).astype(np.float32)

    def norms(a: jnp.ndarray, b: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
        outs = []
        for x, eps in zip((a, b), EPSILONS):
            mean = x.mean(-1, keepdims=True)
            var = ((x - mean) ** 2).mean(-1, keepdims=True)
            outs.append((x - mean) / jnp.sqrt(var + eps) * gamma + beta)
        return tuple(outs)

    traced = trace(norms, *xs, name="norms")
    _, text, _, _ = driver.lower(traced.graph)
    assert len([n for n in _defined(text) if n.endswith("_row_kernel")]) == 1, _defined(text)
    got = runtime.load(driver.build(traced.graph), threads=2)(*traced.flatten_inputs(*xs))
    for g, x, eps in zip(got, xs, EPSILONS):
        np.testing.assert_allclose(g, _layernorm64(x, gamma, beta, eps), rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(kernel_key_module, "LOADED_OPS", frozenset())
    _, text, _, _ = driver.lower(traced.graph)
    assert len([n for n in _defined(text) if n.endswith("_row_kernel")]) == 2, _defined(text)
