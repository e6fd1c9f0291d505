"""ONNX GatherND compiled and run against ONNX Runtime: batch_dims 0..2, partial and full index tuples
(slices and scalars), negative indices, float32 and int64 data. Exact: it only moves elements."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from cerebro.api import compile_graph
from cerebro.frontends.onnx import import_onnx


@pytest.mark.parametrize("data_shape, index_shape, batch_dims, elem", [
    ((4, 5, 6), (3, 2), 0, TensorProto.FLOAT),       # pairs: rows of the last dim
    ((4, 5, 6), (2, 3, 3), 0, TensorProto.INT64),    # full tuples: scalars
    ((3, 4, 5, 2), (3, 7, 1), 1, TensorProto.FLOAT),
    ((2, 3, 4, 5), (2, 3, 2), 2, TensorProto.INT64),
    ((2, 3, 4), (2, 0), 1, TensorProto.FLOAT),       # an empty tuple: the whole batch row
])
def test_gather_nd_matches_onnxruntime(data_shape: tuple, index_shape: tuple, batch_dims: int, elem: int) -> None:
    rng = np.random.default_rng(len(data_shape) * 10 + batch_dims)
    dtype = np.float32 if elem == TensorProto.FLOAT else np.int64
    data = rng.normal(0, 100, data_shape).astype(dtype)
    dims = np.array(data_shape[batch_dims:batch_dims + index_shape[-1]], np.int64)
    indices = rng.integers(-dims, dims, index_shape) if index_shape[-1] else np.zeros(index_shape, np.int64)
    node = helper.make_node("GatherND", ["data", "indices"], ["y"], batch_dims=batch_dims)
    inputs = [helper.make_tensor_value_info("data", elem, data_shape),
              helper.make_tensor_value_info("indices", TensorProto.INT64, index_shape)]
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    ours = compile_graph(import_onnx(model))(data, indices)
    ours = ours[0] if isinstance(ours, (list, tuple)) else ours
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"data": data, "indices": indices})[0]
    np.testing.assert_array_equal(np.asarray(ours), want)
