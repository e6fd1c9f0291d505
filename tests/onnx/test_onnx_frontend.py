"""The ONNX importer's own contract: opset-dependent rules, shape subgraphs folded at
import, symbolic dims bound from user shapes, clear errors; compiled results vs ORT."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cerebro.api import compile_graph
from cerebro.frontends.onnx import DynamicShapeError, OnnxImportError, import_onnx

RNG = np.random.default_rng(0)


def make_model(nodes, inputs, outputs, opset, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def run_both(model, feeds, shapes=None):
    """(Cerebro compiled outputs, ONNX Runtime outputs) for the same feeds."""
    graph = import_onnx(model, shapes=shapes)
    ours = compile_graph(graph)(*[feeds[v.name] for v in graph.inputs])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return ours, session.run(None, feeds)


@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_axis_semantics_change_at_opset_13(opset) -> None:
    """Before 13, Softmax normalises x flattened to 2-D at axis; from 13, along axis only."""
    model = make_model([helper.make_node("Softmax", ["x"], ["y"], axis=1)], [f32("x", [2, 3, 4])],
                       [f32("y", [2, 3, 4])], opset)
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    (ours,), (ref,) = run_both(model, {"x": x})
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    sums = ours.sum(axis=(1, 2) if opset < 13 else 1)
    np.testing.assert_allclose(sums, 1, rtol=1e-5)


@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze_unsqueeze_reducesum_attribute_vs_input(opset) -> None:
    axes = [numpy_helper.from_array(np.array([1], np.int64), "axes")]
    if opset < 13:
        nodes = [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[1]),
                 helper.make_node("ReduceSum", ["u"], ["r"], axes=[2], keepdims=1),
                 helper.make_node("Squeeze", ["r"], ["y"], axes=[1])]
    else:
        axes.append(numpy_helper.from_array(np.array([2], np.int64), "raxes"))
        nodes = [helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),
                 helper.make_node("ReduceSum", ["u", "raxes"], ["r"], keepdims=1),
                 helper.make_node("Squeeze", ["r", "axes"], ["y"])]
    model = make_model(nodes, [f32("x", [2, 5])], [f32("y", [2, 1])], opset, axes)
    x = RNG.normal(size=(2, 5)).astype(np.float32)
    (ours,), (ref,) = run_both(model, {"x": x})
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_slice_attributes_before_opset_10_and_negative_steps_after() -> None:
    old = make_model([helper.make_node("Slice", ["x"], ["y"], starts=[1, 0], ends=[3, 4], axes=[0, 1])],
                     [f32("x", [4, 6])], [f32("y", [2, 4])], 9)
    x = RNG.normal(size=(4, 6)).astype(np.float32)
    (ours,), (ref,) = run_both(old, {"x": x})
    np.testing.assert_array_equal(ours, ref)
    consts = [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              [("s", [-1, 5]), ("e", [-5, 0]), ("a", [0, 1]), ("st", [-2, -2])]]
    new = make_model([helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"])],
                     [f32("x", [4, 6])], [f32("y", [2, 3])], 13, consts)
    (ours,), (ref,) = run_both(new, {"x": x})
    np.testing.assert_array_equal(ours, ref)


def test_shape_subgraph_folds_away() -> None:
    """Shape -> Gather -> Concat -> Reshape (as exporters emit) leaves one reshape."""
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["batch"], axis=0),
             helper.make_node("Unsqueeze", ["batch", "zero_axes"], ["batch1"]),
             helper.make_node("Concat", ["batch1", "minus_one"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["y"])]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "zero_axes"))
    model = make_model(nodes, [f32("x", ["n", 3, 4])], [f32("y", ["n", 12])], 13, inits)
    graph = import_onnx(model, shapes={"x": (5, 3, 4)})
    assert [n.op for n in graph.nodes] == ["reshape"]
    x = RNG.normal(size=(5, 3, 4)).astype(np.float32)
    (ours,), (ref,) = run_both(model, {"x": x}, shapes={"n": 5})
    np.testing.assert_array_equal(ours, ref)


def test_symbolic_dims_need_shapes() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [f32("x", ["batch", 4])], [f32("y", ["batch", 4])], 17)
    with pytest.raises(OnnxImportError, match="input 'x' has symbolic dimension 'batch' at axis 0"):
        import_onnx(model)
    with pytest.raises(OnnxImportError, match="has dim 4 at axis 1, but shapes gives 5"):
        import_onnx(model, shapes={"x": (2, 5)})
    with pytest.raises(OnnxImportError, match="unknown inputs"):
        import_onnx(model, shapes={"nope": (2, 4)})
    with pytest.raises(OnnxImportError, match="must be a tuple of non-negative ints"):
        import_onnx(model, shapes={"x": (-1, 4)})
    with pytest.raises(OnnxImportError, match="must be a non-negative int"):
        import_onnx(model, shapes={"batch": "2"})
    assert import_onnx(model, shapes={"batch": 3}).inputs[0].shape == (3, 4)


def test_unsupported_op_names_op_and_node() -> None:
    model = make_model([helper.make_node("STFT", ["x", "step"], ["y"], name="stft_7")],
                       [f32("x", [1, 64, 1]), helper.make_tensor_value_info("step", TensorProto.INT64, [])],
                       [f32("y", None)], 17)
    with pytest.raises(OnnxImportError, match=r"node 'stft_7' \(STFT\): op type 'STFT'.*not supported"):
        import_onnx(model)


def test_runtime_dependent_shape_is_reported_and_specialisable() -> None:
    model = make_model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")],
                       [f32("x", [2, 6]), helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                       [f32("y", None)], 17)
    with pytest.raises(DynamicShapeError, match=r"node 'r' \(Reshape\): Reshape's shape must be a constant") as info:
        import_onnx(model)
    assert info.value.input_names() == ["shape"]
    graph = import_onnx(model, constants={"shape": np.array([3, 4], np.int64)})
    assert graph.inputs[0].name == "x" and graph.outputs[0].shape == (3, 4)


def test_bad_files_are_clear_errors(tmp_path) -> None:
    with pytest.raises(OnnxImportError, match="no ONNX file"):
        import_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a protobuf\xff" * 10)
    with pytest.raises(OnnxImportError, match="not a readable ONNX model"):
        import_onnx(junk)
    model = make_model([helper.make_node("Relu", ["x"], ["y"])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2])], 17)
    with pytest.raises(OnnxImportError, match="element type FLOAT16 is not supported"):
        import_onnx(model)


def test_conv_pool_gemm_network_matches_onnxruntime() -> None:
    """A small CNN with initializers (weights are constants in the .cbx)."""
    w = numpy_helper.from_array(RNG.normal(size=(8, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(RNG.normal(size=(8,)).astype(np.float32), "b")
    fc = numpy_helper.from_array(RNG.normal(size=(8 * 4 * 4, 10)).astype(np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"])]
    model = make_model(nodes, [f32("x", [2, 3, 8, 8])], [f32("y", [2, 10])], 17, [w, bias, fc])
    onnx.checker.check_model(model)
    x = RNG.normal(size=(2, 3, 8, 8)).astype(np.float32)
    (ours,), (ref,) = run_both(model, {"x": x})
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("node", [
    helper.make_node("Conv", ["x"], ["y"]),
    helper.make_node("Transpose", ["x"], ["y"], perm=[0, 5]),
    helper.make_node("Gemm", ["x", "x", "x", "x"], ["y"]),
    helper.make_node("Concat", ["x", "x"], ["y"]),
    helper.make_node("Relu", ["nowhere"], ["y"]),
    helper.make_node("Reshape", ["x", "x"], ["y"]),
], ids=["conv-arity", "perm", "gemm-arity", "concat-no-axis", "undefined-input", "float-shape"])
def test_malformed_nodes_are_import_errors(node) -> None:
    model = make_model([node], [f32("x", [2, 3])], [f32("y", None)], 17)
    with pytest.raises(OnnxImportError, match=rf"node 'y' \({node.op_type}\)"):
        import_onnx(model)


def test_einsum_cumsum_and_runtime_if_match_onnxruntime() -> None:
    """Ops outside the float32 node tests' reach: Einsum (attention-style), CumSum, If on a runtime flag."""
    axis = numpy_helper.from_array(np.array(1, np.int64), "axis")
    then = helper.make_graph([helper.make_node("Neg", ["c"], ["t"])], "then", [], [f32("t", [2, 3, 3])])
    other = helper.make_graph([helper.make_node("Identity", ["c"], ["e"])], "else", [], [f32("e", [2, 3, 3])])
    nodes = [helper.make_node("Einsum", ["q", "k"], ["s"], equation="bqd,bkd->bqk"),
             helper.make_node("CumSum", ["s", "axis"], ["c"], reverse=1),
             helper.make_node("ReduceSum", ["q"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["flag"]),
             helper.make_node("If", ["flag"], ["y"], then_branch=then, else_branch=other)]
    zero = numpy_helper.from_array(np.array(0, np.float32), "zero")
    model = make_model(nodes, [f32("q", [2, 3, 4]), f32("k", [2, 3, 4])], [f32("y", [2, 3, 3])], 17, [axis, zero])
    for sign in (1, -1):
        q = np.abs(RNG.normal(size=(2, 3, 4))).astype(np.float32) * sign
        k = RNG.normal(size=(2, 3, 4)).astype(np.float32)
        (ours,), (ref,) = run_both(model, {"q": q, "k": k})
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)


