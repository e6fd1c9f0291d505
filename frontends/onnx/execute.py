"""The one place that turns an IR graph into something callable: compiled native code."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import Graph


def compile_graph(graph: Graph) -> Callable[..., list[np.ndarray]]:
    """A function from input arrays (in graph.inputs order) to output arrays, compiled for the host."""
    from cerebro.compiler import build
    from cerebro.runtime import load

    return load(build(graph, target="host"))


def interpret_graph(graph: Graph) -> Callable[..., list[np.ndarray]]:
    """The IR interpreter (numpy), the oracle used while developing rules."""
    from cerebro.compiler.ir.interpret import run_graph

    return lambda *arrays: run_graph(graph, list(arrays))
