"""pow by a constant 2 or 3 becomes multiplies: x*x, x*x*x.

Models square through pow (T5's RMSNorm: pow(x, 2); GPT-2's gelu_new: pow(x, 3)). The general float
pow (codegen/mathfn.py) is exp(y*log|x|) in f64 with C's special cases, ~20x an add per element and
not vectorised well; a multiply is one instruction. pow(x, 2) as x*x is the same number (one rounding
of the exact square, which is what a correctly rounded pow gives, specials included: NaN, +-inf,
-0 squared is +0); x*x*x rounds twice, within 2 ulp of pow, as ONNX Runtime's and PyTorch's own
cube. Only float pow whose exponent is a constant with every element equal, and whose output has the
base's shape (the multiplies must not broadcast), is rewritten.
"""

from __future__ import annotations

from cerebro.compiler.ir import Graph, Node, make_node

_POWERS = (2, 3)  # exponents spelled as multiplies: each costs one more multiply


def _constant_power(node: Node) -> int | None:
    """The exponent if node is a float pow by a constant splat in _POWERS that needs no broadcast of x."""
    if node.op != "pow" or not node.inputs[0].dtype.is_float or node.inputs[0].dtype.is_half:
        return None
    x, y = node.inputs
    if not y.is_const or y.data.size == 0 or x.shape != node.outputs[0].shape:
        return None
    first = float(y.data.flat[0])
    return int(first) if first in _POWERS and (y.data == first).all() else None


def _multiplies(node: Node, power: int) -> list[Node]:
    x, out = node.inputs[0], node.outputs[0]
    made: list[Node] = []
    product = x
    for step in range(power - 1):
        made.append(make_node("mul", [product, x], node.loc, out if step == power - 2 else None))
        product = made[-1].outputs[0]
    return made


def multiply_constant_powers(graph: Graph) -> Graph:
    """Rewrite pow(x, 2) and pow(x, 3) by constant exponents as multiplies (in place); returns graph."""
    nodes: list[Node] = []
    for node in graph.nodes:
        power = _constant_power(node)
        nodes.extend(_multiplies(node, power) if power else [node])
    graph.nodes = nodes
    return graph
