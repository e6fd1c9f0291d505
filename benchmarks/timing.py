"""Time-bounded latency sampling: warm up, then time single calls until enough samples."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long to sample one backend on one configuration.

    Sampling stops once both `min_repeats` calls and `min_seconds` are reached, or once
    `max_seconds` has passed with at least `floor_repeats` calls (slow models such as
    ResNet18 at batch 64 cannot reach 200 repeats in reasonable time).
    """

    warmup: int = 5
    min_repeats: int = 200
    min_seconds: float = 2.0
    max_seconds: float = 30.0
    floor_repeats: int = 5

    def to_dict(self) -> dict:
        return asdict(self)


FULL = Budget()
QUICK = Budget(warmup=2, min_repeats=20, min_seconds=0.25, max_seconds=3.0, floor_repeats=3)


def sample(call: Callable[[], object], budget: Budget) -> np.ndarray:
    """Latencies in seconds of successive calls (after warmup)."""
    warm_start = time.perf_counter()
    for _ in range(budget.warmup):
        call()
        if time.perf_counter() - warm_start > budget.max_seconds / 4:
            break
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        call()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        elapsed = t1 - start
        enough = len(times) >= budget.min_repeats and elapsed >= budget.min_seconds
        capped = elapsed >= budget.max_seconds and len(times) >= budget.floor_repeats
        if enough or capped:
            return np.asarray(times)


def summarize(times: np.ndarray) -> dict:
    """Median and p90 in milliseconds, plus how many samples they come from."""
    return {
        "median_ms": float(np.median(times) * 1e3),
        "p90_ms": float(np.percentile(times, 90) * 1e3),
        "min_ms": float(times.min() * 1e3),
        "repeats": int(times.size),
    }
