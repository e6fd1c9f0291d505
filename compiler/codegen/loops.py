"""Counted loops and index arithmetic over llvmlite.ir, shaped so LLVM's vectoriser takes them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from llvmlite import ir

I64 = ir.IntType(64)


def i64(value: int) -> ir.Constant:
    return ir.Constant(I64, int(value))


def size_value(size: int | ir.Value) -> ir.Value:
    """A size as an i64 value: a constant, or the run-time size (a function's argument) as it is."""
    return i64(size) if isinstance(size, int) else size


@contextmanager
def for_range(builder: ir.IRBuilder, count: int | ir.Value, name: str = "i",
              start: int | ir.Value = 0) -> Iterator[ir.Value]:
    """Emit `for (i = start; i < count; i++) { body }`; yields i (i64) with the builder in the body.

    The loop is bottom-tested with the trip count known, which LLVM vectorises
    and unrolls; a zero-trip loop is guarded by an entry check (see fold_range).
    """
    with fold_range(builder, count, [], name, start) as (index, _):
        yield index


@contextmanager
def for_nest(builder: ir.IRBuilder, shape: Sequence[int], name: str = "d") -> Iterator[list[ir.Value]]:
    """Nested loops over shape (outermost first); yields the list of indices."""
    indices: list[ir.Value] = []
    with _nest(builder, list(shape), name, indices):
        yield indices


@contextmanager
def _nest(builder: ir.IRBuilder, shape: list[int], name: str, indices: list[ir.Value]) -> Iterator[None]:
    if not shape:
        yield
        return
    with for_range(builder, shape[0], f"{name}{len(indices)}") as index:
        indices.append(index)
        with _nest(builder, shape[1:], name, indices):
            yield


class Carried:
    """Loop-carried values of fold_range: read .values in the body, assign the next ones before leaving."""

    def __init__(self, values: Sequence[ir.Value]) -> None:
        self.values = list(values)


@contextmanager
def fold_range(builder: ir.IRBuilder, count: int | ir.Value, inits: Sequence[ir.Value], name: str = "k",
               start: int | ir.Value = 0) -> Iterator[tuple[ir.Value, Carried]]:
    """for_range that carries values (accumulators) in SSA registers across iterations.

    with fold_range(b, n, [acc0]) as (k, carry):
        carry.values = [b.fadd(carry.values[0], x_k)]
    result = carry.values          # after the loop: the final values (inits if zero trips)

    Phi nodes instead of stack slots keep micro-kernel accumulators in
    registers without relying on mem2reg; loops nest freely.
    """
    count = i64(count) if isinstance(count, int) else count
    start = i64(start) if isinstance(start, int) else start
    pre = builder.block
    header = builder.append_basic_block(f"{name}.body")
    exit_block = builder.append_basic_block(f"{name}.exit")
    builder.cbranch(builder.icmp_signed("<", start, count), header, exit_block)
    builder.position_at_end(header)
    index = builder.phi(I64, name=name)
    index.add_incoming(start, pre)
    phis = []
    for value in inits:
        phi = builder.phi(value.type, name=f"{name}.acc")
        phi.add_incoming(value, pre)
        phis.append(phi)
    carry = Carried(phis)
    yield index, carry
    latch = builder.block
    following = builder.add(index, i64(1), name=f"{name}.next", flags=("nsw", "nuw"))
    index.add_incoming(following, latch)
    for phi, value in zip(phis, carry.values, strict=True):
        phi.add_incoming(value, latch)
    builder.cbranch(builder.icmp_signed("<", following, count), header, exit_block)
    builder.position_at_end(exit_block)
    results = []
    for init, value in zip(inits, carry.values, strict=True):
        merged = builder.phi(value.type, name=f"{name}.out")
        merged.add_incoming(init, pre)
        merged.add_incoming(value, latch)
        results.append(merged)
    carry.values = results


def fold_nest(builder: ir.IRBuilder, counts: Sequence[int], inits: Sequence[ir.Value],
              body: Callable[[list[ir.Value], list[ir.Value]], list[ir.Value]], name: str = "f") -> list[ir.Value]:
    """Nested fold_range loops over counts (outermost first); body(indices, values) returns the next values."""

    def level(depth: int, indices: list[ir.Value], values: list[ir.Value]) -> list[ir.Value]:
        if depth == len(counts):
            return body(indices, values)
        with fold_range(builder, counts[depth], values, f"{name}{depth}") as (i, carry):
            carry.values = level(depth + 1, indices + [i], carry.values)
        return carry.values

    return level(0, [], list(inits))
