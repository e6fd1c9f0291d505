"""The fused ops the passes make and codegen emits, declared as the primitive ops are in ops.py.

fused_elementwise (passes/fuse.py): an elementwise chain as one loop; attrs["nodes"] the original
nodes in order, attrs["loads"] ((value id, input slot, strides over the output), ...).
row_kernel (passes/rows.py): a per-row region (softmax, layernorm) as one node; attrs rows, n,
nodes and loads ((value id, input slot, row strides, column stride), ...).
An epilogue (passes/epilogue.py) is no op of its own: a host node (ir/hosts.py: a matmul, conv,
concatenation) keeps its op and gets attrs["epilogue"], an Epilogue, whose body is elementwise.
compiler/ir/verify.py checks each of them (verify(graph, lowered=True)).
"""

from __future__ import annotations

from dataclasses import dataclass

from cerebro.compiler.ir import fused_reference
from cerebro.compiler.ir.graph import IRError, Node
from cerebro.compiler.ir.ops import OPS, Cost, Reference, Role, names

FUSED = "fused_elementwise"
ROW_KERNEL = "row_kernel"
ROW_REDUCTIONS = frozenset(names(role=Role.ROW_REDUCTION))


@dataclass(frozen=True)
class FusedOp:
    """A fused op's declaration: attrs it needs, the roles of the ops its body (attrs["nodes"]) may
    hold, its reference implementation (fused_reference.py) and its cost."""

    name: str
    attrs: tuple[str, ...]
    body: tuple[Role, ...]
    reference: Reference
    cost: Cost


def body_cost(nodes: tuple[Node, ...]) -> int:
    """The cost of a fused body: the sum of its nodes' declared costs."""
    return sum(OPS[inner.op].cost(inner) for inner in nodes)


FUSED_OPS: dict[str, FusedOp] = {
    FUSED: FusedOp(FUSED, ("nodes", "loads"), (Role.ELEMENTWISE,), fused_reference.fused_elementwise,
                   lambda node: body_cost(node.attrs["nodes"])),
    ROW_KERNEL: FusedOp(ROW_KERNEL, ("rows", "n", "nodes", "loads"),
                        (Role.ELEMENTWISE, Role.ROW_REDUCTION, Role.VIEW, Role.BROADCAST),
                        fused_reference.row_kernel, lambda node: body_cost(node.attrs["nodes"])),
}


@dataclass(frozen=True)
class Epilogue:
    """The chain applied per output element of a tile.

    source: id of the host's result the body reads (a matmul/conv's from the output buffer, just stored; a
    concatenation's from the input it copies);
    nodes: elementwise nodes in order, the last one makes the output;
    loads: (value id, input index of the fused node, row_stride, col_stride) for every other value read.
    """

    source: int
    nodes: tuple[Node, ...]
    loads: tuple[tuple[int, int, int, int], ...]


def node_flops(node: Node) -> int:
    """A rough cost (driver.py's stage budget): the op's declared cost rule (multiply-adds count two,
    transcendentals twenty, data movement one per element), plus an epilogue's body."""
    declaration = OPS.get(node.op) or FUSED_OPS.get(node.op)
    if declaration is None:
        raise IRError(f"{node.where()}: unknown op {node.op!r} has no cost")
    cost = int(declaration.cost(node))
    epilogue = node.attrs.get("epilogue")  # an elementwise chain fused into a matmul/conv runs in its stage
    if epilogue is not None:
        cost += body_cost(epilogue.nodes)
    return cost
