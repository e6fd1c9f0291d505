"""quantize="int8" as the API layer runs it: calibration needs the float model's values on the user's
samples, which a compiled f32 build computes and the runtime runs (exposed_values), so this sits above the
compiler (compiler/quantize.py keeps the modes and checks, passes/int8_static.py the rewrite)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cerebro import runtime
from cerebro.compiler.driver import _private_copy, build
from cerebro.compiler.ir import Graph
from cerebro.compiler.passes.int8_calibrate import calibration_samples
from cerebro.compiler.passes.int8_static import quantize_static
from cerebro.compiler.quantize import CALIBRATION_METHODS, STATIC, calibration_digest, check_quantize


def exposed_values(graph: Graph, ids: set[int]) -> Callable[[Sequence[np.ndarray]], dict[int, np.ndarray]]:
    """A function from one sample to {value id: array} for the values in ids: graph inputs are the
    sample's own arrays, constants their data, the rest come from one compiled f32 build of graph with
    them as extra outputs (the build's code, not the interpreter's numpy, so a MiniLM sample takes
    milliseconds instead of ~8 s)."""
    probe = _private_copy(graph)
    computed = {v.id: v for node in probe.nodes for v in node.outputs if v.id in ids}
    exposed = list(computed.values())
    probe.set_outputs(exposed, [f"calibrate_{v.id}" for v in exposed])
    model = runtime.load(build(probe), threads=1) if exposed else None
    given = {v.id: i for i, v in enumerate(graph.inputs) if v.id in ids}
    constants = {v.id: v.data for node in graph.nodes for v in node.inputs if v.is_const and v.id in ids}

    def run(sample: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
        values = dict(zip(computed, model(*sample))) if model is not None else {}
        values.update({value_id: sample[i] for value_id, i in given.items()})
        return values | constants

    return run


def quantize_graph(graph: Any, mode: str | None, calibration: object, method: str | None = None
                   ) -> tuple[Any, str | None]:
    """(the graph build() compiles, the quantize= mode build() applies): int8 is applied here, since it
    needs the calibration inputs; other modes pass through. method: one of CALIBRATION_METHODS (None:
    the first)."""
    check_quantize(mode, calibration, method)
    if mode != STATIC:
        return graph, mode
    return (quantize_static(graph, calibration_samples(graph, calibration), exposed_values,
                            method or CALIBRATION_METHODS[0]), None)


def quantized_lowering(source: Callable[[], str], lower: Callable[[], Any], mode: str | None,
                       calibration: object, method: str | None = None
                       ) -> tuple[Callable[[], str], Callable[[], Any], str | None]:
    """cache.cached_lower's (source, lower, quantize) for a mode: for int8 the source also names the
    calibration inputs and method, and lower() returns the quantized graph."""
    check_quantize(mode, calibration, method)
    if mode != STATIC:
        return source, lower, mode
    method = method or CALIBRATION_METHODS[0]
    return (lambda: f"{source()}|{STATIC}:{method}:{calibration_digest(calibration)}",
            lambda: quantize_graph(lower(), mode, calibration, method)[0], None)
