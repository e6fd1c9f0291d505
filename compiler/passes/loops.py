"""Prepare every `loop` node (compiler/ir/loop.py) for code generation.

Each body (and while condition) is a graph of its own: it goes through the same passes as the model
(`pipeline`, recursively for loops inside it), its constants become extra consts of the loop (so the
model's weights hold them and the body reads them through pointers like any other input), and it gets
a memory plan of its own. That plan's arena, two buffers per carry (a step reads one and writes the
other, then they swap) and the condition's flag make the loop's scratch: a last u8 output, so the
model's memory plan gives it arena bytes live only while the loop runs. x and y rows need no buffers:
a step reads and writes them in place (emitters assume element alignment only). codegen/loop_op.py
walks the same Layout.

split_scans then cuts a scan costing more than one stage's budget into consecutive scans of fewer steps
(the carries passed on, the xs sliced, the ys concatenated), so a kernel host, which runs each stage
with preemption off, gets stages of bounded length.
"""

from __future__ import annotations

from collections.abc import Callable

from cerebro.compiler.ir import DType, Graph, Node, Value, infer
from cerebro.compiler.ir.fused import node_flops
from cerebro.compiler.ir.loop import Layout, parts
from cerebro.compiler.passes.memplan import align, plan_memory

Pipeline = Callable[[Graph], Graph]  # the model's passes on a private copy of a graph (driver.py)


def layout(node: Node) -> Layout:
    """Where each part of a prepared (constant-free) loop's scratch lives."""
    body, cond = node.attrs["body"], node.attrs["cond"]
    carries = parts(node)[1]
    body_plan = plan_memory(body)
    cond_plan = plan_memory(cond) if cond is not None else None
    cursor = align(max(body_plan.arena_size, cond_plan.arena_size if cond_plan else 0))

    def take(nbytes: int) -> int:
        nonlocal cursor
        cursor += align(nbytes)
        return cursor - align(nbytes)

    pairs = [(take(v.nbytes), take(v.nbytes)) for v in carries]
    flag = take(1)
    return Layout(body_plan, cond_plan, 0, pairs, flag, cursor)


def _lift(graph: Graph, at: int, constants: list[Value]) -> None:
    """Make graph read `constants` as new inputs inserted at position `at` (in place)."""
    lifted = {c.id: Value(c.shape, c.dtype, f"{graph.name}.const{i}") for i, c in enumerate(constants)}
    graph.inputs[at:at] = list(lifted.values())
    for node in graph.nodes:
        node.inputs = [lifted.get(v.id, v) if v.is_const else v for v in node.inputs]
    graph.outputs = [lifted.get(v.id, v) if v.is_const else v for v in graph.outputs]


def _prepare(node: Node, pipeline: Pipeline) -> Node:
    graphs = {key: prepare_loops(pipeline(node.attrs[key]), pipeline)
              for key in ("body", "cond") if node.attrs[key] is not None}
    seen: dict[int, Value] = {}
    for graph in graphs.values():
        for value in graph.constants():
            seen.setdefault(value.id, value)
    constants = list(seen.values())
    nc = node.attrs["num_consts"]
    for graph in graphs.values():
        _lift(graph, nc, constants)
    attrs = {**node.attrs, **graphs, "num_consts": nc + len(constants)}
    inputs = node.inputs[:nc] + constants + node.inputs[nc:]
    prepared = Node(node.op, inputs, list(node.outputs), attrs, node.loc)
    attrs["scratch"] = layout(prepared).size
    prepared.outputs.append(Value((attrs["scratch"],), DType.u8, f"{node.op}.scratch", producer=prepared))
    for value in node.outputs:
        value.producer = prepared
    return prepared


def loop_layouts(graph: Graph) -> dict[int, Layout]:
    """The Layout of every prepared loop node in graph and in the bodies inside it, by id(node): what
    the loop emitter is given (EmitContext.loops), since codegen does not plan memory itself."""
    found: dict[int, Layout] = {}
    for node in graph.nodes:
        if node.op == "loop":
            found[id(node)] = layout(node)
            for key in ("body", "cond"):
                if node.attrs[key] is not None:
                    found.update(loop_layouts(node.attrs[key]))
    return found


def prepare_loops(graph: Graph, pipeline: Pipeline) -> Graph:
    """Replace every loop node of graph not yet prepared by its prepared form (in place; pipeline copies
    the bodies it rewrites); returns graph."""
    graph.nodes = [_prepare(node, pipeline) if node.op == "loop" and not node.attrs.get("scratch", 0) else node
                   for node in graph.nodes]
    return graph


MAX_CHUNKS = 256  # scans a loop is cut into at most: they share one body's code, but each has a stage


def split_scans(graph: Graph, budget: int) -> Graph:
    """Cut every prepared scan costing more than budget estimated flops (node_flops) into consecutive
    scans that each fit it, or MAX_CHUNKS of them (in place; budget <= 0: none); returns graph."""
    graph.nodes = [piece for node in graph.nodes for piece in _chunks(node, budget)]
    return graph


def _chunks(node: Node, budget: int) -> list[Node]:
    if node.op != "loop" or node.attrs["cond"] is not None or budget <= 0:
        return [node]
    length = int(node.attrs["length"])
    count = min(-(-node_flops(node) // budget), MAX_CHUNKS, length)
    if count <= 1:
        return [node]
    consts, carries, xs = parts(node)
    nk = len(carries)
    edges = [length * k // count for k in range(count + 1)]
    spans = list(zip(edges, edges[1:]))[::-1 if node.attrs.get("reverse") else 1]
    made: list[Node] = []
    rows: dict[int, list[tuple[int, Value]]] = {}  # y index -> (first row, chunk of y)
    for k, (lo, hi) in enumerate(spans):
        sliced = [_node(made, "slice", [x], node.loc, start=(lo,) + (0,) * (x.rank - 1), limit=(hi, *x.shape[1:]),
                        strides=(1,) * x.rank).outputs[0] for x in xs]
        chunk = _node(made, "loop", consts + carries + sliced, node.loc, **{**node.attrs, "length": hi - lo})
        if k == len(spans) - 1:  # the last chunk makes the loop's own carries
            chunk.outputs[:nk] = node.outputs[:nk]
            for value in chunk.outputs[:nk]:
                value.producer = chunk
        carries = chunk.outputs[:nk]
        for j, y in enumerate(chunk.outputs[nk:-1]):
            rows.setdefault(j, []).append((lo, y))
    for j, y in enumerate(node.outputs[nk:-1]):
        pieces = [value for _, value in sorted(rows[j], key=lambda item: item[0])]
        made.append(Node("concatenate", pieces, [y], {"axis": 0}, node.loc))
        y.producer = made[-1]
    return made


def _node(made: list[Node], op: str, inputs: list[Value], loc: str, **attrs: object) -> Node:
    node = Node(op, list(inputs), [], attrs, loc)
    node.outputs = [Value(tuple(shape), dtype, producer=node) for shape, dtype in infer(node)]
    made.append(node)
    return node
