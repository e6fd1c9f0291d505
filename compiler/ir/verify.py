"""The verifier: a graph is well formed, in order, and every node agrees with its declaration.

After the compiler's passes (verify(graph, lowered=True)) some nodes are no longer plain ops: the
fused ops (fused.py) are checked by _FUSED_CHECKS below, and a matmul/conv the passes gave attributes
its declaration lists as `lowered` (an epilogue, packed weights, a strided view) is checked through
them. Every strided read of a fused node must stay inside the buffer it reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.fused import FUSED, FUSED_OPS, ROW_KERNEL, Epilogue
from cerebro.compiler.ir.graph import Graph, IRError, Node, Value
from cerebro.compiler.ir.hosts import epilogue_columns, operand_count
from cerebro.compiler.ir.matmul_view import matmul_view
from cerebro.compiler.ir.ops import OPS, Role, infer, role_of

LOWERED_ATTRS = frozenset(a for declaration in OPS.values() for a in declaration.lowered)


def _fail(node: Node, message: str) -> IRError:
    return IRError(f"{node.where()}: {message}")


def _check_rule(node: Node) -> None:
    expected = infer(node)
    got = [(v.shape, v.dtype) for v in node.outputs]
    if [(tuple(s), d) for s, d in expected] != got:
        raise IRError(f"{node.where()}: outputs {got} disagree with the op's rule {expected}")


def _reach(shape: Iterable[int], strides: Iterable[int]) -> int:
    """The largest element offset a strided walk over shape touches (-1 for an empty shape)."""
    shape, strides = tuple(shape), tuple(strides)
    if math.prod(shape) == 0:
        return -1
    return sum((d - 1) * s for d, s in zip(shape, strides))


def _check_read(node: Node, slot: int, shape: Iterable[int], strides: Iterable[int]) -> None:
    if not 0 <= slot < len(node.inputs):
        raise _fail(node, f"a load reads input {slot} of {len(node.inputs)}")
    if any(s < 0 for s in strides) or _reach(shape, strides) >= node.inputs[slot].size:
        raise _fail(node, f"a load walks {tuple(strides)} over {tuple(shape)}, outside input {slot} "
                          f"of {node.inputs[slot].size} elements")


def _check_body(node: Node, body: tuple[Node, ...], roles: tuple[Role, ...], known: set[int]) -> None:
    """Each body node is a declared op of an allowed role that agrees with its rule, reads only known
    values (loaded, or made earlier in the body), and the last one makes node's output."""
    for inner in body:
        if role_of(inner.op) not in roles:
            raise _fail(node, f"a {inner.op} node cannot be fused here")
        _check_rule(inner)
        unknown = [v for v in inner.inputs if v.id not in known]
        if unknown:
            raise _fail(node, f"fused {inner.op} reads {unknown[0]!r}, which the body neither loads nor makes")
        known.update(v.id for v in inner.outputs)
    if not body or body[-1].outputs[0] is not node.outputs[0]:
        raise _fail(node, "the fused body must end in the node's output")


def _check_fused(node: Node) -> None:
    out = node.outputs[0].shape
    for _, slot, strides in node.attrs["loads"]:
        if len(strides) != len(out):
            raise _fail(node, f"load strides {strides} do not match the output rank {len(out)}")
        _check_read(node, slot, out, strides)
    _check_body(node, tuple(node.attrs["nodes"]), FUSED_OPS[FUSED].body, {vid for vid, _, _ in node.attrs["loads"]})


def _check_row_kernel(node: Node) -> None:
    rows, n = tuple(node.attrs["rows"]), node.attrs["n"]
    for _, slot, row_strides, col_stride in node.attrs["loads"]:
        if len(row_strides) != len(rows):
            raise _fail(node, f"row strides {row_strides} do not match the rows {rows}")
        _check_read(node, slot, rows + (n,), tuple(row_strides) + (col_stride,))
    _check_body(node, tuple(node.attrs["nodes"]), FUSED_OPS[ROW_KERNEL].body,
                {vid for vid, _, _, _ in node.attrs["loads"]})


_FUSED_CHECKS: dict[str, Callable[[Node], None]] = {FUSED: _check_fused, ROW_KERNEL: _check_row_kernel}