def test_uint32_inputs_and_initializers_match_onnxruntime() -> None:
    """UINT32 inputs and initializers import as u32, with unsigned wrap-around, division and comparison
    (values past int32's range)."""
    big = np.iinfo(np.uint32).max
    x = np.array([[0, 1, 7, big], [big // 2 + 3, 1000, 65535, 12]], np.uint32)
    c = numpy_helper.from_array(np.array([3, big - 1, 5, 2], np.uint32), "c")
    nodes = [helper.make_node("Add", ["x", "c"], ["sum"]), helper.make_node("Div", ["x", "c"], ["quotient"]),
             helper.make_node("Max", ["x", "c"], ["largest"])]
    outputs = [helper.make_tensor_value_info(name, TensorProto.UINT32, [2, 4])
               for name in ("sum", "quotient", "largest")]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.UINT32, [2, 4])], outputs, 13, [c])
    ours, theirs = run_both(model, {"x": x})
    for got, want in zip(ours, theirs):
        assert got.dtype == want.dtype == np.uint32
        np.testing.assert_array_equal(got, want)


def test_uint16_inputs_and_initializers_match_onnxruntime() -> None:
    """UINT16 imports as u16 (ONNX Runtime has no uint16 arithmetic; Concat and Cast it does have)."""
    x = np.array([[0, 1, 40000, 65535]], np.uint16)
    c = numpy_helper.from_array(np.array([[65534, 3, 5, 2]], np.uint16), "c")
    nodes = [helper.make_node("Concat", ["x", "c"], ["joined"], axis=0),
             helper.make_node("Cast", ["joined"], ["wide"], to=TensorProto.FLOAT)]
    outputs = [helper.make_tensor_value_info("joined", TensorProto.UINT16, [2, 4]),
               helper.make_tensor_value_info("wide", TensorProto.FLOAT, [2, 4])]
    model = make_model(nodes, [helper.make_tensor_value_info("x", TensorProto.UINT16, [1, 4])], outputs, 13, [c])
    ours, theirs = run_both(model, {"x": x})
    for got, want in zip(ours, theirs):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_uint64_is_a_one_line_error_naming_type_and_node() -> None:
    """As ONNX's test_top_k_uint64: u64 is not an IR type, and the error says which type and where."""
    k = numpy_helper.from_array(np.array([2], np.int64), "k")
    node = helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="top")
    model = make_model([node], [helper.make_tensor_value_info("x", TensorProto.UINT64, [3, 4])],
                       [helper.make_tensor_value_info("values", TensorProto.UINT64, [3, 2]),
                        helper.make_tensor_value_info("indices", TensorProto.INT64, [3, 2])], 13, [k])
    with pytest.raises(OnnxImportError) as error:
        import_onnx(model)
    message = str(error.value)
    assert "\n" not in message and "UINT64" in message and "'x'" in message, message


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_ai_onnx_ml_binarizer_in_its_domain(dtype) -> None:
    """Rules are looked up per domain: ai.onnx.ml's Binarizer (x > threshold ? 1 : 0 in x's type), with a
    threshold that integers compare against as its floor."""
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=-0.5)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, [2, 3])],
                              [helper.make_tensor_value_info("y", elem, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)])
    x = np.array([[-2, -1, -0.5], [0, 0.25, 3]]).astype(dtype)
    (ours,) = compile_graph(import_onnx(model))(x)
    assert ours.dtype == dtype
    np.testing.assert_array_equal(ours, np.where(x > -0.5, 1, 0).astype(dtype))
