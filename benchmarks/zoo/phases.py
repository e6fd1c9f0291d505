"""Where a Cerebro compile's time goes: the compiler's phases (compiler/progress.py) timed, and grouped
into the columns of the zoo report."""

from __future__ import annotations

import time

from cerebro.compiler.progress import Reporter

# compiler phase (compiler/driver.py, plus the zoo worker's "import" and "load") -> report column
GROUPS = {
    "import": "import",
    "verify": "passes",
    "fold constants": "passes",
    "optimise": "passes",
    "stages and memory plan": "passes",
    "lower to LLVM IR": "emit IR",
    "LLVM optimise": "LLVM",
    "LLVM parse": "LLVM",  # this and the next: the names before commit 2ca7c72, in results recorded then
    "LLVM optimise (O3)": "LLVM",
    "LLVM machine code": "LLVM",
    "write .cbx": "write+load",
    "load": "write+load",
}
COLUMNS = ("import", "passes", "emit IR", "LLVM", "write+load")


class PhaseClock(Reporter):
    """Seconds per phase name, summed over repeats (verify runs twice)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._begun: dict[str, float] = {}

    def start(self, name: str) -> None:
        self._begun[name] = time.perf_counter()

    def end(self, name: str) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - self._begun.pop(name)


def grouped(phases: dict[str, float]) -> dict[str, float]:
    """The report's columns from a compile's phase seconds; a phase not in GROUPS counts as 'other'."""
    columns: dict[str, float] = {}
    for name, seconds in phases.items():
        column = GROUPS.get(name, "other")
        columns[column] = columns.get(column, 0.0) + seconds
    return columns
