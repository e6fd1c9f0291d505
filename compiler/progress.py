"""Progress of a compile, reported to whoever asked: the compiler marks its phases with `phase(...)`,
and a caller (the CLI) that wants to show or time them installs a Reporter with `reporting(...)`.
A contextvar carries the reporter, so no compiler function takes a progress argument and a compile
without a reporter costs one lookup per phase."""

from __future__ import annotations

import contextlib
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
