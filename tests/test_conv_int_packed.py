"""conv_integer with constant weights on AVX2 (codegen/conv_int_packed.py: output channels along the lanes,
weights packed by passes/prepack.py): bit-exact against the int64 reference over padding, strides, dilation,
groups, pixel and channel tails and every operand signedness, and which convs take that kernel."""

from __future__ import annotations

import numpy as np
import pytest
from test_i686_runtime import cbxrun32, run_cbx  # noqa: F401 (cbxrun32: a fixture)

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen.conv_int_packed import PIXELS, VECTORS
from cerebro.compiler.ir import DType, Graph, Value
from cerebro.compiler.ir.int8_layouts import pack_conv_weights
from cerebro.compiler.ir.reference import conv_integer

AVX2 = "x86_64-v3"  # vpmaddwd, no VNNI: the packed kernel's target
PAD1 = {"strides": (1, 1), "padding": ((1, 1), (1, 1))}
# (x NHWC, w [Cout, KH, KW, Cin/g], attrs, x dtype, w dtype, weight zero point)
CONVS = [
    ((1, 9, 11, 32), (24, 3, 3, 32), PAD1, DType.u8, DType.i8, 0),  # pixel tail, a short vector block (24 = 16 + 8)
    ((2, 7, 9, 48), (24, 3, 2, 16), {"strides": (2, 1), "padding": ((0, 1), (2, 0)), "rhs_dilation": (2, 1),
                                     "groups": 3}, DType.i8, DType.u8, 100),
    ((1, 6, 6, 16), (12, 3, 3, 16), {"strides": (1, 2), "padding": ((1, 1), (1, 1))}, DType.i8, DType.i8, -3),
    ((1, 5, 11, 32), (8, 1, 1, 32), {"strides": (1, 1), "padding": ((0, 0), (0, 0))}, DType.u8, DType.u8, 128),
    ((1, 3, 3, 16), (8, 5, 5, 16), {"strides": (1, 1), "padding": ((2, 2), (2, 2))}, DType.u8, DType.i8,
     0),  # borders only
]


def _weights(rng: np.random.Generator, shape: tuple, dtype: DType, zero: int) -> np.ndarray:
    """Weights whose distance from the zero point fits i8 (what packing needs), the extremes included."""
    w = np.clip(zero + rng.integers(-128, 128, shape), *((0, 255) if dtype is DType.u8 else (-128, 127)))
    w.flat[:2] = np.clip([zero - 128, zero + 127], *((0, 255) if dtype is DType.u8 else (-128, 127)))
    return w.astype(dtype.numpy)


def _graph(convs: list, seed: int = 3) -> tuple[Graph, list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    g = Graph("conv_integer_packed")
    inputs, outputs, want = [], [], []
    for c, (x_shape, w_shape, attrs, dx, dw, zw) in enumerate(convs):
        low, high = (0, 255) if dx is DType.u8 else (-128, 127)
        x = rng.integers(low, high, x_shape, endpoint=True).astype(dx.numpy)
        x.flat[:2] = (low, high)
        consts = [_weights(rng, w_shape, dw, zw), np.array(rng.integers(low, high), dx.numpy),
                  np.full(w_shape[0], zw, dw.numpy)]
        values = [g.add_input(x_shape, dx, f"x{c}")] + [Value(a.shape, d, f"c{c}_{i}", data=a)
                                                        for i, (a, d) in enumerate(zip(consts, (dw, dx, dw)))]
        outputs.append(g.add1("conv_integer", *values, **attrs))
        inputs.append(x)
        want.append(conv_integer(g.nodes[-1], x, *consts))
    g.set_outputs(outputs)
    return g, inputs, want


def test_packed_kernel_is_exact():
    graph, inputs, want = _graph(CONVS)
    lowered = driver.lower(graph, AVX2)[0]
    assert [n.attrs.get("packed_b") for n in lowered.nodes if n.op == "conv_integer"] == [4] * len(CONVS)
    for got, w in zip(runtime.load(driver.build(graph, AVX2))(*inputs), want):
        np.testing.assert_array_equal(got, w)


def test_u8_weights_keep_their_zero_points():
    """u8 weights whose distance from the zero point does not fit i8 (ConvInteger's u8 kernels, zero point 5)
    stay u8 and the kernel subtracts the zero points: the same bits."""
    graph, inputs, want = _graph([((1, 6, 7, 32), (8, 3, 3, 32), PAD1, DType.u8, DType.u8, 5)])
    node = graph.nodes[-1]
    node.inputs[1].data.flat[:3] = (255, 0, 130)
    node.inputs[3].data[:] = np.arange(5, 13)
    want = conv_integer(node, inputs[0], *(v.data for v in node.inputs[1:]))
    lowered = next(n for n in driver.lower(graph, AVX2)[0].nodes if n.op == "conv_integer")
    assert lowered.attrs.get("packed_b") == 4 and lowered.inputs[1].dtype is DType.u8
    np.testing.assert_array_equal(runtime.load(driver.build(graph, AVX2))(*inputs)[0], want)


@pytest.mark.parametrize("why, conv", [
    ("i8 w - zw outside i8", ((1, 4, 4, 16), (8, 3, 3, 16), PAD1, DType.u8, DType.i8, 100)),
    ("input channels not whole 16-channel steps", ((1, 4, 4, 24), (8, 3, 3, 24), PAD1, DType.u8, DType.i8, 0)),
    ("output channels per group not whole vectors", ((1, 4, 4, 32), (6, 3, 3, 16), {**PAD1, "groups": 2},
                                                     DType.u8, DType.i8, 0)),
])
def test_other_convs_keep_the_dot_kernel(why, conv):
    graph, inputs, want = _graph([conv])
    graph.nodes[-1].inputs[1].data.flat[0] = -128  # -128 - 100 is outside i8
    want = [conv_integer(graph.nodes[-1], inputs[0], *(v.data for v in graph.nodes[-1].inputs[1:]))]
    lowered = driver.lower(graph, AVX2)[0]
    assert "packed_b" not in next(n for n in lowered.nodes if n.op == "conv_integer").attrs, why
    np.testing.assert_array_equal(runtime.load(driver.build(graph, AVX2))(*inputs)[0], want[0])


def test_pack_order():
    """Vector (group of 4 channels q, tap t, 16-channel step s, pair j): channel pair 2j of the four channels,
    then pair 8 + 2j, as the kernel's vpshufd j of a 16-channel load pairs them."""
    w = np.arange(8 * 2 * 32, dtype=np.int64).reshape(8, 1, 2, 32) % 250 - 125
    packed = pack_conv_weights(w.astype(np.int8)).reshape(-1, 16)
    q, t, s, j = 1, 1, 1, 2
    vector = packed[((q * 2 + t) * 2 + s) * 4 + j]
    want = [w[4 * q + c, 0, t, 16 * s + 8 * h + 2 * j + e] for h in (0, 1) for c in range(4) for e in (0, 1)]
    np.testing.assert_array_equal(vector, want)
    assert PIXELS * VECTORS + VECTORS + 1 <= 16  # accumulators, weights and one activation in 16 ymm registers


def test_packed_kernel_on_i686(cbxrun32, tmp_path):  # noqa: F811 (the imported fixture)
    """32-bit x86 with AVX2 (8 vector registers, so the accumulators spill): the same bits in a 32-bit process."""
    graph, inputs, want = _graph(CONVS[:1])
    result = run_cbx([str(cbxrun32)], driver.build(graph, "i686-v3"), inputs, tmp_path)
    if result.returncode == 1 and "this CPU lacks" in result.stderr:
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int32).reshape(want[0].shape),
                                  want[0])
