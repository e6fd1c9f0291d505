"""Static int8 quantization (quantize="int8", as onnxruntime's quantize_static / TFLite's full-integer
post-training quantization): each f32 matmul with constant weights becomes an integer product.

A site is a matmul(a, W) with W constant, and the bias add (a constant equal along every row) and ReLU
(max with 0) that follow it as their only reader. Its activation a is quantized to u8 per tensor with
the scale and zero point its calibrated range gives (int8_fixed.activation_params), W to i8 per output
column (int8_weights.quantize_columns: symmetric, +-127), and matmul_integer multiplies them with i32
accumulation. The site's result then goes one of two ways:
- it feeds another site's activation: requantized in fixed point to that u8 tensor (the bias folded into
  the accumulator as round(bias / (s_a * s_w)), ReLU as the lower clamp at the zero point, the multiplier
  s_a * s_w / s_out as int8_fixed.quantize_multiplier's M and shift, in i64), so consecutive layers hand
  each other bytes;
- otherwise (a graph output, or a float op reads it): acc * (s_a * s_w) in f32, then the float bias and
  ReLU, so no output grid is added where no integer op needs one.
A 2-D conv with a constant kernel (NHWC, no input dilation, CONV_INTEGER_MIN_CHANNELS or more per group) is a
site too: its kernel quantized per output channel, laid out [Cout, KH, KW, Cin/g] for conv_integer, the
rest as for a matmul.
Every other op stays float; a value both float and integer readers use is dequantized for the former.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cerebro.compiler.ir import DType, Graph, Node, Value, make_node
from cerebro.compiler.ir.int8_layouts import pair_layout, pairs_pay
from cerebro.compiler.ir.interpret import run_node
from cerebro.compiler.ir.ops import CONV_INTEGER_MIN_CHANNELS
from cerebro.compiler.passes.dce import eliminate_dead_nodes
from cerebro.compiler.passes.fold import fold_constants
from cerebro.compiler.passes.int8_calibrate import Expose, calibrate
from cerebro.compiler.passes.int8_fixed import U8, activation_params, quantize_multiplier
from cerebro.compiler.passes.int8_weights import quantize_columns

I32_LIMIT = 1 << 30  # folded biases are clipped here, so acc + bias times M stays inside i64
_PASS_THROUGH = ("broadcast_in_dim", "reshape")  # how a frontend shapes a constant bias or zero


@dataclass
class Site:
    """One matmul with constant weights and the bias/ReLU absorbed into it."""

    nodes: list[Node]  # matmul or conv, then the absorbed add and max, in graph order
    a: Value
    weights: np.ndarray  # [K, N] f32 (a conv's kernel: [KH, KW, Cin/g, Cout])
    bias: np.ndarray | None  # [N] f32
    relu: bool
    tail: Value  # the value the site computes (the last absorbed node's output)


def _const_data(v: Value) -> np.ndarray | None:
    """v's value when it is a constant, or a broadcast/reshape of one the folding left unmaterialised."""
    if v.is_const:
        return v.data
    node = v.producer
    if node is not None and node.op in _PASS_THROUGH and node.inputs[0].is_const:
        return run_node(node, [node.inputs[0].data])[0]
    return None


def _row_vector(data: np.ndarray | None, shape: tuple[int, ...], columns: int | None = None) -> np.ndarray | None:
    """The [N] row that data repeats along every row of N = columns (default shape[-1]) elements of shape, or
    None."""
    if data is None or data.dtype != np.float32 or data.ndim > len(shape):
        return None
    try:
        rows = np.broadcast_to(data, shape).reshape(-1, columns or shape[-1])
    except ValueError:
        return None
    return rows[0].copy() if rows.size and (rows == rows[0]).all() else None


def _weights(b: Value) -> np.ndarray | None:
    """A constant f32 matmul operand as one [K, N] matrix (batched copies must all be equal)."""
    if not b.is_const or b.dtype is not DType.f32 or b.size == 0:
        return None
    slices = b.data.reshape(-1, *b.shape[-2:])
    return slices[0] if (slices == slices[0]).all() else None


_CONV_ATTRS = frozenset({"strides", "padding", "rhs_dilation", "groups", "lhs_dilation"})


