"""Batch chunking: a batch too big for the cache runs as consecutive chunks of a smaller batch.

At batch 8 a CNN's or ViT's activations (7-38 MB) overflow this machine's 16 MB L3, and every layer
streams them from memory. Where each sample's output depends only on that sample's inputs, the graph
is rebatched to batch c (a divisor of N) and the compiled batch-c stages run N/c times over
consecutive chunks of the inputs and outputs (codegen/calls.py offsets the caller's pointers), so one
chunk's intermediates stay in cache and the memory plan reuses them for the next. A call split across
threads runs its chunks in parallel instead, each thread its share of the chunks in its own copy of the
plan's arena (a region; the host allocates one per thread it splits the call across), with no meeting
between stages. Compile time does not grow: the whole pipeline runs
once, on the batch-c graph.

A batch-carrying value has a Split: dim `axis` is outer * N * inner, the sample being (i // inner) % N
of an index i along it (a reshape [8, 197, 768] -> [1576, 768] makes inner 197; PyTorch attention's
[197 * 8, 768] makes outer 197). Every input has N rows (Split(0, 1, 1)) and every output must end with
Split(0, 1, inner), so that sample blocks are contiguous in the caller's buffers. RULES says, per op
kind, whether an op keeps samples apart and how its attributes are rebatched; an op without a rule,
or one that mixes samples (a reduction or a matmul over the batch, a slice of it), leaves the graph
as it is. Values computed from constants alone are shared; one the size of the batch (a broadcast
class token, a constant whose every sample block is equal) is rebuilt at batch c. Each chunk reads the
weights again, so a graph whose weights pass half its peak of live activations is not chunked, unless
nearly all of them feed dense layers that see >= DENSE_CHUNK_ROWS rows a chunk (a transformer's). Such a
graph runs as two chunks or more even where its activations fit the budget (parallel_size): its threads
then run chunks instead of meeting after every stage. rule_size is the choice; chunk_batch(size=) forces
another (benchmarks/batch_chunks.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from cerebro.compiler.cbx.format import MAX_PARTS
from cerebro.compiler.ir import Graph, IRError, Node, Value
from cerebro.compiler.ir.ops import OPS
from cerebro.compiler.ir.plan import VIEW_OPS

# The most bytes of live activations (batch N's peak over the graph, in graph order, scaled by c / N)
# a chunk may hold: this machine's L3 (EPYC Zen 2, 16 MB; L2 512 KB a core). Zoo at batch 8, one pinned
# thread, interleaved medians (load 9-13): 16 MB picks c = 2 for squeezenet1_1 (48 MB peak; 0.88x the
# time of c = 8, c = 1 0.90x) and mobilenet_v3_large (49 MB; 0.89x, c = 1 0.94x), c = 1 for densenet121
# (64.3 MB; 0.79x, c = 2 0.86x); docs/benchmarks.md "Batch chunks". A constant, not the compiling machine's
# cache, so a .cbx does not depend on where it was built. On Zen 4 (L3 32 MB, shared with other tenants; L2
# 1 MB) 16 MB still picks the best or near it (pinned CPU time, load 5-6): densenet121 c = 1 0.875x of c = 8
# (32 MB would pick c = 2, 0.924x), mobilenet_v3_large c = 2 0.871x (c = 4 0.860x); the own transformer b64
# (52 MB) c = 16 0.90x, but c = 8 0.82x (a smaller budget for attention graphs: not measured further).
CACHE_BUDGET = 16 << 20


class NotSeparable(Exception):
    """The graph mixes samples somewhere (or uses an op without a rule): it is left as it is."""


@dataclass(frozen=True)
class Split:
    """shape[axis] == outer * batch * inner; the sample of index i along axis is (i // inner) % batch."""

    axis: int
    outer: int
    inner: int

    def dim(self, batch: int) -> int:
        return self.outer * batch * self.inner

    def resize(self, shape: tuple[int, ...], batch: int) -> tuple[int, ...]:
        return shape[:self.axis] + (self.dim(batch),) + shape[self.axis + 1:]


# How many chunks a split call may run at once, each group of parts on its own share of the chunks in its
# own arena region (codegen/calls.py emit_entry): every chunk, up to the most parts a call has. The host
# allocates min(its parts, this) regions (cbx.h cbx_arena_bytes; one in the kernel), so the count is a bound,
# not memory, and the same model compiles to the same bytes on any machine (it was the compiling machine's
# CPUs, which made a .cbx from a 64-CPU box ask every host for 64 regions). Splitting every stage of a chunk
# across the threads instead is why grouped/depthwise CNNs used to be kept whole: chunked, they lost on two
# threads what they gained on one (efficientnet_b0 b8 vs ORT 1.15x pinned, 0.81x on two threads). Chunks in
# parallel, 2 threads, A/B in one process against the stage-split build (load 7-11): squeezenet1_1 b8 0.68x
# the time, shufflenet_v2 0.65x, mobilenet_v3_large 0.75x, efficientnet_b0 0.78x.
PARALLEL_CHUNKS = MAX_PARTS


@dataclass(frozen=True)
class Chunks:
    """The graph to compile (batch `size`), how many times its stages run (count 1: not chunked) and how
    many chunks a split call runs at once (regions: 1, the stages are split instead)."""

    graph: Graph
    count: int
    regions: int = 1


# A rule: (node, each input's Split or None) -> (new attrs, per input without a Split the Split it must be
# rebuilt along or None to share it, each output's Split). It raises NotSeparable where samples mix.
Rule = Callable[[Node, list[Split | None]], tuple[dict, list[Split | None], list[Split]]]


def _one(splits: list[Split | None]) -> Split:
    """The Split every batch-carrying input shares."""
    found = {s for s in splits if s is not None}
    if len(found) != 1:
        raise NotSeparable("inputs carry the batch differently")
    return found.pop()


def _along(values: list[Value], splits: list[Split | None], split: Split) -> list[Split | None]:
    """Shared inputs that broadcast along the batch axis (size 1) stay shared; others are rebuilt."""
    return [None if s is not None or v.shape[split.axis] == 1 else split for v, s in zip(values, splits)]


def _elementwise(node: Node, splits: list[Split | None]) -> tuple:
    split = _one(splits)
    return node.attrs, _along(node.inputs, splits, split), [split]


def _keeps_axis(node: Node, splits: list[Split | None]) -> tuple:
    """Ops working along one axis (attrs["axis"]) other than the batch's: cumulative, argsort's last."""
    split = _one(splits)
    axis = node.attrs["axis"] if "axis" in node.attrs else node.inputs[0].rank - 1
    if axis == split.axis:
        raise NotSeparable(f"{node.op} along the batch axis")
    return node.attrs, [None], [split]


def _reduce(node: Node, splits: list[Split | None]) -> tuple:
    split = _one(splits)
    axes = tuple(node.attrs["axes"]) if "axes" in node.attrs else (node.attrs["axis"],)
    if split.axis in axes:
        raise NotSeparable("a reduction over the batch axis")
    return node.attrs, [None], [replace(split, axis=split.axis - sum(a < split.axis for a in axes))]


def _broadcast_in_dim(node: Node, splits: list[Split | None], batch: int) -> tuple:
    (split,) = splits
    axis = node.attrs["broadcast_dimensions"][split.axis]
    out = replace(split, axis=axis)
    return {**node.attrs, "shape": out.resize(tuple(node.attrs["shape"]), batch)}, [None], [out]


def _reshape(node: Node, splits: list[Split | None], batch: int) -> tuple:
    (split,) = splits
    source, target = node.inputs[0].shape, tuple(node.attrs["shape"])
    before = math.prod(source[:split.axis]) * split.outer  # elements' blocks before the sample index
    after = split.inner * math.prod(source[split.axis + 1:])  # ... and after it
    for axis in range(len(target)):
        pre, post = math.prod(target[:axis]), math.prod(target[axis + 1:])
        if before % pre == 0 and after % post == 0:
            out = Split(axis, before // pre, after // post)
            return {"shape": out.resize(target, batch)}, [None], [out]
    raise NotSeparable(f"reshape {source} -> {target} spreads a sample over several dims")


def _transpose(node: Node, splits: list[Split | None]) -> tuple:
    (split,) = splits
    return node.attrs, [None], [replace(split, axis=list(node.attrs["perm"]).index(split.axis))]


def _slice(node: Node, splits: list[Split | None], batch: int) -> tuple:
    (split,) = splits
    a, full = split.axis, node.inputs[0].shape[split.axis]
    strides = node.attrs.get("strides") or (1,) * node.inputs[0].rank
    if (node.attrs["start"][a], node.attrs["limit"][a], strides[a]) != (0, full, 1):
        raise NotSeparable("a slice of the batch axis")
    limit = list(node.attrs["limit"])
    limit[a] = split.dim(batch)
    return {**node.attrs, "limit": tuple(limit)}, [None], [split]


def _pad(node: Node, splits: list[Split | None]) -> tuple:
    (split,) = splits
    a = split.axis
    interior = node.attrs.get("interior") or (0,) * node.inputs[0].rank
    if node.attrs["lo"][a] or node.attrs["hi"][a] or interior[a]:
        raise NotSeparable("padding along the batch axis")
    return node.attrs, [None], [split]


def _concatenate(node: Node, splits: list[Split | None]) -> tuple:
    split = _one(splits)
    if node.attrs["axis"] == split.axis:
        raise NotSeparable("a concatenation along the batch axis")
    return node.attrs, _along(node.inputs, splits, split), [split]


def _rev(node: Node, splits: list[Split | None]) -> tuple:
    (split,) = splits
    if split.axis in node.attrs["dims"]:
        raise NotSeparable("a reversal of the batch axis")
    return node.attrs, [None], [split]


def _take(node: Node, splits: list[Split | None]) -> tuple:
    (x_split, index_split), axis = splits, node.attrs["axis"]
    if x_split is not None and index_split is None and x_split.axis != axis:
        moved = x_split.axis if x_split.axis < axis else x_split.axis + node.inputs[1].rank - 1
        return node.attrs, [None, None], [replace(x_split, axis=moved)]
    if x_split is None and index_split is not None:  # an embedding lookup: a table row per index
        return node.attrs, [None, None], [replace(index_split, axis=axis + index_split.axis)]
    raise NotSeparable("a gather along the batch axis")


def _matmul(node: Node, splits: list[Split | None]) -> tuple:
    """a[*B, M, K] @ b[*B, K, N]: the batch in B (both operands), in a's rows or in b's columns."""
    (a_split, b_split), rank = splits, node.inputs[0].rank
    split = _one(splits)
    if split.axis < rank - 2:
        return node.attrs, _along(node.inputs, splits, split), [split]
    if b_split is None and split.axis == rank - 2:
        return node.attrs, [None, None], [split]
    if a_split is None and split.axis == rank - 1:
        return node.attrs, [None, None], [split]
    raise NotSeparable("a matmul summing over the batch")


def _conv(node: Node, splits: list[Split | None]) -> tuple:
    x_split, w_split = splits
    if x_split is None or w_split is not None or x_split.axis != 0:
        raise NotSeparable("a conv mixing the batch")
    return node.attrs, [None, None], [x_split]


def _reduce_window(node: Node, splits: list[Split | None]) -> tuple:
    (split,) = splits
    a = split.axis
    if (node.attrs["window"][a], node.attrs["strides"][a], tuple(node.attrs["padding"][a])) != (1, 1, (0, 0)):
        raise NotSeparable("a window along the batch axis")
    return node.attrs, [None], [split]


def _sized(rule: Callable[[Node, list[Split | None], int], tuple]) -> Callable[[int], Rule]:
    return lambda batch: lambda node, splits: rule(node, splits, batch)


def _plain(rule: Rule) -> Callable[[int], Rule]:
    return lambda batch: rule


# op kind (ops.OPS[op].kind) -> its rule at the new batch
RULES: dict[str, Callable[[int], Rule]] = {
    "unary": _plain(_elementwise), "binary": _plain(_elementwise), "compare": _plain(_elementwise),
    "select": _plain(_elementwise), "convert": _plain(_elementwise),
    "reduce": _plain(_reduce), "argreduce": _plain(_reduce), "cumulative": _plain(_keeps_axis),
    "argsort": _plain(_keeps_axis), "broadcast_in_dim": _sized(_broadcast_in_dim), "reshape": _sized(_reshape),
    "transpose": _plain(_transpose), "slice": _sized(_slice), "pad": _plain(_pad),
    "concatenate": _plain(_concatenate), "rev": _plain(_rev), "take": _plain(_take), "matmul": _plain(_matmul),
    "conv": _plain(_conv), "reduce_window": _plain(_reduce_window),
}


def peak_live_bytes(graph: Graph) -> int:
    """The most bytes of non-constant values alive at once, nodes in graph order (views cost nothing)."""
    last: dict[int, int] = {}
    for step, node in enumerate(graph.nodes):
        for value in node.inputs:
            last[value.id] = step
    for value in graph.outputs:
        last[value.id] = len(graph.nodes)
    live = sum(v.nbytes for v in graph.inputs)
    peak, ends = live, {}
    for v in graph.inputs:
        ends.setdefault(last.get(v.id, -1), []).append(v.nbytes)
    for step, node in enumerate(graph.nodes):
        if node.op not in VIEW_OPS:
            for value in node.outputs:
                live += value.nbytes
                ends.setdefault(last.get(value.id, step), []).append(value.nbytes)
        peak = max(peak, live)
        live -= sum(ends.pop(step, []))
    return peak


# Rows of a chunk each weight matmul must keep for its weights to be worth streaming once a chunk: a
# transformer whose every dense layer sees >= this many rows a chunk does as much work per weight byte as
# at batch 8, while its attention and row kernels stay in cache. One pinned core, batch 8 vs chunks of
# 1 / 2 (the zoo's exports, load ~2, 2026-12-06): vit_b_16 (197 rows a sample) 0.86x the time at c = 1,
# bert 0.94 / 0.93x and t5_encoder 0.93 / 0.90x (128), whisper_encoder 0.97x (c = 1); gpt2 (32 rows)
# 1.24 / 1.07x. 128 rows a chunk is too few: each weight does 128 FMAs a chunk, and another pass over
# gpt2's 340 MB from memory (~28 ms at 12 GB/s) costs a fifth of a chunk's FMAs: on a Xeon core (2026-12-07,
# benchmarks/batch_chunks.py, 7 rounds) gpt2 b8 in chunks of 4 (128 rows) took 1.17x the time of the whole
# batch pinned and 1.06x on two threads, where t5_encoder and whisper_encoder in chunks of 4 (512 and 1500
# rows) took 1.02-1.03x pinned and 0.97x / 0.85x on two threads.
DENSE_CHUNK_ROWS = 256


def dense_rows_reuse_weights(graph: Graph, batch: int, size: int) -> bool:
    """Nearly all matmul and conv weights (all but 1/8, as a classifier head's or a patch embedding's)
    feed matmuls with >= DENSE_CHUNK_ROWS rows in the chunk. Conv weights count against: ResNet50's late
    layers see 49 pixels a sample."""
    reused = other = 0
    for node in graph.nodes:
        weights = sum(v.nbytes for v in node.inputs if v.is_const and v.rank >= 2)
        if not weights or node.op not in ("matmul", "conv"):
            continue  # an embedding's table (a chunk reads the rows it takes), an elementwise constant
        a = node.inputs[0]
        if node.op == "matmul" and not a.is_const and math.prod(a.shape[:-1]) // batch * size >= DENSE_CHUNK_ROWS:
            reused += weights
        else:
            other += weights
    return reused > 0 and 8 * other <= reused + other


def chunk_size(batch: int, peak: int, budget: int) -> int:
    """The largest divisor of batch whose share of the peak fits the budget (at least 1)."""
    fitting = [c for c in range(1, batch + 1) if batch % c == 0 and peak * c <= budget * batch]
    return max(fitting, default=1)


def batch_of(graph: Graph) -> int | None:
    """N when every input has N >= 2 rows, else None."""
    rows = {v.shape[0] if v.rank else 0 for v in graph.inputs}
    batch = rows.pop() if len(rows) == 1 else 0
    return batch if batch >= 2 else None


def parallel_size(graph: Graph, batch: int) -> int:
    """The largest chunk of at most half the batch whose dense layers keep DENSE_CHUNK_ROWS rows (the batch
    itself where none does): a transformer runs as >= 2 chunks even where its activations fit the cache,
    so that two threads run a chunk each instead of splitting and meeting after every stage. Zen 4, batch 8,
    c = 4 against the whole batch in one process, 8 rounds in rotated order (load 5.5; pinned: process CPU
    time; two threads: CPU time, then wall): t5_encoder (12 MB peak) 0.98x pinned, 0.89x / 1.07x two threads
    (an earlier 7 rounds: 0.88x wall); whisper_encoder (15 MB) 0.98x, 0.77x / 0.77x; gpt2 (9.8 MB, 32 rows a
    sample, 128 a chunk of 4) 1.00x, 0.91x / 0.91x. A chunk of 2 was no better (t5 0.98x / 0.88x, whisper
    0.97x / 0.69x) and gpt2's (64 rows) 1.07x pinned. Threads' CPU time at batch 8 is 1.14-1.30x one
    thread's; chunked, 1.01-1.08x."""
    sizes = [c for c in range(1, batch // 2 + 1) if batch % c == 0 and dense_rows_reuse_weights(graph, batch, c)]
    return max(sizes, default=batch)


def rule_size(graph: Graph, budget: int | None = None) -> int | None:
    """The chunk size the rules pick for a batch-N graph (N: kept whole), None where it has no batch: the
    largest that fits the cache budget, and no more than parallel_size."""
    batch = batch_of(graph)
    if batch is None:
        return None
    peak = peak_live_bytes(graph)
    size = min(chunk_size(batch, peak, CACHE_BUDGET if budget is None else budget), parallel_size(graph, batch))
    if size == batch:
        return batch
    if 2 * sum(v.nbytes for v in graph.constants()) > peak and not dense_rows_reuse_weights(graph, batch, size):
        # each chunk streams the weights again: ResNet50 (97 MB of weights, 74 MB peak) took 1.12-1.15x
        # the time of batch 8 at every chunk size, swin_t (110 MB, 119 MB) 1.06x at c = 1; DenseNet121
        # (31 MB, 64 MB) 0.79-0.90x
        return batch
    return size


def chunk_batch(graph: Graph, budget: int | None = None, size: int | None = None) -> Chunks:
    """The graph rebatched to the largest batch whose activations fit `budget` (default CACHE_BUDGET) and
    how many chunks make the caller's batch; the graph itself (count 1) where it fits or mixes samples.
    size: chunks of this many samples (a divisor of the batch) whatever the rules say (a benchmark's
    forced build: benchmarks/batch_chunks.py); ValueError where the graph mixes samples."""
    batch = batch_of(graph)
    if batch is None:
        return Chunks(graph, 1)
    forced = size is not None
    if not forced:
        size = rule_size(graph, budget)
    elif size < 1 or batch % size:
        raise ValueError(f"chunk size {size} does not divide the batch {batch}")
    if size == batch:
        return Chunks(graph, 1)
    try:
        return Chunks(_Rebatch(graph, batch, size).run(), batch // size, min(batch // size, PARALLEL_CHUNKS))
    except NotSeparable as error:
        if forced:  # a forced build must not silently be the whole batch's (MiniLM b64 was, three times)
            raise ValueError(f"cannot run in chunks of {size}: {error}") from error
        return Chunks(graph, 1)


class _Rebatch:
    """Builds the batch-`size` twin of a batch-`batch` graph, node by node."""

    def __init__(self, graph: Graph, batch: int, size: int) -> None:
        self.graph, self.batch, self.size = graph, batch, size
        self.out = Graph(graph.name)
        self.splits: dict[int, Split] = {}
        self.values: dict[int, Value] = {}  # old value id -> its twin (batch-carrying or shared)
        self.rebuilt: dict[tuple[int, Split], Value] = {}  # a shared value rebuilt at the new batch

    def run(self) -> Graph:
        for value in self.graph.inputs:
            self.splits[value.id] = Split(0, 1, 1)
            self.values[value.id] = self.out.add_input((self.size,) + value.shape[1:], value.dtype, value.name)
        for node in self.graph.nodes:
            if any(v.id in self.splits for v in node.inputs):
                self._rebatch(node)
        outputs = []
        for value in self.graph.outputs:
            split = self.splits.get(value.id)
            if split is None or (split.axis, split.outer) != (0, 1):
                raise NotSeparable("an output's samples are not contiguous blocks")
            outputs.append(self.values[value.id])
        self.out.set_outputs(outputs, list(self.graph.output_names))
        return self.out

    def _rebatch(self, node: Node) -> None:
        kind = OPS[node.op].kind if node.op in OPS else None
        if kind not in RULES:
            raise NotSeparable(f"no batch rule for {node.op}")
        splits = [self.splits.get(v.id) for v in node.inputs]
        attrs, wanted, out_splits = RULES[kind](self.size)(node, splits)
        inputs = [self.values[v.id] if s is not None else self._shared(v, w)
                  for v, s, w in zip(node.inputs, splits, wanted)]
        outs = self._add(node, inputs, attrs, [s.resize(v.shape, self.size) for v, s in zip(node.outputs, out_splits)])
        for old, new, split in zip(node.outputs, outs, out_splits):
            self.values[old.id], self.splits[old.id] = new, split

    def _add(self, node: Node, inputs: list[Value], attrs: dict, shapes: list[tuple[int, ...]]) -> list[Value]:
        """The node's twin; its outputs must come out at the shapes the rule promised."""
        try:
            outs = self.out.add(node.op, inputs, node.loc, **attrs)
        except IRError as error:
            raise NotSeparable(str(error)) from error
        if [v.shape for v in outs] != shapes:
            raise NotSeparable(f"{node.where()} rebatched to {[v.shape for v in outs]}, not {shapes}")
        for old, new in zip(node.outputs, outs):
            new.name = old.name
        return outs

    def _shared(self, value: Value, split: Split | None) -> Value:
        """A value computed without the inputs: as it is, or rebuilt along split at the new batch."""
        if split is not None:
            key = (value.id, split)
            if key not in self.rebuilt:
                self.rebuilt[key] = self._rebuild(value, split)
            return self.rebuilt[key]
        if value.is_const:
            return value
        if value.id not in self.values:
            node = value.producer
            outs = self._add(node, [self._shared(v, None) for v in node.inputs], node.attrs,
                             [v.shape for v in node.outputs])
            self.values.update((old.id, new) for old, new in zip(node.outputs, outs))
        return self.values[value.id]

    def _rebuild(self, value: Value, split: Split) -> Value:
        """A shared value the size of the batch along split, at the new batch: a constant whose sample blocks
        are all equal, a broadcast, an iota along another axis, or elementwise work on such values."""
        shape = split.resize(value.shape, self.size)
        if value.is_const:
            a = split.axis
            blocks = value.data.reshape(value.shape[:a] + (split.outer, self.batch, split.inner) + value.shape[a + 1:])
            first = (slice(None),) * (a + 1)
            if not (blocks == blocks[first + (slice(0, 1),)]).all():
                raise NotSeparable("a constant differs between samples")
            return self.out.const(blocks[first + (slice(0, self.size),)].reshape(shape), value.dtype, value.name)
        node = value.producer
        kind = OPS[node.op].kind
        if kind == "broadcast_in_dim":
            dims, x = list(node.attrs["broadcast_dimensions"]), node.inputs[0]
            along = (None if split.axis not in dims or x.shape[dims.index(split.axis)] == 1
                     else replace(split, axis=dims.index(split.axis)))
            inputs, attrs = [self._shared(x, along)], {**node.attrs, "shape": shape}
        elif kind == "iota" and node.attrs["dimension"] != split.axis:
            inputs, attrs = [], {**node.attrs, "shape": shape}
        elif kind in ("unary", "binary", "compare", "select", "convert"):
            wanted = _along(node.inputs, [None] * len(node.inputs), split)
            inputs, attrs = [self._shared(v, w) for v, w in zip(node.inputs, wanted)], node.attrs
        else:
            raise NotSeparable(f"cannot rebuild {node.op} at another batch")
        return self._add(node, inputs, attrs, [shape])[0]
