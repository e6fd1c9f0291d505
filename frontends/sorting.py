"""Sorting and gathering along one axis, shared by the JAX and ONNX rules (any IR Builder will do)."""

from __future__ import annotations

import math

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.compiler.ir.builder import Builder


def to_last(b: Builder, x: Value, axis: int) -> tuple[Value, tuple[int, ...]]:
    """x with `axis` moved last, and the permutation that undoes it."""
    perm = tuple(d for d in range(x.rank) if d != axis) + (axis,)
    inverse = tuple(int(i) for i in np.argsort(perm))
    return b.transpose(x, perm), inverse


def take_rows(b: Builder, x: Value, positions: Value) -> Value:
    """x[..., positions[..., j]] along the last axis (x and positions share the leading dims)."""
    n, rows = x.shape[-1], math.prod(x.shape[:-1])
    flat = b.reshape(positions, (rows, positions.shape[-1]))
    if rows > 1:
        starts = b.add("iota", shape=(rows, 1), dtype=DType.i64, dimension=0)
        flat = b.elementwise("add", b.convert(flat, DType.i64),
                             b.elementwise("mul", starts, b.const(np.array(n), DType.i64)))
    taken = b.add("take", b.reshape(x, (x.size,)), b.reshape(flat, (flat.size,)), axis=0, mode="clip")
    return b.reshape(taken, positions.shape)


def top_k(b: Builder, x: Value, k: int, axis: int, largest: bool = True) -> tuple[Value, Value]:
    """The k largest (or smallest) along axis in IEEE total order, ties lower index first: values and i64
    positions. A small k asks argsort for k positions only (one pass over x, O(n k) at worst); a
    bigger one sorts the row."""
    moved, inverse = to_last(b, x, axis)
    if k <= FIRST_K_LIMIT:
        order = b.add("argsort", moved, order="total", descending=largest, k=k)
    else:
        order = b.add("argsort", moved, order="total", descending=largest)
        order = b.add("slice", order, start=(0,) * order.rank, limit=order.shape[:-1] + (k,),
                      strides=(1,) * order.rank)
    return b.transpose(take_rows(b, moved, order), inverse), b.transpose(order, inverse)


FIRST_K_LIMIT = 32  # top_k up to this k selects (n compares, k-long insertions); above it the row is sorted