def _product_weights(node: Node) -> np.ndarray | None:
    """The constant f32 weights of a matmul or 2-D conv the integer kernels can run, else None."""
    if node.inputs[0].dtype is not DType.f32:
        return None
    if node.op == "matmul" and not node.attrs:
        return _weights(node.inputs[1])
    w = node.inputs[1]
    if (node.op != "conv" or not _CONV_ATTRS.issuperset(node.attrs) or w.rank != 4 or not w.is_const
            or w.dtype is not DType.f32 or any(d != 1 for d in node.attrs.get("lhs_dilation") or ())
            or min(p for pair in node.attrs["padding"] for p in pair) < 0 or w.shape[2] < CONV_INTEGER_MIN_CHANNELS):
        return None
    return w.data


def find_sites(graph: Graph) -> list[Site]:
    """The matmuls quantize="int8" turns into integer products, with what each absorbs."""
    users, outputs = graph.users(), {v.id for v in graph.outputs}

    def sole_reader(v: Value) -> tuple[Node, Value] | None:
        """(node, its other input) when one binary node alone reads v, v being no graph output."""
        readers = users.get(v.id, [])
        if len(readers) != 1 or v.id in outputs or len(readers[0].inputs) != 2:
            return None
        node = readers[0]
        other = node.inputs[1] if node.inputs[0] is v else node.inputs[0]
        return (node, other) if other is not v and node.outputs[0].shape == v.shape else None

    sites = []
    for node in graph.nodes:
        weights = _product_weights(node) if node.op in ("matmul", "conv") else None
        if weights is None:
            continue
        site = Site([node], node.inputs[0], weights, None, False, node.outputs[0])
        found = sole_reader(site.tail)
        if found and found[0].op == "add":
            site.bias = _row_vector(_const_data(found[1]), site.tail.shape)
            if site.bias is not None:
                site.nodes.append(found[0])
                site.tail = found[0].outputs[0]
        if site.bias is None and node.op == "matmul":
            _absorb_reshaped_bias(site, users, outputs)
        found = sole_reader(site.tail)
        zero = _const_data(found[1]) if found and found[0].op == "max" else None
        if zero is not None and zero.dtype == np.float32 and not zero.any():
            site.nodes.append(found[0])
            site.tail, site.relu = found[0].outputs[0], True
        sites.append(site)
    return sites


def _absorb_reshaped_bias(site: Site, users: dict[int, list[Node]], outputs: set[int]) -> None:
    """Reshapes of a product's [rows, N] result (a frontend's 2-D matmul of a 3-D activation, heads split
    off) followed by a per-column bias add join the site, so the bias runs in the product's epilogue."""
    chain, value = [], site.tail
    while True:
        readers = users.get(value.id, [])
        if len(readers) != 1 or value.id in outputs:
            return
        if readers[0].op != "reshape":
            break
        chain.append(readers[0])
        value = readers[0].outputs[0]
    add, columns = readers[0], site.weights.shape[-1]
    other = add.inputs[1] if add.inputs[0] is value else add.inputs[0]
    if not chain or add.op != "add" or other is value or add.outputs[0].shape != value.shape or not any(
            math.prod(value.shape[split:]) == columns for split in range(value.rank + 1)):
        return
    bias = _row_vector(_const_data(other), value.shape, columns)
    if bias is not None:
        site.nodes += [*chain, add]
        site.tail, site.bias = add.outputs[0], bias


class _Emitter:
    """Appends nodes to a list, inferring their outputs (or writing into a given Value)."""

    def __init__(self, nodes: list[Node], loc: str) -> None:
        self.nodes, self.loc = nodes, loc

    def __call__(self, op: str, *inputs: Value, out: Value | None = None, **attrs: object) -> Value:
        self.nodes.append(make_node(op, list(inputs), self.loc, out, **attrs))
        return self.nodes[-1].outputs[0]


def _row(data: object, dtype: DType, rank: int) -> Value:
    """A constant broadcast along all but the last axis of a rank-`rank` tensor."""
    array = np.asarray(data, dtype.numpy)
    return Value((1,) * (rank - 1) + (array.size,), dtype, data=array.reshape((1,) * (rank - 1) + (array.size,)))


