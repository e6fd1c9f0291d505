"""Small ONNX models built in code for the tests that feed them to ONNX Runtime's quantizers and to Cerebro."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # benchmarks/ is a top-level folder, not part of the installed package

from benchmarks.onnx_dense import dense_stack  # noqa: E402


def mlp(layers: list[tuple[np.ndarray, np.ndarray]], name: str = "mlp") -> onnx.ModelProto:
    """x[1, K] -> MatMul + Add per (w, b) layer, Relu between layers -> y (opset 21)."""
    return dense_stack(layers, opset=21, graph=name, output="y")


class NchwNet:
    """An ONNX graph under construction (opset 17): NCHW input x, weights as initializers drawn from rng."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, ...] = (1, 3, 10, 10)) -> None:
        self.rng = rng
        self.shape = shape
        self.nodes: list = []
        self.inits: list = []

    def op(self, kind: str, inputs: list[str], **attrs: object) -> str:
        name = f"v{len(self.nodes)}"
        self.nodes.append(helper.make_node(kind, inputs, [name], **attrs))
        return name

    def const(self, array: np.ndarray) -> str:
        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def weights(self, *shape: int) -> str:
        return self.const((self.rng.standard_normal(shape) * 0.3).astype(np.float32))

    def conv(self, x: str, cin: int, cout: int, k: int = 3, **attrs: object) -> str:
        w, b = self.weights(cout, cin // attrs.get("group", 1), k, k), self.weights(cout)
        return self.op("Conv", [x, w, b], kernel_shape=[k, k], pads=[k // 2] * 4, **attrs)

    def batch_norm(self, x: str, channels: int) -> str:
        """Inference batch norm with statistics that are not the identity (trained-looking)."""
        stats = [self.rng.uniform(0.5, 1.5, channels), self.rng.standard_normal(channels) * 0.2,
                 self.rng.standard_normal(channels) * 0.5, self.rng.uniform(0.2, 2.0, channels)]
        return self.op("BatchNormalization", [x, *(self.const(s.astype(np.float32)) for s in stats)])

    def model(self, *outputs: str) -> bytes:
        graph = helper.make_graph(self.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, self.shape)],
                                  [helper.make_tensor_value_info(y, TensorProto.FLOAT, None) for y in outputs],
                                  initializer=self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
