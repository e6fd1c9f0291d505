"""Initializers as views of the model's bytes (frontends/onnx/raw_weights.py): the arrays onnx's
to_array gives, without a copy of the weights; what the walk does not handle is left to onnx."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cerebro.frontends.onnx import import_onnx
from cerebro.frontends.onnx.raw_weights import split_raw_weights

RNG = np.random.default_rng(3)
ARRAYS = {"f32": RNG.standard_normal((3, 4)).astype(np.float32), "i64": np.arange(-2, 3, dtype=np.int64),
          "f16": RNG.standard_normal((2, 2)).astype(np.float16), "flags": np.array([True, False, True]),
          "scalar": np.array(2.5, np.float32)}


def _model(tensors: list[TensorProto]) -> onnx.ModelProto:
    """Each initializer an output through Identity, beside y = x + 1."""
    nodes = [helper.make_node("Add", ["x", "f32"], ["y"])]
    nodes += [helper.make_node("Identity", [t.name], [f"out_{t.name}"]) for t in tensors]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])]
    outputs += [helper.make_tensor_value_info(f"out_{t.name}", t.data_type, list(t.dims)) for t in tensors]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])], outputs,
                              initializer=tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _outputs(data: bytes) -> dict[str, np.ndarray]:
    """Each initializer's constant, by name (a constant output is a copy node reading it)."""
    graph = import_onnx(data)
    return {name.removeprefix("out_"): value.producer.inputs[0].data
            for name, value in zip(graph.output_names, graph.outputs) if name != "y"}


def test_initializers_are_views_of_the_model_bytes() -> None:
    """Every plain initializer equals to_array's array, bit for bit, and lies in the caller's bytes
    (the old import copied each twice: parse, then raw_data)."""
    tensors = [numpy_helper.from_array(array, name) for name, array in ARRAYS.items()]
    data = _model(tensors).SerializeToString()
    got = _outputs(data)
    whole = np.frombuffer(data, np.uint8)
    for tensor in tensors:
        want = numpy_helper.to_array(tensor)
        array = got[tensor.name]
        assert array.dtype == want.dtype and array.shape == want.shape, tensor.name
        assert array.tobytes() == want.tobytes(), tensor.name
        assert np.shares_memory(array, whole), f"{tensor.name} was copied"


def test_what_the_walk_leaves_to_onnx() -> None:
    """Typed fields (float_data), a bfloat16 and a raw_data of the wrong size stay in the parsed model:
    onnx converts or refuses them as before; the plain one beside them is still a view."""
    typed = helper.make_tensor("typed", TensorProto.FLOAT, [2], [1.5, -2.0])
    plain = numpy_helper.from_array(ARRAYS["f32"], "f32")
    short = numpy_helper.from_array(np.ones(4, np.float32), "short")
    short.raw_data = short.raw_data[:-4]
    data = _model([plain, typed]).SerializeToString()
    stripped, arrays = split_raw_weights(data)
    assert sorted(arrays) == [0] and len(stripped) < len(data) - ARRAYS["f32"].nbytes + 8
    np.testing.assert_array_equal(_outputs(data)["typed"], [1.5, -2.0])
    bad = _model([plain, short]).SerializeToString()
    assert sorted(split_raw_weights(bad)[1]) == [0]
    with pytest.raises(ValueError):
        import_onnx(bad)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    length, size = bytearray(), len(payload)
    while size >= 0x80:
        length.append(size & 0x7F | 0x80)
        size >>= 7
    return bytes([number << 3 | 2]) + bytes(length) + bytes([size]) + payload


def test_packed_dims_and_junk() -> None:
    """dims as one packed field (a proto2 writer may pack repeated ints) give the same view; bytes that
    are no model go to onnx untouched."""
    tensor = numpy_helper.from_array(ARRAYS["f32"], "f32")
    dims = bytes(tensor.dims)  # 3, 4: one-byte varints
    del tensor.dims[:]
    initializer = _field(5, _field(1, dims) + tensor.SerializeToString())
    graph = helper.make_graph([], "g", [], []).SerializeToString() + initializer
    model = helper.make_model(helper.make_graph([], "g", [], []))
    model.ClearField("graph")
    stripped, arrays = split_raw_weights(model.SerializeToString() + _field(7, graph))
    np.testing.assert_array_equal(arrays[0], ARRAYS["f32"])
    parsed = onnx.load_from_string(stripped).graph.initializer[0]
    assert list(parsed.dims) == [3, 4] and not parsed.HasField("raw_data")
    junk = b"\x00not a protobuf\xff" * 10
    assert split_raw_weights(junk) == (junk, {})


def test_a_path_is_read_once_and_external_data_still_loads(tmp_path) -> None:
    """A file path (compile_onnx, `cerebroc compile`) takes the same route as bytes: initializers are
    read-only views of the file's bytes, not copies; load_model (the ONNX backend's prepare) still returns
    every initializer; a model saved with external data loads its tensors from beside the file as onnx.load
    does; garbage is one OnnxImportError naming the file."""
    from cerebro.frontends.onnx.importer import load_model, read_model
    from cerebro.frontends.onnx.table import OnnxImportError

    model = _model([numpy_helper.from_array(ARRAYS["f32"], "f32")])
    onnx.save(model, tmp_path / "inline.onnx")
    read, arrays = read_model(tmp_path / "inline.onnx")
    assert list(arrays) == [0] and not arrays[0].flags.writeable
    np.testing.assert_array_equal(arrays[0], ARRAYS["f32"])
    assert not read.graph.initializer[0].raw_data  # left out of the parse: the view is the only copy

    onnx.save(model, tmp_path / "external.onnx", save_as_external_data=True, location="weights.bin",
              size_threshold=0)
    graph = import_onnx(tmp_path / "external.onnx")
    constant = dict(zip(graph.output_names, graph.outputs))["out_f32"].producer.inputs[0].data
    np.testing.assert_array_equal(constant, ARRAYS["f32"])

    for source in (tmp_path / "inline.onnx", (tmp_path / "inline.onnx").read_bytes()):  # the backend's loader
        whole = load_model(source)  # keeps every initializer (no views to carry them)
        np.testing.assert_array_equal(numpy_helper.to_array(whole.graph.initializer[0]), ARRAYS["f32"])

    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07junk\xff\xff")
    with pytest.raises(OnnxImportError, match="bad.onnx' is not a readable ONNX model"):
        import_onnx(tmp_path / "bad.onnx")
