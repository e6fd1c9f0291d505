"""Progress of a compile, reported to whoever asked: the compiler marks its phases with `phase(...)`,
and a caller (the CLI) that wants to show or time them installs a Reporter with `reporting(...)`.
A contextvar carries the reporter, so no compiler function takes a progress argument and a compile
without a reporter costs one lookup per phase."""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator
from contextvars import ContextVar


class Reporter:
    """Receives phase events; the base class ignores them (subclasses show or time them)."""

    def start(self, name: str) -> None:
        """Phase @name begins."""

    def end(self, name: str) -> None:
        """Phase @name is done."""


_REPORTER: ContextVar[Reporter | None] = ContextVar("cerebro_progress", default=None)


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Within this block, compiler phases are reported to @reporter."""
    token = _REPORTER.set(reporter)
    try:
        yield reporter
    finally:
        _REPORTER.reset(token)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Marks the block as compile phase @name for the current reporter, if any."""
    reporter = _REPORTER.get()
    if reporter is None:
        yield
        return
    reporter.start(name)
    yield
    reporter.end(name)


def cpu_seconds() -> float:
    """CPU time of this process and of the child processes it has waited for (user + system)."""
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


class PhaseTimes(Reporter):
    """Wall and CPU seconds per phase name (a phase run twice adds up), and of the whole timed block;
    passes every event on to the reporter installed before it (the CLI's display), if any. CPU time
    is the steadier number on a shared machine."""

    def __init__(self, outer: Reporter | None = None) -> None:
        self.outer = outer
        self.wall_seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.total_wall_seconds = 0.0
        self.total_cpu_seconds = 0.0
        self._begun: dict[str, tuple[float, float]] = {}

    def start(self, name: str) -> None:
        self._begun[name] = (time.perf_counter(), cpu_seconds())
        if self.outer is not None:
            self.outer.start(name)

    def end(self, name: str) -> None:
        wall, cpu = self._begun.pop(name)
        self.wall_seconds[name] = self.wall_seconds.get(name, 0.0) + time.perf_counter() - wall
        self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + cpu_seconds() - cpu
        if self.outer is not None:
            self.outer.end(name)


@contextlib.contextmanager
def timed() -> Iterator[PhaseTimes]:
    """Within this block, compiler phases are timed (see PhaseTimes): `with timed() as t: build(g)`,
    then t.cpu_seconds["LLVM optimise"]."""
    times = PhaseTimes(_REPORTER.get())
    wall, cpu = time.perf_counter(), cpu_seconds()
    with reporting(times):
        try:
            yield times
        finally:
            times.total_wall_seconds = time.perf_counter() - wall
            times.total_cpu_seconds = cpu_seconds() - cpu
