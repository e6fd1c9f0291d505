"""conv: direct channels-last convolution as an implicit GEMM with the matmul register tile.

Loop structure:  for n, for a block of R consecutive output pixels (along the last spatial
                   dim, or along all spatial dims flattened: see `pixels`)
                     for group g, for a block of output channels (NV vectors of W lanes, then tails)
                       acc[R][NV] = 0
                       for each kernel position (k0, k1, ...): for ci in Cin/groups:
                         acc[r][v] += x[pixel_r(k), g*Cin_g + ci] * w[k, ci, g*Cout_g + v*W : +W]
Output channels are innermost and contiguous in both w and the output, so
the tile is the matmul micro-kernel with K = kernel positions x Cin/groups;
no im2col buffer is built. When the weights outweigh one image (deep
layers) the channel-block loops go outside the pixel loops instead, so one
block's weights stay in cache while the pixels of a block of images (whose
inputs fit in L2, see image_block) use them. A fused epilogue
(attrs["epilogue"]) runs on each tile row right after its store. Padding and
input (lhs) dilation are bounds checks per row and kernel position: an
out-of-range row reads its Cin/groups inputs from a constant row of zeros
(a pointer select outside the ci loop; depthwise tiles replace a clamped
load's value by 0), branch-free and never out of bounds. In a call split into parts
(codegen/partition.py) each part takes a share of the pixel blocks, or of
the output channel blocks where the weights are the bigger stream (of the
(pixel, channel block) tiles when those are fewer than the parts).
Depthwise convolutions (one input and one output channel per group) have no ci loop to
amortise, so they vectorise over channels instead, the channel blocks inside the pixel blocks
(a tile's input rows stay in cache across them):
acc[r][v] += x[pixel_r(k), c0+v*W : +W] * w[k, 0, c0+v*W : +W],
with the tile's rows along the last spatial dim, so that each input column of the tile's span is
loaded once for all the (row, kernel column) pairs that read it.
A pointwise conv (1x1, stride 1, unpadded: its spatial dims one axis) takes its batch, pixel count and
channel counts as i64 arguments (runtime_sizes): the code depends only on the epilogue and how the
sizes come out in blocks (_Pixels, matmul.tile_plan), so MobileNet's and EfficientNet's stages share a few
functions, each block still the same code. A strided dense conv takes its channel counts and spatial sizes
as arguments too (runtime_spatial): ResNet's stride-2 convs of one form at every stage are one function.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace

from llvmlite import ir

from cerebro.compiler.codegen import epilogue
from cerebro.compiler.codegen.llvm_types import byte_size, constant, element_type, load, multiply_add, splat, store
from cerebro.compiler.codegen.llvm_types import index as affine
from cerebro.compiler.codegen.loops import fold_nest, fold_range, for_range, i64, size_value
from cerebro.compiler.codegen.matmul import (
    CACHE_LINE,
    MAX_TILE_ROWS,
    STREAMED_B_BYTES,
    balanced_rows,
    prefetch,
    prefetch_walk,
    runtime_tile_phases,
    stream_fetches,
    tile_phases,
    tile_plan,
)
from cerebro.compiler.codegen.partition import (
    CROSS_CORE,
    channels_first,
    for_outer,
    for_phases,
    for_rectangles,
    grid_units,
    parts_of,
    share,
    smax,
    smin,
    unflatten,
)
from cerebro.compiler.codegen.registry import EmitContext, SizeRules, emitter, sizes_as_arguments, unsupported
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.strides import contiguous_strides
from cerebro.compiler.targets import conv_tile, lanes, micro_tile, streams_conv_weights

_CONV_TYPES = (DType.f32, DType.f64, DType.i32, DType.i64)


@dataclass(frozen=True)
class _Axis:
    """One spatial dimension: input/kernel/output sizes and how output positions map to input positions."""

    size: int | ir.Value  # an argument of the function where runtime_sizes
    kernel: int
    out: int | ir.Value
    stride: int
    lo: int
    hi: int
    lhs_dilation: int
    rhs_dilation: int


@dataclass
class _Conv:
    axes: list[_Axis]
    batch: int | ir.Value
    cin: int | ir.Value  # an argument of the function where runtime_channels (or runtime_sizes)
    cout: int | ir.Value
    cin_group: int | ir.Value
    cout_group: int | ir.Value
    elem: ir.Type
    px: ir.Value
    pw: ir.Value
    po: ir.Value
    node: Node
    fn: ir.Function
    streams: bool = False  # streams_weights
    walks: bool = False  # walks_weights
    # a residual-sharing core's epilogues (epilogue.share_residual): (whether to run it, i1 or None: always;
    # the node whose epilogue it is, the function-like its slots index)
    epilogues: tuple[tuple[ir.Value | None, Node, object], ...] = ()


_INT_OPS = {"add": (operator.add, "add"), "sub": (operator.sub, "sub"), "mul": (operator.mul, "mul"),
            "udiv": (operator.floordiv, "udiv"), "urem": (operator.mod, "urem")}


def _arith(builder: ir.IRBuilder | None, op: str, a: int | ir.Value, b: int | ir.Value) -> int | ir.Value:
    """a op b on sizes that are ints (folded here) or i64 arguments (runtime_sizes)."""
    fold, instruction = _INT_OPS[op]
    if isinstance(a, int) and isinstance(b, int):
        return fold(a, b)
    return getattr(builder, instruction)(i64(a) if isinstance(a, int) else a, i64(b) if isinstance(b, int) else b)


def _at(builder: ir.IRBuilder, start: int | ir.Value, *terms: tuple[ir.Value, int]) -> ir.Value:
    """start + the terms (llvm_types.index), the start a constant or a size computed from arguments."""
    return affine(builder, start, *terms) if isinstance(start, int) else affine(builder, 0, (start, 1), *terms)


def _sum(builder: ir.IRBuilder | None, sizes: list[int | ir.Value]) -> int | ir.Value:
    total: int | ir.Value = 0
    for size in sizes:
        total = size if isinstance(total, int) and total == 0 else _arith(builder, "add", total, size)
    return total


def _product(builder: ir.IRBuilder | None, sizes: list[int | ir.Value]) -> int | ir.Value:
    total: int | ir.Value = 1
    for size in sizes:
        total = size if isinstance(total, int) and total == 1 else _arith(builder, "mul", total, size)
    return total


@dataclass(frozen=True)
class _Pixels:
    """How a conv walks its output pixels in blocks of `rows` (matmul.balanced_rows of the tile's): along the
    last spatial dim, or along all spatial dims flattened (`flat`: when the per-row checks are cheap next to
    the ci loop or the last dim is short, see `pixels`); then blocks of `short` rows: one tail, or with
    `fewer` as many blocks of rows - 1 as make the length come out even (49 = 4 x 6 + 5 x 5, not 8 x 6 + 1:
    a tail of 1-4 rows has too few accumulators to cover the multiply-add latency; each pixel sums in the
    same order). The same plan gives the right blocks for every length with the same remainder class, so it
    is all the code depends on when the sizes are arguments (runtime_sizes)."""

    rows: int
    flat: bool
    short: int
    fewer: bool


def _pixel_plan(node: Node, rows: int) -> _Pixels:
    cin_group = node.inputs[0].shape[-1] // node.attrs.get("groups", 1)
    outs = [a.out for a in _axes(node)]
    flat = not _is_depthwise(node) and (cin_group >= 16 or outs[-1] < 2 * rows)
    length = math.prod(outs) if flat else outs[-1]
    if not (_is_depthwise(node) or runtime_sizes(node) or runtime_spatial(node)):  # those share by plan
        rows = balanced_rows(length, rows)
    rest = length % rows
    fewer = not _is_depthwise(node) and rest > 0 and length >= (rows - rest) * (rows - 1)
    return _Pixels(rows, flat, rows - 1 if fewer else rest, fewer)


def _pixel_grid(builder: ir.IRBuilder | None, plan: _Pixels, axes: list[_Axis], images: int | ir.Value
                ) -> tuple[list[int | ir.Value], list[int | ir.Value]]:
    """(outer sizes, blocks per phase of one outer index) of `images` images' output pixels under plan;
    ints, or i64 values where the sizes are (builder None: ints only)."""
    outs = [a.out for a in axes]
    sizes = [images] if plan.flat else [images, *outs[:-1]]
    length = _product(builder, outs) if plan.flat else outs[-1]
    if not plan.fewer:
        return sizes, [_arith(builder, "udiv", length, plan.rows), int(plan.short > 0)]
    fewer = _arith(builder, "sub", plan.rows, _arith(builder, "urem", length, plan.rows))
    rest = _arith(builder, "sub", length, _arith(builder, "mul", fewer, plan.rows - 1))
    return sizes, [_arith(builder, "udiv", rest, plan.rows), fewer]


def _is_pointwise(node: Node) -> bool:
    """A 1x1 conv, stride 1, no padding or dilation, one group: each output pixel reads its own input
    pixel, so all spatial dims are one axis (no divisions to find a row's position, no tails per row)."""
    lhs = node.attrs.get("lhs_dilation") or ()
    rhs = node.attrs.get("rhs_dilation") or ()
    return (node.attrs.get("groups", 1) == 1 and all(k == 1 for k in node.inputs[1].shape[:-2])
            and all(s == 1 for s in node.attrs["strides"]) and all(d == 1 for d in (*lhs, *rhs))
            and all(lo == 0 and hi == 0 for lo, hi in node.attrs["padding"]))


def _axes(node: Node) -> list[_Axis]:
    """The conv's spatial axes with their sizes (a pointwise conv's as one)."""
    x, w = node.inputs[:2]
    out = node.outputs[0]
    if _is_pointwise(node):
        pixels = math.prod(out.shape[1:-1])
        return [_Axis(pixels, 1, pixels, 1, 0, 0, 1, 1)]
    spatial = x.rank - 2
    lhs = node.attrs.get("lhs_dilation") or (1,) * spatial
    rhs = node.attrs.get("rhs_dilation") or (1,) * spatial
    return [_Axis(x.shape[1 + i], w.shape[i], out.shape[1 + i], node.attrs["strides"][i],
                  node.attrs["padding"][i][0], node.attrs["padding"][i][1], lhs[i], rhs[i]) for i in range(spatial)]


def _weights_outer(node: Node) -> bool:
    """Whether the channel-block loops go outside the pixel loops (the weights outweigh one image)."""
    x, w = node.inputs[:2]
    return w.nbytes > x.nbytes // max(1, x.shape[0])


def _is_depthwise(node: Node) -> bool:
    x, w = node.inputs[:2]
    groups = node.attrs.get("groups", 1)
    return x.shape[-1] // groups == 1 and w.shape[-1] // groups == 1


def _weights_outer_units(node: Node, target: object) -> tuple[int, int]:
    """(output channel blocks, pixel blocks of one image block) when the weights outweigh an image."""
    x, w = node.inputs[:2]
    tile_rows, vectors = conv_tile(target, node)
    width = lanes(target, node.outputs[0].dtype)
    blocks = sum(count for _, count, _ in tile_phases(w.shape[-1] // node.attrs.get("groups", 1), width, vectors))
    images = image_block(x.shape[0], x.nbytes // max(1, x.shape[0]))
    sizes, counts = _pixel_grid(None, _pixel_plan(node, tile_rows), _axes(node), images)
    return blocks, math.prod(sizes) * sum(counts)


def _channels_first(node: Node) -> bool:
    """Whether the parts of a weights-outer conv split its channel blocks (each streams its share of
    the weights) or its pixels, each part's own images (partition.channels_first)."""
    return channels_first(node.inputs[1].nbytes, node.inputs[0].nbytes, node.outputs[0].nbytes)


def _split_channels(builder: ir.IRBuilder, conv: _Conv) -> bool | ir.Value:
    """_channels_first, an i1 computed from the sizes where they are arguments (runtime_spatial): so
    ResNet's 3x3/2 convs of stages 3 and 4, which split differently among parts, share one function."""
    if not runtime_spatial(conv.node):
        return _channels_first(conv.node)
    positions = math.prod(a.kernel for a in conv.axes)
    weights = _product(builder, [positions, conv.cin, conv.cout])
    images = _product(builder, [conv.batch, *(a.size for a in conv.axes), conv.cin])
    outputs = _product(builder, [conv.batch, *(a.out for a in conv.axes), conv.cout])
    return builder.icmp_unsigned(">", size_value(weights),
                                 size_value(_arith(builder, "mul", CROSS_CORE, _sum(builder, [images, outputs]))))


def dense_rows(node: Node, target: object) -> int:
    """Rows of a dense conv's register tile where its pixel blocks are outside its channel blocks: micro_tile's;
    for a conv of few input channels (a stem: the per-row work outweighs the ci loop) whose output channels
    fill part of the tile's vectors, the fewest more rows within the tile's accumulators that leave the walk
    no short block (28 = 4 x 7, not 3 x 6 + 2 x 5): one tile body for LLVM, not two (the benchmark cnn's
    first conv, 28 x 28 x 1 -> 32: 0.048 -> 0.032 CPU s of LLVM, the same time per call); for a KxK conv of
    more whose output channels fill at most half the vectors, as many more rows as fill the accumulators,
    up to MAX_TILE_ROWS (DenseNet's 3x3 128 -> 32: 12 x 2 zmm, not 6 x 2; densenet121 b1 1.019x on a Xeon
    core; 1x1 convs of 16-32 outputs lost 1-2% so, squeezenet1_1, mobilenet_v3_large). Each pixel sums in
    the same order whatever the rows: the same bits."""
    rows, vectors = conv_tile(target, node)
    x, w = node.inputs[:2]
    used = -(-w.shape[-1] // lanes(target, node.outputs[0].dtype))  # vectors per ci step
    if node.attrs.get("groups", 1) != 1 or _weights_outer(node) or runtime_sizes(node):
        return rows
    if 2 * used <= vectors and x.shape[-1] >= SPATIAL_MIN_CHANNELS and math.prod(w.shape[:-2]) > 1:
        return min(MAX_TILE_ROWS, rows * vectors // used)
    if runtime_spatial(node) or x.shape[-1] >= SPATIAL_MIN_CHANNELS or used >= vectors:
        return rows
    plan = _pixel_plan(node, rows)
    outs = [a.out for a in _axes(node)]
    length = math.prod(outs) if plan.flat else outs[-1]
    fits = [more for more in range(rows, rows * vectors // used + 1)
            if length % more == 0 and _pixel_plan(node, more).flat == plan.flat]
    return fits[0] if fits else rows


def conv_units(node: Node, target: object, parts: int) -> int:
    """Pixel blocks; where the weights outweigh an image, channel blocks or (pixel, channel) tiles,
    as for_rectangles shares them (see emit_conv)."""
    if _weights_outer(node) and not _is_depthwise(node):
        blocks, pixel_units = _weights_outer_units(node, target)
        x = node.inputs[0]
        image_blocks = x.shape[0] // image_block(x.shape[0], x.nbytes // max(1, x.shape[0]))
        return grid_units(blocks, image_blocks * pixel_units, parts, _channels_first(node))
    rows = depthwise_tile(target, node)[0] if _is_depthwise(node) else dense_rows(node, target)
    sizes, counts = _pixel_grid(None, _pixel_plan(node, rows), _axes(node), node.inputs[0].shape[0])
    return math.prod(sizes) * sum(counts)


@emitter("conv", units=conv_units)
def emit_conv(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    """A dense conv with a residual add, and the same conv without it, call one function
    (epilogue.share_residual; depthwise convs keep their own)."""
    if node.outputs[0].dtype not in _CONV_TYPES:
        raise unsupported(node, f"conv on {node.outputs[0].dtype.name}")
    forms = None if _is_depthwise(node) else epilogue.residual_forms(node, ctx.target, 2)
    epilogue.share_residual(node, fn, forms, lambda *args: _emit_conv(ctx, *args))


def _emit_conv(ctx: EmitContext, fn: ir.Function, node: Node, plain: Node | None = None,
               forms: epilogue.Residual | None = None) -> None:
    """node's code in fn; with plain (a residual-sharing core), each tile's epilogue is node's where the
    residual pointer is not null, else plain's."""
    x, w = node.inputs[:2]
    out = node.outputs[0]
    groups = node.attrs.get("groups", 1)
    axes = _axes(node)
    if any(a.stride < 1 or a.lhs_dilation < 1 or a.rhs_dilation < 1 for a in axes):
        raise unsupported(node, "conv stride or dilation below 1")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, pw, po = fn.args[0], fn.args[1], fn.args[len(node.inputs)]
    cin, cout = x.shape[-1], w.shape[-1]
    conv = _Conv(axes, x.shape[0], cin, cout, cin // groups, cout // groups, element_type(out.dtype), px, pw, po,
                 node, fn, streams_weights(node, ctx.target), walks_weights(node, ctx.target))
    conv.epilogues = ((None, node, fn),)
    if plain is not None:
        present = epilogue.residual_present(builder, fn, forms)
        conv.epilogues = ((present, node, fn), (builder.not_(present), plain, epilogue.plain_arguments(fn, forms)))
    arguments = len(size_arguments(node))
    if arguments and fn.args[-1].type == i64(0).type:  # module.py passes size_arguments
        _take_sizes(conv, list(fn.args[-arguments:]))
    width = lanes(ctx.target, out.dtype)
    tile_rows, vectors = conv_tile(ctx.target, node)
    if node.attrs.get("packed_b") not in (None, width * vectors) or ("packed_b" in node.attrs and groups != 1):
        raise unsupported(node, f"kernel packed in blocks of {node.attrs['packed_b']} for this tile")

    part, parts = parts_of(builder, node, fn)

    def pixels(rows: int, emit: Callable[..., None], images: tuple[ir.Value, int] | None = None,
               numbered: tuple[ir.Value, ir.Value] | None = None, ordinals: bool = False) -> None:
        """emit(outer, row count, first row) over this part's share of the output pixels (of images
        first : first+count when given; with ordinals, also (this tile's index, the tiles) in the share).
        Rows run along the last spatial dim (outer = [n, other
        positions]: their bounds checks are shared by the tile's rows), or, when the per-row checks are
        cheap next to the ci loop or the last dim is short, along all spatial dims flattened (outer =
        [n]: image rows run into each other and tails are rare). The parts share the row blocks of all
        outer positions, numbered in order (those numbered numbered[0] to numbered[1] - 1, when given)."""
        first, count = images or (i64(0), conv.batch)
        plan = _pixel_plan(node, rows)  # its rows: balanced_rows of these
        sizes, counts = _pixel_grid(builder, plan, conv.axes, count)
        outer_count, units = _product(builder, sizes), _sum(builder, counts)
        lo, hi = numbered or share(builder, _arith(builder, "mul", outer_count, units), part, parts)
        with for_outer(builder, outer_count, units, lo, hi) as (flat, begin, end):
            outer = unflatten(builder, flat, sizes)
            outer = [affine(builder, 0, (first, 1), (outer[0], 1)), *outer[1:]]
            tail = _arith(builder, "mul", counts[0], plan.rows)

            def block(phase: int, rb: ir.Value) -> None:
                more = ()
                if ordinals:
                    before = size_value(_sum(builder, counts[:phase]))
                    unit = builder.add(builder.add(builder.mul(flat, size_value(units)), before), rb)
                    more = ((builder.sub(unit, lo), builder.sub(hi, lo)),)
                if phase == 0:
                    emit(outer, plan.rows, affine(builder, 0, (rb, plan.rows)), *more)
                else:
                    emit(outer, plan.short, _at(builder, tail, (rb, plan.short)), *more)

            for_phases(builder, begin, end, counts, block, "rb")

    def channel_blocks(channels: int, runtime: int | ir.Value, vectors: int,
                       emit: Callable[[ir.Value, list[int]], None],
                       numbered: tuple[ir.Value, ir.Value] | None = None) -> None:
        """emit(first channel, chunk widths) over blocks of `channels` channels (`runtime` of them where
        that is an argument, in the same remainder class: matmul.runtime_tile_phases; those numbered numbered[0]
        to numbered[1] - 1, when given, and then whether the block is the first of those)."""
        phases = runtime_tile_phases(builder, channels, runtime, width, vectors)
        lo, hi = numbered or (i64(0), size_value(_sum(builder, [count for _, count, _ in phases])))
        counts = [count for _, count, _ in phases]

        def block(phase: int, cb: ir.Value) -> None:
            widths, _, first = phases[phase]
            more = ()
            if numbered is not None:
                unit = builder.add(cb, size_value(_sum(builder, counts[:phase])))
                more = (builder.icmp_signed("==", unit, smax(builder, lo, i64(0))),)
            emit(_at(builder, first, (cb, sum(widths))), widths, *more)

        for_phases(builder, lo, hi, counts, block, "cb")

    if _is_depthwise(node):
        dw_rows, dw_vectors = depthwise_tile(ctx.target, node)
        masked = masked_loads(ctx.target, node)

        def depthwise_block(outer: list[ir.Value], rows: int, ow0: ir.Value) -> None:
            def tile(c0: ir.Value, widths: list[int]) -> None:
                _depthwise_tile(builder, conv, outer, ow0, rows, c0, widths, masked)

            channel_blocks(cin, conv.cin, dw_vectors, tile)

        pixels(dw_rows, depthwise_block)
    elif _weights_outer(node):
        # weights bigger than an image: keep one block of output channels' weights hot across the pixels
        # of a few images, whose inputs stay in L2 while every channel block reads them. The parts
        # share the channel blocks (each streams its own weights) when there are enough, else the
        # (pixel block, channel block) tiles of all image blocks, numbered pixel-major.
        per_block = image_block(x.shape[0], x.nbytes // max(1, x.shape[0]))
        sizes, counts = _pixel_grid(builder, _pixel_plan(node, tile_rows), conv.axes, per_block)
        pixel_units = _arith(builder, "mul", _product(builder, sizes), _sum(builder, counts))  # of conv.axes' sizes
        blocks = _sum(builder, [count for _, count, _ in runtime_tile_phases(builder, cout // groups, conv.cout_group,
                                                                          width, vectors)])
        image_blocks = x.shape[0] // per_block
        by_channels = _split_channels(builder, conv)
        # many parts (stage slices): channel block by channel block where split by channels or where the weights
        # stream (partition.grid_share: else every pixel block's slices read all the weights again)
        first_major = True if conv.streams else by_channels
        with for_rectangles(builder, part, parts, blocks, _arith(builder, "mul", image_blocks, pixel_units),
                            by_channels, first_major) as (
                channel_lo, channel_hi, pixel_lo, pixel_hi):
            with for_outer(builder, image_blocks, pixel_units, pixel_lo, pixel_hi, "ib") as (ib, begin, end):
                first = affine(builder, 0, (ib, per_block))
                own = (smax(builder, begin, i64(0)), smin(builder, end, size_value(pixel_units)))
                with for_range(builder, groups, "g") as g:
                    def weights_block(j0: ir.Value, widths: list[int], first_block: ir.Value) -> None:
                        def tile(outer: list[ir.Value], rows: int, ow0: ir.Value,
                                 ordinal: tuple[ir.Value, ir.Value] | None = None) -> None:
                            _gemm_tile(builder, conv, outer, ow0, rows, g, j0, widths,
                                       ordinal and (*ordinal, first_block))

                        pixels(tile_rows, tile, (first, per_block), own, conv.streams)

                    channel_blocks(cout // groups, conv.cout_group, vectors, weights_block, (channel_lo, channel_hi))
    else:
        # images bigger than the weights: keep a block of input pixels hot across all output channels
        def pixel_block(outer: list[ir.Value], rows: int, ow0: ir.Value) -> None:
            with for_range(builder, groups, "g") as g:
                def tile(j0: ir.Value, widths: list[int]) -> None:
                    _gemm_tile(builder, conv, outer, ow0, rows, g, j0, widths)

                channel_blocks(cout // groups, conv.cout_group, vectors, tile)

        pixels(dense_rows(node, ctx.target), pixel_block)
    builder.ret_void()


def runtime_channels(node: Node) -> bool:
    """Whether the input channel count can be an argument of the node function instead of a constant, so
    that convs differing only in it (DenseNet's 1x1s) share one function: a dense conv without padding or
    input dilation (a padded row reads a zeros row sized by it). Same loops and sum order either way."""
    lhs = node.attrs.get("lhs_dilation") or ()
    return (node.attrs.get("groups", 1) == 1 and not _is_depthwise(node)
            and all(lo == 0 and hi == 0 for lo, hi in node.attrs["padding"]) and all(d == 1 for d in lhs))


def runtime_sizes(node: Node) -> bool:
    """Whether the output channel count is an argument too (a pointwise conv), and the batch and pixel
    count (where its weights do not outweigh an image), so that the pointwise convs of MobileNet and
    EfficientNet stages (each its own size) share a few functions: a pointwise conv's pixels are one axis
    walked in blocks whose loops take run-time bounds at no cost (MobileNetV3's 30 of them: 4.84 ms per
    call with constants, 4.79 with arguments). Where the weights outweigh an image only for one pixel in
    all (squeeze-excitation at batch 1: 13 us either way), its pixels constants: with run-time bounds that
    grid of channel and pixel blocks ran 16% slower, with a run-time channel count and several rows per
    tile 4-8% (a 7x7x160 -> 960 conv); depthwise convs ran 20% slower (their column and weight offsets,
    constants in the addressing modes, became registers and spilled). Same tiles and sum order as with
    constants."""
    x = node.inputs[0]
    return (runtime_channels(node) and _is_pointwise(node)  # _take_sizes reads the channels first
            and (not _weights_outer(node) or x.size == x.shape[-1]))


ZERO_ROW_CHANNELS = 2048  # the zeros row of a padded conv whose channel count is an argument (runtime_spatial)
SPATIAL_MIN_CHANNELS = 16  # _pixel_plan's rule for a flat walk: the ci loop outweighs the per-row work


def runtime_spatial(node: Node) -> bool:
    """Whether a strided dense conv takes its channel counts and its input and output spatial sizes as
    arguments (its batch a constant), so that ResNet's stride-2 convs of each form share one function
    (resnet18: the 3x3/2s of stages 3 and 4, the 1x1/2 downsamples). Padding is checked against the
    run-time input size and read from a zeros row of ZERO_ROW_CHANNELS; a tile row's position takes a
    run-time division, once per row next to Cin x kernel positions of multiply-adds, hence Cin from
    SPATIAL_MIN_CHANNELS (stems keep constants). Same tiles and sum order as with constants."""
    x = node.inputs[0]
    lhs = node.attrs.get("lhs_dilation") or ()
    padded = any(lo or hi for lo, hi in node.attrs["padding"])
    return (node.attrs.get("groups", 1) == 1 and not _is_depthwise(node) and all(d == 1 for d in lhs)
            and any(s > 1 for s in node.attrs["strides"])
            and all(lo >= 0 and hi >= 0 for lo, hi in node.attrs["padding"])
            and SPATIAL_MIN_CHANNELS <= x.shape[-1] <= (ZERO_ROW_CHANNELS if padded else x.shape[-1]))


def size_arguments(node: Node) -> list[int]:
    """The sizes the node function takes as trailing i64 arguments: the input channels (runtime_channels),
    then the batch and the pixels of an image, and the output channels (runtime_sizes); or the input
    channels, the input and output spatial sizes and the output channels (runtime_spatial)."""
    if runtime_spatial(node):
        axes = _axes(node)
        return [node.inputs[0].shape[-1], *(a.size for a in axes), *(a.out for a in axes), node.outputs[0].shape[-1]]
    sizes = [node.inputs[0].shape[-1]] if runtime_channels(node) else []
    if runtime_sizes(node) and not _weights_outer(node):
        (axis,) = _axes(node)
        sizes += [node.inputs[0].shape[0], axis.size]
    return sizes + [node.outputs[0].shape[-1]] * runtime_sizes(node)


def _take_sizes(conv: _Conv, values: list[ir.Value]) -> None:
    """Use the function's size arguments (size_arguments' order) instead of the node's constants."""
    conv.cin = conv.cin_group = values.pop(0)
    if runtime_spatial(conv.node):
        conv.cout = conv.cout_group = values.pop()
        ins, outs = values[:len(conv.axes)], values[len(conv.axes):]
        conv.axes = [replace(a, size=size, out=out) for a, size, out in zip(conv.axes, ins, outs)]
        return
    if not values:
        return
    conv.cout = conv.cout_group = values.pop()
    if values:
        conv.batch, pixels = values
        conv.axes = [replace(a, size=pixels, out=pixels) for a in conv.axes]


def runtime_shapes(node: Node, target: object) -> tuple[dict[int, tuple], tuple, dict[str, object]] | None:
    """For kernel_key: (value id -> shape with the argument sizes as None, the choices emit_conv makes
    from those sizes at compile time for `target`, no attr holding a size), or None when every size is a
    constant. An epilogue's loads keep their row strides: a residual's, the channel count, keeps convs of
    other channel counts apart (read at pixel x a run-time count, ResNet50 batch 8 ran 2-3% slower)."""
    x, w = node.inputs[:2]
    if runtime_sizes(node) or runtime_spatial(node):
        epilogue = node.attrs.get("epilogue")
        inner = [v for n in (epilogue.nodes if epilogue else ()) for v in (*n.inputs, *n.outputs)]
        shapes = {v.id: (None,) * v.rank for v in (*node.inputs, *node.outputs, *inner)
                  if not (v.is_const and v.size == 1)}  # an epilogue's literals keep theirs (kernel_key)
        shapes[w.id] = (*w.shape[:-2], None, None)
        rows, vectors = conv_tile(target, node)
        width = lanes(target, node.outputs[0].dtype)
        grid = (image_block(x.shape[0], x.nbytes // max(1, x.shape[0])), _channels_first(node),
                x.shape[0], _axes(node)[0].size) if _weights_outer(node) else None  # constant pixels, and how
        if runtime_spatial(node):  # the batch stays a constant, and with it where the weights go
            grid = (x.shape[0], _weights_outer(node), image_block(x.shape[0], x.nbytes // max(1, x.shape[0])))
        dense = dense_rows(node, target)
        choices = ("sizes", (rows, vectors, dense, _pixel_plan(node, dense)), _pixel_plan(node, rows),
                   tile_plan(w.shape[-1], width, vectors), grid,
                   streams_weights(node, target), walks_weights(node, target))
        return shapes, choices, {}
    if not runtime_channels(node):
        return None
    choices = (x.shape[-1] >= 16, conv_tile(target, node), _weights_outer(node),
               image_block(x.shape[0], x.nbytes // max(1, x.shape[0])),
               streams_weights(node, target), walks_weights(node, target))
    return {x.id: (*x.shape[:-1], None), w.id: (*w.shape[:-2], None, w.shape[-1])}, choices, {}


def _times(builder: ir.IRBuilder, value: ir.Value, channels: int | ir.Value, factor: int | ir.Value = 1
           ) -> tuple[ir.Value, int]:
    """value * factor * channels as an index term (channels and factor constants or sizes from arguments)."""
    if isinstance(channels, int) and isinstance(factor, int):
        return value, factor * channels
    if isinstance(channels, int):
        channels, factor = factor, channels
    scaled = (value if isinstance(factor, int) and factor == 1
              else builder.mul(value, size_value(factor), flags=("nsw",)))
    return builder.mul(scaled, channels, flags=("nsw",)), 1


IMAGE_BLOCK_BYTES = 256 * 1024  # input images per weights pass: a quarter of a typical L2


def image_block(batch: int, image_bytes: int) -> int:
    """The most images (a divisor of batch) whose inputs fit IMAGE_BLOCK_BYTES; at least one."""
    fit = max(1, IMAGE_BLOCK_BYTES // max(1, image_bytes))
    return max(d for d in range(1, min(batch, fit) + 1) if batch % d == 0) if batch else 1


DEPTHWISE_PAIR_ROWS = 4  # the most rows of a 2-vector depthwise tile (a kernel row's columns stay in registers)
DEPTHWISE_SINGLE_ROWS = 8  # the most rows of a 1-vector tile
DEPTHWISE_SPAN = 16  # the most input columns a 1-vector 3x3 tile's row spans, with 32 vector registers


def depthwise_tile(target: object, node: Node) -> tuple[int, int]:
    """(rows, vectors) of a depthwise tile: rows along the last spatial dim, evened out over it (14 = 7 + 7,
    not 6 + 6 + 2: a short tail still loads a whole span of columns). Kernels up to 3 wide take 2 column
    vectors where the channels fill more than one and up to DEPTHWISE_PAIR_ROWS rows even out with no tail
    (and no more than keep the accumulators and one kernel row's weights, 2 x rows + 2 x kernel width,
    within the matmul tile's accumulators and b vectors: micro_tile); else 1 vector of up to 8 rows, or for
    kernels up to 3 wide where the matmul tile has 24 accumulators (32 vector registers) as many as span
    DEPTHWISE_SPAN input columns (stride 1: 14; stride 2: 8, where 14 spilled: 1.3-1.9x). On AVX2, 8 x 2
    tiles spilled every loaded column (58 spill moves in 56x56x72's tile, 17 at 4 x 2: 0.63-0.91x the time);
    on AVX-512 they left no room for a kernel row's 20 loaded columns (LLVM loads them all first: 10 spills
    a kernel row). One pinned AVX-512 core, MobileNetV3/EfficientNet-B0/ShuffleNet 3x3 layers: 4 x 2 instead
    of 8 x 2 0.66-0.92x the time; 14 x 1 instead of 7 x 2 at 14 outputs 0.43-0.87x; 16 channels 14 x 1
    instead of 8 x 2 (one vector's worth) 0.91x."""
    width = node.inputs[1].shape[-3]
    length = node.outputs[0].shape[-2]
    tile_rows, tile_vectors = micro_tile(target)

    def rows(cap: int) -> int:
        return -(-length // -(-length // max(1, cap)))

    pair = rows(min(DEPTHWISE_PAIR_ROWS, (tile_rows + 1) * tile_vectors // 2 - width))
    if (width <= 3 and tile_vectors >= 2 and length % pair == 0
            and node.inputs[0].shape[-1] > lanes(target, node.outputs[0].dtype)):
        return pair, 2
    cap = DEPTHWISE_SINGLE_ROWS
    if width <= 3 and tile_rows * tile_vectors >= 24:  # 32 registers: as many rows as span 16 columns
        last = _axes(node)[-1]
        cap = max(cap, (DEPTHWISE_SPAN - 1 - (width - 1) * last.rhs_dilation) // last.stride + 1)
    return rows(cap), 1


def _positions(builder: ir.IRBuilder, conv: _Conv, outer: list[ir.Value], row: ir.Value) -> list[ir.Value]:
    """Output coordinates of a tile row: outer[1:] for the leading spatial dims, the rest unflattened
    from `row` (divisions by constants: multiplies and shifts)."""
    shared = outer[1:]
    sizes = [a.out for a in conv.axes[len(shared):]]
    positions = list(shared)
    if len(sizes) == 1:  # rows along the last axis (always so for a pointwise conv's run-time sizes)
        return [*positions, row]
    strides = (contiguous_strides(sizes) if all(isinstance(s, int) for s in sizes)
               else [_product(builder, sizes[axis + 1:]) for axis in range(len(sizes))])
    for axis, stride in enumerate(strides):
        position = row if isinstance(stride, int) and stride == 1 else builder.udiv(row, size_value(stride))
        positions.append(position if axis == 0 else builder.urem(position, size_value(sizes[axis])))
    return positions


def _origins(builder: ir.IRBuilder, conv: _Conv, outer: list[ir.Value], row: ir.Value) -> list[ir.Value]:
    """Per spatial dim, where the window of a tile row starts in the (lhs-dilated) input, with 0 at the
    first real element (o * stride - pad_lo). Computed once per row of a tile."""
    return [affine(builder, -axis.lo, (o, axis.stride))
            for axis, o in zip(conv.axes, _positions(builder, conv, outer, row))]


def _input_pixel(builder: ir.IRBuilder, conv: _Conv, n: ir.Value, origins: list[ir.Value],
                 kernel: list[ir.Value]) -> tuple[ir.Value | None, ir.Value]:
    """(valid or None when always valid, linear input pixel clamped to 0 when invalid) for one
    output pixel of image n (its _origins) and one kernel position."""
    valid: ir.Value | None = None
    pixel: ir.Value = n
    for axis, origin, k in zip(conv.axes, origins, kernel):
        p = affine(builder, 0, (origin, 1), (k, axis.rhs_dilation))
        checks = []
        if axis.lo > 0:
            checks.append(builder.icmp_signed(">=", p, i64(0)))
        if axis.hi > 0:  # a run-time size has no input dilation (runtime_spatial)
            checks.append(builder.icmp_signed("<=", p, i64((axis.size - 1) * axis.lhs_dilation))
                          if isinstance(axis.size, int) else builder.icmp_signed("<", p, axis.size))
        if axis.lhs_dilation > 1:
            checks.append(builder.icmp_signed("==", builder.srem(p, i64(axis.lhs_dilation)), i64(0)))
        for check in checks:
            valid = check if valid is None else builder.and_(valid, check)
        position = p if axis.lhs_dilation == 1 else builder.sdiv(p, i64(axis.lhs_dilation))
        pixel = affine(builder, 0, _times(builder, pixel, axis.size), (position, 1))
    if valid is not None:
        pixel = builder.select(valid, pixel, i64(0))
    return valid, pixel


def _output_pixel(builder: ir.IRBuilder, conv: _Conv, outer: list[ir.Value], row: ir.Value) -> ir.Value:
    """Linear index (over batch and output spatial dims) of the output pixel of a tile row."""
    pixel = outer[0]
    for axis, o in zip(conv.axes, outer[1:]):
        pixel = affine(builder, 0, _times(builder, pixel, axis.out), (o, 1))
    trailing = _product(builder, [a.out for a in conv.axes[len(outer) - 1:]])
    return affine(builder, 0, _times(builder, pixel, trailing), (row, 1))


def _store_rows(builder: ir.IRBuilder, conv: _Conv, outer: list[ir.Value], ow0: ir.Value, accs: list[ir.Value],
                c0: ir.Value, widths: list[int]) -> None:
    """Store a tile (rows x widths accumulators) at output channels c0 on, then run the epilogue on it: a
    wide chain (SiLU, sigmoid: epilogue.widens) on all rows after every store, the accumulators dead by
    then; any other chain on each row right after its stores (after all of them, squeezenet1_1 batch 8
    ran 4-5% slower: ReLU/hardswish tiles reloaded rows already gone from the store buffer), as vector
    code where it can be (epilogue.vectorises; on the accumulators themselves where every form is: the
    product is then never stored, _on_accumulators), else as a loop. A long chain (hardswish, SiLU:
    epilogue.outlines) runs after all the stores in one call of a function shared by every tile phase and
    node function (epilogue.rows_function): MobileNetV3's build 6.3 -> 5.1 CPU s on one core."""
    offsets = [sum(widths[:c]) for c in range(len(widths))]
    modes = [(when, node, fn, _epilogue_mode(node)) for when, node, fn in conv.epilogues]
    in_registers = _on_accumulators(modes)
    rows = []
    for r in range(len(accs) // len(widths)):
        pixel = _output_pixel(builder, conv, outer, affine(builder, r, (ow0, 1)))
        out_base = affine(builder, 0, _times(builder, pixel, conv.cout), (c0, 1))
        if in_registers:  # each accumulator through the chain, then stored once
            def on_accumulators(node: Node, fn: object, mode: str, pixel: ir.Value = pixel,
                                out_base: ir.Value = out_base, r: int = r) -> None:
                for c, (w, off) in enumerate(zip(widths, offsets)):
                    epilogue.apply_rows_vector(builder, node, fn, [(pixel, affine(builder, off, (out_base, 1)))],
                                               affine(builder, off, (c0, 1)), w, products=[accs[r * len(widths) + c]])

            epilogue.by_form(builder, modes, on_accumulators)
            continue
        for c, off in enumerate(offsets):
            store(builder, accs[r * len(widths) + c], conv.po, affine(builder, off, (out_base, 1)), conv.elem)
        rows.append((pixel, out_base))

        def row_epilogue(node: Node, fn: object, mode: str, pixel: ir.Value = pixel, out_base: ir.Value = out_base
                         ) -> None:
            if mode == "vector":
                epilogue.apply_rows_vector(builder, node, fn, [(pixel, out_base)], c0, sum(widths))
            else:
                epilogue.apply_row(builder, node, fn, pixel, out_base, c0, sum(widths))

        epilogue.by_form(builder, [item for item in modes if item[3] in ("vector", "loop")], row_epilogue)

    def tile_epilogue(node: Node, fn: object, mode: str) -> None:
        if mode == "outlined":  # the tile's rows are consecutive output pixels
            epilogue.call_rows(builder, node, fn, rows[0][0], rows[0][1], size_value(conv.cout), c0, sum(widths),
                               len(rows))
        else:
            epilogue.apply_rows_vector(builder, node, fn, rows, c0, sum(widths))

    epilogue.by_form(builder, [item for item in modes if item[3] in ("outlined", "wide")], tile_epilogue)


def _on_accumulators(modes: list[tuple]) -> bool:
    """Whether _store_rows runs the chains on the accumulators: every form's is "vector" and one always
    runs (a lone form, or share_residual's two, which exclude each other), so no product is stored to be
    loaded back (mobilenet_v3_large b1 1.022-1.024x on a Xeon core, the same bits; others within noise)."""
    if not modes or any(mode != "vector" for *_, mode in modes):
        return False
    return modes[0][0] is None if len(modes) == 1 else len(modes) == 2 and all(item[0] is not None for item in modes)


def _epilogue_mode(node: Node) -> str | None:
    """How _store_rows runs node's epilogue: none; per row after its stores ("vector", "loop"); or on the
    whole tile after all of them ("outlined", "wide")."""
    if "epilogue" not in node.attrs:
        return None
    if epilogue.outlines(node):
        return "outlined"
    if epilogue.widens(node):
        return "wide"
    return "vector" if epilogue.vectorises(node) else "loop"


def _kernel_linear(builder: ir.IRBuilder, conv: _Conv, kernel: list[ir.Value]) -> ir.Value:
    linear: ir.Value = i64(0)
    for axis, k in zip(conv.axes, kernel):
        linear = affine(builder, 0, (linear, axis.kernel), (k, 1))
    return linear


def _masked(builder: ir.IRBuilder, valid: ir.Value | None, value: ir.Value, zero: ir.Value) -> ir.Value:
    return value if valid is None else builder.select(valid, value, zero)


def _row_pointer(builder: ir.IRBuilder, conv: _Conv, valid: ir.Value | None, at: ir.Value) -> ir.Value:
    """Where a tile row reads its Cin/groups inputs: x[at:], or a constant row of zeros when the pixel is
    padding (one select per row and kernel position instead of one per loaded element)."""
    row = builder.gep(conv.px, [at], inbounds=True, source_etype=conv.elem)
    if valid is None:
        return row
    channels = conv.cin_group if isinstance(conv.cin_group, int) else ZERO_ROW_CHANNELS
    name = f"conv.zeros.{conv.elem}.{channels}"
    zeros = conv.fn.module.globals.get(name)
    if zeros is None:
        zeros = ir.GlobalVariable(conv.fn.module, ir.ArrayType(conv.elem, channels), name)
        zeros.global_constant, zeros.linkage, zeros.initializer = True, "internal", ir.Constant(zeros.value_type, None)
    return builder.select(valid, row, builder.bitcast(zeros, row.type))


def _gemm_tile(builder: ir.IRBuilder, conv: _Conv, outer: list[ir.Value], ow0: ir.Value, rows: int,
               g: ir.Value, j0: ir.Value, widths: list[int],
               ordinal: tuple[ir.Value, ir.Value, ir.Value] | None = None) -> None:
    """The tile of `rows` output pixels from ow0 x output channels j0 : +sum(widths). Where the weights
    stream (streams_weights), `ordinal` is (this tile's index, the tiles) of those the part runs on this
    channel block and whether it is the part's first: the tiles walk the next channel block's weights
    (matmul.stream_fetches), so memory delivers them under their FMAs."""
    offsets = [sum(widths[:c]) for c in range(len(widths))]
    zeros = [constant(conv.elem, 0, w) for _ in range(rows) for w in widths]

    row_origins = [_origins(builder, conv, outer, affine(builder, r, (ow0, 1))) for r in range(rows)]
    run = _column_run(conv)
    steps = conv.cin_group * run if isinstance(conv.cin_group, int) else builder.mul(conv.cin_group, i64(run))
    streams = conv.streams

    def per_kernel_position(kernel: list[ir.Value], accs: list[ir.Value]) -> list[ir.Value]:
        kernel = kernel if run == 1 else [*kernel, i64(0)]
        pixels = [_input_pixel(builder, conv, outer[0], origins, kernel) for origins in row_origins]
        x_rows = [_row_pointer(builder, conv, valid, affine(builder, 0, _times(builder, pixel, conv.cin),
                                                            _times(builder, g, conv.cin_group)))
                  for valid, pixel in pixels]
        fetches = None
        if "packed_b" in conv.node.attrs:  # passes/prepack.py: (k, ci, j0 + c) at j0*K*Cin + (k*Cin + ci)*pitch + c
            pitch = sum(widths)
            positions = math.prod(a.kernel for a in conv.axes)
            linear = _kernel_linear(builder, conv, kernel)
            panel = _times(builder, j0, conv.cin, positions)
            w_base = affine(builder, 0, _times(builder, linear, conv.cin, pitch), panel)
            if streams:  # each k step of a panel is one of its positions x Cin rows
                tiles = ordinal if ordinal is not None and conv.walks else (
                    i64(0), i64(1), ir.Constant(ir.IntType(1), 1))
                next_panel = affine(builder, 0, panel, _times(builder, i64(pitch), conv.cin, positions))
                steps_per_tile = affine(builder, 0, _times(builder, i64(positions), conv.cin))
                done = affine(builder, 0, _times(builder, linear, conv.cin))  # this tile's k steps before
                fetches = stream_fetches(builder, tiles, w_base, next_panel, steps_per_tile, done, pitch, conv.elem)
        else:
            pitch = conv.cout
            w_base = affine(builder, 0, _times(builder, _kernel_linear(builder, conv, kernel), conv.cin_group,
                                               conv.cout), _times(builder, g, conv.cout_group), (j0, 1))
        with fold_range(builder, steps, accs, "ci") as (ci, carry):
            w_row = affine(builder, 0, (w_base, 1), _times(builder, ci, pitch))
            if fetches is not None:
                prefetch_walk(builder, conv.pw, fetches, ci, conv.elem)
            b_vals = [load(builder, conv.pw, affine(builder, off, (w_row, 1)), conv.elem, w)
                      for w, off in zip(widths, offsets)]
            updated = []
            for r, x_row in enumerate(x_rows):
                a = load(builder, x_row, ci, conv.elem)
                broadcast = {w: splat(builder, a, w) for w in set(widths)}
                for c, w in enumerate(widths):
                    updated.append(multiply_add(builder, broadcast[w], b_vals[c],
                                                carry.values[r * len(widths) + c]))
            carry.values = updated
        return carry.values

    axes = conv.axes if run == 1 else conv.axes[:-1]
    c0 = affine(builder, 0, _times(builder, g, conv.cout_group), (j0, 1))
    _prefetch_operand_rows(builder, conv, outer, ow0, rows, c0, sum(widths))
    accs = fold_nest(builder, [a.kernel for a in axes], zeros, per_kernel_position, "kp")
    _store_rows(builder, conv, outer, ow0, accs, c0, widths)


def _prefetch_operand_rows(builder: ir.IRBuilder, conv: _Conv, outer: list[ir.Value], ow0: ir.Value, rows: int,
                           c0: ir.Value, width: int) -> None:
    """Before a tile's k loop, prefetch the rows its epilogue will read of each operand laid out as the
    output (a residual: row stride per pixel, column stride 1): written layers ago, it comes from L3 or
    memory, and the epilogue's loads waited for it (ResNet50's 1x1 convs with a residual at 56 x 56 x 256:
    0.94-1.00 ms against 0.72 without it)."""
    per_line = CACHE_LINE // byte_size(conv.elem)
    for when, node, fn in conv.epilogues:
        chain = node.attrs.get("epilogue")
        operands = [(arg, row) for _, arg, row, column in (chain.loads if chain else ()) if row and column == 1]
        if not operands:
            continue
        with builder.if_then(when) if when is not None else nullcontext():
            for r in range(rows):
                pixel = _output_pixel(builder, conv, outer, affine(builder, r, (ow0, 1)))
                for arg, row in operands:
                    for line in range(0, width, per_line):
                        prefetch(builder, fn.args[arg], affine(builder, line, (pixel, row), (c0, 1)), conv.elem)


def streams_weights(node: Node, target: object) -> bool:
    """Whether each k step of a tile prefetches the weights (matmul.stream_fetches): packed weights too big
    for L2 (matmul.STREAMED_B_BYTES) come from L3 or memory while the tile waits (on a Xeon core reading
    memory at 11 GB/s, ResNet18 at batch 1 ran 39.5 -> 35 ms, the same bits). With at most FEW_PIXELS
    outputs, half that: each channel block's weights feed so few tiles that fetching them is a large
    share of the time (SqueezeNet's 1x1 512 -> 1000 at 13 x 13, 2.0 MB: two threads 1.05-1.10x), where
    many tiles' prefetches only cost (ResNet50 at batch 8, its 1 MiB 1x1s at 14 x 14: 0.98x). Only on
    targets.streams_conv_weights' targets."""
    if not streams_conv_weights(target):
        return False
    least = STREAMED_B_BYTES if math.prod(node.outputs[0].shape[:-1]) > FEW_PIXELS else STREAMED_B_BYTES // 2
    return "packed_b" in node.attrs and node.inputs[1].nbytes >= least


def walks_weights(node: Node, target: object) -> bool:
    """Whether a channel block's tiles walk the next block's weights (matmul.stream_fetches) rather than
    each prefetching its own ahead: where they stream and one block's (kernel positions x Cin x packed
    columns) is at most WALK_PANEL_BYTES."""
    w = node.inputs[1]
    panel = math.prod(w.shape[:-1]) * node.attrs.get("packed_b", 0) * w.dtype.itemsize
    return streams_weights(node, target) and panel <= WALK_PANEL_BYTES


def _column_run(conv: _Conv) -> int:
    """How many kernel columns one ci loop runs through: all of them where a row's (kernel column,
    channel) pairs are contiguous in both x and w (an unpadded dense conv, no dilation along the last
    axis: a stem conv after passes/explicit_pad.py), else 1. The same multiply-adds in the same order,
    so the same bits; a 7x7 stem with Cin 3 runs 7 loops of 21 per tile instead of 49 of 3."""
    last = conv.axes[-1]
    return last.kernel if runtime_channels(conv.node) and last.rhs_dilation == 1 else 1


FEW_PIXELS = 192  # streams_weights: a conv's outputs (batch x height x width) at most this many
WALK_PANEL_BYTES = 1 << 20  # tiles walk the next channel block's weights only where two panels fit a 2 MiB L2
# (Xeon, ResNet18 b1: its 3x3x512x512 convs' 1152 KiB panels 0.94x walking, the next panel evicting this
# one's lines; its 3x3/2 256->512, 576 KiB: 1.12-1.17x; 1x1 2048<->512 at 7x7, 512 KiB: 1.24x)
STREAMED_INPUT_BYTES = 8 << 20  # a depthwise input this big streams from memory (batch 8 MobileNet/EfficientNet)
PREFETCH_OUTPUT_ROWS = 2  # how far ahead it is prefetched, in output rows (measured: 1 row 1.28x, 2 rows 1.36x)


def _prefetch_distance(conv: _Conv) -> tuple[int, int]:
    """(elements ahead, elements per cache line) of the prefetches of each input column a depthwise
    tile loads: the same column PREFETCH_OUTPUT_ROWS output rows down, when the input streams from
    memory (the hardware prefetcher misses the tile's interleaved rows and channel blocks; 0 ahead:
    no prefetch, the input is in cache). Prefetches change no value, so the bits are the same."""
    x = conv.node.inputs[0]
    line = max(1, CACHE_LINE * x.size // max(1, x.nbytes))
    if x.nbytes < STREAMED_INPUT_BYTES or len(conv.axes) < 2:
        return 0, line
    return PREFETCH_OUTPUT_ROWS * conv.axes[-2].stride * conv.axes[-1].size * conv.cin, line


def masked_loads(target: object, node: Node) -> bool:
    """Whether node's depthwise tiles load a padded column as a masked vector load (llvm.masked.load): x86
    with AVX or AVX-512 (vmaskmov, k-masks), kernels up to 3 wide. Elsewhere LLVM splits it into a branch
    per lane, so the loaded value is selected instead; so are 5x5 and wider kernels' columns (their
    1-vector tiles kept 10 spill moves with masks and ran 1.03-1.19x the time on 3 of 4 MobileNetV3 5x5
    layers, batch 1 and 8)."""
    return bool(getattr(target, "is_x86", False)) and lanes(target, DType.f32) >= 8 and node.inputs[1].shape[-3] <= 3


def _load_or_zero(builder: ir.IRBuilder, conv: _Conv, valid: ir.Value | None, at: ir.Value, width: int,
                  masked: bool) -> ir.Value:
    """x[at : at+width], or zeros where valid is false (at is then a clamped, in-bounds index). A select of
    the loaded value becomes a branch around the load in LLVM's CodeGenPrepare, which then loads every
    column of a tile before its first multiply-add and spills them (17 spill moves in 56x56x72's 4 x 2
    tile); a masked load (all lanes valid or none) stays a straight-line load (0 spills)."""
    if valid is None or not masked or width == 1:
        return _masked(builder, valid, load(builder, conv.px, at, conv.elem, width), constant(conv.elem, 0, width))
    pointer = builder.gep(conv.px, [at], inbounds=True, source_etype=conv.elem)
    kind = ir.VectorType(conv.elem, width)
    scalar = {"float": "f32", "double": "f64"}.get(str(conv.elem), str(conv.elem))
    name = f"llvm.masked.load.v{width}{scalar}.p0"
    i32 = ir.IntType(32)
    declared = builder.module.globals.get(name) or ir.Function(
        builder.module, ir.FunctionType(kind, [pointer.type, i32, ir.VectorType(ir.IntType(1), width), kind]), name)
    return builder.call(declared, [pointer, ir.Constant(i32, byte_size(conv.elem)), splat(builder, valid, width),
                                   constant(conv.elem, 0, width)])


def _depthwise_tile(builder: ir.IRBuilder, conv: _Conv, outer: list[ir.Value], ow0: ir.Value, rows: int,
                    c0: ir.Value, widths: list[int], masked: bool) -> None:
    """Depthwise: the tile's rows are consecutive outputs along the last spatial dim, so output r and
    kernel column k read input column r*stride + k*dilation of the tile's span: each column is loaded
    (zeros where it is padding: _load_or_zero) once and feeds every (r, k) pair that reads it, in
    increasing k for each output (the order of the per-position loop, so results are the same bits)."""
    offsets = [sum(widths[:c]) for c in range(len(widths))]
    zeros = [constant(conv.elem, 0, w) for _ in range(rows) for w in widths]
    leading, last = conv.axes[:-1], conv.axes[-1]
    # the last axis walked one input column at a time: kernel "position" t is column t of the tile's span
    columns = _Conv(**{**vars(conv), "axes": [*leading, replace(last, kernel=1, rhs_dilation=1)]})
    origins = _origins(builder, conv, outer, ow0)
    readers: dict[int, list[tuple[int, int]]] = {}  # column -> (row, kernel column) pairs reading it
    for r in range(rows):
        for k in range(last.kernel):
            readers.setdefault(r * last.stride + k * last.rhs_dilation, []).append((r, k))

    ahead, line = _prefetch_distance(conv)

    def per_leading_position(kernel: list[ir.Value], accs: list[ir.Value]) -> list[ir.Value]:
        w_row = affine(builder, 0, (_kernel_linear(builder, conv, [*kernel, i64(0)]), conv.cout), (c0, 1))
        weights = [[load(builder, conv.pw, affine(builder, k * conv.cout + off, (w_row, 1)), conv.elem, w)
                    for w, off in zip(widths, offsets)] for k in range(last.kernel)]
        updated = list(accs)
        for column in sorted(readers):
            valid, pixel = _input_pixel(builder, columns, outer[0], origins, [*kernel, i64(column)])
            x_base = affine(builder, 0, (pixel, conv.cin), (c0, 1))
            xs = [_load_or_zero(builder, conv, valid, affine(builder, off, (x_base, 1)), w, masked)
                  for w, off in zip(widths, offsets)]
            if ahead:
                for off in range(0, sum(widths), line):
                    prefetch(builder, conv.px, affine(builder, off + ahead, (x_base, 1)), conv.elem)
            for r, k in readers[column]:
                for c in range(len(widths)):
                    at = r * len(widths) + c
                    updated[at] = multiply_add(builder, xs[c], weights[k][c], updated[at])
        return updated

    accs = fold_nest(builder, [a.kernel for a in leading], zeros, per_leading_position, "kp")
    _store_rows(builder, conv, outer, ow0, accs, c0, widths)


sizes_as_arguments(SizeRules(size_arguments, runtime_shapes), "conv")