def _quantize(emit: _Emitter, x: Value, scale: np.float32, zero: int) -> Value:
    """u8 round(x / scale) + zero, saturated (ONNX QuantizeLinear): convert to u8 saturates itself (NaN to 0),
    so no float max/min (their NaN and signed-zero handling cost more than the division)."""
    def k(value: float) -> Value:
        return _row([value], DType.f32, x.rank)

    return emit("convert", emit("add", emit("round", emit("div", x, k(scale))), k(zero)), dtype=DType.u8)


def _dequantize(emit: _Emitter, q: Value, scale: np.float32, zero: int, out: Value) -> Value:
    y = emit("sub", emit("convert", q, dtype=DType.f32), _row([zero], DType.f32, q.rank))
    return emit("mul", y, _row([scale], DType.f32, q.rank), out=out)


def _requantize(emit: _Emitter, acc: Value, site: Site, multiplier: np.ndarray, scale: tuple[np.float32, int]
                ) -> Value:
    """u8 of the site's result: clamp(zero + ((acc + bias) * M + 2^(s-1)) >> s) in i64 (int8_fixed)."""
    out_scale, zero = scale
    fixed = [quantize_multiplier(float(m) / float(out_scale)) for m in multiplier]
    factors = np.array([m for m, _ in fixed], np.int64)
    shifts = np.array([s for _, s in fixed], np.int64)
    rank = acc.rank
    wide = emit("convert", acc, dtype=DType.i64)
    if site.bias is not None:
        folded = np.clip(np.rint(site.bias.astype(np.float64) / multiplier), -I32_LIMIT, I32_LIMIT)
        wide = emit("add", wide, _row(folded, DType.i64, rank))
    wide = emit("add", emit("mul", wide, _row(factors, DType.i64, rank)),
                _row(np.left_shift(1, shifts - 1), DType.i64, rank))
    wide = emit("add", emit("shift_right_arithmetic", wide, _row(shifts, DType.i64, rank)),
                _row([zero], DType.i64, rank))
    low = zero if site.relu else U8[0]
    clamped = emit("min", emit("max", wide, _row([low], DType.i64, rank)), _row([U8[1]], DType.i64, rank))
    return emit("convert", clamped, dtype=DType.u8)


def _float_result(emit: _Emitter, acc: Value, site: Site, multiplier: np.ndarray) -> Value:
    """acc * (s_a * s_w) in f32, then the float bias and ReLU, written into site.tail. acc is reshaped
    first, so the chain is one elementwise run the integer product takes as its epilogue (passes/epilogue.py)
    together with the float ops after it."""
    if acc.shape != site.tail.shape:
        acc = emit("reshape", acc, shape=site.tail.shape)
    steps = [("mul", multiplier)] + [("add", site.bias)] * (site.bias is not None) + [("max", [0])] * site.relu
    y = emit("convert", acc, dtype=DType.f32)
    for i, (op, operand) in enumerate(steps):
        y = emit(op, y, _per_column(operand, acc.shape), out=site.tail if i == len(steps) - 1 else None)
    return y


def _per_column(data: object, shape: tuple[int, ...]) -> Value:
    """An f32 constant of one value or one per column, shaped to broadcast over shape, whose trailing dims
    make up the columns (a product reshaped to [..., heads, dim])."""
    array = np.asarray(data, np.float32).reshape(-1)
    split = next(i for i in range(len(shape), -1, -1) if math.prod(shape[i:]) == array.size)
    dims = (1,) * split + tuple(shape[split:])
    return Value(dims, DType.f32, data=array.reshape(dims))


def _matmul_product(emit: _Emitter, site: Site, q: Value, zero: int, codes: np.ndarray) -> Value:
    """i32 [rows, N]: q (u8, a's shape) as rows of K times the i8 codes [K, N], laid out [N, K] (one dot
    product per output), or with PAIR_MIN_ROWS rows or more and K even as pairs ([K/2, N, 2], pairs_b:
    register tiles of rows x columns, codegen/matmul_int.py)."""
    rows, depth = math.prod(q.shape[:-1]), q.shape[-1]
    if q.rank != 2:
        q = emit("reshape", q, shape=(rows, depth))
    columns = codes.shape[1]
    pairs = pairs_pay(rows, depth)
    layout = pair_layout(codes) if pairs else np.ascontiguousarray(codes.T)
    attrs = {"pairs_b": True} if pairs else {}
    return emit("matmul_integer", q, Value((columns, depth), DType.i8, "w.i8", data=layout),
                Value((rows,), DType.u8, data=np.full(rows, zero, np.uint8)),
                Value((columns,), DType.i8, data=np.zeros(columns, np.int8)), transpose_b=True, **attrs)


