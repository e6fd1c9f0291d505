"""reduce_sum/max/min/prod and argmax/argmin: vector accumulators over a contiguous inner loop.

The input is first viewed with size-1 dims dropped and neighbouring dims of
the same kind (kept/reduced) merged, so every reduction is one of two shapes:
- innermost dim reduced (rows): for each output element, U vector
  accumulators sweep the contiguous row (U*W elements a step); outer reduced
  dims are loops around that; lanes are combined once at the end (shuffle
  tree) and the scalar tail is folded in.
- innermost dim kept (columns): for each block of U*W output columns the
  accumulators sweep the reduced dims, loading contiguous column vectors.
Float sums are blocked: the long loop runs in sqrt(n)-sized blocks whose
partial sums start at zero and are added to the running total, so each
value passes through about 2*sqrt(n) additions instead of n (accuracy for
long rows, still in f32). max/min propagate NaN (llvm.maximum), like JAX.
argmax/argmin keep (best value, best index) per lane; the first index wins
ties (strict comparison) and NaN wins over any number, like jnp.argmax.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from llvmlite import ir

from cerebro.compiler.codegen.llvm_types import constant, element_type, index, intrinsic, load, splat, store
from cerebro.compiler.codegen.loops import fold_nest, fold_range, for_range
from cerebro.compiler.codegen.matmul import column_phases
from cerebro.compiler.codegen.partition import parts_of, share, unflatten
from cerebro.compiler.codegen.registry import EmitContext, emitter, unsupported
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.strides import contiguous_strides
from cerebro.compiler.targets import lanes

ACCUMULATORS = 4  # vectors in flight per reduction: hides the add latency
_BLOCKING_MIN = 64  # loops shorter than this are summed straight
_REDUCIBLE = frozenset(DType) - {DType.f16, DType.bf16}  # halves reach reductions as f32 (frontends/jax/half.py)

Combine = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]


def _call(name: str) -> Combine:
    return lambda b, x, y: b.call(intrinsic(b.module, name, x.type, 2), [x, y])


# op -> (float combine, signed int combine, unsigned int combine)
_COMBINE: dict[str, tuple[Combine, Combine, Combine]] = {
    "reduce_sum": (lambda b, x, y: b.fadd(x, y), lambda b, x, y: b.add(x, y), lambda b, x, y: b.add(x, y)),
    "reduce_prod": (lambda b, x, y: b.fmul(x, y), lambda b, x, y: b.mul(x, y), lambda b, x, y: b.mul(x, y)),
    "reduce_max": (_call("llvm.maximum"), _call("llvm.smax"), _call("llvm.umax")),
    "reduce_min": (_call("llvm.minimum"), _call("llvm.smin"), _call("llvm.umin")),
}


def identity(op: str, dtype: DType) -> float | int:
    """The value a reduction starts from (and what padded window cells hold)."""
    if op == "reduce_sum":
        return 0
    if op == "reduce_prod":
        return 1
    if dtype.is_float:
        return -math.inf if op == "reduce_max" else math.inf
    bits = 1 if dtype is DType.bool else dtype.itemsize * 8
    if dtype.is_signed:
        return -(1 << (bits - 1)) if op == "reduce_max" else (1 << (bits - 1)) - 1
    return 0 if op == "reduce_max" else (1 << bits) - 1


def combiner(op: str, dtype: DType) -> Combine:
    as_float, signed, unsigned = _COMBINE[op]
    return as_float if dtype.is_float else signed if dtype.is_signed else unsigned


def canonical(shape: tuple[int, ...], reduced: set[int]) -> list[tuple[int, bool]]:
    """(size, is_reduced) per dim with size-1 dims dropped and same-kind neighbours merged."""
    dims: list[tuple[int, bool]] = []
    for axis, size in enumerate(shape):
        if size == 1:
            continue
        kind = axis in reduced
        if dims and dims[-1][1] == kind:
            dims[-1] = (dims[-1][0] * size, kind)
        else:
            dims.append((size, kind))
    return dims


def horizontal(builder: ir.IRBuilder, vector: ir.Value, combine: Combine) -> ir.Value:
    """Combine the lanes of a vector by halving (log2(W) shuffles), then take lane 0."""
    if not isinstance(vector.type, ir.VectorType):
        return vector
    width = vector.type.count
    while width > 1:
        half = width // 2
        undef = ir.Constant(vector.type, None)
        mask = ir.VectorType(ir.IntType(32), half)
        lower = builder.shuffle_vector(vector, undef, ir.Constant(mask, list(range(half))))
        upper = builder.shuffle_vector(vector, undef, ir.Constant(mask, list(range(half, width))))
        vector = combine(builder, lower, upper) if half > 1 else combine(
            builder, builder.extract_element(lower, ir.Constant(ir.IntType(32), 0)),
            builder.extract_element(upper, ir.Constant(ir.IntType(32), 0)))
        width = half
    if isinstance(vector.type, ir.VectorType):
        return builder.extract_element(vector, ir.Constant(ir.IntType(32), 0))
    return vector
    return builder.extract_element(vector, ir.Constant(ir.IntType(32), 0))


def blocked_fold(builder: ir.IRBuilder, count: int, accs: list[ir.Value], step: Callable, combine: Combine,
                 zeros: list[ir.Value] | None, name: str) -> list[ir.Value]:
    """accs = step(i, accs) for i in range(count); with zeros given (float sums), in sqrt(count) blocks."""
    start = 0
    if zeros is not None and count >= _BLOCKING_MIN:
        block = math.isqrt(count)
        with fold_range(builder, count // block, accs, f"{name}.blk") as (bi, outer):
            with fold_range(builder, block, zeros, f"{name}.in") as (s, inner):
                inner.values = step(index(builder, 0, (bi, block), (s, 1)), inner.values)
            outer.values = [combine(builder, a, p) for a, p in zip(outer.values, inner.values)]
        accs, start = outer.values, count // block * block
    with fold_range(builder, count, accs, name, start=start) as (i, carry):
        carry.values = step(i, carry.values)
    return carry.values


def _outer_kept(dims: list[tuple[int, bool]]) -> list[int]:
    """Sizes of the kept dims a reduction's outer loops run over (rows: all; columns: those before
    the last, which the column blocks run along): the units its parts share."""
    return [s for s, r in (dims if dims[-1][1] else dims[:-1]) if not r]


def reduce_units(node: Node, target: object, parts: int) -> int:
    x = node.inputs[0]
    dims = canonical(x.shape, set(node.attrs["axes"]))
    return math.prod(_outer_kept(dims)) if x.size and any(r for _, r in dims) else 1


@contextmanager
def _for_share(builder: ir.IRBuilder, sizes: list[int], parts: tuple[ir.Value, ir.Value]) -> Iterator[list[ir.Value]]:
    """The indices of part's share of the sizes' positions (all of them for one part), outermost first."""
    lo, hi = share(builder, math.prod(sizes), *parts)
    with for_range(builder, hi, "o", start=lo) as flat:
        yield unflatten(builder, flat, sizes)


@emitter(*_COMBINE, units=reduce_units)
def emit_reduce(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    """The parts share the kept positions (a batch's images of a global pool): each output is folded by
    the same code whatever the split."""
    (x,) = node.inputs
    out = node.outputs[0]
    op, dtype = node.op, x.dtype
    if dtype not in _REDUCIBLE:
        raise unsupported(node, f"{op} on {dtype.name}")
    if dtype is DType.bool and op in ("reduce_sum", "reduce_prod"):
        raise unsupported(node, f"{op} on bool (convert to an integer type first)")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, po = fn.args[:2]
    elem = element_type(dtype)
    red = _Reduction(builder, elem, combiner(op, dtype), identity(op, dtype),
                     op == "reduce_sum" and dtype.is_float, lanes(ctx.target, dtype), px, po,
                     parts_of(builder, node, fn))
    dims = canonical(x.shape, set(node.attrs["axes"]))
    if x.size == 0 or not any(r for _, r in dims):
        with _for_share(builder, [], red.parts):  # one unit: part 0's
            red.fill_or_copy(out.size, x.size == 0)
    elif dims[-1][1]:
        red.rows(dims)
    else:
        red.columns(dims)
    builder.ret_void()


class _Reduction:
    """One reduce_* node being emitted: its element type, combine rule, identity and buffers."""

    def __init__(self, builder: ir.IRBuilder, elem: ir.Type, combine: Combine, start: float | int, blocked: bool,
                 width: int, px: ir.Value, po: ir.Value, parts: tuple[ir.Value, ir.Value]) -> None:
        self.b, self.elem, self.combine, self.start = builder, elem, combine, start
        self.blocked, self.width, self.px, self.po, self.parts = blocked, width, px, po, parts

    def ident(self, width: int) -> ir.Constant:
        return constant(self.elem, self.start, width)

    def fill_or_copy(self, count: int, fill: bool) -> None:
        """Nothing is reduced (copy) or there is nothing to reduce (every output is the identity)."""
        with for_range(self.b, count, "e") as e:
            value = self.ident(1) if fill else load(self.b, self.px, e, self.elem)
            store(self.b, value, self.po, e, self.elem)

    def rows(self, dims: list[tuple[int, bool]]) -> None:
        b, width = self.b, self.width
        strides = contiguous_strides([s for s, _ in dims])
        length = dims[-1][0]
        kept = [(s, st) for (s, r), st in zip(dims, strides) if not r]
        outer = [(s, st) for (s, r), st in zip(dims[:-1], strides[:-1]) if r]
        vectors = ACCUMULATORS if length >= width > 1 else 0
        with _for_share(b, [s for s, _ in kept], self.parts) as kept_idx:
            base = index(b, 0, *zip(kept_idx, [st for _, st in kept]))
            inits = [self.ident(width) for _ in range(vectors)] + [self.ident(1)]

            def per_row(outer_idx: list[ir.Value], accs: list[ir.Value]) -> list[ir.Value]:
                row = index(b, 0, (base, 1), *zip(outer_idx, [st for _, st in outer]))
                return self._row(row, length, vectors, accs)

            accs = fold_nest(b, [s for s, _ in outer], inits, per_row, "r")
            total = accs[-1]
            if vectors:
                vector = accs[0]
                for other in accs[1:-1]:
                    vector = self.combine(b, vector, other)
                total = self.combine(b, horizontal(b, vector, self.combine), total)
            out_at = index(b, 0, *zip(kept_idx, contiguous_strides([s for s, _ in kept])))
            store(b, total, self.po, out_at, self.elem)

    def _row(self, row: ir.Value, length: int, vectors: int, accs: list[ir.Value]) -> list[ir.Value]:
        """Fold row[0:length] into accs (vectors vector accumulators, then one scalar)."""
        b, width, elem = self.b, self.width, self.elem
        step_size = vectors * width
        steps = length // step_size if vectors else 0
        vector_accs, scalar = accs[:-1], accs[-1]
        if steps:
            def step(i: ir.Value, values: list[ir.Value]) -> list[ir.Value]:
                at = index(b, 0, (row, 1), (i, step_size))
                return [self.combine(b, v, load(b, self.px, index(b, u * width, (at, 1)), elem, width))
                        for u, v in enumerate(values)]

            zeros = [self.ident(width)] * vectors if self.blocked else None
            vector_accs = blocked_fold(b, steps, vector_accs, step, self.combine, zeros, "s")
        done = steps * step_size
        for u in range((length - done) // width if vectors else 0):
            vector_accs[u] = self.combine(b, vector_accs[u], load(b, self.px, index(b, done, (row, 1)), elem, width))
            done += width
        if length > done:
            with fold_range(b, length, [scalar], "t", start=done) as (t, carry):
                value = load(b, self.px, index(b, 0, (row, 1), (t, 1)), elem)
                carry.values = [self.combine(b, carry.values[0], value)]
            scalar = carry.values[0]
        return list(vector_accs) + [scalar]

    def columns(self, dims: list[tuple[int, bool]]) -> None:
        b = self.b
        strides = contiguous_strides([s for s, _ in dims])
        columns = dims[-1][0]
        kept = [(s, st) for (s, r), st in zip(dims[:-1], strides[:-1]) if not r]
        reduced = [(s, st) for (s, r), st in zip(dims, strides) if r]
        out_strides = contiguous_strides([s for s, _ in kept] + [columns])
        with _for_share(b, [s for s, _ in kept], self.parts) as kept_idx:
            base = index(b, 0, *zip(kept_idx, [st for _, st in kept]))
            out_base = index(b, 0, *zip(kept_idx, out_strides))
            for widths, count, first in column_phases(columns, self.width, ACCUMULATORS):
                with for_range(b, count, "cb") as cb:
                    c0 = index(b, first, (cb, sum(widths)), (base, 1))
                    offsets = [sum(widths[:c]) for c in range(len(widths))]

                    def inner(idx: list[ir.Value], accs: list[ir.Value], c0: ir.Value = c0,
                              widths: list[int] = widths, offsets: list[int] = offsets) -> list[ir.Value]:
                        at = index(b, 0, (c0, 1), *zip(idx, [st for _, st in reduced]))
                        return [self.combine(b, a, load(b, self.px, index(b, off, (at, 1)), self.elem, w))
                                for a, w, off in zip(accs, widths, offsets)]

                    def step(i: ir.Value, accs: list[ir.Value], inner: Callable = inner) -> list[ir.Value]:
                        return fold_nest(b, [s for s, _ in reduced[1:]], accs,
                                         lambda idx, values: inner([i] + idx, values), "rc")

                    idents = [self.ident(w) for w in widths]
                    accs = blocked_fold(b, reduced[0][0], idents, step, self.combine,
                                        idents if self.blocked else None, "r0")
                    o0 = index(b, first, (cb, sum(widths)), (out_base, 1))
                    for a, off in zip(accs, offsets):
                        store(b, a, self.po, index(b, off, (o0, 1)), self.elem)


def _better(builder: ir.IRBuilder, op: str, dtype: DType, value: ir.Value, best: ir.Value) -> ir.Value:
    """value replaces best: strictly better (first index wins ties), or a NaN replacing a number."""
    if dtype.is_float:
        strict = builder.fcmp_ordered(">" if op == "argmax" else "<", value, best)
        nan_wins = builder.and_(builder.fcmp_unordered("uno", value, value), builder.fcmp_ordered("ord", best, best))
        return builder.or_(strict, nan_wins)
    compare = builder.icmp_signed if dtype.is_signed else builder.icmp_unsigned
    return compare(">" if op == "argmax" else "<", value, best)


@emitter("argmax", "argmin")
def emit_argreduce(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    (x,) = node.inputs
    out = node.outputs[0]
    if out.dtype not in (DType.i32, DType.i64):
        raise unsupported(node, f"{node.op} index type {out.dtype.name}")
    if x.dtype not in _REDUCIBLE:
        raise unsupported(node, f"{node.op} on {x.dtype.name}")
    axis = node.attrs["axis"]
    outer, length, inner = math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:])
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, po = fn.args
    elem, index_elem = element_type(x.dtype), element_type(out.dtype)
    width = lanes(ctx.target, x.dtype)
    scan = _Scan(builder, node.op, x.dtype, elem, index_elem, px)
    with for_range(builder, outer, "a") as a:
        if inner == 1 and width > 1 and length >= 2 * width:
            base = index(builder, 0, (a, length))
            store(builder, scan.contiguous(base, length, width), po, a, index_elem)
        else:
            for widths, count, first in column_phases(inner, width, 1):
                (w,) = widths
                with for_range(builder, count, "cb") as cb:
                    column = index(builder, first, (cb, w))
                    base = index(builder, 0, (a, length * inner), (column, 1))
                    inits = [load(builder, px, base, elem, w), constant(index_elem, 0, w)]
                    _, best_index = scan.strided(base, inner, 1, length, inits, w)
                    store(builder, best_index, po, index(builder, 0, (a, inner), (column, 1)), index_elem)
    builder.ret_void()


class _Scan:
    """argmax/argmin scans: (best value, best index) pairs, per lane."""

    def __init__(self, builder: ir.IRBuilder, op: str, dtype: DType, elem: ir.Type, index_elem: ir.Type,
                 px: ir.Value) -> None:
        self.b, self.op, self.dtype, self.elem, self.index_elem, self.px = builder, op, dtype, elem, index_elem, px

    def narrow(self, position: ir.Value) -> ir.Value:
        return self.b.trunc(position, self.index_elem) if self.index_elem.width < 64 else position

    def strided(self, base: ir.Value, stride: int, start: int, stop: int, inits: list[ir.Value],
                width: int) -> list[ir.Value]:
        """Scan positions start..stop-1 of x[base + position*stride : +width], in order (first index wins)."""
        b = self.b
        with fold_range(b, stop, inits, "l", start=start) as (position, carry):
            best, best_index = carry.values
            value = load(b, self.px, index(b, 0, (base, 1), (position, stride)), self.elem, width)
            better = _better(b, self.op, self.dtype, value, best)
            carry.values = [b.select(better, value, best),
                            b.select(better, splat(b, self.narrow(position), width), best_index)]
        return carry.values

    def contiguous(self, base: ir.Value, length: int, width: int) -> ir.Value:
        """Index of the best of x[base : base+length]: lane j scans positions j, j+W, ...; the lanes are
        then merged (an equal value or a second NaN wins only with a smaller index); the tail runs in order."""
        b = self.b
        lane_ids = ir.Constant(ir.VectorType(self.index_elem, width), list(range(width)))
        steps = length // width
        inits = [load(b, self.px, base, self.elem, width), lane_ids]
        with fold_range(b, steps, inits, "v", start=1) as (step, carry):
            best, best_index = carry.values
            value = load(b, self.px, index(b, 0, (base, 1), (step, width)), self.elem, width)
            better = _better(b, self.op, self.dtype, value, best)
            positions = b.add(splat(b, self.narrow(index(b, 0, (step, width))), width), lane_ids)
            carry.values = [b.select(better, value, best), b.select(better, positions, best_index)]
        lanes_best, lanes_index = carry.values
        best = b.extract_element(lanes_best, ir.Constant(ir.IntType(32), 0))
        best_index = b.extract_element(lanes_index, ir.Constant(ir.IntType(32), 0))
        for lane in range(1, width):
            value = b.extract_element(lanes_best, ir.Constant(ir.IntType(32), lane))
            position = b.extract_element(lanes_index, ir.Constant(ir.IntType(32), lane))
            earlier = b.icmp_unsigned("<", position, best_index)
            take = b.or_(_better(b, self.op, self.dtype, value, best),
                         b.and_(_same(b, self.dtype, value, best), earlier))
            best, best_index = b.select(take, value, best), b.select(take, position, best_index)
        return self.strided(base, 1, steps * width, length, [best, best_index], 1)[1]


def _same(builder: ir.IRBuilder, dtype: DType, value: ir.Value, best: ir.Value) -> ir.Value:
    """Equal, counting two NaNs as equal (for the lane merge of argmax/argmin)."""
    if dtype.is_float:
        both_nan = builder.and_(builder.fcmp_unordered("uno", value, value), builder.fcmp_unordered("uno", best, best))
        return builder.or_(builder.fcmp_ordered("==", value, best), both_nan)
    return builder.icmp_signed("==", value, best)
