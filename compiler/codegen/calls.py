"""The model's stages and steps as calls of node functions, compiled once per shape of call list.

A stage (or step, or slice of a sliced node) is a list of node calls on the memory plan's pointers.
Stages that call the same functions on pointers of the same kinds (the twelve layers of a BERT, the
slices of one matmul) differ only in numbers: the arena and weights offsets, input and output slots,
size arguments and slice index. Each distinct list is one function, void @calls<k>(ptr inputs,
ptr outputs, ptr arena, i32 part, i32 parts, ptr row, i32 slice), reading those numbers from its row
of the constant table @cerebro_calls_row (i64s); cerebro_entry finds the stage's (function, row,
slice) in constant tables and switches on the function. A ViT-B's 453 stage, step and slice functions
become 12, and LLVM's time on them (0.55 of 2.2 s) goes with them.

Stages are looked up in segments: a segment is one stage, or a run of stages that only continue one
node's slices (a node cut into thousands of slices is one segment: the slice is the segment's first
plus the stage's distance from its start), found by binary search over the segments' first stages.
Steps are one segment each, indexed directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.cbx.format import LAST_STEP
from cerebro.compiler.codegen import PARALLEL
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.plan import MemoryPlan

PTR = ir.PointerType()
I8, I32, I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
SLICE = None  # a call's index: the function's slice argument (a segment of continuing slices)


@dataclass(frozen=True)
class Call:
    """One node call: slice `index` (SLICE: the slice argument) of `count`."""

    node: Node
    fn: ir.Function
    index: int | None = 0
    count: int = 1


@dataclass
class Segment:
    """Stages first .. first+length-1 (or one step): call function `pattern` with table row `row` and
    slice `slice` + the stage's distance from first."""

    first: int
    length: int
    pattern: int
    row: int
    slice: int = 0


class CallTable:
    """The @calls<k> functions (one per distinct call list) and the table rows they read."""

    def __init__(self, module: ir.Module, plan: MemoryPlan, weights: ir.GlobalVariable,
                 sizes: Callable[[Node], list[int]]) -> None:
        self.module, self.plan, self.weights, self.sizes = module, plan, weights, sizes
        self.memcpy = module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
        self.patterns: dict[tuple, int] = {}
        self.functions: list[ir.Function] = []
        self.rows: dict[tuple[int, ...], int] = {}
        self.table: list[int] = []

    def add(self, calls: list[Call], copies: bool) -> tuple[int, int]:
        """(function, row) of a stage making these calls (copies: then the plan's output copies)."""
        shape, row = [], []
        for call in calls:
            places = [self.plan.place(v) for v in call.node.inputs + call.node.outputs]
            sizes = self.sizes(call.node)
            shape.append((call.fn.name, tuple(p.kind for p in places), len(sizes), call.index, call.count))
            row += [p.offset for p in places] + sizes
        key = (tuple(shape), copies)
        if key not in self.patterns:
            self.patterns[key] = len(self.functions)
            self.functions.append(self._function(calls, copies))
        if tuple(row) not in self.rows:
            self.rows[tuple(row)] = len(self.table)
            self.table += row
        return self.patterns[key], self.rows[tuple(row)]

    def _function(self, calls: list[Call], copies: bool) -> ir.Function:
        fn = ir.Function(self.module, ir.FunctionType(ir.VoidType(), [PTR, PTR, PTR, I32, I32, PTR, I32]),
                         f"calls{len(self.functions)}")
        fn.linkage = "internal"
        cb = _CallBuilder(fn, self.weights)
        at = 0
        for call in calls:
            args = []
            for value in call.node.inputs + call.node.outputs:
                args.append(cb.pointer(self.plan.place(value).kind, cb.number(at)))
                at += 1
            sizes = [cb.number(at + i) for i in range(len(self.sizes(call.node)))]
            at += len(sizes)
            index = cb.slice if call.index is SLICE else ir.Constant(I32, call.index)
            cb.call(call.node, call.fn, args, index, call.count, sizes)
        if copies:
            cb.copy_outputs(self.plan, self.memcpy)
        cb.b.ret_void()
        return fn

    def global_table(self) -> ir.GlobalVariable:
        return _constant(self.module, "cerebro_calls_row", I64, self.table or [0])


