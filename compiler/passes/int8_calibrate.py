"""Calibration for quantize="int8": the user's sample inputs, and the ranges the float model's values
take on them (seen through an Expose function: cerebro/calibration.exposed_values runs a compiled f32 build),
chosen by a method (minmax, percentile, mse), with how coarse each range's u8 grid is for the value
(Calibration.too_noisy: the matmuls reading such a value stay float).

Samples come as a list (one entry per sample: an array for a one-input model, else a sequence of arrays
in graph input order) or as a .npz file (one array per graph input, by name or in order as arr_0, ...,
each either the input's shape, one sample, or with a leading axis of samples).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from cerebro.compiler.ir import Graph, IRError


def calibration_samples(graph: Graph, calibration: object) -> list[list[np.ndarray]]:
    """The samples in graph input order, each array of its input's shape and dtype; a one-line IRError
    for anything else."""
    if calibration is None:
        raise IRError('quantize="int8" needs calibration inputs (calibration=[x1, ...] or a .npz file)')
    if isinstance(calibration, (str, os.PathLike)):
        return _npz_samples(graph, calibration)
    samples = [[entry] if len(graph.inputs) == 1 and not isinstance(entry, (list, tuple)) else list(entry)
               for entry in calibration]
    if not samples:
        raise IRError("calibration has no samples")
    return [_checked(graph, sample, f"calibration sample {i}") for i, sample in enumerate(samples)]


def _npz_samples(graph: Graph, path: str | os.PathLike) -> list[list[np.ndarray]]:
    try:
        with np.load(path) as archive:
            stored = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise IRError(f"{path}: not a readable .npz calibration file ({error})") from None
    columns = []
    for i, value in enumerate(graph.inputs):
        array = stored.get(value.name, stored.get(f"arr_{i}"))
        if array is None:
            raise IRError(f"{path}: no array for input {value.name!r} (by name or as arr_{i}); "
                          f"it holds {sorted(stored)}")
        columns.append(array[None] if array.shape == value.shape else array)
    counts = {len(column) for column in columns}
    if len(counts) != 1 or not counts.pop():
        raise IRError(f"{path}: the inputs' sample counts differ or are zero: {[len(c) for c in columns]}")
    return [_checked(graph, list(sample), f"{path} sample {i}") for i, sample in enumerate(zip(*columns))]


def _checked(graph: Graph, sample: Sequence[object], what: str) -> list[np.ndarray]:
    if len(sample) != len(graph.inputs):
        raise IRError(f"{what}: {len(sample)} arrays for {len(graph.inputs)} inputs")
    arrays = []
    for value, array in zip(graph.inputs, sample):
        array = np.asarray(array)
        if array.shape != value.shape:
            raise IRError(f"{what}: input {value.name!r} has shape {array.shape}, expected {value.shape}")
        arrays.append(np.ascontiguousarray(array, value.dtype.numpy))
    return arrays


# (graph, value ids) -> a function from one sample to {value id: array}: how the float model's values are
# seen (cerebro/calibration.exposed_values runs a compiled f32 build; the compiler cannot load one itself)
Expose = Callable[[Graph, set[int]], Callable[[Sequence[np.ndarray]], dict[int, np.ndarray]]]


MIN_SNR = 200.0  # a matmul whose input's u8 grid gives a lower signal-to-noise ratio stays float (too_noisy)


class _Seen:
    """What one value's elements were over the samples: extremes, sum of squares, count."""

    def __init__(self) -> None:
        self.low, self.high, self.squares, self.count = math.inf, -math.inf, 0.0, 0

    def add(self, array: np.ndarray) -> None:
        if array.size:
            self.low, self.high = min(self.low, float(array.min())), max(self.high, float(array.max()))
            flat = array.reshape(-1).astype(np.float64)
            self.squares, self.count = self.squares + float(flat @ flat), self.count + flat.size


@dataclass(frozen=True)
class Calibration:
    """Per value id: the range its u8 grid spans, and that grid's signal-to-noise ratio (the mean square
    of the value over the rounding noise step^2 / 12 of a grid of 255 steps across the range)."""

    ranges: dict[int, tuple[float, float]]
    snr: dict[int, float]

    def too_noisy(self, value_id: int) -> bool:
        """Whether a matmul reading this value loses too much to its u8 grid (MIN_SNR): the first three of
        MiniLM's FFN down-projections read GELU outputs spanning [-0.17, 20] with a mean square of ~0.05
        (SNR 57-94 at seq 128; the other 33 dense layers' inputs 215-3654), and clipping those outliers
        (percentile, mse) costs more cosine than their coarse grid. Measured on MiniLM's embeddings, mean
        cosine with f32 on 40 random token sequences: seq 128, every layer int8 0.9885, SNR >= 100 or 200
        (3 float) 0.9936, >= 300 (8 float) 0.9965; seq 32, >= 100 0.9921, >= 200 0.9943, >= 300 0.9962."""
        return self.snr[value_id] < MIN_SNR


