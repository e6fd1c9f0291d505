"""Epilogue fusion (passes/epilogue.py, codegen/epilogue.py), weight pre-packing (passes/prepack.py),
short-vector column tails and conv image blocking, through the driver and the C runtime, against
jax.jit / numpy.

Tolerances: an f32 sum of K products may differ from another summation order by up to
2*K*eps*sum|a*b| (per element); the epilogues used here (bias, scale, residual add, relu,
gelu) change that by at most a factor 1.2 (gelu's slope), plus the erf/tanh polynomial error
(a few ulp of the output) — so atol = 2.4*K*eps*max(|a|@|b|) + 4 eps*max|out|.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from native import run_against_jit

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen import conv as conv_codegen
from cerebro.compiler.codegen.matmul import k_panels
from cerebro.compiler.passes.prepack import pack_columns
from cerebro.frontends.jax import trace

jax.config.update("jax_platforms", "cpu")
EPS32 = float(np.finfo(np.float32).eps)
_RNG = np.random.default_rng(5)


def _normal(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape).astype(np.float32)


def _run(fn, *args) -> tuple[list, np.ndarray, np.ndarray]:
    return run_against_jit(fn, *args, name="epilogue")


def _fused(nodes: list, op: str) -> list:
    return [node for node in nodes if node.op == op and "epilogue" in node.attrs]


def _check(got: np.ndarray, want: np.ndarray, depth: int, magnitude: float) -> None:
    atol = 2.4 * depth * EPS32 * magnitude + 4 * EPS32 * float(np.abs(want).max())
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def _magnitude(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a) @ np.abs(b)).max())


@pytest.mark.parametrize("activation", [jax.nn.relu, jax.nn.gelu, lambda x: jax.nn.gelu(x, approximate=False),
                                        jnp.tanh], ids=["relu", "gelu_tanh", "gelu_erf", "tanh"])
@pytest.mark.parametrize("m,k,n", [(1, 37, 53), (9, 1100, 10), (13, 300, 70), (64, 96, 129), (7, 1024, 64)])
def test_matmul_bias_activation(activation, m: int, k: int, n: int) -> None:
    """Dense layers: bias and activation run on each tile; K > one panel exercises the last-panel path,
    n=10 and 129 the short-vector tail."""
    w, b, x = _normal(k, n), _normal(n), _normal(m, k)
    nodes, got, want = _run(lambda x: activation(x @ w + b), x)
    assert len(_fused(nodes, "matmul")) == 1 and len(nodes) == 1, [n.op for n in nodes]
    _check(got, want, k, _magnitude(x, w) + float(np.abs(b).max()))


def test_conv_batchnorm_residual_relu() -> None:
    """ResNet's conv -> scale/shift -> + shortcut -> relu: one conv node, odd channel count."""
    x, k = _normal(2, 11, 9, 5), _normal(3, 3, 5, 19)
    scale, shift, shortcut = _normal(19), _normal(19), _normal(2, 11, 9, 19)

    def block(x):
        y = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.nn.relu(y * scale + shift + shortcut)

    nodes, got, want = _run(block, x)
    assert len(_fused(nodes, "conv")) == 1 and [n.op for n in nodes] == ["pad", "conv"]  # passes/explicit_pad.py
    assert nodes[1].attrs.get("packed_b") is not None
    bound = 45 * float(np.abs(x).max() * np.abs(k).max()) * float(np.abs(scale).max())
    _check(got, want, 45, bound + float(np.abs(shift).max() + np.abs(shortcut).max()))


def test_strided_and_depthwise_conv_epilogues() -> None:
    """A strided conv with bias + gelu and a depthwise conv with bias + relu6."""
    x, k, kd = _normal(3, 13, 10, 6), _normal(3, 3, 6, 21), _normal(3, 3, 1, 21)
    bias = _normal(21)
    dims = ("NHWC", "HWIO", "NHWC")

    def net(x):
        y = jax.nn.gelu(jax.lax.conv_general_dilated(x, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=dims) + bias)
        z = jax.lax.conv_general_dilated(y, kd, (1, 1), "SAME", dimension_numbers=dims, feature_group_count=21)
        return jnp.clip(z + bias, 0.0, 6.0)

    nodes, got, want = _run(net, x)
    assert len(_fused(nodes, "conv")) == 2, [n.op for n in nodes]
    convs = [node for node in nodes if node.op == "conv"]
    assert [node.attrs.get("packed_b") is not None for node in convs] == [True, False]  # depthwise: unpacked
    _check(got, want, 54 + 9, 54 * float(np.abs(x).max() * np.abs(k).max()) * 9 * float(np.abs(kd).max()) + 10)


def test_grouped_conv_epilogue() -> None:
    """groups=2: the epilogue's channel index is g * Cout/groups + block column."""
    x, k, scale = _normal(2, 7, 6, 8), _normal(3, 3, 4, 10), _normal(10)

    def net(x):
        y = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                         feature_group_count=2)
        return jnp.tanh(y * scale)

    nodes, got, want = _run(net, x)
    assert len(_fused(nodes, "conv")) == 1 and "packed_b" not in nodes[0].attrs
    _check(got, want, 36, 36 * float(np.abs(x).max() * np.abs(k).max() * np.abs(scale).max()))


