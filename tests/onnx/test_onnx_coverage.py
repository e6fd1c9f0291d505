"""What real ONNX exports hit (issue 13): -1 dims, constant folding with Cerebro's own semantics,
an If whose untaken branch cannot compile (silero-vad), constants from the API and the CLI.
Compiled results are compared with ONNX Runtime (float32: rtol 1e-5, atol 1e-5; integers exact)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cerebro.api import compile_graph, compile_onnx, load
from cerebro.cli import main
from cerebro.frontends.onnx import DynamicShapeError, OnnxImportError, import_onnx

RNG = np.random.default_rng(13)
HIDDEN = 16


def model_of(nodes, inputs, outputs, initializers=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def onnxruntime(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def cli(capsys, *args: object) -> tuple[int, str]:
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


def test_minus_one_dims_are_bound_by_shapes() -> None:
    """PaddleOCR writes dim_value -1 (not a dim_param) for the batch; shapes= binds it like a symbolic dim."""
    model = model_of([helper.make_node("Relu", ["x"], ["y"])],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 3, 4])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 3, 4])])
    with pytest.raises(OnnxImportError, match=r"input 'x' has an unknown dimension at axis 0; bind it with "
                                              r"shapes=\{'x': \(N, 3, 4\)\}"):
        import_onnx(model)
    with pytest.raises(OnnxImportError, match="has dim 3 at axis 1, but shapes gives 5"):
        import_onnx(model, shapes={"x": (2, 5, 4)})
    graph = import_onnx(model, shapes={"x": (2, 3, 4)})
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(compile_graph(graph)(x)[0], onnxruntime(model, {"x": x})[0])


def test_gather_elements_with_short_indices_folds() -> None:
    """HF BERT without token_type_ids: GatherElements of a constant (1, 512) buffer by constant (1, 128)
    indices, which onnx's ReferenceEvaluator cannot evaluate ("cannot reshape array of size 1");
    Cerebro folds it with its own rule and interpreter."""
    buffer = numpy_helper.from_array(np.arange(512, dtype=np.int64).reshape(1, 512) * 3 % 7, "buffer")
    positions = numpy_helper.from_array(np.arange(128, dtype=np.int64)[::-1].reshape(1, 128).copy(), "positions")
    nodes = [helper.make_node("GatherElements", ["buffer", "positions"], ["types"], axis=1, name="token_types"),
             helper.make_node("Add", ["ids", "types"], ["y"])]
    model = model_of(nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 128])],
                     [helper.make_tensor_value_info("y", TensorProto.INT64, [1, 128])], [buffer, positions])
    graph = import_onnx(model)
    assert [n.op for n in graph.nodes] == ["add"]  # the gather folded away
    ids = RNG.integers(0, 1000, size=(1, 128))
    np.testing.assert_array_equal(compile_graph(graph)(ids)[0], onnxruntime(model, {"ids": ids})[0])


def test_a_failed_fold_is_not_fatal(monkeypatch) -> None:
    """An op without a Cerebro rule folds through onnx's ReferenceEvaluator; when that fails, the node
    is imported from its function body instead (here the evaluator is made to fail)."""
    from onnx.reference import ReferenceEvaluator

    def broken(*args, **kwargs):
        raise RuntimeError("evaluator bug")

    monkeypatch.setattr(ReferenceEvaluator, "run", broken)
    c = numpy_helper.from_array(RNG.normal(size=(2, 3, 4, 4)).astype(np.float32), "c")
    nodes = [helper.make_node("MeanVarianceNormalization", ["c"], ["k"]), helper.make_node("Add", ["x", "k"], ["y"])]
    model = model_of(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 4])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4, 4])], [c])
    x = RNG.normal(size=(2, 3, 4, 4)).astype(np.float32)
    ours = compile_graph(import_onnx(model))(x)[0]
    np.testing.assert_allclose(ours, onnxruntime(model, {"x": x})[0], rtol=1e-5, atol=1e-5)


def _lstm_branch(name: str, seq_shape: tuple[int, ...], width: int) -> onnx.GraphProto:
    """x (1, 512) reshaped to a sequence and run through an LSTM; its last hidden state (1, HIDDEN)."""
    shape = numpy_helper.from_array(np.array(seq_shape, np.int64), f"{name}_shape")
    w = numpy_helper.from_array(RNG.normal(size=(1, 4 * HIDDEN, width)).astype(np.float32) * 0.3, f"{name}_w")
    r = numpy_helper.from_array(RNG.normal(size=(1, 4 * HIDDEN, HIDDEN)).astype(np.float32) * 0.3, f"{name}_r")
    nodes = [helper.make_node("Reshape", ["x", f"{name}_shape"], [f"{name}_seq"]),
             helper.make_node("LSTM", [f"{name}_seq", f"{name}_w", f"{name}_r"], ["", f"{name}_h"],
                              hidden_size=HIDDEN, name=f"{name}_lstm"),
             helper.make_node("Flatten", [f"{name}_h"], [f"{name}_y"])]
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)],
                             initializer=[shape, w, r])


def vad_model(slow_seq: tuple[int, ...], slow_width: int) -> onnx.ModelProto:
    """silero-vad's shape: If(sr == 16000) picks a 16 kHz LSTM (8 steps of 64 samples) or an 8 kHz one."""
    nodes = [helper.make_node("Equal", ["sr", "rate"], ["is_16k"]),
             helper.make_node("If", ["is_16k"], ["y"], name="pick_rate",
                              then_branch=_lstm_branch("rate16k", (8, 1, 64), 64),
                              else_branch=_lstm_branch("rate8k", slow_seq, slow_width))]
    return model_of(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512]),
                            helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                    [numpy_helper.from_array(np.array(16000, np.int64), "rate")])


