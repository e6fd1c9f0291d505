"""Transposes around matmuls (passes/transpose.py, the matmul's strided view in codegen/matmul.py,
the transpose kernel in codegen/layout.py), through the driver and the C runtime, against jax.jit.

Tolerance: an f32 sum of K products may differ from another summation order by up to
2*K*eps*sum|a*b| per element, so atol = 2.4*K*eps*max(|a|@|b|) (+ a few ulp of the output
for an epilogue or softmax); pure data movement must be exact.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from native import aarch64_runner, run_against_jit

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.ir import Graph
from cerebro.compiler.ir.dtypes import DType
from cerebro.frontends.jax import trace

jax.config.update("jax_platforms", "cpu")
EPS32 = float(np.finfo(np.float32).eps)
_RNG = np.random.default_rng(11)


def _normal(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape).astype(np.float32)


def _run(fn, *args) -> tuple[list, np.ndarray, np.ndarray]:
    return run_against_jit(fn, *args, name="transpose")


def _ops(nodes: list, op: str) -> list:
    return [node for node in nodes if node.op == op]


def _check(got: np.ndarray, want: np.ndarray, depth: int, magnitude: float, extra: float = 0.0) -> None:
    atol = 2.4 * depth * EPS32 * magnitude + extra * EPS32 * float(np.abs(want).max())
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol)


EINSUMS = [  # (spec, a shape, b shape, summed length, transposes left in the optimised graph)
    ("bqhd,bkhd->bhqk", (2, 5, 3, 9), (2, 7, 3, 9), 9, 1),  # attention scores: q through strides, k^T kept
    ("bhqk,bkhd->bqhd", (2, 3, 5, 7), (2, 7, 3, 9), 7, 0),  # probs @ v: v and the result through strides
    ("bkm,bkn->bmn", (3, 7, 5), (3, 7, 17), 7, 0),  # a^T @ b: a read down its columns
    ("bmk,bkn->mbn", (3, 5, 7), (3, 7, 33), 7, 0),  # result stored with its batch dim moved
    ("mk,nk->mn", (5, 7), (35, 7), 7, 1),  # b^T: columns of b not contiguous, the transpose stays
]


@pytest.mark.parametrize("spec,a_shape,b_shape,depth,left", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum(spec: str, a_shape: tuple, b_shape: tuple, depth: int, left: int) -> None:
    a, b = _normal(*a_shape), _normal(*b_shape)
    nodes, got, want = _run(lambda x, y: jnp.einsum(spec, x, y), a, b)
    _check(got, want, depth, float(np.abs(want).max()) * 4 + 1)
    assert len(_ops(nodes, "transpose")) == left


def test_attention_core_cancels_transposes() -> None:
    """softmax(q k^T) v in flax's layout: the probs transpose and the output transpose cancel."""
    q, k, v = _normal(1, 11, 3, 8), _normal(1, 13, 3, 8), _normal(1, 13, 3, 8)

    def attend(q, k, v):
        probs = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(8.0), axis=-1)
        return jnp.einsum("bhqk,bkhd->bqhd", probs, v)

    traced = trace(attend, q, k, v, name="attend")
    before = len(_ops(traced.graph.nodes, "transpose"))
    nodes, got, want = _run(attend, q, k, v)
    assert before >= 4 and len(_ops(nodes, "transpose")) == 1
    _check(got, want, 13, float(np.abs(v).max()), extra=16)


def test_flax_multi_head_attention() -> None:
    layer = nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=64)
    x = _normal(2, 19, 48)
    params = layer.init(jax.random.PRNGKey(0), x)
    nodes, got, want = _run(lambda x: layer.apply(params, x), x)
    assert len(_ops(nodes, "transpose")) <= 1  # only k^T per layer
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)


def test_matmul_with_transposed_operand_and_epilogue() -> None:
    a, b, bias = _normal(2, 9, 6), _normal(2, 9, 21), _normal(21)
    nodes, got, want = _run(lambda x, y: jax.nn.relu(jnp.einsum("bkm,bkn->bmn", x, y) + bias), a, b)
    (matmul,) = _ops(nodes, "matmul")
    assert "epilogue" in matmul.attrs and "view" in matmul.attrs and not _ops(nodes, "transpose")
    _check(got, want, 9, float(np.abs(want).max()) * 4 + 1, extra=4)


def _graph_run(graph: Graph, *inputs: np.ndarray) -> tuple[list, list[np.ndarray]]:
    nodes = driver.lower(graph)[0].nodes
    return nodes, runtime.load(driver.build(graph))(*inputs)


def test_transpose_of_transpose() -> None:
    """Compositions: one transpose when not the identity, none (a copy only for an output) when it is."""
    g = Graph("tt")
    x = g.add_input((2, 3, 4, 5), DType.f32, "x")
    once = g.add1("transpose", x, perm=(2, 0, 3, 1))
    composed = g.add1("transpose", once, perm=(3, 1, 0, 2))
    back = g.add1("transpose", once, perm=(1, 3, 0, 2))
    total = g.add1("add", back, x)
    g.set_outputs([composed, total])
    data = _normal(2, 3, 4, 5)
    nodes, (got_composed, got_total) = _graph_run(g, data)
    assert len(_ops(nodes, "transpose")) == 1
    want = np.transpose(np.transpose(data, (2, 0, 3, 1)), (3, 1, 0, 2))
    np.testing.assert_array_equal(got_composed, want)
    np.testing.assert_array_equal(got_total, data + data)


