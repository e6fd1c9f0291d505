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
    extra = fn.args[len(node.inputs) + len(node.outputs):][:2]  # size arguments follow (module.py)
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


def _i64(count: int | ir.Value) -> ir.Value:
    return i64(count) if isinstance(count, int) else count


def for_phases(builder: ir.IRBuilder, lo: ir.Value, hi: ir.Value, counts: Sequence[int | ir.Value],
               emit: Callable[[int, ir.Value], None], name: str = "u") -> None:
    """emit(phase, index in phase) for the units lo..hi-1 of phases of counts[0], counts[1], ... units
    (numbered in order; a count may be a run-time value). lo and hi may lie outside 0..sum(counts):
    they are clamped."""
    first: int | ir.Value = 0
    for phase, count in enumerate(counts):
        if not isinstance(count, int) or count:
            start = smax(builder, builder.sub(lo, _i64(first)), i64(0))
            end = smin(builder, builder.sub(hi, _i64(first)), _i64(count))
            with for_range(builder, end, f"{name}{phase}", start=start) as unit:
                emit(phase, unit)
        first = first + count if isinstance(first, int) and isinstance(count, int) else builder.add(
            _i64(first), _i64(count))


@contextmanager
def for_outer(builder: ir.IRBuilder, outer: int | ir.Value, units: int | ir.Value, lo: ir.Value, hi: ir.Value,
              name: str = "o") -> Iterator[tuple[ir.Value, ir.Value, ir.Value]]:
    """Units lo..hi-1 of outer x units (numbered row-major; run-time values or ints, a value's units at
    least 1): yields (o, first, end) per outer index o that has some, where first..end-1 (unclamped:
    give them to for_phases) are its inner units."""
    units = max(units, 1) if isinstance(units, int) else units  # no units at all: lo == hi == 0, so none runs
    begin = builder.udiv(lo, _i64(units))
    below = i64(units - 1) if isinstance(units, int) else builder.sub(units, i64(1))
    stop = smin(builder, builder.udiv(builder.add(hi, below), _i64(units)), _i64(outer))
    with for_range(builder, stop, name, start=begin) as o:
        base = builder.mul(o, _i64(units))
        yield o, builder.sub(lo, base), builder.sub(hi, base)


def unflatten(builder: ir.IRBuilder, flat: ir.Value, sizes: Sequence[int | ir.Value]) -> list[ir.Value]:
    """The row-major multi-index of `flat` over sizes (divisions by constants, or by run-time sizes)."""
    indices: list[ir.Value] = []
    inner: int | ir.Value = 1
    for axis in reversed(range(len(sizes))):
        position = flat if isinstance(inner, int) and inner == 1 else builder.udiv(flat, _i64(inner))
        last = axis == 0 or (isinstance(sizes[axis], int) and sizes[axis] == 1)  # outermost: no remainder; size 1: 0
        indices.append(position if axis == 0 else i64(0) if last else builder.urem(position, _i64(sizes[axis])))
        inner = inner * sizes[axis] if isinstance(inner, int) and isinstance(sizes[axis], int) else builder.mul(
            _i64(inner), _i64(sizes[axis]))
    return indices[::-1]


COPY_UNITS = 16  # a strided copy shares the fewest leading dims whose sizes multiply to this many units


def leading_dims(shape: Sequence[int], src_strides: Sequence[int]) -> int:
    """How many leading dims of a strided copy (layout.copy_strided) its parts share: the fewest whose
    sizes multiply to COPY_UNITS or more, never the last dim nor from the one the source is contiguous
    along on (the tiled transposes keep those two inside; 0: the copy is not shared). Moving a node's
    data on the cores that wrote it beats one core reading the other's cache: shufflenet's serial
    copies ran 1.6x slower at 2 threads than at 1."""
    count, units = 0, 1
    while count < len(shape) - 1 and abs(src_strides[count]) != 1 and units < COPY_UNITS:
        units *= shape[count]
        count += 1
    return count


Rectangle = tuple[ir.Value, ir.Value, ir.Value, ir.Value]  # first lo, first hi, second lo, second hi


def first_wins(first_bytes: int, second_bytes: int) -> bool:
    """Whether parts of a grid should split `first` (each reads all the data `second` indexes and its
    share of the data `first` indexes) rather than `second`: reads of first + P * second bytes against
    P * first + second, so when `second`'s data is the smaller. (GPT-2's 32-row dense layers split by
    rows streamed all 9.4 MB of weights on each core; batch 8 convs split by output channels had each
    core read every image, the next node's share of which the other core wrote.)"""
    return second_bytes <= first_bytes


CROSS_CORE = 3  # about what reading a line another core wrote costs against one in the core's own cache


