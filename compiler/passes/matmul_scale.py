"""A constant scalar scale folded into the constant weights of the matmul next to it:
(x @ W + b) / c -> x @ (W / c) + b / c (attention's query scaling by sqrt(head_dim)), and
(x / c) @ W -> x @ (W / c) (a global mean's divide by the pixel count before a classifier).

Why: the scale was an epilogue op of its own (the query projection then differed from the key and value
projections only by it: one more matmul function to compile) or a node of its own (ResNet's mean). The
scale (the product of the chain's muls and the reciprocal of its divisors) is computed in float64 and
multiplied into W and each bias before it in float64, rounded once to the weights' type: the result
differs from the unfolded one by rounding only (a few ulps of the output's magnitude; tests/
test_matmul_scale.py states the tolerance against JAX). Only float matmuls with a constant W of the output's
type read by no other node, a scale of one element, finite and non-zero, and a chain whose every value has
one reader (reshapes, transposes, constant bias adds and subs, the scales) are folded.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Graph, Node, Value
from cerebro.compiler.passes.fuse import read_counts

FLOAT = (DType.f32, DType.f64)
_SCALES = {"mul": lambda c: c, "div": lambda c: 1.0 / c}  # op -> the factor its one-element constant gives
_COMMUTES = {"mul", "add"}  # the chain's value may be either input
_MOVES = {"reshape", "transpose"}  # a scale of every element commutes with where the elements go


def _scalar(value: Value) -> float | None:
    """A finite, non-zero one-element float constant's value, else None."""
    if not value.is_const or value.size != 1 or value.dtype not in FLOAT:
        return None
    number = float(value.data.reshape(-1)[0])
    return number if np.isfinite(number) and number != 0.0 else None


def _step(node: Node, value: Value) -> tuple[str, Value | float] | None:
    """What node does to value, its one input that is not a constant: ("layout", _), ("bias", constant)
    or ("scale", factor); None when it is none of those."""
    if node.op in _MOVES and node.inputs == [value]:
        return "layout", value
    if len(node.inputs) != 2 or value not in node.inputs or node.outputs[0].dtype is not value.dtype:
        return None
    at = node.inputs.index(value)
    other = node.inputs[1 - at]
    if (at == 1 and node.op not in _COMMUTES) or node.outputs[0].shape != value.shape or not other.is_const:
        return None
    if node.op in _SCALES:
        number = _scalar(other)
        return None if number is None else ("scale", _SCALES[node.op](number))
    if node.op in ("add", "sub") and other.dtype is value.dtype and np.all(np.isfinite(other.data)):
        return "bias", other
    return None


def _chain_after(matmul: Node, readers: dict[int, int], users: dict[int, list[Node]]) -> list[Node]:
    """The sole-reader chain of reshapes, transposes, bias adds and scales after matmul, up to its last
    scale."""
    chain, value, last_scale = [], matmul.outputs[0], 0
    while readers.get(value.id) == 1 and len(users.get(value.id, ())) == 1:
        (node,) = users[value.id]
        step = _step(node, value)
        if step is None:
            break
        chain.append(node)
        last_scale = len(chain) if step[0] == "scale" else last_scale
        value = node.outputs[0]
    return chain[:last_scale]


def _scaled(value: Value, factor: float) -> Value:
    """A new constant: value * factor, in float64, rounded once."""
    data = (value.data.astype(np.float64) * factor).astype(value.dtype.numpy)
    return Value(value.shape, value.dtype, f"{value.name}.scaled" if value.name else "", data=data)


def _drop(node: Node, value: Value) -> None:
    """Take out the scale node reading value: value's producer writes the node's output instead."""
    out = node.outputs[0]
    producer = value.producer
    producer.outputs = [out if v is value else v for v in producer.outputs]
    out.producer = producer


def _fold_after(matmul: Node, chain: list[Node]) -> set[int]:
    """Fold the chain's scales into W and its biases (in place); returns the ids of the nodes dropped."""
    value, steps = matmul.outputs[0], []
    for node in chain:
        steps.append((node, value, _step(node, value)))
        value = node.outputs[0]
    after = 1.0  # the product of the scales after each node, walking back
    for node, value, (kind, what) in reversed(steps):
        if kind == "scale":
            after *= what
        elif kind == "bias":
            at = node.inputs.index(value)
            node.inputs[1 - at] = _scaled(what, after)
    x, w = matmul.inputs
    matmul.inputs = [x, _scaled(w, after)]
    for node, value, (kind, _) in steps:
        if kind == "scale":
            _drop(node, value)
    return {id(node) for node, _, (kind, _) in steps if kind == "scale"}


def _scale_before(matmul: Node, readers: dict[int, int]) -> tuple[Node, list[Node], float] | None:
    """(the scale node, the reshapes and transposes after it, its factor) where matmul's a is a
    one-element constant's scale of some x, through sole-reader reshapes and transposes."""
    value, moves = matmul.inputs[0], []
    while readers.get(value.id) == 1 and value.producer is not None and value.producer.op in _MOVES:
        moves.append(value.producer)
        value = value.producer.inputs[0]
    node = value.producer
    if node is None or readers.get(value.id) != 1 or node.op not in _SCALES:
        return None
    for source in node.inputs:
        step = _step(node, source) if not source.is_const else None
        if step is not None and step[0] == "scale":
            return node, moves, step[1]
    return None


def _fold_before(matmul: Node, scale: Node, moves: list[Node], factor: float) -> set[int]:
    """a = move(x op c) -> move(x), W -> W * factor (in place); returns the id of the node dropped."""
    (x,) = [v for v in scale.inputs if not v.is_const]
    reader = moves[-1] if moves else matmul
    reader.inputs = [x if v is scale.outputs[0] else v for v in reader.inputs]
    a, w = matmul.inputs
    matmul.inputs = [a, _scaled(w, factor)]
    return {id(scale)}


def fold_matmul_scales(graph: Graph) -> Graph:
    """Fold each float matmul's constant scalar scale after or before it into its constant weights (in
    place); returns graph."""
    readers, users = read_counts(graph), graph.users()
    for node in list(graph.nodes):
        if node.op != "matmul" or len(node.inputs) != 2 or not node.inputs[1].is_const:
            continue
        if node.outputs[0].dtype not in FLOAT or node.inputs[1].dtype is not node.outputs[0].dtype:
            continue
        if readers.get(node.inputs[1].id) != 1:  # shared weights would be copied: more weights, packed twice
            continue
        dropped: set[int] = set()
        chain = _chain_after(node, readers, users)
        if chain:
            dropped |= _fold_after(node, chain)
        before = _scale_before(node, readers)
        if before is not None:
            dropped |= _fold_before(node, *before)
        if dropped:  # later matmuls see the rewired values
            graph.nodes = [n for n in graph.nodes if id(n) not in dropped]
            readers, users = read_counts(graph), graph.users()
    return graph