def test_identity_transpose_output() -> None:
    g = Graph("ti")
    x = g.add_input((3, 4), DType.f32, "x")
    g.set_outputs([g.add1("transpose", g.add1("transpose", x, perm=(1, 0)), perm=(1, 0))])
    data = _normal(3, 4)
    _, (got,) = _graph_run(g, data)
    np.testing.assert_array_equal(got, data)


@pytest.mark.parametrize("shape,perm", [((1, 4, 128, 128), (0, 1, 3, 2)), ((1, 128, 4, 32), (0, 2, 3, 1)),
                                        ((1, 128, 4, 32), (0, 2, 1, 3)), ((5, 7, 3, 9), (0, 3, 1, 2)),
                                        ((33, 17), (1, 0)), ((3, 19, 21), (0, 2, 1)),
                                        ((1, 6, 5, 2, 19), (0, 1, 2, 4, 3)), ((2, 3, 9, 21), (0, 2, 3, 1)),
                                        ((3, 5, 8), (0, 2, 1))],
                         ids=lambda v: "x".join(map(str, v)))
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.float64])
def test_transpose_kernel(shape: tuple, perm: tuple, dtype: type) -> None:
    """A lone transpose (the graph output) is an exact copy, tails and every element size included."""
    data = (_RNG.standard_normal(shape) * 50).astype(dtype)
    g = Graph("tk")
    x = g.add_input(shape, DType.f32 if dtype is np.float32 else DType.i8 if dtype is np.int8 else DType.f64, "x")
    g.set_outputs([g.add1("transpose", x, perm=perm)])
    _, (got,) = _graph_run(g, data)
    np.testing.assert_array_equal(got, np.transpose(data, perm))


@pytest.mark.parametrize("shape,perm,rows", [((1, 28, 28, 2, 58), (0, 1, 2, 4, 3), 2),
                                             ((1, 3, 224, 224), (0, 2, 3, 1), 3)], ids=["shuffle", "nchw"])
def test_short_last_dim_transposes_interleave(shape: tuple, perm: tuple, rows: int) -> None:
    """A channel shuffle in NHWC (2 groups last) and a 3-channel image's NCHW -> NHWC transpose copy with
    the interleaving path (a vector load per source row, one shuffle, one store), not element by element."""
    from cerebro.compiler.codegen.layout import _gather_form

    g = Graph("interleave")
    out = g.add1("transpose", g.add_input(shape, DType.f32, "x"), perm=perm)
    g.set_outputs([out])
    form, numbers = _gather_form(g.nodes[0])
    assert form.path[0] == "interleave" and numbers[3 * form.lead + form.rank - 1] == rows, (form, numbers)


def _attend(q, k, v):
    probs = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k), axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", probs, v)


_ATTEND_SHAPES = ((2, 11, 3, 8), (2, 13, 3, 8), (2, 13, 3, 8))


@pytest.mark.parametrize("target", ["x86_64", "x86_64-v3"])
def test_attention_on_narrower_x86(target: str) -> None:
    """SSE and AVX2 tiles and block sides (runs on any x86-64 host)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("x86-64 targets run only on an x86-64 host")
    args = [_normal(*shape) for shape in _ATTEND_SHAPES]
    traced = trace(_attend, *args, name="attend")
    (got,) = runtime.load(driver.build(traced.graph, target))(*traced.flatten_inputs(*args))
    _check(got, np.asarray(jax.jit(_attend)(*args)), 13, float(np.abs(args[2]).max()), extra=16)


def test_attention_and_transposes_on_aarch64(tmp_path) -> None:
    """The strided matmul and the shuffle transpose compiled for aarch64, run by cbxrun (qemu off-arm)."""
    import subprocess

    runner = aarch64_runner(tmp_path / "cbxrun")
    args = [_normal(*shape) for shape in _ATTEND_SHAPES]
    traced = trace(lambda q, k, v: (_attend(q, k, v), jnp.transpose(k, (0, 2, 3, 1))), *args, name="attend")
    (tmp_path / "model.cbx").write_bytes(driver.build(traced.graph, "aarch64"))
    files = []
    for n, array in enumerate(traced.flatten_inputs(*args)):
        files.append(str(tmp_path / f"in{n}.bin"))
        (tmp_path / f"in{n}.bin").write_bytes(np.asarray(array, "<f4").tobytes())
    result = subprocess.run([*runner, str(tmp_path / "model.cbx"), *files, "-o", str(tmp_path / "out.bin")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    raw = np.frombuffer((tmp_path / "out.bin").read_bytes(), "<f4")
    want = np.asarray(jax.jit(_attend)(*args))
    got, moved = raw[:want.size].reshape(want.shape), raw[want.size:]
    _check(got, want, 13, float(np.abs(args[2]).max()), extra=16)
    np.testing.assert_array_equal(moved, np.transpose(args[1], (0, 2, 3, 1)).reshape(-1))
