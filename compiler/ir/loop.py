"""The `loop` op: a body graph run step after step, compiled as a loop (never unrolled).

inputs:  consts (read by every step), carries (the loop state), xs (scanned over their axis 0)
attrs:   body: a Graph (consts, carries, one row of each x) -> (new carries, one row of each y);
         num_consts, num_carry;
         scan form: length (steps), cond None; reverse (default False): step i reads and writes row
         length-1-i;
         while form: length None, cond a Graph (consts, carries) -> bool scalar, tested before every
         step; no xs, no ys.
outputs: the final carries, then each y stacked over the steps ([length, *row]).
After passes/loops.py the body is optimised and holds no constants (they are extra consts), and attr
scratch (bytes; default 0: none) adds a last u8 output: the memory a step works in
(codegen/loop_op.py lays it out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.graph import Graph, IRError, Node, Value

if TYPE_CHECKING:  # plan.py imports the op table, which imports this file
    from cerebro.compiler.ir.plan import MemoryPlan

UNBOUNDED = 2**64 - 1  # the cost of a loop whose trip count depends on the data: no budget fits it


def _fail(node: Node, message: str) -> IRError:
    return IRError(f"{node.where()}: {message}")


def _types(values: list[Value]) -> list[tuple[tuple[int, ...], DType]]:
    return [(tuple(v.shape), v.dtype) for v in values]


@dataclass
class Layout:
    """Byte offsets in a prepared loop's scratch (passes/loops.py computes it, codegen/loop_op.py walks it)."""

    body: MemoryPlan
    cond: MemoryPlan | None
    work: int  # the body's (or condition's) arena at offset 0
    carries: list[tuple[int, int]]  # the two buffers of each carry
    flag: int  # the condition's bool
    size: int


def row_bytes(value: Value) -> int:
    """Bytes of one row (axis 0) of a scanned x or stacked y."""
    return value.nbytes // value.shape[0] if value.shape[0] else 0


def parts(node: Node) -> tuple[list[Value], list[Value], list[Value]]:
    """(consts, carries, xs) of a loop node's inputs."""
    nc, nk = node.attrs["num_consts"], node.attrs["num_carry"]
    return node.inputs[:nc], node.inputs[nc:nc + nk], node.inputs[nc + nk:]


def _check_signature(node: Node, graph: Graph, what: str, inputs: list, outputs: list | None) -> None:
    if not isinstance(graph, Graph):
        raise _fail(node, f"{what} must be a Graph")
    got_in = [(v.shape, v.dtype) for v in graph.inputs]
    if got_in != inputs:
        raise _fail(node, f"{what} takes {got_in}, the loop gives it {inputs}")
    got_out = [(v.shape, v.dtype) for v in graph.outputs]
    if outputs is not None and got_out != outputs:
        raise _fail(node, f"{what} returns {got_out}, the loop needs {outputs}")


def rule(node: Node) -> list[tuple[tuple[int, ...], DType]]:
    """The final carries, the stacked ys and (lowered) the scratch bytes; the body and cond must fit."""
    consts, carries, xs = parts(node)
    if len(carries) != node.attrs["num_carry"] or len(consts) != node.attrs["num_consts"]:
        raise _fail(node, "num_consts/num_carry exceed the inputs")
    body, cond = node.attrs["body"], node.attrs["cond"]
    state = _types(consts) + _types(carries)
    if cond is not None:
        if xs or node.attrs["length"] is not None:
            raise _fail(node, "a while loop has no length and scans nothing")
        _check_signature(node, cond, "the condition", state, [((), DType.bool)])
        length = 0
    else:
        length = int(node.attrs["length"])
        if length < 0 or any(x.rank == 0 or x.shape[0] != length for x in xs):
            raise _fail(node, f"xs {[x.shape for x in xs]} do not all have {length} rows")
    _check_signature(node, body, "the body", state + [(x.shape[1:], x.dtype) for x in xs], None)
    results = _types(body.outputs)
    if results[:len(carries)] != _types(carries):
        raise _fail(node, f"the body returns carries {results[:len(carries)]}, the loop carries {_types(carries)}")
    ys = results[len(carries):]
    if cond is not None and ys:
        raise _fail(node, "a while loop's body returns only its carries")
    out = _types(carries) + [((length, *shape), dtype) for shape, dtype in ys]
    if node.attrs.get("scratch", 0):
        out.append(((int(node.attrs["scratch"]),), DType.u8))
    return out


def reference(node: Node, *args: np.ndarray) -> list[np.ndarray]:
    """Run the body graph once per step with the interpreter (cond first, for a while loop)."""
    from cerebro.compiler.ir.interpret import run_graph

    nc, nk = node.attrs["num_consts"], node.attrs["num_carry"]
    consts, carries, xs = list(args[:nc]), list(args[nc:nc + nk]), args[nc + nk:]
    body, cond = node.attrs["body"], node.attrs["cond"]
    steps: list[list[np.ndarray]] = []
    if cond is not None:
        while bool(run_graph(cond, consts + carries)[0]):
            carries = run_graph(body, consts + carries)
    else:
        length = int(node.attrs["length"])
        order = range(length - 1, -1, -1) if node.attrs.get("reverse") else range(length)
        rows: dict[int, list[np.ndarray]] = {}
        for i in order:
            outs = run_graph(body, consts + carries + [x[i] for x in xs])
            carries, rows[i] = outs[:nk], outs[nk:]
        steps = [rows[i] for i in range(length)]
    ys = [np.stack([step[j] for step in steps]) if steps else np.zeros((0, *v.shape), v.dtype.numpy)
          for j, v in enumerate(body.outputs[nk:])]
    scratch = [np.zeros(node.attrs["scratch"], np.uint8)] if node.attrs.get("scratch", 0) else []
    return carries + ys + scratch


def cost(node: Node) -> int:
    """Steps times the body's cost (and the condition's); UNBOUNDED when the data decides the steps."""
    from cerebro.compiler.ir.fused import node_flops

    if node.attrs["cond"] is not None:
        return UNBOUNDED
    step = sum(node_flops(n) for n in node.attrs["body"].nodes)
    return min(int(node.attrs["length"]) * step, UNBOUNDED)
