"""Chains of per-channel constant scales and offsets as one multiply and one add: (x - mean) / sqrt(var +
eps) * gamma + beta with every operand but x a constant (an ONNX BatchNormalization no conv absorbed:
DenseNet's norm1 after each concatenation, a pre-activation block's, an input's normalisation) becomes
x * s + t.

Why: the divide was a vdivps per vector, many times a multiply's cost, in passes that only move memory, and
the chain four ops where two do; a chain of multiplies, adds and max/min is one an epilogue runs as vector
code (codegen/epilogue.py). s and t are computed in float64 and rounded once, so the result differs from the
unfolded chain by rounding only (as passes/conv_scale.py's fold into a conv's weights, which uses the same
steps): tests/test_affine_fold.py states the tolerance against ONNX Runtime.

Folded: float chains of two steps or more, a divide among them, constants finite (divisors non-zero),
broadcasting to one shape, one of them more than one element (batch norm's shape), each value but the last
read by the next step only. Kept: a chain without a divide (JAX's uniform sampler, (bits - 1) * (max - min)
+ min, feeds erf_inv, whose slope near +-1 makes a fold's last-place differences thousands of ulps); a lone
divide (it stays what was written); scalars only (LayerNorm's sum / n + eps on a reduction's few values,
as passes/rows.py expects it); a chain a stepped op reads (round, floor, a comparison, a convert to
integers: QuantizeLinear's round(x / scale)), where an ulp's difference can become a whole step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import DType, Graph, Node, Value
from cerebro.compiler.passes.fuse import read_counts

FLOAT = (DType.f32, DType.f64)

# op -> (scale, offset, c) -> the chain's (scale, offset) after it, when the chain's value is its first input
STEPS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "mul": lambda s, t, c: (s * c, t * c),
    "add": lambda s, t, c: (s, t + c),
    "sub": lambda s, t, c: (s, t - c),
    "div": lambda s, t, c: (s / c, t / c),
}
COMMUTES = frozenset({"mul", "add"})  # the chain's value may be either input
STEPPED = frozenset({"round", "floor", "ceil", "sign", "rem", "eq", "ne", "lt", "le", "gt", "ge"})


def _stepped(node: Node) -> bool:
    """Whether node's output jumps where its input changes by an ulp."""
    return node.op in STEPPED or (node.op == "convert" and node.outputs[0].dtype not in FLOAT)


def affine_chain(value: Value, readers: dict[int, int], users: dict[int, list[Node]],
                 constant: Callable[[Value], np.ndarray | None], first: Node | None = None
                 ) -> tuple[list[Node], np.ndarray, np.ndarray]:
    """The nodes after value that scale and offset it by constants, each the only reader of the one before,
    and their product (scale, offset) in float64. constant(v): v's data as the caller's float64 operand
    (broadcast as it needs), or None where v may not take part. first: the chain's first node, one of
    value's readers (then value may have others); None: value's only reader."""
    scale, offset = np.ones(()), np.zeros(())
    chain: list[Node] = []
    while first is not None or (readers.get(value.id) == 1 and len(users.get(value.id, ())) == 1):
        node, first = first or users[value.id][0], None
        step = STEPS.get(node.op)
        if step is None or len(node.inputs) != 2 or node.outputs[0].shape != value.shape:
            break
        at = node.inputs.index(value)
        if at == 1 and node.op not in COMMUTES:
            break
        c = constant(node.inputs[1 - at])
        if c is None or node.outputs[0].dtype is not value.dtype or (node.op == "div" and np.any(c == 0)):
            break
        scale, offset = step(scale, offset, c)
        chain.append(node)
        value = node.outputs[0]
    return chain, scale, offset


def _operand(x: Value, shape: tuple[int, ...]) -> Callable[[Value], np.ndarray | None]:
    """constant() for a chain on x whose constants all broadcast to `shape` (the first one's)."""

    def constant(v: Value) -> np.ndarray | None:
        if not v.is_const or v.dtype is not x.dtype or v.rank != x.rank:
            return None
        try:
            if np.broadcast_shapes(v.shape, shape) != shape:
                return None
        except ValueError:
            return None
        data = np.broadcast_to(v.data.astype(np.float64), shape)
        return data if np.all(np.isfinite(data)) else None

    return constant


def _first_constant(node: Node, x: Value) -> Value | None:
    other = [v for v in node.inputs if v is not x]
    return other[0] if len(other) == 1 and other[0].is_const and other[0].rank == x.rank else None


def _replacement(x: Value, chain: list[Node], scale: np.ndarray, offset: np.ndarray) -> list[Node] | None:
    """x * scale + offset, making chain's last value; None for a chain of one step, without a divide or of
    scalar constants only, or one that does nothing (its value is then x's, yet another value)."""
    steps = [(op, c) for op, c, keep in (("mul", scale, np.any(scale != 1.0)), ("add", offset, np.any(offset)))
             if keep]
    if (not steps or len(chain) < 2 or not any(node.op == "div" for node in chain)
            or all(v.size == 1 for node in chain for v in node.inputs if v.is_const)):
        return None
    last = chain[-1].outputs[0]
    made, value = [], x
    for k, (op, c) in enumerate(steps):
        operand = Value(c.shape, x.dtype, "", data=c.astype(x.dtype.numpy))
        out = last if k == len(steps) - 1 else Value(x.shape, x.dtype)
        made.append(Node(op, [value, operand], [out], {}, chain[k].loc))
        out.producer, value = made[-1], out
    return made


def fold_affine_chains(graph: Graph) -> Graph:
    """Each float value's chain of constant scales and offsets as one multiply and one add (in place)."""
    readers, users = read_counts(graph), graph.users()
    replaced: dict[int, list[Node]] = {}  # id of a chain's first node -> what goes in its place
    dropped: set[int] = set()
    for node in graph.nodes:
        if id(node) in dropped or node.op not in STEPS or len(node.inputs) != 2:
            continue
        x = next((v for v in node.inputs if not v.is_const), None)
        operand = _first_constant(node, x) if x is not None else None
        if operand is None or x.dtype not in FLOAT or node.outputs[0].shape != x.shape:
            continue
        shape = operand.shape  # every constant of the chain broadcasts to the first one's shape
        chain, scale, offset = affine_chain(x, readers, users, _operand(x, shape), node)
        if not chain or chain[0] is not node:
            continue
        if any(_stepped(reader) for reader in users.get(chain[-1].outputs[0].id, ())):
            continue
        made = _replacement(x, chain, np.broadcast_to(scale, shape), np.broadcast_to(offset, shape))
        if made is not None:
            dropped.update(id(n) for n in chain)
            replaced[id(node)] = made
    if replaced:
        graph.nodes = [new for node in graph.nodes
                       for new in (replaced.get(id(node), []) if id(node) in dropped else [node])]
    return graph
