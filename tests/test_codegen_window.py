"""reduce_window along the last dim (NCHW pooling, codegen/window.py's rows path): the pools of real models
(YOLOX SPP 5/9/13 stride 1, ResNet/ShuffleNet 3x3/2 stems, average pools) against ONNX Runtime and jax.jit,
and edge values (NaN, -0/+0, integer extremes) bit-exact against the reference interpreter on the host and on
aarch64 (qemu). Speed: python -m benchmarks.pools (never asserted here)."""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import native
import numpy as np
import pytest
from test_aarch64_runtime import run_cbxrun, split_outputs

import cerebro
from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.driver import lower
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.ir.interpret import run_graph
from cerebro.frontends.onnx import import_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is a top-level folder
from benchmarks.pools import Pool, pool_model  # noqa: E402

RNG = np.random.default_rng(0)

# (input shape, dtype, kind, window, strides, padding): every branch of the rows path in one graph
WINDOWS = (
    ((2, 3, 13, 13), DType.f32, "max", (1, 1, 13, 13), (1, 1, 1, 1), ((0, 0), (0, 0), (6, 6), (6, 6))),
    ((2, 3, 13, 13), DType.f32, "min", (1, 1, 5, 5), (1, 1, 1, 1), ((0, 0), (0, 0), (2, 2), (2, 2))),
    ((1, 2, 17, 19), DType.f32, "max", (1, 1, 3, 3), (1, 1, 2, 2), ((0, 0), (0, 0), (1, 2), (1, 1))),
    ((1, 2, 17, 19), DType.f32, "sum", (1, 1, 3, 3), (1, 1, 1, 1), ((0, 0), (0, 0), (1, 1), (1, 1))),
    ((4, 6, 23), DType.f64, "max", (2, 2, 2), (1, 2, 3), ((1, 0), (0, 1), (0, 0))),  # all dims windowed
    ((3, 5), DType.f32, "max", (2, 3), (1, 1), ((0, 0), (1, 1))),  # a row narrower than one vector
    ((1, 2, 9, 9), DType.i8, "max", (1, 1, 3, 3), (1, 1, 2, 2), ((0, 0), (0, 0), (1, 1), (1, 1))),
    ((1, 2, 9, 9), DType.u16, "min", (1, 1, 3, 3), (1, 1, 1, 1), ((0, 0), (0, 0), (1, 1), (1, 1))),
    # NHWC (the rows of pixels path): channels a multiple of the vector and not, strides 1/2, one-sided pads
    ((1, 13, 13, 24), DType.f32, "max", (1, 13, 13, 1), (1, 1, 1, 1), ((0, 0), (6, 6), (6, 6), (0, 0))),
    ((2, 11, 9, 13), DType.f32, "min", (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (0, 2), (0, 0))),
    ((1, 7, 6, 3, 5), DType.f64, "max", (1, 2, 3, 1, 1), (1, 1, 1, 1, 1), ((0, 0), (1, 0), (1, 1), (0, 0), (0, 0))),
    ((9, 17), DType.i8, "max", (4, 1), (2, 1), ((2, 1), (0, 0))),  # the windowed dim is the only one
    ((1, 12, 12, 5), DType.f32, "sum", (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))),  # per pixel
    # NHWC rows too wide for a scratch row of pixels (the carry path: k - s shared column maxima kept):
    # ResNet's stem pool (3x3/2, pad 1), ceil mode (one-sided pad), 3x3/1, stride > window, 4 vector passes+tail
    ((1, 9, 70, 20), DType.f32, "max", (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0))),
    ((2, 12, 40, 37), DType.f32, "max", (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (0, 1), (0, 1), (0, 0))),
    ((2, 7, 45, 9), DType.i16, "min", (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))),
    ((2, 10, 35, 12), DType.u8, "max", (1, 2, 2, 1), (1, 3, 3, 1), ((0, 0), (0, 0), (0, 1), (0, 0))),
    ((1, 5, 41, 64), DType.f64, "max", (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 0), (0, 0))),
    # shared column maxima too big for the scratch (2 x 600 floats): the rows of pixels path
    ((1, 5, 9, 600), DType.f32, "max", (1, 3, 3, 1), (1, 1, 1, 1), ((0, 0), (1, 1), (1, 1), (0, 0))),
    # rows too wide for the stack scratch (2 KiB, kernel stacks): the per-pixel path
    ((3, 700), DType.f32, "sum", (2, 3), (1, 2), ((1, 0), (1, 1))),
    ((2, 3, 600), DType.f32, "max", (1, 3, 3), (1, 1, 1), ((0, 0), (1, 1), (1, 1))),
    # rows cropped by negative padding: the per-pixel path; cropped leading dims stay on the rows paths
    ((3, 8, 4), DType.f32, "max", (1, 3, 1), (1, 1, 1), ((0, 0), (-1, 1), (0, 0))),
    ((3, 4, 9), DType.f32, "min", (1, 1, 3), (1, 1, 1), ((0, 0), (0, 0), (-1, 2))),
    ((5, 9), DType.f32, "sum", (2, 3), (1, 1), ((-1, 1), (1, 1))),
)


def edge_values(shape: tuple[int, ...], dtype: DType) -> np.ndarray:
    """Floats: NaN, infinities and zeros of both signs among normals; integers: their extremes among small ones."""
    if dtype.is_float:
        specials = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, -0.0, 0.0], dtype.numpy)
        values = RNG.standard_normal(shape).astype(dtype.numpy)
    else:
        info = np.iinfo(dtype.numpy)
        specials = np.array([info.min, info.max, 0, 1], dtype.numpy)
        values = RNG.integers(-3 if info.min else 0, 4, shape).astype(dtype.numpy)
    mask = RNG.random(shape) < 0.15
    values[mask] = RNG.choice(specials, int(mask.sum()))
    zeros = RNG.random(shape) < 0.3  # runs of signed zeros: max/min must pick +0 over -0 as the reference
    if dtype.is_float:
        values[zeros] = RNG.choice(specials[4:], int(zeros.sum()))
    return values