@pytest.fixture(scope="module")
def vad_onnx(tmp_path_factory) -> tuple:
    """The 8 kHz branch's LSTM weights expect 48-wide steps, so it cannot compile for a 512-sample x
    (ONNX Runtime fails it too, when taken); the path and the model."""
    model = vad_model((8, 1, 64), 48)
    path = tmp_path_factory.mktemp("vad") / "vad.onnx"
    onnx.save(model, path)
    return path, model


def test_if_with_an_invalid_untaken_branch_names_the_if_and_its_input(vad_onnx) -> None:
    path, _ = vad_onnx
    with pytest.raises(DynamicShapeError, match=r"node 'pick_rate' \(If\): its else_branch cannot be compiled "
                       r"\(node 'rate8k_lstm' \(LSTM\).*specialise the model with constants=\{'sr': 16000\}$") as info:
        import_onnx(path)
    assert info.value.input_names() == ["sr"]
    with pytest.raises(DynamicShapeError, match=r"constants=\{'sr': 16000\}"):
        compile_onnx(path, cache=False)


def test_constants_specialise_the_if_from_the_api_and_the_cli(vad_onnx, capsys, tmp_path) -> None:
    path, model = vad_onnx
    x = RNG.normal(size=(1, 512)).astype(np.float32)
    (ref,) = onnxruntime(model, {"x": x, "sr": np.array(16000)})
    api = load(compile_onnx(path, constants={"sr": 16000}, cache=False))
    assert [t.name for t in api.signature.inputs] == ["x"]
    np.testing.assert_allclose(api(x), ref, rtol=1e-5, atol=1e-5)

    status, err = cli(capsys, "compile", path, "-q", "-o", tmp_path / "vad.cbx")
    assert status == 1 and "specialise the model with --const sr=16000" in err and "constants=" not in err
    assert len(err.strip().splitlines()) == 1
    status, err = cli(capsys, "compile", path, "--const", "sr=16000", "-q", "-o", tmp_path / "vad.cbx")
    assert status == 0, err
    np.testing.assert_allclose(load(tmp_path / "vad.cbx")(x), ref, rtol=1e-5, atol=1e-5)
    status, err = cli(capsys, "compile", path, "--const", "rate=16000", "-q", "-o", tmp_path / "vad.cbx")
    assert status == 1 and "constants given for unknown input 'rate'" in err
    with pytest.raises(OnnxImportError, match=r"constants\['sr'\] = 1.5 is not a int64 value"):
        import_onnx(path, constants={"sr": 1.5})


def test_runtime_if_with_two_valid_branches_compiles_both_and_selects() -> None:
    """Both branches compile (the 8 kHz one as 16 steps of 32 samples): one .cbx serves both rates."""
    model = vad_model((16, 1, 32), 32)
    compiled = load(compile_onnx(model, cache=False))
    assert [t.name for t in compiled.signature.inputs] == ["x", "sr"]
    x = RNG.normal(size=(1, 512)).astype(np.float32)
    outputs = []
    for rate in (16000, 8000):
        (ref,) = onnxruntime(model, {"x": x, "sr": np.array(rate)})
        ours = compiled(x, np.array(rate))
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
        outputs.append(ours)
    assert not np.allclose(*outputs)  # the two branches really differ


def test_cli_binds_a_dim_param_by_name(capsys, tmp_path) -> None:
    """`--shape batch=1` binds the dim_param 'batch' (it once failed with "shapes['batch'] must be a
    non-negative int, got (1,)")."""
    model = model_of([helper.make_node("Relu", ["x"], ["y"])],
                     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
    onnx.save(model, tmp_path / "m.onnx")
    status, err = cli(capsys, "compile", tmp_path / "m.onnx", "--shape", "batch=1", "-q", "-o", tmp_path / "m.cbx")
    assert status == 0, err
    status = main(["inspect", str(tmp_path / "m.cbx"), "--json"])
    assert status == 0 and json.loads(capsys.readouterr().out)["inputs"][0]["shape"] == [1, 4]


def test_binary_string_attributes_do_not_break_the_import() -> None:
    """tf2onnx copies TensorFlow's serialized config_proto (not UTF-8) into nodes it cannot convert;
    the error must name the node and its op, not be a UnicodeDecodeError."""
    node = helper.make_node("StatefulPartitionedCall", ["x"], ["y"], name="conv/call",
                            config_proto=b"\n\x07\n\x03CPU\x10\x01\x82\x01\x00")
    model = model_of([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    with pytest.raises(OnnxImportError, match=r"^node 'conv/call' \(StatefulPartitionedCall\): op type "
                       r"'StatefulPartitionedCall' \(domain 'ai.onnx', opset 17\) is not supported"):
        import_onnx(model)