def channels_first(weight_bytes: int, image_bytes: int, output_bytes: int) -> bool:
    """Whether a conv's parts should split its output channels (each streams its share of the weights,
    reads every image and writes a slice of every pixel) rather than its pixels (each reads all the
    weights and only its own images). The images and outputs are what the nodes before and after
    share by pixels, each part on the core that wrote its share; split by channels, half of them cross
    between cores, which costs CROSS_CORE times a read from the core's own cache (3.4x on the 2-CPU
    EPYC VM) while weights are only read. So channels only where the weights outweigh CROSS_CORE x
    (images + outputs): 2 threads, regnet_y_400mf b8 53.3 -> 49.5 ms, efficientnet_b0 b1 11.4 ->
    10.9 ms, one thread the same (first_wins, weights against images, split more convs by channels)."""
    return weight_bytes > CROSS_CORE * (image_bytes + output_bytes)


def grid_units(first: int, second: int, parts: int, by_first: bool = True) -> int:
    """The units grid_share shares among `parts` parts (a parallel emitter's UNITS rule)."""
    return first if by_first and first >= parts else first * second


def grid_share(builder: ir.IRBuilder, part: ir.Value, parts: ir.Value, first: int | ir.Value,
               second: int | ir.Value, by_first: bool | ir.Value = True,
               first_major: bool | ir.Value = False) -> list[Rectangle]:
    """Part's share of a first x second grid of units, as three rectangles (some empty). With by_first
    and at least as many units along `first` as parts, a share of those (all of `second`); else a
    share of all units numbered with `second` major (first_major: with `first` major): the rest of its
    first major index, its full ones, and the start of its last one. (matmul: row blocks x column
    blocks, so with few rows each part streams its own share of b; conv: channel blocks x pixel blocks,
    each part its own pixels, or, first_major, consecutive parts the pixels of one channel block;
    `first` and `second` may be run-time counts, `first` at least 1, by_first and first_major i1s.)"""
    whole = builder.icmp_unsigned(">=", _i64(first) if by_first is not False else i64(0), parts)
    if not isinstance(by_first, bool):
        whole = builder.and_(whole, by_first)
    first_lo, first_hi = share(builder, first, part, parts)
    lo, hi = share(builder, first * second if isinstance(first, int) and isinstance(second, int)
                   else builder.mul(_i64(first), _i64(second)), part, parts)
    by_units = [tuple(m_lo_hi[2:] + m_lo_hi[:2]) for m_lo_hi in _major_share(builder, lo, hi, first)]
    if first_major is not False:
        along_first = _major_share(builder, lo, hi, second)
        by_units = along_first if first_major is True else [
            tuple(builder.select(first_major, f, u) for f, u in zip(mine, units))
            for mine, units in zip(along_first, by_units)]
    nothing = (i64(0),) * 4
    by_first = [(first_lo, first_hi, i64(0), _i64(second)), nothing, nothing]
    return [tuple(builder.select(whole, f, u) for f, u in zip(mine, units)) for mine, units in zip(by_first, by_units)]


def _major_share(builder: ir.IRBuilder, lo: ir.Value, hi: ir.Value, minor: int | ir.Value) -> list[Rectangle]:
    """Units lo..hi of a grid numbered major-first with `minor` units per major index, as three
    rectangles (major lo, major hi, minor lo, minor hi): the rest of the first major index, the full
    ones, the start of the last."""
    height = i64(max(minor, 1)) if isinstance(minor, int) else minor
    head, head_at = builder.udiv(lo, height), builder.urem(lo, height)
    tail, tail_at = builder.udiv(hi, height), builder.urem(hi, height)
    partial = builder.icmp_unsigned("!=", head_at, i64(0))
    alone = builder.icmp_unsigned("==", head, tail)
    after_head = builder.add(head, i64(1))
    head_end = builder.select(builder.and_(partial, builder.not_(alone)), _i64(minor), head_at)
    return [(head, after_head, head_at, head_end),
            (builder.select(partial, after_head, head), tail, i64(0), _i64(minor)),
            (tail, builder.add(tail, i64(1)), builder.select(alone, head_at, i64(0)), tail_at)]


@contextmanager
def for_rectangles(builder: ir.IRBuilder, part: ir.Value, parts: ir.Value, first: int | ir.Value,
                   second: int | ir.Value, by_first: bool | ir.Value = True,
                   first_major: bool | ir.Value = False) -> Iterator[Rectangle]:
    """The body once per rectangle of grid_share, with its bounds: one copy of the kernel's code."""
    rectangles = grid_share(builder, part, parts, first, second, by_first, first_major)
    with for_range(builder, len(rectangles), "rect") as at:
        yield tuple(_pick(builder, at, [r[k] for r in rectangles]) for k in range(4))


def _pick(builder: ir.IRBuilder, at: ir.Value, values: list[ir.Value]) -> ir.Value:
    """values[at] for a run-time index (selects: no memory, no branches)."""
    picked = values[-1]
    for k in range(len(values) - 2, -1, -1):
        picked = builder.select(builder.icmp_unsigned("==", at, i64(k)), values[k], picked)
    return picked
