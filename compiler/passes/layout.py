"""Layout propagation: an NCHW model runs channels-last between its convolutions.

The IR's conv is channels-last, so a channels-first model (ONNX from PyTorch) arrives with a transpose
into every conv and one out of it, and its ReLUs, residual adds, pools and concatenations run on the
channels-first copy, where epilogue fusion cannot reach them. This pass (first in driver.optimise)
walks the graph once and keeps each value as a stored tensor S and a permutation p, the value being
transpose(S, p). A transpose only changes p. An op that does not care about layout (elementwise,
reductions, pooling, concatenate, pad, slice, rev, cumulative, broadcasts, and reshapes whose
dim groups stay together in S) runs on the stored tensors with its attributes permuted (a constant
operand is permuted at compile time), and its result keeps the permutation. Any other op, and every
graph output, gets its value in the logical layout: the one transpose left is made there (a reshape
when only unit dims move). A conv's input transpose then cancels the conv output's, and the
transposes left are at the graph's edges and where an op needs another layout.

A region of layout-agnostic ops (connected through them, bounded by other ops) keeps its original
transposes when propagating it would transpose more elements (a value wanted both channels-first
and channels-last can cost more): the walk runs once to price each region, then again with that
choice.

Moving transposes never changes a value, with one exception: a float reduce_sum adds its terms in the
stored tensor's memory order, so a global average pool rounds as the channels-last (JAX) path does,
not as the channels-first one. (A sum pool moves only when its windowed dims keep their order, so its
taps add in the same order.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import Graph, Node, Value
from cerebro.compiler.ir.builder import constant
from cerebro.compiler.ir.ops import ELEMENTWISE, REDUCE, infer
from cerebro.compiler.passes.dce import eliminate_dead_nodes

Perm = tuple[int, ...]


def _identity(rank: int) -> Perm:
    return tuple(range(rank))


def _inverse(perm: Perm) -> Perm:
    inverse = [0] * len(perm)
    for i, p in enumerate(perm):
        inverse[p] = i
    return tuple(inverse)


def _moves_data(shape: tuple[int, ...], perm: Perm) -> bool:
    """transpose(x of shape, perm) reorders memory: its non-unit dims change their relative order."""
    moved = [p for p in perm if shape[p] != 1]
    return moved != sorted(moved)


def _per_dim(values: object, inverse: Perm) -> tuple:
    """A per-dim attribute of the logical value, for the stored tensor (stored dim j is logical inverse[j])."""
    values = tuple(values)
    return tuple(values[i] for i in inverse)


# ---- how each layout-agnostic op runs on stored tensors: (attrs, perm) -> (stored attrs, output perm) or None

Rule = Callable[[Node, Perm], "tuple[dict, Perm] | None"]


def _same(node: Node, perm: Perm) -> tuple[dict, Perm]:
    return dict(node.attrs), perm


def _dims_attrs(*names: str) -> Rule:
    def rule(node: Node, perm: Perm) -> tuple[dict, Perm]:
        inverse = _inverse(perm)
        return {k: _per_dim(v, inverse) if k in names and v is not None else v for k, v in node.attrs.items()}, perm
    return rule


def _axis_attr(name: str) -> Rule:
    def rule(node: Node, perm: Perm) -> tuple[dict, Perm]:
        return dict(node.attrs, **{name: perm[node.attrs[name]]}), perm
    return rule


def _axes_attr(name: str) -> Rule:
    def rule(node: Node, perm: Perm) -> tuple[dict, Perm]:
        return dict(node.attrs, **{name: tuple(sorted(perm[a] for a in node.attrs[name]))}), perm
    return rule


def _after_dropping(perm: Perm, dropped: set[int]) -> Perm:
    """The permutation of what is left once the logical dims `dropped` are gone from value and storage."""
    kept = [i for i in range(len(perm)) if i not in dropped]
    stored = sorted(perm[i] for i in kept)
    return tuple(stored.index(perm[i]) for i in kept)


def _reduction(node: Node, perm: Perm) -> tuple[dict, Perm]:
    axes = set(node.attrs["axes"])
    return dict(node.attrs, axes=tuple(sorted(perm[a] for a in axes))), _after_dropping(perm, axes)


def _argreduction(node: Node, perm: Perm) -> tuple[dict, Perm]:
    axis = node.attrs["axis"]
    return dict(node.attrs, axis=perm[axis]), _after_dropping(perm, {axis})


def _window(node: Node, perm: Perm) -> tuple[dict, Perm] | None:
    """A sum pool adds its taps in the order of the windowed dims: it moves only if they keep their order."""
    windowed = [perm[i] for i, (k, pad) in enumerate(zip(node.attrs["window"], node.attrs["padding"]))
                if k > 1 or tuple(pad) != (0, 0)]
    if node.attrs["kind"] == "sum" and windowed != sorted(windowed):
        return None
    return _dims_attrs("window", "strides", "padding")(node, perm)


def _broadcast(node: Node, perm: Perm) -> tuple[dict, Perm]:
    """The output's dims that come from the input are stored in the input's stored order, in the slots
    those dims hold (so the stored broadcast_dimensions stay increasing); new dims stay where they are.
    The output perm has the output's rank: a keepdims mean, (8, 12) -> (8, 12, 1), adds a dim."""
    dims = tuple(node.attrs["broadcast_dimensions"])
    order = list(range(len(node.attrs["shape"])))  # stored output dim k holds logical dim order[k]
    for slot, i in zip(sorted(dims), _inverse(perm)):  # logical input dims i in stored order
        order[slot] = dims[i]
    out_perm = _inverse(tuple(order))
    stored_dims = tuple(out_perm[dims[i]] for i in _inverse(perm))
    shape = _per_dim(node.attrs["shape"], tuple(order))
    return dict(node.attrs, shape=shape, broadcast_dimensions=stored_dims), out_perm


