"""tree_ensemble: each row walks every tree of the tables (compiler/ir/tree_ensemble.py), a loop whose
trip count depends on the data, then adds its leaf's entries into the row's scores.

for row in the part's rows:
  score[:] = +0                       (the output row; min/max also clear a stack byte per target)
  for r in 0..R-1:
    at = roots[r]; steps = 0
    while 0 <= at < M and steps++ < M:      (a bad index or a cycle ends the walk: no leaf)
      mode, feature, yes, no, lo, hi = nodes[at]
      v = x[row, feature]                   (a feature outside [0, F) ends the walk too)
      at = test(mode & 7, v, splits[at]) or (mode & 8 and v is NaN) ? yes : no
    if at < 0 and ~at < L: for e in bounds[~at] .. bounds[~at + 1] (clamped): combine weights[e] into
      score[targets[e]] when that target is in [0, T)
  average: score[:] /= R
The six comparisons are computed and one is selected by mode (no branch); a MEMBER test scans its
members (an empty range for any other mode). Every table index is checked before it is used, so
tables from the caller never make the code read outside its buffers or loop forever.
"""

from __future__ import annotations

from llvmlite import ir

from cerebro.compiler.codegen.elementwise import BINARY_RULES, COMPARE_RULES
from cerebro.compiler.codegen.llvm_types import (
    I1,
    STACK_ARRAY_BYTES,
    constant,
    element_type,
    index,
    load,
    stack_array,
    store,
)
from cerebro.compiler.codegen.loops import I64, fold_range, for_range, i64
from cerebro.compiler.codegen.partition import parts_of, share, smax, smin
from cerebro.compiler.codegen.registry import EmitContext, emitter, unsupported
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.tree_ensemble import MISSING_GOES_TRUE, MODES, NODE_COLUMNS

I8, I32 = ir.IntType(8), ir.IntType(32)
MAX_SEEN_TARGETS = STACK_ARRAY_BYTES  # min/max keep one stack byte per target (kernel stacks are small)
_COMPARISONS = ("le", "lt", "ge", "gt", "eq", "ne")  # MODES' first six, as the elementwise compare ops


def _rows(node: Node, target: object, parts: int) -> int:
    return node.inputs[0].shape[0]


