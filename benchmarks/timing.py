"""Time-bounded latency sampling: warm up, then time single calls until enough samples.

Backends are sampled in interleaved rounds (A B C A B C ...) so that load from other jobs on
a shared machine falls on all of them alike instead of on whichever ran during a busy spell.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Budget:
    """How long to sample one backend on one configuration.

    Sampling stops once both `min_repeats` calls and `min_seconds` are reached, or once
    `max_seconds` has passed with at least `floor_repeats` calls (slow models such as
    ResNet18 at batch 64 cannot reach 200 repeats in reasonable time). The budget is
    split evenly over `rounds` interleaved rounds; warmup happens in the first only.
    """

    warmup: int = 5
    min_repeats: int = 200
    min_seconds: float = 2.0
    max_seconds: float = 30.0
    floor_repeats: int = 5
    rounds: int = 4

    def per_round(self) -> Budget:
        return dataclasses.replace(
            self,
            min_repeats=math.ceil(self.min_repeats / self.rounds),
            min_seconds=self.min_seconds / self.rounds,
            max_seconds=self.max_seconds / self.rounds,
            floor_repeats=math.ceil(self.floor_repeats / self.rounds),
            rounds=1,
        )

    def to_dict(self) -> dict:
        return asdict(self)


FULL = Budget()
QUICK = Budget(warmup=2, min_repeats=20, min_seconds=0.25, max_seconds=3.0, floor_repeats=2, rounds=2)


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


def repeated(call: Callable[[], object], times: int) -> Callable[[], object]:
    """call itself, or a function making `times` calls of it in a row (one sample of a call too short to time)."""
    if times == 1:
        return call

    def calls() -> None:
        for _ in range(times):
            call()

    return calls


# Idle time before each backend's block: a thread pool spins for a while after its last call (ONNX Runtime
# 1.32's worker: 58-61 ms), so a block started at once ran beside that spin, and a multi-threaded backend
# measured the previous one's CPU use (squeezenet1_1 b1, two threads: the first fifth of Cerebro's calls
# 8.0-8.4 ms, the rest 4.9 ms). Every backend gets the same pause.
SETTLE_SECONDS = 0.1


def sample_interleaved(calls: dict[str, Callable[[], object]], budget: Budget) -> dict[str, np.ndarray]:
    """Latencies per backend, sampled in `budget.rounds` rounds that alternate between backends, each
    block after SETTLE_SECONDS of idle time."""
    share = budget.per_round()
    times: dict[str, list[np.ndarray]] = {name: [] for name in calls}
    for round_index in range(budget.rounds):
        for name, call in calls.items():
            time.sleep(SETTLE_SECONDS)
            round_budget = share if round_index == 0 else dataclasses.replace(share, warmup=0)
            times[name].append(sample(call, round_budget))
    return {name: np.concatenate(parts) for name, parts in times.items()}


def summarize(times: np.ndarray) -> dict:
    """Median and p90 in milliseconds, plus how many samples they come from."""
    return {
        "median_ms": float(np.median(times) * 1e3),
        "p90_ms": float(np.percentile(times, 90) * 1e3),
        "min_ms": float(times.min() * 1e3),
        "repeats": int(times.size),
    }
