"""A stack of dense layers as an ONNX model, given its weights: the benchmarks' and the tests' one builder."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def dense_stack(layers: list[tuple[np.ndarray, np.ndarray]], *, opset: int, graph: str,
                output: str = "y") -> onnx.ModelProto:
    """x[1, K] -> MatMul + Add per (w, b) layer, Relu between layers -> output[1, N]."""
    nodes, inits, x = [], [], "x"
    for k, (w, b) in enumerate(layers):
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
        nodes += [helper.make_node("MatMul", [x, f"w{k}"], [f"m{k}"]),
                  helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"])]
        x = f"a{k}"
        if k < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"r{k}"]))
            x = f"r{k}"
    nodes[-1].output[0] = output
    io = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, size])
          for name, size in (("x", layers[0][0].shape[0]), (output, layers[-1][0].shape[1]))]
    return helper.make_model(helper.make_graph(nodes, graph, io[:1], io[1:], inits),
                             opset_imports=[helper.make_opsetid("", opset)])
