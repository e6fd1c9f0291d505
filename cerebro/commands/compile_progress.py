"""What `cerebroc compile` shows while it works: the compiler's phases (compiler/progress.py) as rich
progress rows on a terminal once a compile has taken about a second, and their times with --timings."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from cerebro.compiler.progress import Reporter

# CEREBRO_PROGRESS=always shows the rows at once, terminal or not (tests, CI logs); never hides them.
SHOW_AFTER_S = 1.0


class CompileDisplay(Reporter):
    """Rows of phases (spinner, bar, elapsed) on @stream, started SHOW_AFTER_S into the compile so a
    fast compile prints nothing; records each phase's seconds for `timings_text`."""

    def __init__(self, show: bool, stream: TextIO | None = None) -> None:
        stream = stream or sys.stderr
        mode = os.environ.get("CEREBRO_PROGRESS", "auto")
        self.show = show and mode != "never" and (mode == "always" or stream.isatty())
        self.delay = 0.0 if mode == "always" else SHOW_AFTER_S
        self.seconds: dict[str, float] = {}
        self._begun: dict[str, float] = {}
        self._tasks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._live = False
        self._timer: threading.Timer | None = None
        self._progress = Progress(SpinnerColumn(finished_text="[green]done"), TextColumn("{task.description}"),
                                  BarColumn(), TimeElapsedColumn(), transient=True,
                                  console=Console(file=stream, force_terminal=self.show or None))

    def __enter__(self) -> CompileDisplay:
        if self.show and self.delay <= 0:
            self._go_live()
        elif self.show:
            self._timer = threading.Timer(self.delay, self._go_live)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            if self._live:
                self._progress.stop()
            self._live = False
            self.show = False

    def _go_live(self) -> None:
        with self._lock:
            if self.show and not self._live:
                self._progress.start()
                self._live = True

    def start(self, name: str) -> None:
        self._begun[name] = time.perf_counter()
        with self._lock:
            self._tasks[name] = self._progress.add_task(name, total=None)  # a pulsing bar while it runs

    def end(self, name: str) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - self._begun.pop(name)
        with self._lock:
            self._progress.update(self._tasks.pop(name), total=1, completed=1)

    def timings_text(self) -> str:
        """One line per phase, in the order they ran, and the total."""
        width = max(map(len, self.seconds), default=5)
        lines = [f"  {name:<{width}}  {seconds:8.3f} s" for name, seconds in self.seconds.items()]
        lines.append(f"  {'total':<{width}}  {sum(self.seconds.values()):8.3f} s")
        return "timings:\n" + "\n".join(lines)
