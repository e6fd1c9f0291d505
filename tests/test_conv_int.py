"""conv_integer (codegen/conv_int.py on codegen/int_dot.py's core) bit-exact against the int64 reference: on this
host (vpmaddwd), on aarch64 with dotprod under qemu -cpu max (sdot), and vpdpbusd in the assembly of a VNNI
target; and ONNX ConvInteger / QLinearConv through the importer against onnx.reference and ORT."""

from __future__ import annotations

import native
import numpy as np
import pytest
from test_aarch64_runtime import run_cbxrun, split_outputs
from test_matmul_int import ARM_DOTPROD, X86_VNNI

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.ir.ops import CONV_INTEGER_MIN_CHANNELS
from cerebro.compiler.ir.reference import conv_integer

# (x shape NHWC, w shape [Cout, KH, KW, Cin/g], attrs): padding on every side, strides, dilation, Cin under
# and past one step with odd tails (3, 19, 37), Cout not a multiple of the 4-channel block, groups, depthwise
CONVS = [
    ((1, 5, 6, 3), (5, 3, 3, 3), {"strides": (1, 1), "padding": ((1, 1), (1, 1))}),
    ((2, 7, 5, 19), (6, 2, 3, 19), {"strides": (2, 1), "padding": ((0, 1), (2, 0)), "rhs_dilation": (2, 1)}),
    ((1, 6, 6, 37), (9, 3, 3, 37), {"strides": (1, 2), "padding": ((1, 1), (1, 1))}),
    ((1, 4, 5, 36), (8, 3, 3, 18), {"strides": (1, 1), "padding": ((1, 1), (1, 1)), "groups": 2}),
    ((1, 5, 5, 8), (8, 3, 3, 1), {"strides": (1, 1), "padding": ((1, 1), (1, 1)), "groups": 8}),
]
PAIRS = [(DType.u8, DType.i8), (DType.i8, DType.u8), (DType.u8, DType.u8), (DType.i8, DType.i8)]


def _range(d: DType) -> tuple[int, int]:
    return (0, 255) if d is DType.u8 else (-128, 127)


