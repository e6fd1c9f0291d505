"""When two nodes can share one node function: a canonical description of what an emitter reads.

An emitter sees its node and the module's target (and a loop's scratch layout by node: a loop holds a
body graph, which gives no key): the op, the attrs (fused bodies, epilogues, views included) and the
shapes and dtypes of the values it reads and writes, whose buffers arrive as pointers. Constants' data
is not in the code (it lives in the weights and arrives as a pointer), except a one-element constant,
which an emitter may write as a literal (so its value is part of the key), so nodes that differ only in
which buffers they read, or in their weights, get the same code: emit_module gives them one function.
torchvision's ResNet50 has 58 node functions but 33 distinct ones.

Values are named by their first appearance, so the description keeps which values are the same one
(x * x) and the value ids a fused body uses as names, without the ids themselves. Ints are value ids
only where ID_FIELDS says so; any other int, and an id in a field not listed, is described as it is,
which can only keep two nodes apart, never merge two that differ. Anything the description does not
know (a loop's body graph) gives no key: that node gets its own function.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Hashable

import numpy as np

from cerebro.compiler.codegen.registry import SIZES
from cerebro.compiler.ir import Node, Value
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.fused import FUSED, ROW_KERNEL, Epilogue

Key = Hashable


class _Undescribed(Exception):
    """An attr of a type the description does not know."""


class _Describer:
    """One node's description; ordinals number its values (and ids) in the order met."""

    def __init__(self, target: object) -> None:
        self.ordinals: dict[int, int] = {}
        self.target = target
        self.shapes: dict[int, tuple] = {}  # value id -> shape with the sizes its node function takes as arguments
        self.loaded = False  # the node's emitter reads every input through its pointer (LOADED_OPS)

    def ordinal(self, value_id: int) -> int:
        return self.ordinals.setdefault(value_id, len(self.ordinals))

    def value(self, value: Value) -> Key:
        described = ("value", self.ordinal(value.id), self.shapes.get(value.id, value.shape), value.dtype.name)
        if value.is_const and value.size == 1 and not self.loaded:  # emitters may write it as a literal
            return (*described, value.data.tobytes())
        return described

    def node(self, node: Node, inner: bool = False) -> Key:
        """inner: a node of a fused body or epilogue, whose sizes are its owner's (no SizeRules)."""
        rules = None if inner else SIZES.get(node.op)
        self.loaded = self.loaded or node.op in LOADED_OPS
        shapes, choices, sized = (rules.shapes(node, self.target) if rules is not None else None) or ({}, (), {})
        self.shapes.update(shapes)  # for the node's values and its fused bodies' (an epilogue's)
        attrs = tuple((name, self.field(node.op, name, sized.get(name, node.attrs[name]))
                       if name not in sized or isinstance(sized[name], Epilogue) else sized[name])
                      for name in sorted(node.attrs))
        inputs = tuple(map(self.value, node.inputs))
        return (node.op, inputs, tuple(map(self.value, node.outputs)), attrs, choices)

    def field(self, owner: object, name: str, item: object) -> Key:
        rule = ID_FIELDS.get((owner, name))
        return rule(self, item) if rule is not None else self.item(item)

    def item(self, item: object) -> Key:
        for kind, describe in _KINDS:
            if isinstance(item, kind):
                return describe(self, item)
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            kind = type(item)
            return (kind.__qualname__, tuple((f.name, self.field(kind, f.name, getattr(item, f.name)))
                                             for f in dataclasses.fields(item)))
        raise _Undescribed(type(item).__name__)

    def value_id(self, value_id: int) -> Key:
        return ("id", self.ordinal(value_id))

    def loads(self, loads: tuple) -> Key:
        """((value id, more...), ...): the first of each entry is an id."""
        return tuple((self.value_id(entry[0]), self.item(tuple(entry[1:]))) for entry in loads)


# type -> description, first match wins
_KINDS: tuple[tuple[type | tuple[type, ...], Callable[[_Describer, object], Key]], ...] = (
    (Node, lambda d, item: d.node(item, inner=True)),
    (Value, _Describer.value),
    (DType, lambda d, item: ("dtype", item.name)),
    (float, lambda d, item: ("float", struct.pack("<d", item))),  # the bits: NaN payloads, -0.0
    (np.generic, lambda d, item: ("scalar", item.dtype.str, item.tobytes())),
    ((bool, int, str, type(None)), lambda d, item: (type(item).__name__, repr(item))),
    ((tuple, list), lambda d, item: (type(item).__name__, tuple(map(d.item, item)))),
    (dict, lambda d, item: ("dict", tuple((d.item(k), d.item(v)) for k, v in item.items()))),
    (np.ndarray, lambda d, item: ("array", item.dtype.str, item.shape, item.tobytes())),
)

# (op name or dataclass, field) -> how to describe a field that names values by id (compiler/ir/fused.py)
ID_FIELDS: dict[tuple[object, str], Callable[[_Describer, object], Key]] = {
    (FUSED, "loads"): _Describer.loads,
    (ROW_KERNEL, "loads"): _Describer.loads,
    (Epilogue, "source"): _Describer.value_id,
    (Epilogue, "loads"): _Describer.loads,
}


# ops whose emitters read every input through its pointer, never a one-element constant as a literal, so
# its value is not part of their code (rows.py: a layernorm's divisor and epsilon are loaded; gather.py: a
# take's index, so swin_t's q, k and v = qkv[0], qkv[1], qkv[2] of one shape are one function, 12 -> 4)
LOADED_OPS = frozenset({ROW_KERNEL, "take"})


def kernel_key(node: Node, target: object) -> Key | None:
    """Equal for two nodes whose emitters write the same code for target; None: not known to be
    shareable with any other node."""
    try:
        return _Describer(target).node(node)
    except _Undescribed:
        return None
