"""The static memory plan's types: where every tensor lives during a call (passes/memplan.py
computes it, codegen/module.py addresses tensors through it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cerebro.compiler.ir.graph import Value
from cerebro.compiler.ir.ops import Role, names

VIEW_OPS = frozenset(names(role=Role.VIEW))  # ops whose output shares its input's storage


@dataclass(frozen=True)
class Place:
    """kind: 'input' | 'output' (index into the caller's pointer array), 'weights' | 'arena' (byte offset)."""

    kind: str
    offset: int


@dataclass
class MemoryPlan:
    places: dict[int, Place]  # value id -> storage
    arena_size: int
    weights: bytes
    # copies done after the last node: (source, output index, bytes); for outputs that are
    # inputs, constants, or the same tensor as an earlier output
    copies: list[tuple[Place, int, int]] = field(default_factory=list)

    def place(self, value: Value) -> Place:
        return self.places[value.id]
