"""An onnx.backend-style backend (prepare / run_model / supports_device), so that
onnx.backend.test.BackendTest can drive Cerebro through the ONNX node tests. It lives in the API
layer, not in frontends/onnx, because it compiles: the frontend only builds the IR graph.

A model compiles on first run for the shapes it is given. When a shape depends
on an input's value (Resize's scales, Range's limit, OneHot's depth), the inputs
it is computed from are fixed to the given values and the model is specialised,
the way a static-shape compiler treats static arguments; new values recompile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx

from cerebro.api import compile_graph
from cerebro.compiler.ir import Graph
from cerebro.frontends.onnx.importer import Importer, load_model
from cerebro.frontends.onnx.table import DynamicShapeError


class CerebroRep:
    """A prepared model: run(inputs) -> list of numpy outputs."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        initializers = {i.name for i in model.graph.initializer}
        self.input_names = [i.name for i in model.graph.input if i.name not in initializers]
        self.cache: dict[object, tuple[list[str], Callable[..., list[np.ndarray]]]] = {}
        self.frozen: list[str] | None = None

    def _key(self, arrays: dict[str, np.ndarray]) -> tuple:
        shapes = tuple((n, a.shape, a.dtype.str) for n, a in arrays.items())
        return shapes + tuple((n, arrays[n].tobytes()) for n in self.frozen or ())

    def _specialise(self, arrays: dict[str, np.ndarray]) -> list[str]:
        """The inputs whose values some shape depends on (usually none)."""
        frozen: list[str] = []
        while True:
            try:
                self._import(arrays, frozen)
                return frozen
            except DynamicShapeError as e:
                needed = [n for n in e.input_names() if n not in frozen]
                if not needed:
                    raise
                frozen += needed

    def _import(self, arrays: dict[str, np.ndarray], frozen: list[str]) -> Graph:
        shapes = {n: a.shape for n, a in arrays.items() if n not in frozen}
        return Importer(self.model, shapes, {n: arrays[n] for n in frozen}).run()

    def run(self, inputs: object, **kwargs: object) -> list[np.ndarray]:
        if isinstance(inputs, dict):
            given = [np.asarray(inputs[n]) for n in self.input_names]
        else:
            given = [np.asarray(x) for x in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
        if len(given) != len(self.input_names):
            raise ValueError(f"model takes {len(self.input_names)} inputs {self.input_names}, got {len(given)}")
        arrays = dict(zip(self.input_names, given))
        if self.frozen is None:
            self.frozen = self._specialise(arrays)
        key = self._key(arrays)
        if key not in self.cache:
            graph = self._import(arrays, self.frozen)
            self.cache[key] = ([v.name for v in graph.inputs], compile_graph(graph))
        names, fn = self.cache[key]
        return list(fn(*[arrays[n] for n in names]))


def prepare(model: onnx.ModelProto | bytes | str, device: str = "CPU", **kwargs: object) -> CerebroRep:
    if not supports_device(device):
        raise ValueError(f"Cerebro runs on the CPU, not {device!r}")
    return CerebroRep(load_model(model))


def run_model(model: onnx.ModelProto, inputs: Sequence[np.ndarray], device: str = "CPU",
              **kwargs: object) -> list[np.ndarray]:
    return prepare(model, device).run(inputs)


def supports_device(device: str) -> bool:
    return device.upper() == "CPU"