def _check_epilogue(node: Node, epilogue: Epilogue, arity: int) -> None:
    """An elementwise body reading the product (source), values it loads per (row, column) of the
    output, and its own results."""
    out = node.outputs[0]
    columns = epilogue_columns(node)
    rows = out.size // columns if columns else 0
    for _, slot, row_stride, col_stride in epilogue.loads:
        if slot < arity:
            raise _fail(node, f"an epilogue load reads operand {slot} of the {node.op}")
        _check_read(node, slot, (rows, columns), (row_stride, col_stride))
    _check_body(node, epilogue.nodes, (Role.ELEMENTWISE,), {epilogue.source} | {vid for vid, *_ in epilogue.loads})


def _check_lowered_op(node: Node) -> None:
    """A declared op with lowered attributes: its operands against its rule (through a strided view
    when it has one), then its epilogue."""
    declaration = OPS[node.op]
    extra = sorted(a for a in LOWERED_ATTRS if a in node.attrs and a not in declaration.lowered)
    if extra:
        raise _fail(node, f"{node.op} cannot carry {extra}")
    arity = operand_count(node)
    out = node.outputs[0]
    if "view" in node.attrs:
        view = matmul_view(node)
        logical = {"a": (*view.batch, view.rows, view.depth), "b": (*view.batch, view.depth, view.columns),
                   "c": (*view.batch, view.rows, view.columns)}
        for slot, operand in enumerate("abc"):
            storage: Value = node.inputs[slot] if slot < 2 else out
            strides = getattr(view, operand)
            if len(strides) != len(logical[operand]) or _reach(logical[operand], strides) >= storage.size:
                raise _fail(node, f"matmul view of {operand} walks {strides} outside its {storage.size} elements")
    else:
        plain = Node(node.op, node.inputs[:arity], [], {k: v for k, v in node.attrs.items()
                                                         if k not in declaration.lowered}, node.loc)
        ((shape, dtype),) = infer(plain)
        reshaped = "epilogue" in node.attrs and math.prod(shape) == out.size  # matmul -> reshape -> epilogue
        retyped = "epilogue" in node.attrs and dtype is DType.i32  # an integer product's epilogue dequantizes it
        if not (dtype == out.dtype or retyped) or not (tuple(shape) == out.shape or reshaped):
            raise _fail(node, f"output {out!r} disagrees with the op's rule {(shape, dtype)}")
    epilogue = node.attrs.get("epilogue")
    if epilogue is not None:
        _check_epilogue(node, epilogue, arity)
    elif len(node.inputs) != arity:
        raise _fail(node, f"expects {arity} inputs, got {len(node.inputs)}")


def _check_lowered(node: Node) -> None:
    fused = FUSED_OPS.get(node.op)
    if fused is not None:
        missing = [a for a in fused.attrs if a not in node.attrs]
        if missing:
            raise _fail(node, f"missing attributes {missing}")
        _FUSED_CHECKS[node.op](node)
    elif node.op in OPS and any(a in node.attrs for a in LOWERED_ATTRS):
        _check_lowered_op(node)
    else:
        _check_rule(node)


def verify(graph: Graph, lowered: bool = False) -> None:
    """Raise IRError naming the first offending op (and its source location); lowered: the graph
    is the passes' output (see the module docstring)."""
    defined = {v.id for v in graph.inputs}
    names = [v.name for v in graph.inputs]
    if len(set(names)) != len(names) or not all(names):
        raise IRError(f"graph inputs need distinct, non-empty names: {names}")
    for node in graph.nodes:
        for value in node.inputs:
            if not value.is_const and value.id not in defined:
                raise IRError(f"{node.where()}: input {value!r} is used before it is defined")
        (_check_lowered if lowered else _check_rule)(node)
        for value in node.outputs:
            if value.id in defined:
                raise IRError(f"{node.where()}: output {value!r} is defined twice")
            defined.add(value.id)
    if not graph.outputs:
        raise IRError("graph has no outputs")
    for value in graph.outputs:
        if not value.is_const and value.id not in defined:
            raise IRError(f"graph output {value!r} is never defined")
    if len(graph.output_names) != len(graph.outputs):
        raise IRError("graph output names do not match the outputs")
