"""Models quantized by ONNX Runtime's own tools compile and match ONNX Runtime running them (issue 17 item 2).

quantize_dynamic writes DynamicQuantizeLinear + MatMulInteger (weights u8/i8 per tensor) and
quantize_static the QDQ form (QuantizeLinear/DequantizeLinear around float MatMul/Conv, scales from
calibration data). The node suite (node_suite.py OTHER_TYPED_OPS) checks each op against ONNX's
reference; here whole models are checked against ORT, which fuses QDQ into its integer kernels
(QLinearMatMul/QLinearConv with its own requantization) while Cerebro computes the float graph the
QDQ model means: a result rounded to the other side of a half step could land one quantization step
away (measured: none do on these models). Tolerances, stated per test: the dynamic MLP within 1e-5
relative (the same integers, f32 scaling); the QDQ outputs within one output quantization step (1 LSB),
at least 90% of them exactly equal.

ORT is the yardstick with reduce_range=True (7-bit weights): without it, ORT's u8 x s8 kernels on
x86-64 without VNNI add pairs of products in saturating 16 bits (vpmaddubsw), so its results stray
from the model's meaning (up to 0.09 on outputs of magnitude ~1.4 here, while Cerebro equals ONNX's
reference evaluator exactly); full-range i8 weights are checked against that reference instead.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_models
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

from cerebro.api import compile_graph
from cerebro.compiler.passes.dce import eliminate_dead_nodes
from cerebro.frontends.onnx import import_onnx

RNG = np.random.default_rng(17)


def _weights(name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array((RNG.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32), name)


def mlp(sizes: tuple[int, ...] = (64, 48, 32, 10)) -> onnx.ModelProto:
    """MatMul + Add (+ Relu) layers of the given widths."""
    return onnx_models.mlp([(numpy_helper.to_array(_weights(f"w{k}", n_in, n_out)),
                             RNG.standard_normal(n_out).astype(np.float32) * 0.1)
                            for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]))])


def gemm_mlp(sizes: tuple[int, ...] = (64, 48, 10)) -> onnx.ModelProto:
    """Gemm (transB=1, with bias, as torch exports nn.Linear) + Relu layers."""
    nodes, inits, x = [], [], "x"
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        inits += [_weights(f"w{k}", n_out, n_in), numpy_helper.from_array(RNG.standard_normal(n_out).astype(
            np.float32) * 0.1, f"b{k}")]
        nodes.append(helper.make_node("Gemm", [x, f"w{k}", f"b{k}"], [f"g{k}"], transB=1))
        x = f"g{k}"
        if k < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [x], [f"r{k}"]))
            x = f"r{k}"
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(nodes, "gemm_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, sizes[-1]])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def cnn() -> onnx.ModelProto:
    """Conv 3x3 (1 -> 4, padded) + Relu, Conv 3x3 stride 2 (4 -> 8) + Relu, flatten, MatMul to 10."""
    inits = [_weights("k0", 4, 1, 3, 3), _weights("k1", 8, 4, 3, 3), _weights("w", 8 * 6 * 6, 10),
             numpy_helper.from_array(np.full(4, 0.1, np.float32), "c0"),
             numpy_helper.from_array(np.full(8, -0.05, np.float32), "c1")]
    nodes = [helper.make_node("Conv", ["x", "k0", "c0"], ["v0"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["v0"], ["r0"]),
             helper.make_node("Conv", ["r0", "k1", "c1"], ["v1"], strides=[2, 2]),
             helper.make_node("Relu", ["v1"], ["r1"]),
             helper.make_node("Flatten", ["r1"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["y"])]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 14, 14])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


class _Samples(CalibrationDataReader):
    def __init__(self, shape: tuple[int, ...], count: int = 16) -> None:
        self.feeds = iter([{"x": RNG.standard_normal(shape).astype(np.float32)} for _ in range(count)])

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def _both(model: onnx.ModelProto, inputs: list[np.ndarray], yardstick: str = "ort"
          ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(Cerebro, ORT or ONNX's reference evaluator) outputs of model on each input."""
    compiled = compile_graph(import_onnx(model))
    if yardstick == "ort":
        run = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run
    else:
        run = ReferenceEvaluator(model).run
    return [compiled(x)[0] for x in inputs], [run(None, {"x": x})[0] for x in inputs]


def _quantized(tmp_path, model: onnx.ModelProto, quantize) -> onnx.ModelProto:
    source, target = tmp_path / "f32.onnx", tmp_path / "q.onnx"
    onnx.save(model, source)
    quantize(source, target)
    return onnx.load(target)


def _ops(model: onnx.ModelProto) -> set[str]:
    return {node.op_type for node in model.graph.node}


@pytest.mark.parametrize("weight_type, reduce_range, yardstick", [
    (QuantType.QUInt8, False, "ort"), (QuantType.QInt8, True, "ort"), (QuantType.QInt8, False, "reference")],
    ids=["u8", "i8-7bit", "i8-reference"])
def test_quantize_dynamic_mlp_matches(tmp_path, weight_type, reduce_range, yardstick) -> None:
    model = _quantized(tmp_path, mlp(), lambda s, t: quantize_dynamic(s, t, weight_type=weight_type,
                                                                      reduce_range=reduce_range))
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= _ops(model)
    inputs = [RNG.standard_normal((1, 64)).astype(np.float32) * scale for scale in (0.1, 1, 10)]
    ours, theirs = _both(model, inputs, yardstick)
    for got, want in zip(ours, theirs):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