def test_batched_matmul_epilogue() -> None:
    """[B, M, N] output: a per-column bias (row stride 0) and a full-shape addend (row stride N)."""
    a, b = _normal(3, 7, 33), _normal(3, 33, 18)
    bias, other = _normal(18), _normal(3, 7, 18)
    nodes, got, want = _run(lambda a: jax.nn.relu(jnp.matmul(a, b) + bias) * other, a)
    assert len(_fused(nodes, "matmul")) == 1, [n.op for n in nodes]
    _check(got, want, 33, float(np.abs(a).max() * np.abs(b).max()) * 33 * float(np.abs(other).max()) + 10)


def test_dense_on_3d_input_through_reshape() -> None:
    """Dense on [B, S, D] arrives as reshape -> matmul -> reshape -> bias add: the chain is still fused."""
    w, b, x = _normal(24, 40), _normal(40), _normal(2, 16, 24)
    nodes, got, want = _run(lambda x: jax.nn.gelu(jnp.dot(x, w) + b), x)
    assert len(_fused(nodes, "matmul")) == 1 and "fused_elementwise" not in [n.op for n in nodes], nodes
    _check(got, want, 24, float((np.abs(x) @ np.abs(w)).max() + np.abs(b).max()))


def test_dense_general_split_heads() -> None:
    """Attention's projections (flax DenseGeneral): kernel [D, H, dh], bias [H, dh]; the matmul's rows of
    H*dh columns are the trailing (H, dh) dims of the bias add."""
    w, b, x = _normal(24, 4, 8), _normal(4, 8), _normal(2, 16, 24)
    nodes, got, want = _run(lambda x: jnp.einsum("bsd,dhk->bshk", x, w) + b, x)
    assert len(_fused(nodes, "matmul")) == 1 and [n.op for n in nodes if n.op != "reshape"] == ["matmul"], nodes
    _check(got, want, 24, float((np.abs(x) @ np.abs(w).reshape(24, 32)).max() + np.abs(b).max()))


def test_not_fused_when_result_is_read_twice() -> None:
    """The matmul result is also a graph output: no epilogue, both outputs right."""
    w, x = _normal(20, 12), _normal(4, 20)
    def twice(x):
        y = x @ w
        return y, jax.nn.relu(y) + 1.0

    traced = trace(twice, x, name="twice")
    graph, *_ = driver.lower(traced.graph)
    model = runtime.load(driver.build(traced.graph))
    got = model(*traced.flatten_inputs(x))
    assert [node.op for node in graph.nodes if node.op == "matmul"] == ["matmul"]
    assert not any("epilogue" in node.attrs for node in graph.nodes)
    want = x @ w
    _check(got[0], want, 20, _magnitude(x, w))
    _check(got[1], np.maximum(want, 0) + 1, 20, _magnitude(x, w))


def test_scalar_constants_are_literals_per_node() -> None:
    """One-element constants are literals in the epilogue's code (codegen/epilogue.py): two layers alike
    but for their clamp bounds (hardtanh, relu6) keep their own bounds, so they share no function."""
    w1, w2, x = _normal(16, 16), _normal(16, 16), _normal(5, 16) * 3

    def net(x):
        return jnp.clip(jnp.clip(x @ w1, -1.0, 1.0) @ w2, 0.0, 6.0)

    nodes, got, want = _run(net, x)
    assert len(_fused(nodes, "matmul")) == 2 and len(nodes) == 2, [n.op for n in nodes]
    np.testing.assert_allclose(got, want, rtol=0, atol=2.4 * 16 * EPS32 * 16)
    assert got.min() == 0.0 and got.max() > 1.0  # the second layer's bounds, not the first one's


def test_literal_max_keeps_nan_and_signed_zero() -> None:
    """max/min with a literal bound keep XLA's semantics: NaN propagates and max(-0, 0) is +0."""
    w = np.abs(_normal(8, 12)) + 0.1
    x = np.abs(_normal(4, 8))
    x[1, 3] = np.nan

    nodes, got, want = _run(lambda x: jnp.minimum(jnp.maximum((x @ w) * -0.0, 0.0), 0.5), x)
    assert len(_fused(nodes, "matmul")) == 1 and len(nodes) == 1, [n.op for n in nodes]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[1]).all() and not np.isnan(got[0]).any()
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))  # +0 everywhere but NaN rows


