"""The static memory plan's types: where every tensor lives during a call (passes/memplan.py
computes it, codegen/module.py addresses tensors through it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from cerebro.compiler.ir.graph import Value
from cerebro.compiler.ir.ops import Role, names

VIEW_OPS = frozenset(names(role=Role.VIEW))  # ops whose output shares its input's storage


@dataclass(frozen=True)
class Place:
    """kind: 'input' | 'output' (index into the caller's pointer array), 'weights' | 'arena' (byte offset)."""

    kind: str
    offset: int


@dataclass(frozen=True)
class Weights:
    """The weights blob as its pieces in order (the constants' own buffers and the padding between them).

    Never joined: cbx.writer copies each piece once, straight into the file (a join was one more copy of
    hundreds of MB: 0.23 of 0.28 CPU s of bert's memory plan). len() is the blob's size in bytes."""

    pieces: tuple[memoryview, ...]

    def __len__(self) -> int:
        return sum(piece.nbytes for piece in self.pieces)

    def __iter__(self) -> Iterator[memoryview]:
        return iter(self.pieces)

    def __bytes__(self) -> bytes:
        return b"".join(self.pieces)


@dataclass
class MemoryPlan:
    places: dict[int, Place]  # value id -> storage
    arena_size: int
    weights: Weights
    # copies done after the last node: (source, output index, bytes); for outputs that are
    # inputs, constants, or the same tensor as an earlier output
    copies: list[tuple[Place, int, int]] = field(default_factory=list)

    def place(self, value: Value) -> Place:
        return self.places[value.id]
