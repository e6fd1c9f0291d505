"""Batch norm folded into the conv before it: conv(x, w) followed by per-channel constant adds, subs and
muls (what inference-mode batch norm is on the JAX path: (y - mean) * scale + bias) becomes
conv(x, w * s) + t, with s and t the chain's product and offset per output channel, computed once in
float64 and rounded to the conv's type.

Why: each conv then hosts a one-op epilogue (the bias) instead of three, and convs that differ only in
their batch norms' constants get the same code (codegen/kernel_key.py), so ResNet's blocks share
functions (LLVM compiles each function once). The result differs from the unfolded chain by rounding
only (the sums are scaled before they are rounded, not after): a few ulps of the output's magnitude.
Only a conv's sole reader chain is folded, and only float convs with finite constants (an integer
conv's weights cannot take a fractional scale).

Then two biased convs summed (a residual block's downsample: (conv1 + b1) + (conv2 + b2)) take one bias,
(conv1 + (b1 + b2)) + conv2: the sum then fuses as the other blocks' residual adds do (one epilogue of
bias, residual and ReLU on conv1, none on conv2), not as a second bias carried into conv1's epilogue,
which kept ResNet's downsampling blocks in functions of their own.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Graph, Node, Value
from cerebro.compiler.passes.affine import affine_chain
from cerebro.compiler.passes.fuse import read_counts

FLOAT = (DType.f32, DType.f64)


def _per_channel(value: Value, channels: int, rank: int) -> np.ndarray | None:
    """A constant that varies at most along the last axis, as a float64 vector of `channels`, else None."""
    if not value.is_const or value.rank != rank or any(d != 1 for d in value.shape[:-1]):
        return None
    if value.shape[-1] not in (1, channels) or value.dtype not in FLOAT:
        return None
    vector = np.broadcast_to(value.data.reshape(-1).astype(np.float64), (channels,))
    return vector if np.all(np.isfinite(vector)) else None


def _affine_chain(conv: Node, readers: dict[int, int], users: dict[int, list[Node]]
                  ) -> tuple[list[Node], np.ndarray, np.ndarray]:
    """The nodes after conv that scale and offset its output per channel, each the only reader of the one
    before, and their product (scale, offset) as vectors of its channels."""
    out = conv.outputs[0]
    channels = out.shape[-1]
    chain, scale, offset = affine_chain(out, readers, users, lambda v: _per_channel(v, channels, out.rank))
    return chain, np.broadcast_to(scale, (channels,)), np.broadcast_to(offset, (channels,))


def _fold(conv: Node, chain: list[Node], scale: np.ndarray, offset: np.ndarray) -> list[Node]:
    """Rewrite conv in place to carry the chain's scale; returns the nodes that replace the chain."""
    x, w = conv.inputs
    out, last = conv.outputs[0], chain[-1].outputs[0]
    if np.any(scale != 1.0):
        data = (w.data.astype(np.float64) * scale).astype(w.dtype.numpy)
        conv.inputs = [x, Value(w.shape, w.dtype, f"{w.name}.scaled" if w.name else "", data=data)]
    if not np.any(offset):
        conv.outputs = [last]
        last.producer = conv
        return []
    bias = Value((1,) * (out.rank - 1) + (out.shape[-1],), out.dtype, "", data=offset.astype(out.dtype.numpy)
                 .reshape((1,) * (out.rank - 1) + (-1,)))
    add = Node("add", [out, bias], [last], {}, chain[-1].loc)
    last.producer = add
    return [add]


def _biased_conv(value: Value, readers: dict[int, int]) -> tuple[Node, int, np.ndarray] | None:
    """(the add, the position of its conv input, its per-channel constant) where value = conv + constant,
    the add the conv's and its own value's only reader."""
    node = value.producer
    if node is None or node.op != "add" or readers.get(value.id) != 1 or value.dtype not in FLOAT:
        return None
    for at in (0, 1):
        source, constant = node.inputs[at], node.inputs[1 - at]
        vector = _per_channel(constant, value.shape[-1], value.rank)
        if (vector is not None and source.producer is not None and source.producer.op == "conv"
                and readers.get(source.id) == 1 and source.shape == value.shape):
            return node, at, vector
    return None


def _one_bias(graph: Graph) -> Graph:
    """(conv1 + b1) + (conv2 + b2) -> (conv1 + (b1 + b2)) + conv2, the sum in float64 rounded once."""
    readers = read_counts(graph)
    dropped: set[int] = set()
    for node in graph.nodes:
        if node.op != "add" or node.inputs[0].shape != node.inputs[1].shape or id(node) in dropped:
            continue
        first, second = (_biased_conv(v, readers) for v in node.inputs)
        if first is None or second is None or first[0] is second[0] or dropped & {id(first[0]), id(second[0])}:
            continue
        (add, at, b1), (other, other_at, b2) = first, second
        out = add.outputs[0]
        add.inputs[1 - at] = Value((1,) * (out.rank - 1) + (out.shape[-1],), out.dtype, "",
                                   data=(b1 + b2).astype(out.dtype.numpy).reshape((1,) * (out.rank - 1) + (-1,)))
        node.inputs[1] = other.inputs[other_at]
        dropped.add(id(other))
    graph.nodes = [node for node in graph.nodes if id(node) not in dropped]
    return graph


def fold_conv_scales(graph: Graph) -> Graph:
    """Fold each float conv's per-channel scale-and-offset chain into its weights and one bias add, then
    give two biased convs summed one bias (in place); returns graph."""
    readers, users = read_counts(graph), graph.users()
    replaced: dict[int, list[Node]] = {}  # id of a chain's first node -> what goes in its place
    dropped: set[int] = set()
    for node in graph.nodes:
        if node.op != "conv" or len(node.inputs) != 2 or not node.inputs[1].is_const:
            continue
        if node.outputs[0].dtype not in FLOAT or node.inputs[1].dtype is not node.outputs[0].dtype:
            continue
        chain, scale, offset = _affine_chain(node, readers, users)
        if not chain or (len(chain) == 1 and chain[0].op == "add"):  # a lone bias add is already one op
            continue
        dropped.update(id(n) for n in chain)
        replaced[id(chain[0])] = _fold(node, chain, scale, offset)
    if replaced:
        graph.nodes = [new for node in graph.nodes
                       for new in (replaced.get(id(node), []) if id(node) in dropped else [node])]
    return _one_bias(graph)