RULES: dict[str, Rule] = {
    **{op: _same for op in ELEMENTWISE},
    **{op: _reduction for op in REDUCE},
    "argmax": _argreduction, "argmin": _argreduction,
    "reduce_window": _window,
    "pad": _dims_attrs("lo", "hi", "interior"),
    "slice": _dims_attrs("start", "limit", "strides"),
    "concatenate": _axis_attr("axis"),
    "cumulative": _axis_attr("axis"),
    "rev": _axes_attr("dims"),
    "broadcast_in_dim": _broadcast,
}


# ---- reshape: dim groups (source dims -> destination dims of the same element count)

def _groups(src: tuple[int, ...], dst: tuple[int, ...]) -> list[tuple[list[int], list[int]]] | None:
    """The reshape as groups of non-unit source dims -> non-unit destination dims of equal product."""
    if math.prod(src) == 0:
        return None
    ins = [d for d, n in enumerate(src) if n != 1]
    outs = [d for d, n in enumerate(dst) if n != 1]
    groups, i, j = [], 0, 0
    while i < len(ins):
        gi, gj = [ins[i]], [outs[j]]
        have, want = src[ins[i]], dst[outs[j]]
        i, j = i + 1, j + 1
        while have != want:
            if have < want:
                gi.append(ins[i])
                have, i = have * src[ins[i]], i + 1
            else:
                gj.append(outs[j])
                want, j = want * dst[outs[j]], j + 1
        groups.append((gi, gj))
    return groups


def _grouped_order(src: tuple[int, ...], perm: Perm, groups: list[tuple[list[int], list[int]]]) -> list[int]:
    """The logical source dims in stored order, each group's dims brought together in logical order
    where the group's first dim is stored (unit dims stay where they are)."""
    group_of = {d: g for g, (gi, _) in enumerate(groups) for d in gi}
    order: list[int] = []
    for d in _inverse(perm):
        if d not in group_of:
            order.append(d)
        elif d not in order:
            order.extend(groups[group_of[d]][0])
    return order


