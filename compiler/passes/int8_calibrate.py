"""Calibration for quantize="int8": the user's sample inputs, and the ranges the float model's values
take on them (the IR reference interpreter runs the folded graph, so the ranges are the model's own,
not a compiled approximation's).

Samples come as a list (one entry per sample: an array for a one-input model, else a sequence of arrays
in graph input order) or as a .npz file (one array per graph input, by name or in order as arr_0, ...,
each either the input's shape, one sample, or with a leading axis of samples).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from cerebro.compiler.ir import Graph, IRError
from cerebro.compiler.ir.interpret import run_node


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


def observe_ranges(graph: Graph, samples: Iterable[Sequence[np.ndarray]], ids: set[int]
                   ) -> dict[int, tuple[float, float]]:
    """(min, max) over all samples of each value in ids (by value id), from the reference interpreter."""
    seen: dict[int, tuple[float, float]] = {}

    def note(value_id: int, array: np.ndarray) -> None:
        if value_id in ids and array.size:
            low, high = float(array.min()), float(array.max())
            old = seen.get(value_id, (low, high))
            seen[value_id] = (min(old[0], low), max(old[1], high))

    for sample in samples:
        env = {}
        for value, array in zip(graph.inputs, sample):
            env[value.id] = array
            note(value.id, array)
        for node in graph.nodes:
            args = [v.data if v.is_const else env[v.id] for v in node.inputs]
            for value, result in zip(node.outputs, run_node(node, args)):
                env[value.id] = result
                note(value.id, result)
    return {i: seen.get(i, (0.0, 0.0)) for i in ids}
