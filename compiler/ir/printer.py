"""The IR's readable text form (what `cerebroc inspect --ir` shows)."""

from __future__ import annotations

from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.graph import Graph, Value


def _type(v: Value) -> str:
    return f"{v.dtype.name}[{','.join(map(str, v.shape))}]"


def _attr(value: object) -> str:
    if isinstance(value, DType):
        return value.name
    if isinstance(value, Graph):  # a loop's body: printed, never repr'd (the text keys the compile cache)
        return "\n    " + format_graph(value).rstrip("\n").replace("\n", "\n    ")
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_attr(v) for v in value) + ")"
    return repr(value)


def format_graph(graph: Graph) -> str:
    names: dict[int, str] = {}

    def name(v: Value) -> str:
        if v.id not in names:
            names[v.id] = f"%c{len(names)}" if v.is_const else f"%{len(names)}"
        return names[v.id]

    for v in graph.inputs:
        names[v.id] = f"%{v.name}"
    lines = [f"func @{graph.name}(" + ", ".join(f"{name(v)}: {_type(v)}" for v in graph.inputs) + ") {"]
    for c in graph.constants():
        lines.append(f"  {name(c)} = const {_type(c)}")
    for node in graph.nodes:
        outs = ", ".join(f"{name(v)}: {_type(v)}" for v in node.outputs)
        args = ", ".join(name(v) for v in node.inputs)
        attrs = ", ".join(f"{k}={_attr(v)}" for k, v in sorted(node.attrs.items()))
        text = f"  {outs} = {node.op}({args})" + (f" {{{attrs}}}" if attrs else "")
        if node.loc:
            text += f"  # {node.loc}"
        lines.append(text)
    outs = ", ".join(f"{n}={name(v)}" for n, v in zip(graph.output_names, graph.outputs))
    lines.append(f"  return {outs}")
    lines.append("}")
    return "\n".join(lines) + "\n"