class _CallBuilder:
    """Turns table numbers into pointers and node calls inside one @calls function."""

    def __init__(self, fn: ir.Function, weights: ir.GlobalVariable) -> None:
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.inputs, self.outputs, self.arena, self.part, self.parts, self.row, self.slice = fn.args
        self.weights = weights

    def number(self, at: int) -> ir.Value:
        slot = self.b.gep(self.row, [ir.Constant(I64, at)], inbounds=True, source_etype=I64)
        return self.b.load(slot, typ=I64)

    def call(self, node: Node, node_fn: ir.Function, args: list[ir.Value], index: ir.Value, count: int,
             sizes: list[ir.Value]) -> None:
        """The node's function on args (then its size arguments). A parallel node runs on every part
        (slice `index` of `count`: as part index*parts + part of count*parts), any other on part 0 only."""
        if node.op in PARALLEL:
            b = self.b
            part, parts = self.part, self.parts
            if count > 1:
                part = b.add(b.mul(self.parts, index), self.part)
                parts = b.mul(self.parts, ir.Constant(I32, count))
            b.call(node_fn, args + [part, parts] + sizes)
        else:
            with self.b.if_then(self.b.icmp_unsigned("==", self.part, ir.Constant(I32, 0))):
                self.b.call(node_fn, args + sizes)

    def copy_outputs(self, plan: MemoryPlan, memcpy: ir.Function) -> None:
        """Part 0 copies the graph outputs the plan could not place in the caller's buffers."""
        if not any(nbytes for _, _, nbytes in plan.copies):
            return
        with self.b.if_then(self.b.icmp_unsigned("==", self.part, ir.Constant(I32, 0))):
            for source, index, nbytes in plan.copies:
                if nbytes:
                    dst = self.pointer("output", ir.Constant(I64, index))
                    size, volatile = ir.Constant(I64, nbytes), ir.Constant(ir.IntType(1), 0)
                    self.b.call(memcpy, [dst, self.pointer(source.kind, ir.Constant(I64, source.offset)), size,
                                         volatile])

    def pointer(self, kind: str, offset: ir.Value) -> ir.Value:
        """A Place's pointer (Place.kind; offset: its slot or byte offset)."""
        b = self.b
        if kind in ("input", "output"):
            array = self.inputs if kind == "input" else self.outputs
            return b.load(b.gep(array, [offset], inbounds=True, source_etype=PTR), typ=PTR)
        base = self.arena if kind == "arena" else self.weights
        return b.gep(base, [offset], inbounds=True, source_etype=I8)


def _constant(module: ir.Module, name: str, kind: ir.IntType, numbers: list[int]) -> ir.GlobalVariable:
    table = ir.GlobalVariable(module, ir.ArrayType(kind, len(numbers)), name)
    table.global_constant, table.linkage = True, "internal"
    table.initializer = ir.Constant(table.value_type, numbers)
    return table


