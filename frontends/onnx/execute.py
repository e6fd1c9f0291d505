"""The one place that turns an IR graph into something callable (compiled code or the interpreter)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import Graph


def compile_graph(graph: Graph) -> Callable[..., list[np.ndarray]]:
    """A function from input arrays (in graph.inputs order) to output arrays."""
    from cerebro.compiler.ir.interpret import run_graph

    return lambda *arrays: run_graph(graph, list(arrays))
