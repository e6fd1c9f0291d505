"""The model's stages and steps as lists of node calls in one constant table, walked by one loop.

A stage (or step, or slice of a sliced node) is a list of node calls on the memory plan's pointers.
Each call is an entry of the i64 table @cerebro_calls_row: the node function's number, for a parallel
one its slice index (SLICE: the stage's slice) and slice count, a (base, byte offset) pair per buffer
(CallTable.bases: the arena, the weights, each input and each output), then its size arguments. A stage
is (row, number of calls); cerebro_entry walks its entries and switches on the function number to a case
that reads that function's arguments and calls it. So the code grows with the distinct node functions,
not with the distinct call lists: swin_t's 225 stage and step list functions and the entry took 0.60 s of
LLVM on one core, the one entry walking the table 0.31 s. Identical lists share a row.

Stages are looked up in segments: a segment is one stage, or a run of stages that only continue one
node's slices (a node cut into thousands of slices is one segment: the slice is the segment's first
plus the stage's distance from its start), found by binary search over the segments' first stages.
Steps are one segment each, indexed directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.cbx.format import LAST_STEP, WHOLE_STEP_PART
from cerebro.compiler.codegen import PARALLEL
from cerebro.compiler.codegen.llvm_types import stack_array
from cerebro.compiler.codegen.loops import for_range
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.plan import MemoryPlan

PTR = ir.PointerType()
I8, I32, I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
SLICE = None  # a call's index: the function's slice argument (a segment of continuing slices)
SLICE_WORD = -1  # SLICE in the table
COPIES = (1 << 31) - 1  # the function number of the plan's output copies (after any node function's)


@dataclass(frozen=True)
class Call:
    """One node call: slice `index` (SLICE: the slice argument) of `count`, with these size arguments."""

    node: Node
    fn: ir.Function
    index: int | None = 0
    count: int = 1
    sizes: tuple[int, ...] = ()


@dataclass
class Segment:
    """Stages first .. first+length-1 (or one step): the `calls` calls from table row `row`, with slice
    `slice` + the stage's distance from first."""

    first: int
    length: int
    calls: int
    row: int
    slice: int = 0


class CallTable:
    """The table of call entries and the node functions they name (numbered in order met); the plan's
    output copies are one more entry, numbered after every function."""

    def __init__(self, module: ir.Module, plan: MemoryPlan, inputs: int, outputs: int) -> None:
        self.module, self.plan, self.inputs, self.outputs = module, plan, inputs, outputs
        self.bases = {"arena": 0, "weights": 1, "input": 2, "output": 2 + inputs}  # + the slot for tensors
        self.base_count = 2 + inputs + outputs
        self.functions: dict[str, tuple[int, ir.Function, bool, int, int]] = {}  # name -> (number, fn, ...)
        self.rows: dict[tuple[int, ...], int] = {}
        self.table: list[int] = []

    def add(self, calls: list[Call], copies: bool) -> tuple[int, int]:
        """(number of entries, row) of a stage making these calls (copies: then the plan's output copies)."""
        row: list[int] = []
        for call in calls:
            entry = [self._number(call)]
            if call.node.op in PARALLEL:
                entry += [SLICE_WORD if call.index is SLICE else call.index, call.count]
            for value in call.node.inputs + call.node.outputs:
                place = self.plan.place(value)
                io = place.kind in ("input", "output")
                entry += [self.bases[place.kind] + place.offset * io, 0 if io else place.offset]
            row += [entry[0] + (len(entry) + len(call.sizes) << 32), *entry[1:], *call.sizes]
        if copies:
            row.append(COPIES + (1 << 32))
        if tuple(row) not in self.rows:
            self.rows[tuple(row)] = len(self.table)
            self.table += row
        return len(calls) + copies, self.rows[tuple(row)]

    def _number(self, call: Call) -> int:
        known = self.functions.get(call.fn.name)
        if known is None:
            pointers = len(call.node.inputs) + len(call.node.outputs)
            known = (len(self.functions), call.fn, call.node.op in PARALLEL, pointers, len(call.sizes))
            self.functions[call.fn.name] = known
        return known[0]

    def global_table(self) -> ir.GlobalVariable:
        return _constant(self.module, "cerebro_calls_row", I64, self.table or [0])