def _reshape_perm(src: tuple[int, ...], dst: tuple[int, ...], perm: Perm,
                  groups: list[tuple[list[int], list[int]]]) -> Perm:
    """The output's permutation when every group is stored together and in order: groups in stored
    order, each unit dim of the output placed after the dim before it."""
    stored = [d for d in _inverse(perm) if src[d] != 1]
    order = [d for _, gj in sorted(groups, key=lambda g: stored.index(g[0][0])) for d in gj]
    for unit in (d for d, n in enumerate(dst) if n == 1):
        order.insert(order.index(unit - 1) + 1 if unit else 0, unit)
    return _inverse(tuple(order))


def _agnostic(node: Node) -> bool:
    return len(node.outputs) == 1 and bool(node.inputs) and (node.op in RULES or node.op in ("transpose", "reshape"))


def _regions(graph: Graph) -> dict[int, int]:
    """id(node) -> its region: layout-agnostic nodes joined through the values they share."""
    parent = {id(n): id(n) for n in graph.nodes if _agnostic(n)}

    def root(key: int) -> int:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    touching: dict[int, list[int]] = {}  # value id -> agnostic nodes making or reading it
    for node in graph.nodes:
        if id(node) in parent:
            for value in node.inputs + node.outputs:
                touching.setdefault(value.id, []).append(id(node))
    for keys in touching.values():
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    return {key: root(key) for key in parent}