def test_elementwise_loops_keep_their_own_literals() -> None:
    """The elementwise loops write one-element constants as literals too: two chains alike but for their
    bounds (batchnorm + relu6, batchnorm + hardtanh) keep their own, NaN propagates, max(-0, 0) is +0."""
    scale, shift = _normal(24), _normal(24)
    x = _normal(3, 5, 24) * 4
    x[0, 0, :4] = [np.nan, -0.0, 0.0, np.inf]

    def net(x):
        return jnp.clip(x * scale + shift, 0.0, 6.0), jnp.clip(x * shift + scale, -1.0, 1.0), jnp.maximum(x * -0.0, 0.0)

    traced = trace(net, x, name="literals")
    graph, *_ = driver.lower(traced.graph)
    assert {node.op for node in graph.nodes} == {"fused_elementwise"}, [n.op for n in graph.nodes]
    got = runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(x))
    for mine, want in zip(got, jax.jit(net)(x)):
        want = np.asarray(want)
        np.testing.assert_allclose(mine, want, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(want))
        np.testing.assert_array_equal(np.signbit(mine), np.signbit(want))
    assert np.nanmax(got[0]) == 6.0 and np.nanmin(got[1]) == -1.0 and np.isnan(got[2][0, 0, 0])


def test_integer_matmul_epilogue_is_exact() -> None:
    a = _RNG.integers(-50, 50, (5, 23)).astype(np.int32)
    b = _RNG.integers(-50, 50, (23, 11)).astype(np.int32)
    bias = _RNG.integers(-9, 9, (11,)).astype(np.int32)
    nodes, got, want = _run(lambda a: jnp.maximum(a @ b + bias, 0), a)
    assert len(_fused(nodes, "matmul")) == 1
    np.testing.assert_array_equal(got, want)


def test_pack_columns_layout() -> None:
    """Element (k, j0 + c) of block j0 (width w) lands at j0*K + k*w + c."""
    b = np.arange(7 * 11, dtype=np.float32).reshape(7, 11)
    flat = pack_columns(b, 4).reshape(-1)
    for j0 in range(0, 11, 4):
        w = min(4, 11 - j0)
        for k in range(7):
            np.testing.assert_array_equal(flat[j0 * 7 + k * w: j0 * 7 + (k + 1) * w], b[k, j0:j0 + w])


@pytest.mark.parametrize("m,k,n", [(1, 784, 512), (5, 37, 53), (7, 300, 130), (2, 9, 3)])
def test_packed_weights(m: int, k: int, n: int) -> None:
    """Constant b is packed (odd sizes, tails, several K panels) and the results still match."""
    w, x = _normal(k, n), _normal(m, k)
    nodes, got, want = _run(lambda x: x @ w, x)
    assert [node.attrs.get("packed_b") is not None for node in nodes] == [True]
    _check(got, want, k, _magnitude(x, w))


def test_shared_weight_packed_once_and_input_b_untouched() -> None:
    """Two matmuls on one constant share the packed copy; a matmul on a runtime b is not packed (the third
    product on w, only sliced, reads w's first 5 columns instead: passes/split_columns.py)."""
    w, x, y = _normal(40, 24), _normal(3, 40), _normal(24, 5)
    nodes, got, want = _run(lambda x, y: ((x @ w) + (x * 2.0) @ w) @ y + (x @ w)[:, :5], x, y)
    packed = [node.inputs[1] for node in nodes if node.attrs.get("packed_b")]
    whole = {b.id for b in packed if b.shape == w.shape}
    assert sorted(b.shape for b in packed) == [(40, 5), (40, 24), (40, 24)] and len(whole) == 1, [n.op for n in nodes]
    assert [node.inputs[1].is_const for node in nodes if node.op == "matmul"].count(False) == 1
    _check(got, want, 80, 3 * _magnitude(np.abs(x) @ np.abs(w), np.abs(y)))


@pytest.mark.parametrize("batch", [1, 6])
def test_conv_image_blocks(batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights bigger than an image: images go in blocks (here 2 per block) through every channel block."""
    monkeypatch.setattr(conv_codegen, "IMAGE_BLOCK_BYTES", 2 * 5 * 4 * 24 * 4)
    x, k, bias = _normal(batch, 5, 4, 24), _normal(3, 3, 24, 40), _normal(40)

    def net(x):
        y = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.nn.relu(y + bias)

    assert conv_codegen.image_block(batch, 5 * 4 * 24 * 4) == min(batch, 2)
    nodes, got, want = _run(net, x)
    assert len(_fused(nodes, "conv")) == 1
    _check(got, want, 216, 216 * float(np.abs(x).max() * np.abs(k).max()) + float(np.abs(bias).max()))


@pytest.mark.parametrize("separate_last", [False, True])
def test_k_panels_cover_depth_once(separate_last: bool) -> None:
    """Every k is in exactly one panel, in order; with separate_last only the final panel is 'last'."""
    for depth in (0, 5, 128, 256, 300, 512, 1100):
        panels = k_panels(depth, 128, separate_last)
        seen: list[int] = []
        for k0, size, _, _, loop_end in panels:
            starts = [k0] if loop_end is None else [kb * 128 for kb in range(1, loop_end)]
            seen += [k for start in starts for k in range(start, start + size)]
        assert seen == list(range(depth)), (depth, panels)
        lasts = [panel[3] for panel in panels]
        assert lasts[-1] and (not separate_last or lasts.count(True) == 1), (depth, panels)