def _cases(convs: list = CONVS, seed: int = 11) -> tuple[Graph, list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    g = Graph("conv_integer_forms")
    inputs, outputs, want = [], [], []
    for c, (x_shape, w_shape, attrs) in enumerate(convs):
        dx, dw = PAIRS[c % len(PAIRS)]
        arrays = [rng.integers(*_range(d), size=shape, endpoint=True).astype(d.numpy)
                  for d, shape in ((dx, x_shape), (dw, w_shape), (dx, ()), (dw, (w_shape[0],)))]
        values = [g.add_input(a.shape, d, f"c{c}_{i}") for i, (a, d) in enumerate(zip(arrays, (dx, dw, dx, dw)))]
        node_out = g.add1("conv_integer", *values, **attrs)
        outputs.append(node_out)
        inputs += arrays
        want.append(conv_integer(g.nodes[-1], *arrays))
    g.set_outputs(outputs)
    return g, inputs, want


def test_reference_matches_a_direct_sum():
    """The reference itself, against the definition written out for one case with padding and groups."""
    graph, inputs, want = _cases()
    x, w, xz, wz = (a.astype(np.int64) for a in inputs[12:16])
    padded = np.pad(x - xz, ((0, 0), (1, 1), (1, 1), (0, 0)))
    direct = np.zeros(want[3].shape, np.int64)
    for oy, ox, co in np.ndindex(direct.shape[1:]):
        g = co // 4
        patch = padded[0, oy:oy + 3, ox:ox + 3, g * 18:(g + 1) * 18]
        direct[0, oy, ox, co] = np.sum(patch * (w[co] - wz[co]))
    np.testing.assert_array_equal(want[3], direct)


@pytest.mark.parametrize("target", ["host", "x86_64-gpr"])
def test_host_is_exact(target):
    graph, inputs, want = _cases()
    for got, w in zip(runtime.load(driver.build(graph, target))(*inputs), want):
        np.testing.assert_array_equal(got, w)


def test_sdot_is_exact_under_qemu(tmp_path):
    runner = native.aarch64_runner(tmp_path)
    if runner[0] == native.QEMU:
        runner = [native.QEMU, "-cpu", "max", *runner[1:]]
    graph, inputs, want = _cases()
    data = driver.build(graph, ARM_DOTPROD)
    result = run_cbxrun(runner, data, inputs, tmp_path)
    assert result.returncode == 0, result.stderr
    for got, w in zip(split_outputs((tmp_path / "out.bin").read_bytes(), want), want):
        np.testing.assert_array_equal(got, w)


@pytest.mark.parametrize("name", X86_VNNI)
def test_vnni_conv_uses_vpdpbusd(name):
    graph, _, _ = _cases(CONVS[2:3])  # 37 input channels: one 32-byte step (ymm on AVX-512 too) and a tail
    _, text, _, _ = driver.lower(graph, X86_VNNI[name])
    assert "vpdpbusd" in driver.compile_assembly(text, X86_VNNI[name])


def _onnx_conv(op: str, x: np.ndarray, w: np.ndarray, zeros: dict, attrs: dict, bias: np.ndarray | None = None):
    """A one-node ConvInteger or QLinearConv model: x an input, the rest initializers."""
    from onnx import helper, numpy_helper
    from onnx.helper import np_dtype_to_tensor_dtype as tensor_type

    if op == "ConvInteger":
        named = {"x": x, "w": w, "x_zero": zeros["x"], "w_zero": zeros["w"]}
        out_type = np.int32
    else:
        named = {"x": x, "x_scale": np.float32(0.05), "x_zero": zeros["x"], "w": w,
                 "w_scale": np.linspace(0.01, 0.03, w.shape[0], dtype=np.float32), "w_zero": zeros["w"],
                 "y_scale": np.float32(0.7), "y_zero": zeros["y"], **({"bias": bias} if bias is not None else {})}
        out_type = zeros["y"].dtype
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in named.items() if k != "x"]
    node = helper.make_node(op, list(named), ["y"], **attrs)
    graph = helper.make_graph([node], op, [helper.make_tensor_value_info("x", tensor_type(x.dtype), x.shape)],
                              [helper.make_tensor_value_info("y", tensor_type(np.dtype(out_type)), None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


ONNX_CONVS = [  # (op, x, w shape, zero points, attributes)
    ("ConvInteger", (1, 6, 9, 8), (5, 6, 3, 3), (np.uint8, np.uint8), {"pads": [1, 1, 1, 1]}),
    ("ConvInteger", (2, 4, 11), (6, 2, 3), (np.uint8, np.int8), {"strides": [2], "dilations": [2], "group": 2}),
    ("QLinearConv", (1, 16, 7, 7), (24, 16, 3, 3), (np.uint8, np.int8), {"auto_pad": "SAME_UPPER",
                                                                          "strides": [2, 2]}),
    ("QLinearConv", (1, 8, 6, 6), (8, 4, 3, 3), (np.int8, np.int8), {"pads": [1, 1, 1, 1], "group": 2}),
    ("QLinearConv", (1, 8, 6, 6), (8, 1, 3, 3), (np.int8, np.int8), {"pads": [1, 1, 1, 1], "group": 8}),
]


@pytest.mark.parametrize("case", range(len(ONNX_CONVS)))
def test_onnx_integer_convs_match_onnx_reference_and_ort(case):
    """Imported as conv_integer (from CONV_INTEGER_MIN_CHANNELS input channels per group), bit-exact with
    onnx.reference and with ORT."""
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    from cerebro.compiler import build
    from cerebro.frontends.onnx import import_onnx

    op, x_shape, w_shape, (xt, wt), attrs = ONNX_CONVS[case]
    rng = np.random.default_rng(case)
    x = rng.integers(np.iinfo(xt).min, np.iinfo(xt).max, x_shape, endpoint=True).astype(xt)
    # u8 x s8 weights within 7 bits: ORT's AVX2 kernel (vpmaddubsw) saturates on larger ones, and differs then
    low, high = (-64, 63) if (xt, wt) == (np.uint8, np.int8) else (np.iinfo(wt).min, np.iinfo(wt).max)
    w = rng.integers(low, high, w_shape, endpoint=True).astype(wt)
    zeros = {"x": np.array(rng.integers(0, 100), xt), "y": np.array(7, xt),
             "w": (rng.integers(0, 20, w_shape[0]) if op == "QLinearConv" else np.array(3)).astype(wt)}
    model = _onnx_conv(op, x, w, zeros, attrs, rng.integers(-5000, 5000, w_shape[0]).astype(np.int32)
                       if op == "QLinearConv" else None)
    graph = import_onnx(model)
    ops = {n.op for n in driver.lower(graph)[0].nodes}
    # depthwise: the i32 conv (faster there)
    assert ("conv_integer" in ops) == (w_shape[1] >= CONV_INTEGER_MIN_CHANNELS)
    (got,) = runtime.load(build(graph))(x)
    want = ReferenceEvaluator(model).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, want)
    theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(got, theirs.run(None, {"x": x})[0])
