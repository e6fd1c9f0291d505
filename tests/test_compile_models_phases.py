"""benchmarks.compile_models' table of where a cold compile went: its columns cover every phase the
driver reports (so nothing is counted as trace that was compiling) and add up to the total."""

from __future__ import annotations

import numpy as np

from benchmarks.compile_models import PHASES, _phase_row
from cerebro.compiler import build
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.progress import timed


def test_every_phase_of_a_build_has_a_column() -> None:
    graph = Graph("phases")
    x = graph.add_input((4, 16), DType.f32, "x")
    graph.set_outputs([graph.add1("max", graph.add1("matmul", x, graph.const(np.ones((16, 8), np.float32))),
                                  graph.const(np.zeros((1, 1), np.float32)))])
    with timed() as times:
        build(graph)
    listed = {phase for phases in PHASES.values() for phase in phases}
    assert set(times.cpu_seconds) <= listed, set(times.cpu_seconds) - listed


def test_the_row_adds_up_to_the_total() -> None:
    phases = {"verify": 0.01, "optimise": 0.09, "lower to LLVM IR": 0.25, "LLVM optimise": 1.0,
              "LLVM machine code": 0.5, "write .cbx": 0.05}
    cells = [float(cell) for cell in _phase_row("m", {"min": 2.0, "phases": phases}).strip("| ").split(" | ")[1:]]
    assert cells == [0.1, 0.1, 0.25, 1.0, 0.5, 0.05, 2.0]
    assert abs(sum(cells[:-1]) - cells[-1]) < 1e-9
