"""quantize="int8": matmul_integer runs the requantize (to u8) or dequantize (to f32) chain after it as its
epilogue (passes/epilogue.py, codegen/matmul_int.py), on each finished band of i32 sums, so no i32 tensor
is written and read again. Results stay the integer reference's bits."""

from __future__ import annotations

import jax
import numpy as np
import test_quantize_static as static

import cerebro
from cerebro.calibration import quantize_graph
from cerebro.compiler.driver import lower
from cerebro.compiler.ir import DType
from cerebro.compiler.ir.interpret import run_graph

RNG = np.random.default_rng(1718)


def _lowered(fn, calibration: list[np.ndarray]):
    compiled = cerebro.compile(fn, quantize="int8", calibration=calibration, cache=False)
    graph, _ = quantize_graph(compiled.lower(calibration[0]), "int8", calibration)
    return compiled, graph, lower(graph)[0]


def test_mlp_requantizes_and_dequantizes_in_the_product_epilogue() -> None:
    """Every layer is one matmul_integer node: the hidden layers' fixed-point requantization ends in u8, the
    last layer's dequantize and bias in f32; outputs equal the IR reference interpreter's run of the quantized
    graph (i64 fixed-point arithmetic) bit for bit."""
    params = [((RNG.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32), RNG.standard_normal(n).astype(np.float32))
              for k, n in zip(static.SIZES, static.SIZES[1:])]  # not static.layers(): its module's RNG stays as it is
    calibration = [RNG.standard_normal((1, static.SIZES[0])).astype(np.float32) for _ in range(8)]
    compiled, graph, lowered = _lowered(static.float_mlp(params), calibration)
    products = [n for n in lowered.nodes if n.op == "matmul_integer"]
    (quantize,) = [n for n in lowered.nodes if n.op != "matmul_integer"]  # the input's: convert saturates,
    assert [n.op for n in quantize.attrs["nodes"]] == ["div", "round", "add", "convert"]  # no float clamp
    assert [n.outputs[0].dtype for n in products] == [DType.u8, DType.u8, DType.f32]
    assert all("epilogue" in n.attrs for n in products)
    for _ in range(8):
        x = (RNG.standard_normal((1, static.SIZES[0])) * 3).astype(np.float32)  # codes saturate too
        np.testing.assert_array_equal(np.asarray(compiled(x)), run_graph(graph, [x])[0])


def test_rows_in_bands_with_a_tail_dequantize_through_the_epilogue() -> None:
    """19 rows (bands of 2 and a tail row, batch entries of a 3-D activation) and 24 columns (blocks of 4
    outputs): the f32 result, the per-column scale and bias applied in the epilogue, equals the IR reference
    interpreter's run of the quantized graph bit for bit."""
    w = (RNG.standard_normal((40, 24)) / 6).astype(np.float32)
    b = RNG.standard_normal(24).astype(np.float32)

    def dense(x):
        return jax.nn.relu(x @ w + b)

    calibration = [RNG.standard_normal((19, 40)).astype(np.float32) for _ in range(4)]
    compiled, graph, lowered = _lowered(dense, calibration)
    (product,) = [n for n in lowered.nodes if n.op == "matmul_integer"]
    assert product.outputs[0].dtype is DType.f32 and "convert" in [n.op for n in product.attrs["epilogue"].nodes]
    for _ in range(4):
        x = RNG.standard_normal((19, 40)).astype(np.float32)
        np.testing.assert_array_equal(np.asarray(compiled(x)), run_graph(graph, [x])[0])


def test_product_split_into_heads_runs_its_epilogue_by_rows_of_n() -> None:
    """A 3-D activation's product reshaped into heads ([1, 19, 24] -> [1, 19, 4, 6]) before its bias: the
    epilogue reaches through the reshape, and the kernel sizes and walks its rows by N = 24, not by the
    output's last dim (6)."""
    w = (RNG.standard_normal((40, 24)) / 6).astype(np.float32)
    b = RNG.standard_normal((4, 6)).astype(np.float32)

    def heads(x):
        return (x @ w).reshape(1, 19, 4, 6) + b

    calibration = [RNG.standard_normal((1, 19, 40)).astype(np.float32) for _ in range(4)]
    compiled, graph, lowered = _lowered(heads, calibration)
    (product,) = [n for n in lowered.nodes if n.op == "matmul_integer"]
    assert product.outputs[0].shape == (1, 19, 4, 6) and "epilogue" in product.attrs
    for _ in range(4):
        x = RNG.standard_normal((1, 19, 40)).astype(np.float32)
        np.testing.assert_array_equal(np.asarray(compiled(x)), run_graph(graph, [x])[0])