def window_graph() -> tuple[Graph, list[np.ndarray]]:
    g = Graph("windows")
    outputs, inputs = [], []
    for index, (shape, dtype, kind, window, strides, padding) in enumerate(WINDOWS):
        x = g.add_input(shape, dtype, f"x{index}")
        inputs.append(edge_values(shape, dtype))
        outputs.append(g.add1("reduce_window", x, kind=kind, window=window, strides=strides, padding=padding))
    g.set_outputs(outputs)
    return g, inputs


def assert_same_bits(got: np.ndarray, want: np.ndarray) -> None:
    """Equal values, NaN where the reference has NaN (any payload) and the sign of every zero."""
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind == "f":
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        keep = ~np.isnan(want)
        np.testing.assert_array_equal(np.signbit(got[keep]), np.signbit(want[keep]))
        got, want = got[keep], want[keep]
    np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def windows() -> tuple[Graph, list[np.ndarray], list[np.ndarray]]:
    graph, inputs = window_graph()
    return graph, inputs, run_graph(graph, inputs)


def test_rows_path_matches_reference_bit_for_bit(windows) -> None:
    graph, inputs, expected = windows
    for got, want in zip(runtime.load(build(graph))(*inputs), expected, strict=True):
        assert_same_bits(got, want)


def test_rows_path_on_aarch64(windows, tmp_path) -> None:
    graph, inputs, expected = windows
    runner = native.aarch64_runner(tmp_path / "cbxrun")
    result = run_cbxrun(runner, build(graph, target="aarch64"), inputs, tmp_path)
    assert result.returncode == 0, result.stderr
    for got, want in zip(split_outputs((tmp_path / "out.bin").read_bytes(), expected), expected, strict=True):
        assert_same_bits(got, want)


@pytest.mark.parametrize("case", [
    *(Pool(f"SPP {k}x{k}", "MaxPool", (1, 8, 13, 13), k, 1, k // 2) for k in (5, 9, 13)),  # YOLOX
    Pool("stem", "MaxPool", (1, 4, 28, 28), 3, 2, 1),  # ResNet / ShuffleNet, even and odd sizes
    Pool("stem ceil", "MaxPool", (1, 3, 27, 29), 3, 2, 1, (("ceil_mode", 1),)),
    Pool("avg", "AveragePool", (1, 4, 35, 35), 3, 1, 1, (("count_include_pad", 0),)),
    Pool("avg/2", "AveragePool", (2, 3, 15, 15), 3, 2, 0),
], ids=lambda case: case.name)
def test_onnx_pools_match_onnxruntime(case: Pool) -> None:
    import onnx
    import onnxruntime as ort

    model = pool_model(case)
    x = RNG.standard_normal(case.shape).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    want = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    (got,) = runtime.load(build(import_onnx(onnx.load_from_string(model))))(x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)  # max is exact; averages divide a sum


@pytest.mark.parametrize("pool", [
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},  # ResNet stem
    {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},  # SqueezeNet
    {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [1, 1, 1, 1]},
], ids=str)
def test_channels_last_max_pool_between_convs_matches_onnxruntime(pool: dict) -> None:
    """Conv -> MaxPool -> Conv from ONNX: the layout pass runs the pool channels-last (wide odd rows: the carry
    path), against ONNX Runtime."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w1 = numpy_helper.from_array(RNG.standard_normal((19, 5, 1, 1)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(RNG.standard_normal((6, 19, 1, 1)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"]), helper.make_node("MaxPool", ["a"], ["p"], **pool),
             helper.make_node("Conv", ["p", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2, 5, 27, 75))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    x = RNG.standard_normal((2, 5, 27, 75)).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    want = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    optimised = lower(import_onnx(onnx.load_from_string(model)))[0]
    (pool_node,) = [node for node in optimised.nodes if node.op == "reduce_window"]
    assert pool_node.inputs[0].shape[-1] == 19  # channels-last
    (got,) = runtime.load(build(import_onnx(onnx.load_from_string(model))))(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("window, strides, padding", [
    ((1, 1, 3, 3), (1, 1, 2, 2), ((0, 0), (0, 0), (1, 1), (1, 1))),
    ((1, 1, 9, 9), (1, 1, 1, 1), ((0, 0), (0, 0), (4, 4), (4, 4))),
], ids=str)
def test_nchw_max_pool_matches_jax(window, strides, padding) -> None:
    def pool(x: jax.Array) -> jax.Array:
        return jax.lax.reduce_window(x, -np.inf, jax.lax.max, window, strides, padding)

    x = edge_values((1, 4, 21, 21), DType.f32)
    assert_same_bits(np.asarray(cerebro.compile(pool, cache=False)(x)), np.asarray(jax.jit(pool)(x)))


def test_rows_path_sliced_into_stages_and_threads(windows) -> None:
    """The rows path's units (output rows) cut into many slices and shared by two threads: same bits."""
    graph, inputs, expected = windows
    sliced = build(graph, stage_flops=2_000)
    assert runtime.load(sliced).meta.num_stages > len(WINDOWS)
    for threads in (1, 2):
        for got, want in zip(runtime.load(sliced, threads=threads)(*inputs), expected, strict=True):
            assert_same_bits(got, want)