@emitter("tree_ensemble", units=_rows)
def emit_tree_ensemble(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    n_targets = int(node.attrs["n_targets"])
    if node.attrs["aggregate"] in ("min", "max") and n_targets > MAX_SEEN_TARGETS:
        raise unsupported(node, f"tree_ensemble {node.attrs['aggregate']} over {n_targets} targets "
                                f"(more than {MAX_SEEN_TARGETS})")
    _TreeWalk(node, fn).emit()


class _TreeWalk:
    def __init__(self, node: Node, fn: ir.Function) -> None:
        self.node, self.fn = node, fn
        x, nodes, _, roots, bounds, targets, _, members = node.inputs
        self.dtype = x.dtype
        self.elem = element_type(x.dtype)
        self.rows, self.features = x.shape
        self.m, self.trees, self.leaves = nodes.shape[0], roots.size, bounds.size - 1
        self.entries, self.members = targets.size, members.size
        self.n_targets, self.aggregate = int(node.attrs["n_targets"]), node.attrs["aggregate"]
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        (self.px, self.pnodes, self.psplits, self.proots, self.pbounds, self.ptargets, self.pweights,
         self.pmembers, self.pout) = fn.args[:9]

    def emit(self) -> None:
        b = self.b
        part, parts = parts_of(b, self.node, self.fn)
        lo, hi = share(b, self.rows, part, parts)
        self.seen = stack_array(b, I8, self.n_targets, "seen") if self.aggregate in ("min", "max") else None
        with for_range(b, hi, "row", start=lo) as row:
            first = index(b, 0, (row, self.n_targets))
            with for_range(b, self.n_targets, "clear") as t:
                store(b, constant(self.elem, 0), self.pout, b.add(first, t), self.elem)
                if self.seen is not None:
                    store(b, constant(I8, 0), self.seen, t, I8)
            with for_range(b, self.trees, "tree") as r:
                end = self._walk(row, b.sext(load(b, self.proots, r, I32), I64))
                self._add_leaf(first, end)
            if self.aggregate == "average":
                self._average(first)
        b.ret_void()

    def _node_field(self, at: ir.Value, column: int) -> ir.Value:
        b = self.b
        return b.sext(load(b, self.pnodes, index(b, column, (at, NODE_COLUMNS)), I32), I64)

    def _walk(self, row: ir.Value, root: ir.Value) -> ir.Value:
        """The child a row's walk ends on: < 0 a leaf, else none (stopped)."""
        b = self.b
        before = b.block
        header = b.append_basic_block("walk")
        body = b.append_basic_block("walk.test")
        done = b.append_basic_block("walk.done")
        b.branch(header)
        b.position_at_end(header)
        at = b.phi(I64, name="at")
        steps = b.phi(I64, name="steps")
        at.add_incoming(root, before)
        steps.add_incoming(i64(0), before)
        inside = b.and_(b.icmp_signed(">=", at, i64(0)), b.icmp_signed("<", at, i64(self.m)))
        b.cbranch(b.and_(inside, b.icmp_signed("<", steps, i64(self.m))), body, done)
        b.position_at_end(body)
        mode, feature = self._node_field(at, 0), self._node_field(at, 1)
        known = b.and_(b.icmp_signed(">=", feature, i64(0)), b.icmp_signed("<", feature, i64(self.features)))
        column = b.select(known, feature, i64(0))
        v = load(b, self.px, index(b, 0, (row, self.features), (column, 1)), self.elem)
        test = self._test(mode, at, v)
        nan_goes_true = b.icmp_signed("!=", b.and_(mode, i64(MISSING_GOES_TRUE)), i64(0))
        test = b.or_(test, b.and_(nan_goes_true, b.fcmp_unordered("uno", v, v)))
        child = b.select(test, self._node_field(at, 2), self._node_field(at, 3))
        following = b.select(known, child, i64(self.m))  # m: the walk stops and adds nothing
        at.add_incoming(following, b.block)
        steps.add_incoming(b.add(steps, i64(1)), b.block)
        b.branch(header)
        b.position_at_end(done)
        return at

    def _test(self, mode: ir.Value, at: ir.Value, v: ir.Value) -> ir.Value:
        """The comparison mode & 7 names, as one select chain over all of them; 7 is never true."""
        b = self.b
        split = load(b, self.psplits, at, self.elem)
        results = [COMPARE_RULES[(op, "f")](b, v, split) for op in _COMPARISONS] + [self._member(mode, at, v)]
        which = b.and_(mode, i64(7))
        test = ir.Constant(I1, 0)
        for k, result in enumerate(results):
            test = b.select(b.icmp_signed("==", which, i64(k)), result, test)
        return test

    def _member(self, mode: ir.Value, at: ir.Value, v: ir.Value) -> ir.Value:
        """v in members[lo:hi] (clamped; an empty range unless the node's mode is MEMBER)."""
        b = self.b
        is_member = b.icmp_signed("==", b.and_(mode, i64(7)), i64(MODES.index("member")))
        lo = smin(b, smax(b, self._node_field(at, 4), i64(0)), i64(self.members))
        hi = smin(b, smax(b, self._node_field(at, 5), i64(0)), i64(self.members))
        with fold_range(b, b.select(is_member, hi, lo), [ir.Constant(I1, 0)], "member", start=lo) as (k, carry):
            equal = b.fcmp_ordered("==", load(b, self.pmembers, k, self.elem), v)
            carry.values = [b.or_(carry.values[0], equal)]
        return carry.values[0]

    def _bound(self, leaf: ir.Value, offset: int) -> ir.Value:
        b = self.b
        raw = b.sext(load(b, self.pbounds, b.add(leaf, i64(offset)), I32), I64)
        return smin(b, smax(b, raw, i64(0)), i64(self.entries))

    def _add_leaf(self, first: ir.Value, end: ir.Value) -> None:
        """Combine the leaf's entries into the row's scores when the walk reached a leaf in range."""
        b = self.b
        leaf = b.not_(end)
        reached = b.and_(b.icmp_signed("<", end, i64(0)), b.icmp_signed("<", leaf, i64(self.leaves)))
        with b.if_then(reached):
            with for_range(b, self._bound(leaf, 1), "entry", start=self._bound(leaf, 0)) as e:
                t = b.sext(load(b, self.ptargets, e, I32), I64)
                valid = b.and_(b.icmp_signed(">=", t, i64(0)), b.icmp_signed("<", t, i64(self.n_targets)))
                with b.if_then(valid):
                    self._combine(b.add(first, t), t, load(b, self.pweights, e, self.elem))

    def _combine(self, at: ir.Value, t: ir.Value, weight: ir.Value) -> None:
        b = self.b
        score = load(b, self.pout, at, self.elem)
        if self.seen is None:
            store(b, b.fadd(score, weight), self.pout, at, self.elem)
            return
        seen = b.icmp_unsigned("!=", load(b, self.seen, t, I8), constant(I8, 0))
        combined = BINARY_RULES[(self.aggregate, "f")](b, score, weight)
        store(b, b.select(seen, combined, weight), self.pout, at, self.elem)
        store(b, constant(I8, 1), self.seen, t, I8)

    def _average(self, first: ir.Value) -> None:
        b = self.b
        with for_range(b, self.n_targets, "average") as t:
            at = b.add(first, t)
            store(b, b.fdiv(load(b, self.pout, at, self.elem), constant(self.elem, float(self.trees))), self.pout, at,
                  self.elem)
