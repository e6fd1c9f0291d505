"""Winograd convolutions: a 3x3 stride-1 f32 conv where F(2x2, 3x3) pays becomes a `winograd_conv`
(compiler/ir/winograd.py, codegen/winograd.py) with its kernel transformed once, here.

F(2,3) does 16 multiply-adds per (Cin, Cout) pair for 4 outputs instead of 36 (2.25x fewer); the
transforms add a few adds per element and the tile GEMMs stream 16/9 as many weights. It pays where
the products dominate: enough channels for the transforms to be cheap next to them, and enough tiles
per weight for the bigger kernel to be reused (see pays()). It runs after passes/epilogue.py (the
conv's epilogue becomes the chain, same operands) and before prepack (which leaves the op alone), and
takes back the padded copy passes/explicit_pad.py gave a conv with few channels: the input
transform checks bounds once per tile, not per kernel position.
"""

from __future__ import annotations

from dataclasses import dataclass

from cerebro.compiler.ir import DType, Graph, Node, Value
from cerebro.compiler.ir.winograd import blocks, geometry, transform_kernel
from cerebro.compiler.passes.fuse import read_counts
from cerebro.compiler.targets import lanes, micro_tile

TILE = 2  # F(2x2, 3x3): error within ~2x of the direct conv's; F(4x4) multiplies it by ~10-100
UNIT_INPUT_BYTES = 160 * 1024  # a unit's transformed inputs, kept in L2 while every column block reads them


@dataclass(frozen=True)
class Threshold:
    """A conv pays when it has at least `cin` input and `cout` output channels and `tiles` tiles, and
    its transformed kernel has at most `kernel_bytes`: each unit streams all of it, from L3 when it
    fits there (ResNet's 256 x 256: 4 MiB, 2.1x faster), from memory when not (512 x 512 at 7 x 7:
    16 MiB, 0.9x; one block of all 16 tiles streams it once, 1.13x on one thread, but a stage slice
    then makes all the tiles' inputs again: with units of one column block the slices cost more than
    they saved, and four units were 33.6 MFLOP stages, 8x the budget)."""

    cin: int
    cout: int
    tiles: int
    kernel_bytes: int


PAYS = Threshold(cin=32, cout=32, tiles=32, kernel_bytes=8 << 20)


def _plain_3x3(node: Node) -> bool:
    if node.op != "conv":
        return False
    x, w = node.inputs[:2]
    attrs = node.attrs
    return (x.rank == 4 and x.dtype is DType.f32 and w.is_const and w.shape[:2] == (3, 3)
            and tuple(attrs["strides"]) == (1, 1) and attrs.get("groups", 1) == 1 and "packed_b" not in attrs
            and all(d == 1 for key in ("lhs_dilation", "rhs_dilation") for d in attrs.get(key) or ())
            and all(lo >= 0 and hi >= 0 for lo, hi in attrs["padding"]))


def columns(target: object) -> int:
    """Output channels of one column block (the micro tile's vectors): a Winograd conv's Cout is a multiple
    of it (16 with AVX2, 64 with AVX-512)."""
    return lanes(target, DType.f32) * micro_tile(target)[1]


def pays(node: Node, target: object) -> bool:
    """Whether node is a conv the Winograd kernel runs faster than the direct one on target."""
    if not _plain_3x3(node) or lanes(target, DType.f32) < 8:
        return False
    x, out = node.inputs[0], node.outputs[0]
    width = lanes(target, DType.f32)
    tiles = x.shape[0] * -(-out.shape[1] // TILE) * -(-out.shape[2] // TILE)
    return (x.shape[-1] % width == 0 and out.shape[-1] % columns(target) == 0
            and x.shape[-1] >= PAYS.cin and out.shape[-1] >= PAYS.cout and tiles >= PAYS.tiles
            and (TILE + 2) ** 2 * x.shape[-1] * out.shape[-1] * 4 <= PAYS.kernel_bytes)


def _unpadded(node: Node, readers: dict[int, int], nodes: set[int]) -> tuple[Value, tuple]:
    """(input, padding) with a zero pad that only this conv reads (explicit_pad.py's) folded back."""
    x, padding = node.inputs[0], node.attrs["padding"]
    pad = x.producer
    if (pad is None or pad.op != "pad" or readers.get(x.id) != 1 or pad.attrs.get("interior")
            or float(pad.attrs["value"]) != 0.0 or pad.inputs[0].dtype is not DType.f32):
        return x, padding
    lo, hi = pad.attrs["lo"], pad.attrs["hi"]
    if lo[0] or hi[0] or lo[-1] or hi[-1] or min(*lo, *hi) < 0:
        return x, padding
    nodes.add(id(pad))
    return pad.inputs[0], tuple((p[0] + lo[1 + i], p[1] + hi[1 + i]) for i, p in enumerate(padding))


def winograd_convs(graph: Graph, target: object) -> Graph:
    """Replace each conv that pays() by a winograd_conv, in place; returns graph."""
    readers = read_counts(graph)
    rows, block_columns = micro_tile(target)[0], columns(target)
    kernels: dict[int, Value] = {}
    dropped: set[int] = set()
    for i, node in enumerate(graph.nodes):
        if not pays(node, target):
            continue
        w, out = node.inputs[1], node.outputs[0]
        x, padding = _unpadded(node, readers, dropped)
        if w.id not in kernels:
            kernels[w.id] = Value((w.shape[-1] // block_columns, (TILE + 2) ** 2, w.shape[-2], block_columns),
                                  DType.f32, f"{w.name}.winograd" if w.name else "",
                                  data=transform_kernel(w.data, TILE, block_columns))
        tiles = x.shape[0] * -(-out.shape[1] // TILE) * -(-out.shape[2] // TILE)
        # every column block a unit of its own (a part makes a block's inputs once, codegen/winograd.py), so
        # stage slices keep within the budget (ResNet18 b1's biggest stage 11.4 -> 3.9 MFLOP) at no cost
        attrs = {"padding": padding, "tile": TILE, "block": blocks(tiles, x.shape[-1], TILE, rows, UNIT_INPUT_BYTES),
                 "columns": block_columns, "groups": out.shape[-1] // block_columns,
                 "chain": node.attrs.get("epilogue")}
        wino = Node("winograd_conv", [x, kernels[w.id], *node.inputs[2:]], [out], attrs, node.loc)
        out.producer = wino
        g = geometry(wino)
        wino.outputs.append(Value((g.units * g.scratch_per_unit,), DType.f32, "winograd.scratch", producer=wino))
        graph.nodes[i] = wino
    graph.nodes = [node for node in graph.nodes if id(node) not in dropped]
    return graph
