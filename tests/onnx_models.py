"""Small ONNX models built in code for the tests that feed them to ONNX Runtime's quantizers and to Cerebro."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp(layers: list[tuple[np.ndarray, np.ndarray]], name: str = "mlp") -> onnx.ModelProto:
    """x[1, K] -> MatMul + Add per (w, b) layer, Relu between layers -> y (opset 21)."""
    nodes, inits, x = [], [], "x"
    for k, (w, b) in enumerate(layers):
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
        nodes += [helper.make_node("MatMul", [x, f"w{k}"], [f"m{k}"]),
                  helper.make_node("Add", [f"m{k}", f"b{k}"], [f"a{k}"])]
        x = f"a{k}"
        if k < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"r{k}"]))
            x = f"r{k}"
    nodes[-1].output[0] = "y"
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, size])
          for n, size in (("x", layers[0][0].shape[0]), ("y", layers[-1][0].shape[1]))]
    return helper.make_model(helper.make_graph(nodes, name, io[:1], io[1:], inits),
                             opset_imports=[helper.make_opsetid("", 21)])
