"""Which output tiles one part of a multi-threaded call computes (see abi.h's stage word).

A parallel kernel numbers its units of work (row blocks, column blocks, pixel blocks) and part p of
P takes units [U*p/P, U*(p+1)/P). Only the outer loops' bounds become run-time values: every unit is
the same tile code as with one part, so no result bit depends on the number of parts. The units
form phases (full register tiles, then the tail tile), each emitted by its own compile-time code.
The same shares cut a node too big for one stage into slices over several stages (Piece).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.codegen.loops import for_range, i64
from cerebro.compiler.ir import Node

I32 = ir.IntType(32)


@dataclass(frozen=True)
class Piece:
    """Slice `index` of `count` of a node's work (count 1: all of it) and its estimated flops: what one
    stage runs of a node too big for one (build.split_stages).

    The stage calls a parallel node as part index*P + p of count*P, so slice i of k takes units
    [U*i/k, U*(i+1)/k) of the node's U units (codegen UNITS) and P threads split that again: every
    unit is still computed by the same code, so results do not depend on k or P."""

    node: Node
    index: int
    count: int
    flops: int


def parts_of(builder: ir.IRBuilder, node: Node, fn: ir.Function) -> tuple[ir.Value, ir.Value]:
    """(part, parts) as i64 from fn's trailing i32 arguments; (0, 1) when fn has none."""
    extra = fn.args[len(node.inputs) + len(node.outputs):]
    if not extra:
        return i64(0), i64(1)
    part, parts = extra
    return builder.zext(part, i64(0).type), builder.zext(parts, i64(0).type)


def share(builder: ir.IRBuilder, units: int | ir.Value, part: ir.Value, parts: ir.Value) -> tuple[ir.Value, ir.Value]:
    """[lo, hi): part's share of `units` units, as even as whole units allow."""
    units = i64(units) if isinstance(units, int) else units
    lo = builder.udiv(builder.mul(units, part), parts)
    hi = builder.udiv(builder.mul(units, builder.add(part, i64(1))), parts)
    return lo, hi


def smin(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    return builder.select(builder.icmp_signed("<", a, b), a, b)


def smax(builder: ir.IRBuilder, a: ir.Value, b: ir.Value) -> ir.Value:
    return builder.select(builder.icmp_signed(">", a, b), a, b)


def for_phases(builder: ir.IRBuilder, lo: ir.Value, hi: ir.Value, counts: Sequence[int],
               emit: Callable[[int, ir.Value], None], name: str = "u") -> None:
    """emit(phase, index in phase) for the units lo..hi-1 of phases of counts[0], counts[1], ... units
    (numbered in order). lo and hi may lie outside 0..sum(counts): they are clamped."""
    first = 0
    for phase, count in enumerate(counts):
        if count:
            start = smax(builder, builder.sub(lo, i64(first)), i64(0))
            end = smin(builder, builder.sub(hi, i64(first)), i64(count))
            with for_range(builder, end, f"{name}{phase}", start=start) as unit:
                emit(phase, unit)
        first += count


@contextmanager
def for_outer(builder: ir.IRBuilder, outer: int, units: int, lo: ir.Value, hi: ir.Value,
              name: str = "o") -> Iterator[tuple[ir.Value, ir.Value, ir.Value]]:
    """Units lo..hi-1 of outer x units (numbered row-major): yields (o, first, end) per outer index o
    that has some, where first..end-1 (unclamped: give them to for_phases) are its inner units."""
    units = max(units, 1)  # no units at all: lo == hi == 0, so no outer index runs
    begin = builder.udiv(lo, i64(units))
    stop = smin(builder, builder.udiv(builder.add(hi, i64(units - 1)), i64(units)), i64(outer))
    with for_range(builder, stop, name, start=begin) as o:
        base = builder.mul(o, i64(units))
        yield o, builder.sub(lo, base), builder.sub(hi, base)


def unflatten(builder: ir.IRBuilder, flat: ir.Value, sizes: Sequence[int]) -> list[ir.Value]:
    """The row-major multi-index of `flat` over sizes (divisions by constants)."""
    indices: list[ir.Value] = []
    inner = 1
    for axis in reversed(range(len(sizes))):
        position = flat if inner == 1 else builder.udiv(flat, i64(inner))
        last = axis == 0 or sizes[axis] == 1  # the outermost index needs no remainder; a size-1 one is 0
        indices.append(position if axis == 0 else i64(0) if last else builder.urem(position, i64(sizes[axis])))
        inner *= sizes[axis]
    return indices[::-1]