class _Walker:
    """The loop in cerebro_entry over a stage's entries: reads each entry's function number, switches to
    its case, which makes the call from the entry's words and moves to the next entry."""

    def __init__(self, entry: ir.Function, b: ir.IRBuilder, table: CallTable, row_table: ir.GlobalVariable,
                 bases: ir.Value, bad: ir.Block) -> None:
        self.entry, self.b, self.table, self.row_table, self.bases, self.bad = entry, b, table, row_table, bases, bad

    def walk(self, calls: ir.Value, row: ir.Value, part: ir.Value, parts: ir.Value, slice_: ir.Value,
             status: ir.Value) -> None:
        """Run the calls: an entry's first word is its function's number plus its length in words << 32, so
        the next entry's place is known before the switch (a phi of each case's length made InstCombine's
        known bits cost 0.1 s on swin_t's 110 cases)."""
        b = self.b
        start = b.zext(row, I64)
        before = b.block
        head, body, done = (self.entry.append_basic_block(f"walk_{name}") for name in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        done_calls, at = b.phi(I32), b.phi(I64)
        done_calls.add_incoming(ir.Constant(I32, 0), before)
        at.add_incoming(start, before)
        b.cbranch(b.icmp_unsigned("<", done_calls, calls), body, done)
        b.position_at_end(body)
        words = b.gep(self.row_table, [ir.Constant(I64, 0), at], inbounds=True)
        first = self._word(words, 0)
        latch = self.entry.append_basic_block("walk_latch")
        switch = b.switch(b.trunc(first, I32), self.bad)
        for number, fn, parallel, pointers, sizes in self.table.functions.values():
            block = self.entry.append_basic_block(f"call{number}")
            switch.add_case(ir.Constant(I32, number), block)
            b.position_at_end(block)
            self._call(words, fn, parallel, pointers, sizes, part, parts, slice_)
            b.branch(latch)
        block = self.entry.append_basic_block("copies")
        switch.add_case(ir.Constant(I32, COPIES), block)
        b.position_at_end(block)
        self._copy_outputs(part)
        b.branch(latch)
        b.position_at_end(latch)
        at.add_incoming(b.add(at, b.lshr(first, ir.Constant(I64, 32))), latch)
        done_calls.add_incoming(b.add(done_calls, ir.Constant(I32, 1)), latch)
        b.branch(head)
        b.position_at_end(done)
        b.ret(status)

    def _word(self, words: ir.Value, at: int) -> ir.Value:
        return self.b.load(self.b.gep(words, [ir.Constant(I64, at)], inbounds=True, source_etype=I64), typ=I64)

    def _call(self, words: ir.Value, fn: ir.Function, parallel: bool, pointers: int, sizes: int,
              part: ir.Value, parts: ir.Value, slice_: ir.Value) -> None:
        """The call of one entry's function. A parallel node runs on every part
        (slice `index` of `count`: as part index*parts + part of count*parts), any other on part 0 only."""
        b = self.b
        at = 1 + 2 * parallel
        args = []
        for k in range(pointers):
            base = b.load(b.gep(self.bases, [self._word(words, at + 2 * k)], inbounds=True, source_etype=PTR), typ=PTR)
            args.append(b.gep(base, [self._word(words, at + 2 * k + 1)], inbounds=True, source_etype=I8))
        at += 2 * pointers
        args += [self._word(words, at + k) for k in range(sizes)]
        if parallel:
            index = b.trunc(self._word(words, 1), I32)
            index = b.select(b.icmp_signed("<", index, ir.Constant(I32, 0)), slice_, index)
            count = b.trunc(self._word(words, 2), I32)
            b.call(fn, args[:pointers] + [b.add(b.mul(parts, index), part), b.mul(parts, count)] + args[pointers:])
        else:
            with b.if_then(b.icmp_unsigned("==", part, ir.Constant(I32, 0))):
                b.call(fn, args)

    def _copy_outputs(self, part: ir.Value) -> None:
        """Part 0 copies the graph outputs the plan could not place in the caller's buffers."""
        plan, b = self.table.plan, self.b
        if not any(nbytes for _, _, nbytes in plan.copies):
            return
        memcpy = self.table.module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
        with b.if_then(b.icmp_unsigned("==", part, ir.Constant(I32, 0))):
            for source, index, nbytes in plan.copies:
                if nbytes:
                    dst, src = self._pointer("output", index), self._pointer(source.kind, source.offset)
                    b.call(memcpy, [dst, src, ir.Constant(I64, nbytes), ir.Constant(ir.IntType(1), 0)])

    def _pointer(self, kind: str, offset: int) -> ir.Value:
        """A Place's pointer (Place.kind; offset: its slot or byte offset)."""
        io = kind in ("input", "output")
        slot = ir.Constant(I64, self.table.bases[kind] + offset * io)
        base = self.b.load(self.b.gep(self.bases, [slot], inbounds=True, source_etype=PTR), typ=PTR)
        return base if io else self.b.gep(base, [ir.Constant(I64, offset)], inbounds=True, source_etype=I8)


def _constant(module: ir.Module, name: str, kind: ir.IntType, numbers: list[int]) -> ir.GlobalVariable:
    table = ir.GlobalVariable(module, ir.ArrayType(kind, len(numbers)), name)
    table.global_constant, table.linkage = True, "internal"
    table.initializer = ir.Constant(table.value_type, numbers)
    return table


class _Lookup:
    """A segment list as constant tables and the code finding a number's (calls, row, slice)."""

    def __init__(self, module: ir.Module, name: str, segments: list[Segment]) -> None:
        self.count = _numbers(segments)
        self.direct = len(segments) == self.count  # one number per segment: index directly
        columns = {"first": [s.first for s in segments], "calls": [s.calls for s in segments],
                   "row": [s.row for s in segments], "slice": [s.slice for s in segments]}
        self.tables = {column: _constant(module, f"cerebro_{name}_{column}", I32, numbers)
                       for column, numbers in columns.items() if column != "first" or not self.direct}
        self.segments = len(segments)

    def find(self, b: ir.IRBuilder, number: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
        """(calls, row, slice) of a number below self.count."""
        index = number if self.direct else self._search(b, number)
        calls, row, first_slice = (self._load(b, column, index) for column in ("calls", "row", "slice"))
        into = ir.Constant(I32, 0) if self.direct else b.sub(number, self._load(b, "first", index))
        return calls, row, b.add(first_slice, into)

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


REGION_ALIGN = 4096  # a chunk's arena region starts on its own page: no line shared between threads


@dataclass(frozen=True)
class Chunking:
    """The stages and steps run `count` times (passes/batch_chunks.py), run r on the r-th chunk of each input
    and output: the caller's pointers moved by r times the chunk's bytes (one per input and output).

    With `regions` > 1 a split call runs the chunks in parallel instead (emit_entry): up to `regions`
    groups of parts each run their share of the chunks, stage after stage as with one part, in an arena
    region of their own, region_bytes apart. The host decides how many regions it allocates (cbx.h
    cbx_arena_bytes): min(parts, regions); meta.arena_size is one region's, what one part needs."""

    count: int = 1
    input_bytes: tuple[int, ...] = ()
    output_bytes: tuple[int, ...] = ()
    regions: int = 1

    def region_bytes(self, plan_bytes: int) -> int:
        """Bytes between consecutive regions (meta.region_size): the plan's arena, page aligned; 0 with one."""
        return -(-plan_bytes // REGION_ALIGN) * REGION_ALIGN if self.regions > 1 else 0


UNCHUNKED = Chunking()


def emit_entry(module: ir.Module, table: CallTable, weights: ir.GlobalVariable, stages: list[Segment],
               steps: list[Segment], chunking: Chunking = UNCHUNKED) -> None:
    """i32 @cerebro_entry(inputs, outputs, arena, stage_word): split the word (abi.h), find the stage (one
    part) or step (more) and walk its calls; the last step returns LAST_STEP. A whole step (abi.h
    CEREBRO_WHOLE_STEP: one thread) is that step, every node whole: stage slices, cut for the kernel's FPU
    sections, each read a conv's weights again, and a matmul's tiles prefetch the next panel only within a
    slice (one Xeon core, same bits: squeezenet1_1 b1 1.10x, resnet18 b8 1.22x; BERT b1 1.19x, GPT-2 b1
    1.18x with codegen/matmul.py's stream_fetches). An index past the last, a part outside 0..parts-1 or an
    unknown function number is a bad stage (1).
    Chunked, number n is n % count of chunk n / count. Chunked with regions, the stages are walked by
    @cerebro_stages, which the entry calls for one part and, for a split call, in one step running the
    chunks in parallel (_emit_parallel_entry); the steps' lists are not emitted."""
    row_table = table.global_table()
    signature = ir.FunctionType(I32, [PTR, PTR, PTR, I32])
    parallel = chunking.regions > 1
    entry = ir.Function(module, signature, "cerebro_entry")
    walker = ir.Function(module, signature, "cerebro_stages") if parallel else entry
    if parallel:
        walker.linkage = "internal"
        walker.attributes.add("noinline")  # two calls: one copy of the walk
        _emit_parallel_entry(entry, walker, chunking, _numbers(stages), table.plan.arena_size)
    b = ir.IRBuilder(walker.append_basic_block("entry"))
    blocks = {name: walker.append_basic_block(name) for name in ("bad_stage", "dispatch", "steps", "stages", "call")}
    number, part, parts, whole = _decode(b, walker.args[3])
    b.cbranch(b.icmp_unsigned("<", part, parts), blocks["dispatch"], blocks["bad_stage"])
    b.position_at_end(blocks["dispatch"])
    split = b.icmp_unsigned(">", parts, ir.Constant(I32, 1))
    b.cbranch(b.or_(split, whole), blocks["steps"], blocks["stages"])
    if parallel:  # the entry calls the walker with one part only
        b.position_at_end(blocks["steps"])
        b.branch(blocks["bad_stage"])
    found = []
    for name, segments in (("stages", stages),) + ((("steps", steps),) if not parallel else ()):
        lookup = _Lookup(module, name, segments)
        b.position_at_end(blocks[name])
        inside = walker.append_basic_block(f"{name}_inside")
        total = lookup.count * chunking.count
        b.cbranch(b.icmp_unsigned("<", number, ir.Constant(I32, total)), inside, blocks["bad_stage"])
        b.position_at_end(inside)
        count = ir.Constant(I32, lookup.count)
        calls, row, slice_ = lookup.find(b, b.urem(number, count) if chunking.count > 1 else number)
        last = b.icmp_unsigned("==", number, ir.Constant(I32, total - 1))
        status = (b.select(last, ir.Constant(I32, LAST_STEP), ir.Constant(I32, 0)) if name == "steps"
                  else ir.Constant(I32, 0))
        chunk = b.udiv(number, count) if chunking.count > 1 else ir.Constant(I32, 0)
        found.append((b.block, calls, row, slice_, status, chunk))
        b.branch(blocks["call"])
    b.position_at_end(blocks["call"])
    merged = []
    for column in range(1, 6):
        phi = b.phi(I32)
        for item in found:
            phi.add_incoming(item[column], item[0])
        merged.append(phi)
    calls, row, slice_, status, chunk = merged
    bases = _bases(b, table, walker.args[:3], weights, chunking, chunk)
    _Walker(walker, b, table, row_table, bases, blocks["bad_stage"]).walk(calls, row, part, parts, slice_, status)
    b.position_at_end(blocks["bad_stage"])
    b.ret(ir.Constant(I32, 1))


def _decode(b: ir.IRBuilder, word: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value, ir.Value]:
    """(index, part, parts, whole) of a stage word (abi.h); a whole step (CEREBRO_WHOLE_STEP) is part 0 of 1."""
    number = b.and_(word, ir.Constant(I32, 0xFFFF))
    part = b.and_(b.lshr(word, ir.Constant(I32, 16)), ir.Constant(I32, 0xFF))
    parts = b.add(b.lshr(word, ir.Constant(I32, 24)), ir.Constant(I32, 1))
    whole = b.and_(b.icmp_unsigned("==", parts, ir.Constant(I32, 1)),
                   b.icmp_unsigned("==", part, ir.Constant(I32, WHOLE_STEP_PART)))
    return number, b.select(whole, ir.Constant(I32, 0), part), parts, whole


def _numbers(segments: list[Segment]) -> int:
    """How many numbers (stages of one chunk, or steps) a segment list covers."""
    return segments[-1].first + segments[-1].length


def _emit_parallel_entry(entry: ir.Function, stages: ir.Function, chunking: Chunking, stage_count: int,
                         plan_bytes: int) -> None:
    """The entry of a chunked graph with regions: one part runs `stages` (the word as it is); a split call
    is one step. Its parts fall in G = min(regions, parts) groups of consecutive parts (the host's threads
    each own a run of parts, pool.c); the first part of group g runs chunks [count*g/G, count*(g+1)/G),
    each through every stage as with one part, on arena region g; the other parts have nothing to do. No
    step boundary between stages: two threads each run a whole chunk, where splitting every stage made
    them meet ~100 times a call (squeezenet1_1 b8). Each chunk is computed as with one thread, so results
    are the same bits. (A function apart from the walker: cerebro.ko's stack check refuses recursion.)"""
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    inputs, outputs, arena, word = entry.args
    number, part, parts, _ = _decode(b, word)  # a whole step: the walker refuses it (no steps here)
    one, last = ir.Constant(I32, 1), ir.Constant(I32, LAST_STEP)
    alone, split, step = (entry.append_basic_block(name) for name in ("alone", "split", "chunks_step"))
    b.cbranch(b.icmp_unsigned("==", parts, one), alone, split)
    b.position_at_end(alone)
    b.ret(b.call(stages, [inputs, outputs, arena, word]))
    b.position_at_end(split)
    bad = b.or_(b.icmp_unsigned(">=", part, parts), b.icmp_unsigned("!=", number, ir.Constant(I32, 0)))
    bad_stage = entry.append_basic_block("bad_stage")
    b.cbranch(bad, bad_stage, step)
    b.position_at_end(bad_stage)
    b.ret(one)
    b.position_at_end(step)
    regions = ir.Constant(I32, chunking.regions)
    groups = b.select(b.icmp_unsigned("<", parts, regions), parts, regions)
    group = b.udiv(b.mul(part, groups), parts)
    leader = b.udiv(b.add(b.mul(group, parts), b.sub(groups, one)), groups)  # ceil(group * parts / groups)
    run, done = entry.append_basic_block("chunks_run"), entry.append_basic_block("chunks_done")
    b.cbranch(b.icmp_unsigned("==", part, leader), run, done)
    b.position_at_end(run)
    region = b.gep(arena, [b.mul(b.zext(group, I64), ir.Constant(I64, chunking.region_bytes(plan_bytes)))],
                   inbounds=True, source_etype=I8)
    count = ir.Constant(I64, chunking.count)
    group64, groups64 = b.zext(group, I64), b.zext(groups, I64)
    lo = b.udiv(b.mul(count, group64), groups64)
    hi = b.udiv(b.mul(count, b.add(group64, ir.Constant(I64, 1))), groups64)
    with for_range(b, hi, "chunk", start=lo) as chunk:
        with for_range(b, stage_count, "chunk_stage") as stage:
            stage_word = b.trunc(b.add(b.mul(chunk, ir.Constant(I64, stage_count)), stage), I32)
            status = b.call(stages, [inputs, outputs, region, stage_word])
            failed, fine = entry.append_basic_block("chunk_failed"), entry.append_basic_block("chunk_fine")
            b.cbranch(b.icmp_unsigned("!=", status, ir.Constant(I32, 0)), failed, fine)
            b.position_at_end(failed)
            b.ret(status)
            b.position_at_end(fine)
    b.branch(done)
    b.position_at_end(done)
    b.ret(last)


def _bases(b: ir.IRBuilder, table: CallTable, args: list[ir.Value], weights: ir.GlobalVariable,
           chunking: Chunking, chunk: ir.Value) -> ir.Value:
    """The pointers an entry's (base, offset) pairs start from, in an array: the arena, the weights, then
    each input and output pointer, chunked: moved to the chunk's rows."""
    inputs, outputs, arena = args
    bases = stack_array(b, PTR, table.base_count, "bases")
    pointers = [arena, b.bitcast(weights, PTR)]
    for array, count, sizes in ((inputs, table.inputs, chunking.input_bytes),
                                (outputs, table.outputs, chunking.output_bytes)):
        for slot in range(count):
            pointer = b.load(b.gep(array, [ir.Constant(I64, slot)], inbounds=True, source_etype=PTR), typ=PTR)
            if chunking.count > 1:
                offset = b.mul(b.zext(chunk, I64), ir.Constant(I64, sizes[slot]))
                pointer = b.gep(pointer, [offset], inbounds=True, source_etype=I8)
            pointers.append(pointer)
    for slot, pointer in enumerate(pointers):
        b.store(pointer, b.gep(bases, [ir.Constant(I64, slot)], inbounds=True, source_etype=PTR))
    return b.bitcast(bases, PTR)