class _Walk:
    """One walk over the graph: every value as (stored tensor, perm), nodes emitted in order. A trial
    walk (final=False) leaves the graph alone and only prices each region's transposes."""

    def __init__(self, graph: Graph, regions: dict[int, int], propagated: Callable[[int], bool], final: bool) -> None:
        self.graph, self.regions, self.propagated, self.final = graph, regions, propagated, final
        self.producer = {v.id: n for n in graph.nodes for v in n.outputs}
        self.held: dict[int, tuple[Value, Perm]] = {}
        self.made: dict[tuple[int, Perm], Value] = {}
        self.nodes: list[Node] = []
        self.moved: dict[int, int] = {}  # region -> elements transposed

    def rep(self, value: Value) -> tuple[Value, Perm]:
        return self.held.get(value.id, (value, _identity(value.rank)))

    def region(self, value: Value, reader: Node | None) -> int | None:
        """The region a transpose of value is charged to: its producer's, else its reader's."""
        producer = self.producer.get(value.id)
        for node in (producer, reader):
            if node is not None and id(node) in self.regions:
                return self.regions[id(node)]
        return None

    def as_stored(self, value: Value, perm: Perm, reader: Node | None) -> Value:
        """A tensor T with transpose(T, perm) == value: the stored tensor, a view of it or a transpose."""
        stored, held = self.rep(value)
        inverse = _inverse(perm)
        order = tuple(held[inverse[j]] for j in range(len(perm)))
        if order == _identity(len(order)):
            return stored
        key = (stored.id, order)
        if key not in self.made:
            shape = tuple(stored.shape[o] for o in order)
            loc = reader.loc if reader is not None else value.name
            if stored.is_const:
                made = constant(np.ascontiguousarray(np.transpose(stored.data, order)), stored.dtype)
            elif not _moves_data(stored.shape, order):
                made = self.emit("reshape", [stored], {"shape": shape}, loc)
            else:
                made = self.emit("transpose", [stored], {"perm": order}, loc)
                region = self.region(value, reader)
                if region is not None:
                    self.moved[region] = self.moved.get(region, 0) + made.size
            self.made[key] = made
        return self.made[key]

    def emit(self, op: str, inputs: list[Value], attrs: dict, loc: str) -> Value:
        node = Node(op, inputs, [], attrs, loc)
        node.outputs = [Value(tuple(shape), dtype, producer=node) for shape, dtype in infer(node)]
        self.nodes.append(node)
        return node.outputs[0]

    def visit(self, node: Node) -> None:
        region = self.regions.get(id(node))
        if region is not None and self.propagated(region) and self.moved_through(node):
            return
        inputs = [self.as_stored(v, _identity(v.rank), node) for v in node.inputs]
        if self.final:
            node.inputs = inputs
        self.nodes.append(node)

    def moved_through(self, node: Node) -> bool:
        """node run on stored tensors, its output held with the permutation that costs no transposes
        (or fewest elements); False when it cannot."""
        (out,) = node.outputs
        if node.op == "transpose":
            stored, held = self.rep(node.inputs[0])
            self.held[out.id] = (stored, tuple(held[p] for p in node.attrs["perm"]))
            return True
        if node.op == "reshape":
            return self.reshaped(node)
        perm = self.choose(node.inputs)
        moved = RULES[node.op](node, perm)
        if moved is None or perm == _identity(len(perm)):
            return False
        attrs, out_perm = moved
        inputs = [self.as_stored(v, perm, node) for v in node.inputs]
        self.held[out.id] = (self.emit(node.op, inputs, attrs, node.loc), out_perm)
        return True

    def choose(self, inputs: list[Value]) -> Perm:
        """The permutation of the non-constant inputs that needs the fewest elements transposed."""
        rank = inputs[0].rank
        candidates = [self.rep(v)[1] for v in inputs if not v.is_const] or [_identity(rank)]

        def cost(perm: Perm) -> tuple[int, bool]:
            inverse = _inverse(perm)
            total = 0
            for v in inputs:
                stored, held = self.rep(v)
                if not v.is_const and _moves_data(stored.shape, tuple(held[inverse[j]] for j in range(rank))):
                    total += v.size
            return total, perm == _identity(rank)
        return min(candidates, key=cost)

    def reshaped(self, node: Node) -> bool:
        """A reshape of a permuted value: each group of dims it merges or splits is brought together in
        storage (one transpose if needed), then the stored tensor is reshaped and keeps a permutation."""
        (x,), (out,) = node.inputs, node.outputs
        _, held = self.rep(x)
        groups = _groups(x.shape, out.shape)
        if groups is None or held == _identity(x.rank):
            return False
        perm = _inverse(tuple(_grouped_order(x.shape, held, groups)))
        stored = self.as_stored(x, perm, node)
        out_perm = _reshape_perm(x.shape, out.shape, perm, groups)
        shape = tuple(out.shape[i] for i in _inverse(out_perm))
        if shape != stored.shape:
            stored = self.emit("reshape", [stored], {"shape": shape}, node.loc)
        self.held[out.id] = (stored, out_perm)
        return True

    def run(self) -> list[Value]:
        for node in self.graph.nodes:
            self.visit(node)
        return [self.as_stored(v, _identity(v.rank), None) for v in self.graph.outputs]


def _transposed(graph: Graph, regions: dict[int, int]) -> dict[int, int]:
    """Elements each region's own transposes move today."""
    moved: dict[int, int] = {}
    for node in graph.nodes:
        if node.op == "transpose" and _moves_data(node.inputs[0].shape, tuple(node.attrs["perm"])):
            region = regions[id(node)]
            moved[region] = moved.get(region, 0) + node.outputs[0].size
    return moved


def choose_layouts(graph: Graph) -> Graph:
    """Propagate layouts through each region where that transposes no more elements; in place, returns graph."""
    regions = _regions(graph)
    trial = _Walk(graph, regions, lambda region: True, final=False)
    trial.run()
    today = _transposed(graph, regions)
    walk = _Walk(graph, regions, lambda region: trial.moved.get(region, 0) <= today.get(region, 0), final=True)
    outputs = walk.run()
    graph.nodes = walk.nodes
    graph.set_outputs(outputs, list(graph.output_names))
    return eliminate_dead_nodes(graph)