CNN = (cnn, (1, 1, 14, 14))


@pytest.mark.parametrize("make, shape, form, reduce_range, yardstick", [
    (mlp, (1, 64), QuantFormat.QDQ, True, "ort"), (*CNN, QuantFormat.QDQ, True, "ort"),
    (*CNN, QuantFormat.QDQ, False, "reference"), (*CNN, QuantFormat.QOperator, True, "ort"),
    (*CNN, QuantFormat.QOperator, False, "reference")],
    ids=["mlp-7bit", "cnn-7bit", "cnn-reference", "cnn-qlinear-7bit", "cnn-qlinear-reference"])
def test_quantize_static_within_one_step(tmp_path, make, shape, form, reduce_range, yardstick) -> None:
    """QDQ (float ops between QuantizeLinear/DequantizeLinear) and QOperator (QLinearConv/QLinearMatMul,
    requantized) forms."""
    model = _quantized(tmp_path, make(), lambda s, t: quantize_static(
        s, t, _Samples(shape), quant_format=form, per_channel=True, reduce_range=reduce_range))
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(model)
    assert form is QuantFormat.QDQ or {"QLinearConv", "QLinearMatMul"} <= _ops(model)
    last = next(n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == "y")
    step = float(numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == last.input[1])))
    inputs = [RNG.standard_normal(shape).astype(np.float32) for _ in range(8)]
    ours, theirs = _both(model, inputs, yardstick)
    got, want = np.concatenate(ours), np.concatenate(theirs)
    steps = np.abs(got - want) / step
    assert steps.max() <= 1 + 1e-3, f"{steps.max():.2f} quantization steps apart"
    assert np.mean(steps < 1e-3) >= 0.9, f"only {np.mean(steps < 1e-3):.0%} of the outputs equal"


@pytest.mark.parametrize("make, shape, products, reduce_range, yardstick", [
    (mlp, (1, 64), (3, 0), True, "ort"), (mlp, (1, 64), (3, 0), False, "reference"),
    (gemm_mlp, (1, 64), (2, 0), True, "ort"), (gemm_mlp, (1, 64), (2, 0), False, "reference"),
    (*CNN, (1, 1), True, "ort"), (*CNN, (1, 1), False, "reference")],
    ids=["matmul-7bit", "matmul-reference", "gemm-7bit", "gemm-reference", "cnn-7bit", "cnn-reference"])
def test_qdq_products_run_as_integers(tmp_path, make, shape, products, reduce_range, yardstick) -> None:
    """quantize_static's QDQ MatMul/Gemm become matmul_integer, and a Conv with 4+ input channels conv_integer,
    the bias added in i32 and requantized as QLinearMatMul/QLinearConv (what ORT fuses them into), no float
    matmul left; the CNN's 1-channel first conv stays float. Tolerance: every output equal to ORT's (7-bit
    weights) or the reference evaluator's (measured: all are)."""
    model = _quantized(tmp_path, make(), lambda s, t: quantize_static(
        s, t, _Samples(shape), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range))
    ops = [node.op for node in eliminate_dead_nodes(import_onnx(model)).nodes]
    assert (ops.count("matmul_integer"), ops.count("conv_integer")) == products and "matmul" not in ops, ops
    inputs = [RNG.standard_normal(shape).astype(np.float32) for _ in range(16)]
    ours, theirs = _both(model, inputs, yardstick)
    np.testing.assert_array_equal(np.concatenate(ours), np.concatenate(theirs))


@pytest.mark.parametrize("dtype, zero", [(TensorProto.UINT8, 128), (TensorProto.UINT8, 0), (TensorProto.INT8, 0),
                                         (TensorProto.INT8, -3), (TensorProto.INT16, 7)])
def test_qdq_pair_skips_the_integer_round_trip(dtype: int, zero: int) -> None:
    """A DequantizeLinear of a float QuantizeLinear's codes computes code - zero in f32 (no convert to the
    integer type and back), bit for bit what the integer path gives: NaN (code 0), +-inf, -0 and values
    that round to -0, halves (ties to even), saturation both ways, 1e30."""
    scale = np.float32(0.05)
    numpy_type = helper.tensor_dtype_to_np_dtype(dtype)
    zero_point = numpy_helper.from_array(np.array(zero, numpy_type), "zp")
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"])],
        "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 16))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 16))],
        [numpy_helper.from_array(np.array(scale), "s"), zero_point])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    graph_ir = eliminate_dead_nodes(import_onnx(model))
    assert not any(n.op == "convert" for n in graph_ir.nodes), [n.op for n in graph_ir.nodes]
    x = np.array([[np.nan, np.inf, -np.inf, -0.0, 0.0, -0.01, 0.01, 0.025, -0.025, 0.075, 6.4, -6.45, 1e30, -1e30,
                   1700.0, -1700.0]], np.float32)
    info = np.iinfo(numpy_type)
    with np.errstate(invalid="ignore"):
        rounded = np.rint(x / scale)
        codes = np.where(np.isnan(rounded), 0, np.clip(rounded + np.float32(zero), info.min, info.max))
    expected = (codes.astype(numpy_type).astype(np.float32) - np.float32(zero)) * scale
    (ours,) = compile_graph(import_onnx(model))(x)
    np.testing.assert_array_equal(ours.view(np.uint32), expected.view(np.uint32))
