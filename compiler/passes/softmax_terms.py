"""A softmax's terms below the smallest normal float are zero.

Under an additive attention mask (swin_t's -100 between the shifted windows' pieces) a softmax's
exp(x - max x) is ~1e-44: a subnormal float, and on x86 every vector instruction that reads or writes
one takes a microcode assist. swin_t at batch 1 spent 22 of its 105 ms in the masked windows'
probabilities @ V products (4.4-4.9 ms each, 0.05-0.29 ms with the thread's MXCSR flushing
subnormals) and 6.5 ms in their softmax row kernels. Where the scores come through an add of a
constant reaching CUTOFF or below (such a mask), each exp(t) of the softmax becomes

    exp(max(t, CUTOFF)) * min(max((t - CUTOFF) * 2**100, 0), 1)

in the IR's own float ops, so rows.py still fuses the softmax into one row kernel: the second factor
is exactly 1 for every t above CUTOFF (the smallest step of t there times 2**100 is far above 1) and 0
at or below it, NaN stays NaN and -inf gives 0. Terms above CUTOFF are the same numbers; the others,
which would be subnormal (e**CUTOFF is the smallest normal f32 but rounded up: 2**-126 * (1 + 4e-6)),
are 0. The row's sum holds its largest term, e**0 = 1, so they were below its last bit; the outputs
differ from the exact softmax only where it is below 1.2e-38, and a product with them by less than
2**-126 times the sum of the magnitudes it reads. Subnormals stay numbers everywhere else (ops.py).
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import Graph, Node, Value, make_node
from cerebro.compiler.ir.dtypes import DType

CUTOFF = float(np.float32(-87.33654))  # the f32 just above ln(2**-126): e**CUTOFF is normal
_STEP = 2.0**100  # (t - CUTOFF) * _STEP >= 1 for every f32 t above CUTOFF (there t - CUTOFF >= 2**-17)
_VIEWS = ("reshape", "broadcast_in_dim")
_MASK_DEPTH = 6  # adds and views walked back from the softmax's input to find a mask


def _through_views(value: Value) -> Value:
    while value.producer is not None and value.producer.op in _VIEWS:
        value = value.producer.inputs[0]
    return value


def _softmax_exp(node: Node) -> bool:
    """An f32 exp of x - max(x) over x's last axis (through reshapes and broadcasts of the max)."""
    if node.op != "exp" or node.outputs[0].dtype is not DType.f32:
        return False
    difference = node.inputs[0].producer
    if difference is None or difference.op != "sub":
        return False
    x, peak = difference.inputs
    reduce = _through_views(peak).producer
    return (reduce is not None and reduce.op == "reduce_max" and _through_views(reduce.inputs[0]) is _through_views(x)
            and tuple(reduce.attrs["axes"]) == (reduce.inputs[0].rank - 1,))


def _masked(value: Value, depth: int = _MASK_DEPTH) -> bool:
    """Whether value is a sum (through views) one of whose terms is a constant reaching CUTOFF or below."""
    value = _through_views(value)
    if value.is_const:
        return value.data.size > 0 and bool(np.nanmin(value.data) <= CUTOFF)
    node = value.producer
    if depth == 0 or node is None or node.op != "add":
        return False
    return any(_masked(term, depth - 1) for term in node.inputs)


def _flushed(node: Node) -> list[Node]:
    """node (exp(t)) as the nodes of exp(max(t, CUTOFF)) * min(max((t - CUTOFF) * _STEP, 0), 1)."""
    (t,), out, loc = node.inputs, node.outputs[0], node.loc
    made: list[Node] = []

    def splat(number: float) -> Value:
        scalar = Value((), DType.f32, data=np.array(number, np.float32))
        made.append(make_node("broadcast_in_dim", [scalar], loc, shape=t.shape, broadcast_dimensions=()))
        return made[-1].outputs[0]

    def add(op: str, *inputs: Value, into: Value | None = None) -> Value:
        made.append(make_node(op, list(inputs), loc, into))
        return made[-1].outputs[0]

    cutoff = splat(CUTOFF)
    term = add("exp", add("max", t, cutoff))
    step = add("min", add("max", add("mul", add("sub", t, cutoff), splat(_STEP)), splat(0.0)), splat(1.0))
    add("mul", term, step, into=out)
    return made


def zero_subnormal_softmax_terms(graph: Graph) -> Graph:
    """Rewrite the exp of each f32 softmax whose scores take a mask (in place); returns graph."""
    nodes: list[Node] = []
    for node in graph.nodes:
        masked = _softmax_exp(node) and _masked(node.inputs[0].producer.inputs[0])
        nodes.extend(_flushed(node) if masked else [node])
    graph.nodes = nodes
    return graph