def _conv_product(emit: _Emitter, site: Site, q: Value, zero: int, codes: np.ndarray) -> Value:
    """i32 [N, H', W', Cout]: conv_integer of q with the kernel codes laid out [Cout, KH, KW, Cin/g]."""
    kernel = np.ascontiguousarray(np.moveaxis(codes.reshape(site.weights.shape), -1, 0))
    node, channels = site.nodes[0], kernel.shape[0]
    attrs = {key: node.attrs[key] for key in ("strides", "padding", "rhs_dilation", "groups") if key in node.attrs}
    return emit("conv_integer", q, Value(kernel.shape, DType.i8, "w.i8", data=kernel),
                Value((), DType.u8, data=np.array(zero, np.uint8)),
                Value((channels,), DType.i8, data=np.zeros(channels, np.int8)), **attrs)


def _unreshaped(v: Value) -> Value:
    """The value v reshapes (through any chain of reshapes), or v: quantizing is elementwise, so the
    codes of the source, reshaped, are v's codes."""
    while v.producer is not None and v.producer.op == "reshape":
        v = v.producer.inputs[0]
    return v


def _emit_site(emit: _Emitter, site: Site, quantized: dict[int, tuple[Value, np.float32, int]],
               ranges: dict[int, tuple[float, float]], feeds_integer: bool) -> None:
    a = site.a
    source = _unreshaped(a)  # quantized once for all its reshapes (a transformer's Q, K and V read three)
    if source.id not in quantized:
        scale, zero = activation_params(*ranges[a.id])
        quantized[source.id] = (_quantize(emit, a, scale, zero), scale, zero)
    q, a_scale, a_zero = quantized[source.id]
    if q.shape != a.shape:
        q = emit("reshape", q, shape=a.shape)
    codes, w_scale = quantize_columns(site.weights.reshape(-1, site.weights.shape[-1]))
    acc = (_conv_product if site.nodes[0].op == "conv" else _matmul_product)(emit, site, q, a_zero, codes)
    multiplier = a_scale.astype(np.float64) * w_scale.astype(np.float64)
    if not feeds_integer:
        _float_result(emit, acc, site, multiplier.astype(np.float32))
        return
    out_scale, out_zero = activation_params(*ranges[site.tail.id])
    codes_out = _requantize(emit, acc, site, multiplier, (out_scale, out_zero))
    if codes_out.shape != site.tail.shape:
        codes_out = emit("reshape", codes_out, shape=site.tail.shape)
    quantized[site.tail.id] = (codes_out, out_scale, out_zero)
    _dequantize(emit, codes_out, out_scale, out_zero, site.tail)  # for float readers; DCE drops it otherwise


def quantize_static(graph: Graph, samples: Sequence[Sequence[np.ndarray]], expose: Expose, method: str = "minmax"
                    ) -> Graph:
    """A copy of graph (folded) with every site (find_sites) an integer product, its activation scales
    calibrated by running the float graph on samples (each one array per graph input; seen through expose;
    int8_calibrate's method), but for sites whose input's u8 grid is too coarse (Calibration.too_noisy),
    which stay float."""
    from cerebro.compiler.driver import _private_copy

    graph = eliminate_dead_nodes(fold_constants(_private_copy(graph)))
    sites = find_sites(graph)
    calibration = calibrate(graph, samples, {site.a.id for site in sites} | {site.tail.id for site in sites},
                            expose, method)
    sites = [site for site in sites if not calibration.too_noisy(site.a.id)]
    integer_inputs, ranges = {site.a.id for site in sites}, calibration.ranges
    last_node = {id(site.nodes[-1]): site for site in sites}
    absorbed = {id(node) for site in sites for node in site.nodes}
    quantized: dict[int, tuple[Value, np.float32, int]] = {}
    nodes: list[Node] = []
    for node in graph.nodes:
        site = last_node.get(id(node))
        if site is not None:
            _emit_site(_Emitter(nodes, site.nodes[0].loc), site, quantized, ranges, site.tail.id in integer_inputs)
        elif id(node) not in absorbed:
            nodes.append(node)
    graph.nodes = nodes
    return eliminate_dead_nodes(graph)
