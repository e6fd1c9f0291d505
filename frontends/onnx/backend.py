"""An onnx.backend-style backend (prepare / run_model / supports_device), so that
onnx.backend.test.BackendTest can drive Cerebro through the ONNX node tests.

A model compiles on first run for the shapes it is given (the node tests have
static shapes, so that is once per model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx

from cerebro.compiler.ir import Graph
from cerebro.frontends.onnx.execute import compile_graph
from cerebro.frontends.onnx.importer import Importer, load_model


class CerebroRep:
    """A prepared model: run(inputs) -> list of numpy outputs."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        initializers = {i.name for i in model.graph.initializer}
        self.input_names = [i.name for i in model.graph.input if i.name not in initializers]
        self.graph: Graph | None = None
        self.fn: Callable[..., list[np.ndarray]] | None = None
        self.shapes: dict[str, tuple[int, ...]] = {}

    def compile(self, shapes: dict[str, tuple[int, ...]]) -> None:
        self.graph = Importer(self.model, shapes).run()
        self.fn = compile_graph(self.graph)
        self.shapes = shapes

    def run(self, inputs: object, **kwargs: object) -> list[np.ndarray]:
        if isinstance(inputs, dict):
            arrays = [np.asarray(inputs[n]) for n in self.input_names]
        else:
            arrays = [np.asarray(x) for x in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        if len(arrays) != len(self.input_names):
            raise ValueError(f"model takes {len(self.input_names)} inputs {self.input_names}, got {len(arrays)}")
        shapes = {n: tuple(a.shape) for n, a in zip(self.input_names, arrays)}
        if self.fn is None or shapes != self.shapes:
            self.compile(shapes)
        return list(self.fn(*arrays))


def prepare(model: onnx.ModelProto | bytes | str, device: str = "CPU", **kwargs: object) -> CerebroRep:
    if not supports_device(device):
        raise ValueError(f"Cerebro runs on the CPU, not {device!r}")
    return CerebroRep(load_model(model))


def run_model(model: onnx.ModelProto, inputs: Sequence[np.ndarray], device: str = "CPU",
              **kwargs: object) -> list[np.ndarray]:
    return prepare(model, device).run(inputs)


def supports_device(device: str) -> bool:
    return device.upper() == "CPU"