def calibrate(graph: Graph, samples: Iterable[Sequence[np.ndarray]], ids: set[int], expose: Expose,
              method: str = "minmax") -> Calibration:
    """The Calibration of each value in ids (by value id) over all samples, as the float model computes
    them: method (compiler/quantize.py's CALIBRATION_METHODS) "minmax" takes the range seen; the others
    choose one from a histogram over it (a second run of the samples): see _CHOOSERS."""
    run, samples = expose(graph, ids), list(samples)
    seen = {i: _Seen() for i in ids}
    for sample in samples:
        for value_id, array in run(sample).items():
            seen[value_id].add(array)
    ranges = {i: (s.low, s.high) if s.count else (0.0, 0.0) for i, s in seen.items()}
    if method != "minmax":
        histograms = {i: Histogram(*ranges[i]) for i in ids}
        for sample in samples:
            for value_id, array in run(sample).items():
                histograms[value_id].add(array)
        ranges = {i: _CHOOSERS[method](histogram) for i, histogram in histograms.items()}
    return Calibration(ranges, {i: _snr(seen[i], *ranges[i]) for i in ids})


def _snr(seen: _Seen, low: float, high: float) -> float:
    step = (max(high, 0.0) - min(low, 0.0)) / 255
    return math.inf if step == 0 or not seen.count else seen.squares / seen.count / (step * step / 12)


BINS = 8192


class Histogram:
    """Counts of a value's elements in BINS equal bins over its range widened to hold 0 (as the u8 grid
    is: int8_fixed.activation_params)."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = min(low, 0.0), max(high, 0.0)
        self.counts = np.zeros(BINS, np.int64)

    def add(self, array: np.ndarray) -> None:
        if self.high > self.low:
            scaled = (array.reshape(-1) - np.float32(self.low)) * np.float32(BINS / (self.high - self.low))
            self.counts += np.bincount(np.clip(np.nan_to_num(scaled), 0, BINS - 1).astype(np.int32), minlength=BINS)

    def centers(self) -> np.ndarray:
        return self.low + (np.arange(BINS) + 0.5) * ((self.high - self.low) / BINS)


TAIL = 1e-5  # "percentile": the fraction of a value's elements left outside its range on each side


def percentile_range(histogram: Histogram) -> tuple[float, float]:
    """The range from the TAIL quantile to the 1 - TAIL quantile (bin edges; 0 kept inside)."""
    if histogram.high <= histogram.low:
        return histogram.low, histogram.high
    cumulative = np.cumsum(histogram.counts) / histogram.counts.sum()
    width = (histogram.high - histogram.low) / BINS
    low = histogram.low + width * int(np.searchsorted(cumulative, TAIL, side="right"))
    high = histogram.low + width * (int(np.searchsorted(cumulative, 1 - TAIL)) + 1)
    return min(low, 0.0), max(high, 0.0)


SHRINK = np.geomspace(1, 1 / 256, 97)  # "mse": the fractions of each side of the range tried


def mse_range(histogram: Histogram) -> tuple[float, float]:
    """The range, each side a SHRINK fraction of the seen one, whose u8 grid gives the least expected
    squared error: elements inside round with error scale^2 / 12, those outside clamp to the edge."""
    if histogram.high <= histogram.low:
        return histogram.low, histogram.high
    centers, counts = histogram.centers(), histogram.counts.astype(np.float64)
    highs, lows = histogram.high * SHRINK, histogram.low * SHRINK
    above = centers[None, :] > highs[:, None]
    below = centers[None, :] < lows[:, None]
    clip_high = (np.where(above, (centers[None, :] - highs[:, None]) ** 2, 0) * counts).sum(1)
    clip_low = (np.where(below, (centers[None, :] - lows[:, None]) ** 2, 0) * counts).sum(1)
    inside = counts.sum() - (above * counts).sum(1)[:, None] - (below * counts).sum(1)[None, :]
    scale = (highs[:, None] - lows[None, :]) / 255
    error = clip_high[:, None] + clip_low[None, :] + inside * scale ** 2 / 12
    h, lo = np.unravel_index(int(np.argmin(error)), error.shape)
    return float(lows[lo]), float(highs[h])


_CHOOSERS = {"percentile": percentile_range, "mse": mse_range}