class _Lookup:
    """A segment list as constant tables and the code finding a number's (pattern, row, slice)."""

    def __init__(self, module: ir.Module, name: str, segments: list[Segment]) -> None:
        self.count = segments[-1].first + segments[-1].length
        self.direct = len(segments) == self.count  # one number per segment: index directly
        columns = {"first": [s.first for s in segments], "pattern": [s.pattern for s in segments],
                   "row": [s.row for s in segments], "slice": [s.slice for s in segments]}
        self.tables = {column: _constant(module, f"cerebro_{name}_{column}", I32, numbers)
                       for column, numbers in columns.items() if column != "first" or not self.direct}
        self.segments = len(segments)

    def find(self, b: ir.IRBuilder, number: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
        """(pattern, row, slice) of a number below self.count."""
        index = number if self.direct else self._search(b, number)
        pattern, row, first_slice = (self._load(b, column, index) for column in ("pattern", "row", "slice"))
        into = ir.Constant(I32, 0) if self.direct else b.sub(number, self._load(b, "first", index))
        return pattern, row, b.add(first_slice, into)

    def _load(self, b: ir.IRBuilder, column: str, index: ir.Value) -> ir.Value:
        slot = b.gep(self.tables[column], [ir.Constant(I64, 0), b.zext(index, I64)], inbounds=True)
        return b.load(slot, typ=I32)

    def _search(self, b: ir.IRBuilder, number: ir.Value) -> ir.Value:
        """The last segment whose first number is at most `number` (the first segment starts at 0)."""
        before = b.block
        loop, halve, done = (b.append_basic_block(f"search_{name}") for name in ("loop", "halve", "done"))
        b.branch(loop)
        b.position_at_end(loop)
        low, high = b.phi(I32), b.phi(I32)
        low.add_incoming(ir.Constant(I32, 0), before)
        high.add_incoming(ir.Constant(I32, self.segments), before)
        b.cbranch(b.icmp_unsigned(">", b.sub(high, low), ir.Constant(I32, 1)), halve, done)
        b.position_at_end(halve)
        middle = b.lshr(b.add(low, high), ir.Constant(I32, 1))
        at_most = b.icmp_unsigned("<=", self._load(b, "first", middle), number)
        low.add_incoming(b.select(at_most, middle, low), halve)
        high.add_incoming(b.select(at_most, high, middle), halve)
        b.branch(loop)
        b.position_at_end(done)
        return low


@dataclass(frozen=True)
class Chunking:
    """The stages and steps run `count` times (passes/batch_chunks.py), run r on the r-th chunk of each input
    and output: the caller's pointers moved by r times the chunk's bytes (one per input and output)."""

    count: int = 1
    input_bytes: tuple[int, ...] = ()
    output_bytes: tuple[int, ...] = ()


UNCHUNKED = Chunking()


def emit_entry(module: ir.Module, table: CallTable, stages: list[Segment], steps: list[Segment],
               chunking: Chunking = UNCHUNKED) -> None:
    """i32 @cerebro_entry(inputs, outputs, arena, stage_word): split the word (abi.h), find the stage (one
    part) or step (more) and call its function; the last step returns LAST_STEP. An index past the last
    or a part outside 0..parts-1 is a bad stage (1). Chunked, number n is n % count of chunk n / count."""
    row_table = table.global_table()
    entry = ir.Function(module, ir.FunctionType(I32, [PTR, PTR, PTR, I32]), "cerebro_entry")
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    blocks = {name: entry.append_basic_block(name) for name in ("bad_stage", "dispatch", "steps", "stages", "call")}
    word = entry.args[3]
    number = b.and_(word, ir.Constant(I32, 0xFFFF))
    part = b.and_(b.lshr(word, ir.Constant(I32, 16)), ir.Constant(I32, 0xFF))
    parts = b.add(b.lshr(word, ir.Constant(I32, 24)), ir.Constant(I32, 1))
    b.cbranch(b.icmp_unsigned("<", part, parts), blocks["dispatch"], blocks["bad_stage"])
    b.position_at_end(blocks["dispatch"])
    b.cbranch(b.icmp_unsigned(">", parts, ir.Constant(I32, 1)), blocks["steps"], blocks["stages"])
    found = []
    for name, segments in (("stages", stages), ("steps", steps)):
        lookup = _Lookup(module, name, segments)
        b.position_at_end(blocks[name])
        inside = entry.append_basic_block(f"{name}_inside")
        total = lookup.count * chunking.count
        b.cbranch(b.icmp_unsigned("<", number, ir.Constant(I32, total)), inside, blocks["bad_stage"])
        b.position_at_end(inside)
        count = ir.Constant(I32, lookup.count)
        pattern, row, slice_ = lookup.find(b, b.urem(number, count) if chunking.count > 1 else number)
        last = b.icmp_unsigned("==", number, ir.Constant(I32, total - 1))
        status = (b.select(last, ir.Constant(I32, LAST_STEP), ir.Constant(I32, 0)) if name == "steps"
                  else ir.Constant(I32, 0))
        chunk = b.udiv(number, count) if chunking.count > 1 else ir.Constant(I32, 0)
        found.append((b.block, pattern, row, slice_, status, chunk))
        b.branch(blocks["call"])
    b.position_at_end(blocks["call"])
    merged = []
    for column in range(1, 6):
        phi = b.phi(I32)
        for item in found:
            phi.add_incoming(item[column], item[0])
        merged.append(phi)
    pattern, row, slice_, status, chunk = merged
    tensors = _chunk_pointers(b, entry.args[:2], chunking, chunk) if chunking.count > 1 else entry.args[:2]
    row_pointer = b.gep(row_table, [ir.Constant(I64, 0), b.zext(row, I64)], inbounds=True)
    switch = b.switch(pattern, blocks["bad_stage"])
    for number_, fn in enumerate(table.functions):
        block = entry.append_basic_block(f"calls{number_}")
        switch.add_case(ir.Constant(I32, number_), block)
        b.position_at_end(block)
        b.call(fn, [*tensors, entry.args[2], part, parts, row_pointer, slice_])
        b.ret(status)
    b.position_at_end(blocks["bad_stage"])
    b.ret(ir.Constant(I32, 1))


def _chunk_pointers(b: ir.IRBuilder, arrays: list[ir.Value], chunking: Chunking, chunk: ir.Value) -> list[ir.Value]:
    """Copies of the input and output pointer arrays, each pointer moved to the chunk's rows."""
    moved = []
    for array, sizes in zip(arrays, (chunking.input_bytes, chunking.output_bytes)):
        copy = b.alloca(ir.ArrayType(PTR, max(len(sizes), 1)))
        for slot, size in enumerate(sizes):
            at = [ir.Constant(I64, slot)]
            source = b.load(b.gep(array, at, inbounds=True, source_etype=PTR), typ=PTR)
            offset = b.mul(b.zext(chunk, I64), ir.Constant(I64, size))
            b.store(b.gep(source, [offset], inbounds=True, source_etype=I8),
                    b.gep(copy, [ir.Constant(I64, 0), ir.Constant(I64, slot)], inbounds=True))
        moved.append(b.bitcast(copy, PTR))
    return moved

