"""The IR's operations: one shape-and-type rule per op, in one table.

Semantics every frontend and backend agrees on:
- elementwise ops take inputs of equal rank; each input dim equals the
  output dim or is 1 (broadcast). Comparisons return bool.
- integer div truncates toward zero and rem takes the dividend's sign (C).
- matmul: a[*B, M, K] @ b[*B, K, N] -> [*B, M, N], batch dims equal. b may be bf16, f16 or i8 with a f32 (a
  lowered form, passes/half_weights.py, int8_weights.py): b is widened exactly, so it means the f32 matmul
  of its values.
- matmul_integer (ONNX MatMulInteger): a[*B, M, K] (u8/i8) @ b[*B, K, N] (u8/i8) -> i32[*B, M, N], each
  product (a - a_zero[m]) * (b - b_zero[n]) exact, the sum wrapping in i32; a_zero is [M] of a's type,
  b_zero [N] of b's type. With transpose_b, b is given as [*B, N, K] (weights laid out for dot products).
- conv_integer (ONNX ConvInteger, 2-D): x[N, H, W, Cin] (u8/i8, channels last) and w[Cout, KH, KW, Cin/groups]
  (u8/i8, output channels first: each output a dot product along contiguous KW*Cin) -> i32[N, H', W', Cout],
  x_zero [] of x's type, w_zero [Cout] of w's type; padded cells hold x_zero (they add nothing), each
  product (x - x_zero) * (w - w_zero[co]) exact and the sum wrapping in i32. strides, padding ((lo, hi),
  (lo, hi)) >= 0, optional rhs_dilation and groups.
- conv: x[N, *S, Cin] (channels last), w[*K, Cin/groups, Cout] -> [N, *S', Cout];
  padding is ((lo, hi), ...) per spatial dim, dilations per spatial dim.
- reduce_window: window/strides/padding over every dim of x; kind in
  sum|max|min; padded cells hold the identity of the kind.
- argsort: the i64 positions that sort x's last axis, stable (equal keys keep their order). Order
  "canonical" (default, lax.sort): -0 equals +0 and every NaN equals every NaN, after +inf; order
  "total" (lax.top_k): IEEE totalOrder on the bits (-NaN < -inf < ... < -0 < +0 < ... < +NaN).
  descending reverses the key order; ties still keep the lower index first. With k, only the first k
  positions of each row (shape [..., k]; lax.top_k).
- scatter: a copy of x where, in order over positions, out.flat[p] = combine(out.flat[p], update)
  for every p in [0, x.size); other positions are dropped. kind set|add|mul|max|min (the last
  update wins for set; duplicates accumulate for add).
- cumulative: out[..., i, ...] = combine of x[..., 0..i, ...] along axis, folded in order from index 0
  (kind sum|prod|max|min; max/min as the elementwise ops, sums and products wrap on integers); a sum
  starts from +0 (a leading -0 gives +0, as XLA). Kind logaddexp (floats only, lax.cumlogsumexp) combines
  as jax's logaddexp: max(a, b) + log1p(exp(-|a - b|)), or a + b where a - b is NaN (a NaN, or
  infinities of one sign).
- tree_ensemble: each row of x walks every decision tree of its tables and aggregates the leaves'
  weights per target (compiler/ir/tree_ensemble.py states the tables and the edge cases).
- take: x.shape[:axis] + idx.shape + x.shape[axis+1:]; mode "clip" clamps
  indices into range, "wrap" first adds the dim to negative indices (ONNX)
  and then clamps.
- reductions drop the reduced axes; argmax/argmin return the first index
  (NaN counts as the extreme). Integer arithmetic wraps. On bool,
  reduce_max is any and reduce_min is all; reduce_sum/prod of bool is invalid.
- integer x div 0 is -1 (all ones, unsigned too) and x rem 0 is x; MIN div -1 is MIN and
  MIN rem -1 is 0 (as XLA; tests/test_edge_values.py checks every elementwise op against jax.jit).
  Integer pow with a negative exponent is 0 unless |base| is 1.
- round: halves to even (numpy, ONNX, jnp.round). sign(+-0) = +-0, sign(NaN) = NaN.
- convert: float->int truncates toward zero and saturates, NaN -> 0;
  int->int wraps; anything->bool is x != 0; bool->number is 0/1.
- bitcast: the same bits read as another type of the same width (not bool).
- shift_left, shift_right_logical, shift_right_arithmetic (integers only): the amount is read as
  unsigned; an amount >= the bit width gives 0 (left, logical) or the sign fill (arithmetic), as XLA.
- max/min propagate NaN and order -0 below +0 (so do reduce_max/min and reduce_window max/min, as XLA's
  own HLO emitter). jax.jit on CPU may hand a fusion (conv, relu, max pool, reductions; chosen by size)
  to the YNNPACK library, whose max drops NaN: relu(NaN) reads 0 there. That is XLA's offload, not the
  op's meaning; tests compare with the offload off (xla_cpu_experimental_ynn_fusion_type="").
  select(cond, a, b) is cond ? a : b.
- float rem is C fmod, exact (fmod(x, 0) and fmod(inf, y) are NaN, fmod(x, inf) = x).
- subnormals are kept (XLA on CPU flushes them to zero; that is its float mode, not an op's meaning);
  one rewrite makes zeros of them on purpose: a masked softmax's terms below 2**-126 (passes/softmax_terms.py).
- pad: interior padding (attr "interior", default 0) goes between elements
  first, then lo/hi; negative lo/hi crop. "value" is a Python scalar.
- conv optional attrs: lhs_dilation, rhs_dilation (default 1s), groups
  (default 1); padding may be negative (crops). With groups g, output
  channel o belongs to group o // (Cout/g) and reads input channels
  [group*Cin/g, (group+1)*Cin/g) (XLA's feature_group_count).
- pow on floats is C pow (a negative base needs an integral exponent, else NaN).
- loop: a body graph run once per step, scan (a fixed length) or while (a condition graph) form;
  compiler/ir/loop.py states its inputs, attributes and outputs.
- compiler/ir/reference.py is the executable form of these rules (each op's `reference`).

Every op is declared once, in OPS below: its kind (the family that shares a shape rule), required
and optional attributes, shape rule, reference implementation, cost, whether constant folding may
run it, and its role in fusion. The passes, the cost model and the tests ask the declaration;
docs/architecture.md walks through adding an op.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from cerebro.compiler.ir import loop as loop_op
from cerebro.compiler.ir import reference as ref
from cerebro.compiler.ir import tree_ensemble, winograd
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.graph import IRError, Node
from cerebro.compiler.ir.matmul_view import matmul_view

# Below this many input channels per group (a 3-channel first layer, depthwise) conv_integer's dot products
# along KW*Cin are too short to pay: frontends and passes keep the i32 conv of the shifted operands (or the
# f32 conv), vectorised over output channels. Measured, one pinned core: 3x56x56 -> 32 3x3 0.24 against
# 0.33 ms and depthwise 32x56x56 0.14 against 0.16 ms (ConvInteger); from JAX (load ~7) 3 -> 32 0.96 against
# 1.13 ms, depthwise 0.40 against 0.43 ms, but dense 32 -> 64 9.95 against 4.53 ms.
CONV_INTEGER_MIN_CHANNELS = 4

Shape = tuple[int, ...]
Rule = Callable[[Node], list[tuple[Shape, DType]]]
Reference = Callable[..., np.ndarray]  # (node, *input arrays) -> the output array
Cost = Callable[[Node], int]  # estimated flops (driver.py's stage budget)


class Role(Enum):
    """What fusion does with an op (passes/fuse.py, rows.py, epilogue.py, memplan.py, prepack.py)."""

    ELEMENTWISE = "elementwise"  # out[i] from its inputs at i: joins fused loops, epilogues and row kernels
    ROW_REDUCTION = "row reduction"  # a reduction a row kernel runs when it is over the last axis
    REDUCTION = "reduction"  # any other reduction: a kernel of its own
    MATMUL = "matmul"  # hosts an epilogue; a constant b is prepacked; transposes fold into its strides
    CONV = "conv"  # hosts an epilogue; a constant kernel is prepacked
    VIEW = "view"  # the output is the input's storage: no code, fused loops and row kernels address through it
    BROADCAST = "broadcast"  # fused loops and row kernels read its input through strides instead of a copy
    LAYOUT = "layout"  # moves or makes data without arithmetic: a kernel of its own
    GATHER = "gather"  # a kernel of its own
    WINDOW = "window"  # a kernel of its own
    CONTROL = "control"  # runs a graph of its own (loop.py): no fusion pass looks inside


EPILOGUE_HOSTS = (Role.MATMUL, Role.CONV)


@dataclass(frozen=True)
class OpDef:
    """One op's declaration.

    kind: the family sharing a shape rule (unary, binary, compare, reduce, ...; else the op's name);
    arity: number of inputs (None: one or more); attrs: required attributes; optional: attributes that
    may be absent (the rule and the reference apply the default); lowered: attributes the passes add
    (verify(lowered=True) checks those nodes through them); folds: passes/fold.py evaluates the op with
    `reference` when all its inputs are constants.
    """

    name: str
    kind: str
    arity: int | None
    rule: Rule
    reference: Reference
    cost: Cost
    role: Role
    folds: bool
    attrs: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    lowered: tuple[str, ...] = ()


def _fail(node: Node, message: str) -> IRError:
    return IRError(f"{node.where()}: {message}")


def _broadcast(node: Node) -> Shape:
    ranks = {v.rank for v in node.inputs}
    if len(ranks) != 1:
        raise _fail(node, f"inputs have different ranks {[v.shape for v in node.inputs]}")
    out = []
    for dims in zip(*(v.shape for v in node.inputs)):
        big = {d for d in dims if d != 1}
        if len(big) > 1:
            raise _fail(node, f"shapes {[v.shape for v in node.inputs]} do not broadcast")
        out.append(big.pop() if big else 1)
    return tuple(out)


def _same_dtype(node: Node, values: list) -> DType:
    dtypes = {v.dtype for v in values}
    if len(dtypes) != 1:
        raise _fail(node, f"mixed element types {sorted(d.name for d in dtypes)}")
    return dtypes.pop()


def _unary(node: Node) -> list:
    (x,) = node.inputs
    if node.op == "not" and x.dtype.is_float:
        raise _fail(node, "'not' needs a bool or integer input")
    if node.op == "is_finite":
        return [(x.shape, DType.bool)]
    return [(x.shape, x.dtype)]


def _binary(node: Node) -> list:
    return [(_broadcast(node), _same_dtype(node, node.inputs))]


def _compare(node: Node) -> list:
    _same_dtype(node, node.inputs)
    return [(_broadcast(node), DType.bool)]


def _select(node: Node) -> list:
    cond, a, b = node.inputs
    if cond.dtype is not DType.bool:
        raise _fail(node, f"condition must be bool, got {cond.dtype.name}")
    return [(_broadcast(node), _same_dtype(node, [a, b]))]


def _convert(node: Node) -> list:
    return [(node.inputs[0].shape, node.attrs["dtype"])]


def _bitcast(node: Node) -> list:
    (x,), dtype = node.inputs, node.attrs["dtype"]
    if DType.bool in (x.dtype, dtype) or x.dtype.itemsize != dtype.itemsize:
        raise _fail(node, f"cannot bitcast {x.dtype.name} to {dtype.name} (same width, not bool)")
    return [(x.shape, dtype)]


def _shift(node: Node) -> list:
    if not all(v.dtype.is_int for v in node.inputs):
        raise _fail(node, f"shifts need integers, got {[v.dtype.name for v in node.inputs]}")
    return _binary(node)


def _axes(node: Node, rank: int, axes: object) -> tuple[int, ...]:
    axes = tuple(int(a) for a in axes)
    if any(a < 0 or a >= rank for a in axes) or len(set(axes)) != len(axes):
        raise _fail(node, f"bad axes {axes} for rank {rank}")
    return axes


def _reduce(node: Node) -> list:
    (x,) = node.inputs
    axes = _axes(node, x.rank, node.attrs["axes"])
    return [(tuple(d for i, d in enumerate(x.shape) if i not in axes), x.dtype)]


def _argreduce(node: Node) -> list:
    (x,) = node.inputs
    (axis,) = _axes(node, x.rank, (node.attrs["axis"],))
    if x.shape[axis] == 0:
        raise _fail(node, "argmax/argmin over an empty axis")
    return [(x.shape[:axis] + x.shape[axis + 1:], node.attrs["index_dtype"])]


def _broadcast_in_dim(node: Node) -> list:
    (x,) = node.inputs
    shape = tuple(node.attrs["shape"])
    dims = tuple(node.attrs["broadcast_dimensions"])
    if len(dims) != x.rank:
        raise _fail(node, f"broadcast_dimensions {dims} do not match rank {x.rank}")
    for i, d in enumerate(dims):
        if d >= len(shape) or x.shape[i] not in (1, shape[d]):
            raise _fail(node, f"cannot broadcast {x.shape} to {shape} via {dims}")
    return [(shape, x.dtype)]


def _reshape(node: Node) -> list:
    (x,) = node.inputs
    shape = tuple(int(d) for d in node.attrs["shape"])
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise _fail(node, f"cannot reshape {x.shape} into {shape}")
    return [(shape, x.dtype)]


def _transpose(node: Node) -> list:
    (x,) = node.inputs
    perm = tuple(node.attrs["perm"])
    if sorted(perm) != list(range(x.rank)):
        raise _fail(node, f"perm {perm} is not a permutation of rank {x.rank}")
    return [(tuple(x.shape[p] for p in perm), x.dtype)]


def _slice(node: Node) -> list:
    (x,) = node.inputs
    start, limit = node.attrs["start"], node.attrs["limit"]
    strides = node.attrs.get("strides") or (1,) * x.rank
    if not (len(start) == len(limit) == len(strides) == x.rank):
        raise _fail(node, "start/limit/strides must have one entry per dim")
    out = []
    for s, e, st, d in zip(start, limit, strides, x.shape):
        if not (0 <= s <= e <= d) or st < 1:
            raise _fail(node, f"slice [{s}:{e}:{st}] out of range for dim {d}")
        out.append((e - s + st - 1) // st)
    return [(tuple(out), x.dtype)]


def _pad(node: Node) -> list:
    (x,) = node.inputs
    lo, hi = node.attrs["lo"], node.attrs["hi"]
    interior = node.attrs.get("interior") or (0,) * x.rank
    out = []
    for d, low, high, inner in zip(x.shape, lo, hi, interior):
        size = d + low + high + max(d - 1, 0) * inner
        if size < 0 or inner < 0:
            raise _fail(node, f"padding {lo}/{hi}/{interior} leaves a negative size")
        out.append(size)
    return [(tuple(out), x.dtype)]


def _concatenate(node: Node) -> list:
    axis = node.attrs["axis"]
    first = node.inputs[0]
    dtype = _same_dtype(node, node.inputs)
    for v in node.inputs:
        if v.rank != first.rank or any(a != b for i, (a, b) in enumerate(zip(v.shape, first.shape)) if i != axis):
            raise _fail(node, f"cannot concatenate {[v.shape for v in node.inputs]} on axis {axis}")
    total = sum(v.shape[axis] for v in node.inputs)
    return [(first.shape[:axis] + (total,) + first.shape[axis + 1:], dtype)]


def _rev(node: Node) -> list:
    (x,) = node.inputs
    _axes(node, x.rank, node.attrs["dims"])
    return [(x.shape, x.dtype)]


def _iota(node: Node) -> list:
    shape = tuple(node.attrs["shape"])
    if not 0 <= node.attrs["dimension"] < len(shape):
        raise _fail(node, "iota dimension out of range")
    return [(shape, node.attrs["dtype"])]


def _take(node: Node) -> list:
    x, idx = node.inputs
    axis = node.attrs["axis"]
    if not idx.dtype.is_int:
        raise _fail(node, f"indices must be integers, got {idx.dtype.name}")
    if node.attrs.get("mode", "clip") not in ("clip", "wrap"):
        raise _fail(node, f"unknown take mode {node.attrs['mode']!r}")
    _axes(node, x.rank, (axis,))
    return [(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)]


def _argsort(node: Node) -> list:
    (x,) = node.inputs
    if x.rank < 1:
        raise _fail(node, "argsort needs at least one axis")
    if node.attrs.get("order", "canonical") not in ("canonical", "total"):
        raise _fail(node, f"unknown argsort order {node.attrs['order']!r}")
    k = int(node.attrs.get("k", x.shape[-1]))
    if not 0 <= k <= x.shape[-1]:
        raise _fail(node, f"k={k} is outside 0..{x.shape[-1]}")
    return [(x.shape[:-1] + (k,), DType.i64)]


def _scatter(node: Node) -> list:
    x, positions, updates = node.inputs
    if not positions.dtype.is_int or positions.shape != updates.shape:
        raise _fail(node, f"positions must be integers shaped like the updates {updates.shape}, "
                          f"got {positions.dtype.name}{positions.shape}")
    if node.attrs["kind"] not in ("set", "add", "mul", "max", "min"):
        raise _fail(node, f"unknown scatter kind {node.attrs['kind']!r}")
    return [(x.shape, _same_dtype(node, [x, updates]))]


def _cumulative(node: Node) -> list:
    (x,) = node.inputs
    _axes(node, x.rank, (node.attrs["axis"],))
    if node.attrs["kind"] not in ("sum", "prod", "max", "min", "logaddexp"):
        raise _fail(node, f"unknown cumulative kind {node.attrs['kind']!r}")
    if node.attrs["kind"] == "logaddexp" and not x.dtype.is_float:
        raise _fail(node, f"cumulative logaddexp needs f32 or f64, got {x.dtype.name}")
    if x.dtype is DType.bool and node.attrs["kind"] in ("sum", "prod"):
        raise _fail(node, f"cumulative {node.attrs['kind']} of bool is undefined; convert first")
    return [(x.shape, x.dtype)]


def _matmul(node: Node) -> list:
    a, b = node.inputs
    if a.rank < 2 or a.rank != b.rank or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
        raise _fail(node, f"matmul shapes {a.shape} @ {b.shape} do not agree")
    dtype = DType.f32 if _reads_half_weights(node) else _same_dtype(node, [a, b])
    return [(a.shape[:-1] + (b.shape[-1],), dtype)]


_INT8 = (DType.u8, DType.i8)


def _matmul_integer(node: Node) -> list:
    a, b, a_zero, b_zero = node.inputs
    if a.dtype not in _INT8 or b.dtype not in _INT8 or a_zero.dtype is not a.dtype or b_zero.dtype is not b.dtype:
        raise _fail(node, f"matmul_integer needs u8/i8 operands with zero points of their types, got "
                          f"{[v.dtype.name for v in node.inputs]}")
    b_shape = b.shape[:-2] + b.shape[:-3:-1] if node.attrs.get("transpose_b") else b.shape  # as [*B, K, N]
    if a.rank < 2 or a.rank != b.rank or a.shape[:-2] != b_shape[:-2] or a.shape[-1] != b_shape[-2]:
        raise _fail(node, f"matmul_integer shapes {a.shape} @ {b_shape} do not agree")
    if a_zero.shape != a.shape[-2:-1] or b_zero.shape != b_shape[-1:]:
        raise _fail(node, f"zero points {a_zero.shape} and {b_zero.shape} must be [M] and [N]")
    return [(a.shape[:-1] + (b_shape[-1],), DType.i32)]


def _conv_integer(node: Node) -> list:
    x, w, x_zero, w_zero = node.inputs
    if x.dtype not in _INT8 or w.dtype not in _INT8 or x_zero.dtype is not x.dtype or w_zero.dtype is not w.dtype:
        raise _fail(node, f"conv_integer needs u8/i8 operands with zero points of their types, got "
                          f"{[v.dtype.name for v in node.inputs]}")
    strides, padding = node.attrs["strides"], node.attrs["padding"]
    dilations, groups = node.attrs.get("rhs_dilation") or (1, 1), node.attrs.get("groups", 1)
    if x.rank != 4 or w.rank != 4 or not len(strides) == len(padding) == len(dilations) == 2:
        raise _fail(node, f"conv_integer is 2-D: x{x.shape} w{w.shape}")
    if min(strides + dilations) < 1 or min(p for pair in padding for p in pair) < 0:
        raise _fail(node, f"conv_integer strides {strides} and dilations {dilations} >= 1, padding {padding} >= 0")
    cin, cout = x.shape[-1], w.shape[0]
    if groups < 1 or cin % groups or cout % groups or w.shape[-1] * groups != cin:
        raise _fail(node, f"{cin} input channels, {cout} output channels and groups={groups} do not fit kernel "
                          f"{w.shape}")
    if x_zero.shape != () or w_zero.shape != (cout,):
        raise _fail(node, f"zero points {x_zero.shape} and {w_zero.shape} must be [] and [{cout}]")
    out = [x.shape[0]]
    for size, k, s, d, (lo, hi) in zip(x.shape[1:3], w.shape[1:3], strides, dilations, padding):
        window = (k - 1) * d + 1
        if size + lo + hi < window:
            raise _fail(node, f"window {window} larger than padded input {size + lo + hi}")
        out.append((size + lo + hi - window) // s + 1)
    return [(tuple(out) + (cout,), DType.i32)]


def _reads_half_weights(node: Node) -> bool:
    """matmul(a f32, b bf16/f16/i8): the f32 matmul of b's values, b read as 16 bits (passes/half_weights.py)
    or as int8 (passes/int8_weights.py, whose epilogue then scales each column)."""
    if node.op != "matmul":
        return False
    b = node.inputs[1].dtype
    return node.inputs[0].dtype is DType.f32 and (b.is_half or b is DType.i8)


def _conv(node: Node) -> list:
    x, w = node.inputs
    spatial = x.rank - 2
    strides = node.attrs["strides"]
    padding = node.attrs["padding"]
    lhs_dil = node.attrs.get("lhs_dilation") or (1,) * spatial
    rhs_dil = node.attrs.get("rhs_dilation") or (1,) * spatial
    groups = node.attrs.get("groups", 1)
    if spatial < 1 or w.rank != x.rank or not (len(strides) == len(padding) == len(lhs_dil) == len(rhs_dil) == spatial):
        raise _fail(node, f"conv ranks do not agree: x{x.shape} w{w.shape}")
    cin, cout = x.shape[-1], w.shape[-1]
    if cin % groups or cout % groups or w.shape[-2] * groups != cin:
        raise _fail(node, f"{cin} input channels, {cout} output channels and groups={groups} "
                          f"do not fit kernel {w.shape}")
    out = [x.shape[0]]
    for i in range(spatial):
        size = (x.shape[1 + i] - 1) * lhs_dil[i] + 1 + padding[i][0] + padding[i][1]
        window = (w.shape[i] - 1) * rhs_dil[i] + 1
        if size < window:
            raise _fail(node, f"window {window} larger than padded input {size} in spatial dim {i}")
        out.append((size - window) // strides[i] + 1)
    return [(tuple(out) + (cout,), _same_dtype(node, [x, w]))]


def _reduce_window(node: Node) -> list:
    (x,) = node.inputs
    window, strides, padding = node.attrs["window"], node.attrs["strides"], node.attrs["padding"]
    if node.attrs["kind"] not in ("sum", "max", "min"):
        raise _fail(node, f"unknown reduce_window kind {node.attrs['kind']!r}")
    if not (len(window) == len(strides) == len(padding) == x.rank):
        raise _fail(node, "window/strides/padding need one entry per dim")
    out = []
    for d, k, s, (lo, hi) in zip(x.shape, window, strides, padding):
        if d + lo + hi < k:
            raise _fail(node, f"window {k} larger than padded dim {d + lo + hi}")
        out.append((d + lo + hi - k) // s + 1)
    return [(tuple(out), x.dtype)]


def _per_element(node: Node) -> int:
    """Memory-bound work: about one element per cycle."""
    return sum(v.size for v in node.outputs)


def _transcendental(node: Node) -> int:
    return 20 * node.outputs[0].size


def _per_input_element(node: Node) -> int:
    return node.inputs[0].size


def _sort_cost(node: Node) -> int:
    """A radix sort: two sweeps per key byte; the first k of a row: one sweep and k insertions."""
    x = node.inputs[0]
    if node.outputs[0].shape[-1] < x.shape[-1]:
        return x.size + node.outputs[0].size * node.outputs[0].shape[-1]
    return 2 * x.size * x.dtype.itemsize


def _free(node: Node) -> int:
    return 0


def _matmul_flops(node: Node) -> int:
    return 2 * node.outputs[0].size * matmul_view(node).depth


def _matmul_integer_ops(node: Node) -> int:
    return 2 * node.outputs[0].size * node.inputs[0].shape[-1]


def _conv_integer_ops(node: Node) -> int:
    return 2 * node.outputs[0].size * math.prod(node.inputs[1].shape[1:])


def _conv_flops(node: Node) -> int:
    w = node.inputs[1]
    return 2 * node.outputs[0].size * math.prod(w.shape[:-1])


def _window_flops(node: Node) -> int:
    return node.outputs[0].size * math.prod(node.attrs["window"])


def _on_arrays(fn: Callable[..., np.ndarray]) -> Reference:
    """An elementwise reference (arrays only) as an op reference (node first)."""
    return lambda node, *args: fn(*args)


# Elementwise ops: name -> (reference on arrays, cost). They all fold and fuse.
_UNARY: dict[str, tuple[Callable[..., np.ndarray], Cost]] = {
    "neg": (ref.quiet(np.negative), _per_element), "abs": (ref.quiet(np.abs), _per_element),
    "exp": (ref.quiet(np.exp), _transcendental), "log": (ref.quiet(np.log), _transcendental),
    "log1p": (ref.quiet(np.log1p), _transcendental), "expm1": (ref.quiet(np.expm1), _transcendental),
    "tanh": (ref.quiet(np.tanh), _transcendental), "erf": (ref.erf, _transcendental),
    "sqrt": (ref.quiet(np.sqrt), _per_element), "rsqrt": (ref.rsqrt, _per_element),
    "logistic": (ref.logistic, _transcendental), "floor": (ref.quiet(np.floor), _per_element),
    "ceil": (ref.quiet(np.ceil), _per_element), "round": (ref.round_half_even, _per_element),
    "sign": (ref.sign, _per_element), "not": (ref.logical_not, _per_element),
    "sin": (ref.quiet(np.sin), _transcendental), "cos": (ref.quiet(np.cos), _transcendental),
    "reciprocal": (ref.reciprocal, _per_element), "is_finite": (np.isfinite, _per_element),
}
_BINARY: dict[str, tuple[Callable[..., np.ndarray], Cost]] = {
    "add": (ref.wrapping(np.add), _per_element), "sub": (ref.wrapping(np.subtract), _per_element),
    "mul": (ref.wrapping(np.multiply), _per_element), "div": (ref.div, _per_element),
    "rem": (ref.rem, _per_element), "max": (ref.extreme(True), _per_element),
    "min": (ref.extreme(False), _per_element), "pow": (ref.power, _transcendental),
    "and": (ref.wrapping(np.bitwise_and), _per_element), "or": (ref.wrapping(np.bitwise_or), _per_element),
    "xor": (ref.wrapping(np.bitwise_xor), _per_element),
}
_COMPARE: dict[str, Callable[..., np.ndarray]] = {
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
}

OPS: dict[str, OpDef] = {}


def _declare(name: str, kind: str, arity: int | None, rule: Rule, reference: Reference, role: Role, *,
             cost: Cost = _per_element, folds: bool = False, attrs: tuple[str, ...] = (),
             optional: tuple[str, ...] = (), lowered: tuple[str, ...] = ()) -> None:
    if name in OPS:
        raise RuntimeError(f"IR op {name!r} declared twice")
    OPS[name] = OpDef(name, kind, arity, rule, reference, cost, role, folds, attrs, optional, lowered)


for _name, (_fn, _cost) in _UNARY.items():
    _declare(_name, "unary", 1, _unary, _on_arrays(_fn), Role.ELEMENTWISE, cost=_cost, folds=True)
for _name, (_fn, _cost) in _BINARY.items():
    _declare(_name, "binary", 2, _binary, _on_arrays(_fn), Role.ELEMENTWISE, cost=_cost, folds=True)
for _name, _fn in _COMPARE.items():
    _declare(_name, "compare", 2, _compare, _on_arrays(_fn), Role.ELEMENTWISE, folds=True)
_declare("select", "select", 3, _select, ref.select, Role.ELEMENTWISE, folds=True)
_declare("convert", "convert", 1, _convert, ref.convert, Role.ELEMENTWISE, folds=True, attrs=("dtype",))
_declare("bitcast", "convert", 1, _bitcast, ref.bitcast, Role.ELEMENTWISE, folds=True, attrs=("dtype",))
for _name in ("shift_left", "shift_right_logical", "shift_right_arithmetic"):
    _declare(_name, "binary", 2, _shift, _on_arrays(ref.shift(_name)), Role.ELEMENTWISE, folds=True)
for _name in ("reduce_sum", "reduce_max", "reduce_min"):
    _declare(_name, "reduce", 1, _reduce, ref.reduce, Role.ROW_REDUCTION, cost=_per_input_element, attrs=("axes",))
_declare("reduce_prod", "reduce", 1, _reduce, ref.reduce, Role.REDUCTION, cost=_per_input_element, attrs=("axes",))
for _name in ("argmax", "argmin"):
    _declare(_name, "argreduce", 1, _argreduce, ref.argreduce, Role.REDUCTION, cost=_per_input_element,
             attrs=("axis", "index_dtype"))
_declare("broadcast_in_dim", "broadcast_in_dim", 1, _broadcast_in_dim, ref.broadcast_in_dim, Role.BROADCAST,
         folds=True, attrs=("shape", "broadcast_dimensions"))
_declare("reshape", "reshape", 1, _reshape, ref.reshape, Role.VIEW, cost=_free, folds=True, attrs=("shape",))
_declare("transpose", "transpose", 1, _transpose, ref.transpose, Role.LAYOUT, folds=True, attrs=("perm",))
_declare("slice", "slice", 1, _slice, ref.slice_, Role.LAYOUT, folds=True, attrs=("start", "limit"),
         optional=("strides",))
_declare("pad", "pad", 1, _pad, ref.pad, Role.LAYOUT, folds=True, attrs=("lo", "hi", "value"), optional=("interior",))
_declare("concatenate", "concatenate", None, _concatenate, ref.concatenate, Role.LAYOUT, folds=True, attrs=("axis",),
         lowered=("epilogue",))  # ir/hosts.py: a chain run on the rows as they are copied
_declare("rev", "rev", 1, _rev, ref.rev, Role.LAYOUT, folds=True, attrs=("dims",))
_declare("iota", "iota", 0, _iota, ref.iota, Role.LAYOUT, folds=True, attrs=("shape", "dtype", "dimension"))
_declare("take", "take", 2, _take, ref.take, Role.GATHER, attrs=("axis",), optional=("mode",))
_declare("argsort", "argsort", 1, _argsort, ref.argsort, Role.GATHER, cost=_sort_cost,
         optional=("order", "descending", "k"))
_declare("cumulative", "cumulative", 1, _cumulative, ref.cumulative, Role.REDUCTION,
         attrs=("kind", "axis"))
_declare("scatter", "scatter", 3, _scatter, ref.scatter, Role.GATHER, attrs=("kind",))
_declare("tree_ensemble", "tree_ensemble", 8, tree_ensemble.rule, tree_ensemble.reference, Role.GATHER,
         cost=tree_ensemble.cost, attrs=("n_targets", "aggregate"))
_declare("matmul", "matmul", 2, _matmul, ref.matmul, Role.MATMUL, cost=_matmul_flops,
         lowered=("epilogue", "packed_b", "view"))
_declare("matmul_integer", "matmul_integer", 4, _matmul_integer, ref.matmul_integer, Role.REDUCTION,
         cost=_matmul_integer_ops, optional=("transpose_b",),
         lowered=("epilogue", "pairs_b"))  # a kernel of its own; its transpose_b form hosts an epilogue
_declare("conv_integer", "conv_integer", 4, _conv_integer, ref.conv_integer, Role.REDUCTION,
         cost=_conv_integer_ops, attrs=("strides", "padding"), optional=("rhs_dilation", "groups"),
         lowered=("packed_b",))
_declare("conv", "conv", 2, _conv, ref.conv, Role.CONV, cost=_conv_flops, attrs=("strides", "padding"),
         optional=("lhs_dilation", "rhs_dilation", "groups"), lowered=("epilogue", "packed_b"))
_declare("winograd_conv", "winograd_conv", None, winograd.rule, winograd.reference, Role.REDUCTION, cost=winograd.flops,
         attrs=("padding", "tile", "block", "columns", "groups", "chain"))  # passes/winograd.py makes it
_declare("reduce_window", "reduce_window", 1, _reduce_window, ref.reduce_window, Role.WINDOW, cost=_window_flops,
         attrs=("kind", "window", "strides", "padding"))
_declare("loop", "loop", None, loop_op.rule, loop_op.reference, Role.CONTROL, cost=loop_op.cost,
         attrs=("body", "num_consts", "num_carry", "length", "cond"), optional=("reverse", "scratch"))


def names(*, kind: str | None = None, role: Role | None = None) -> tuple[str, ...]:
    """The declared ops of one kind and/or role, in declaration order."""
    return tuple(name for name, op in OPS.items()
                 if (kind is None or op.kind == kind) and (role is None or op.role is role))


def role_of(op: str) -> Role | None:
    """op's role in fusion; None for an op the table does not declare (a fused op)."""
    declaration = OPS.get(op)
    return declaration.role if declaration is not None else None


UNARY = names(kind="unary")
BINARY = names(kind="binary")
COMPARE = names(kind="compare")
REDUCE = names(kind="reduce")
ELEMENTWISE = frozenset(names(role=Role.ELEMENTWISE))
# computed by polynomial approximations (codegen/mathfn.py), within a few ulp: the ops costed as transcendental
TRANSCENDENTAL = frozenset(name for name, op in OPS.items() if op.cost is _transcendental)


def infer(node: Node) -> list[tuple[Shape, DType]]:
    """Output shapes and dtypes of node; IRError naming the op if it is malformed."""
    opdef = OPS.get(node.op)
    if opdef is None:
        raise _fail(node, "unknown IR op")
    if opdef.arity is not None and len(node.inputs) != opdef.arity:
        raise _fail(node, f"expects {opdef.arity} inputs, got {len(node.inputs)}")
    if opdef.arity is None and not node.inputs:
        raise _fail(node, "expects at least one input")
    missing = [a for a in opdef.attrs if a not in node.attrs]
    if missing:
        raise _fail(node, f"missing attributes {missing}")
    unknown = sorted(set(node.attrs) - set(opdef.attrs) - set(opdef.optional) - set(opdef.lowered))
    if unknown:  # a misspelt optional attribute would silently mean its default
        raise _fail(node, f"unknown attributes {unknown}")
    outputs = opdef.rule(node)
    _check_half(node, outputs)
    return outputs


# Ops that only move, select or convert elements: the ones f16/bf16 (storage types) may pass through.
HALF_OPS = frozenset({"select", "convert", "bitcast", "broadcast_in_dim", "reshape", "transpose", "slice", "pad",
                      "concatenate", "rev", "take", "loop"})  # a loop's body computes, checked node by node


def _check_half(node: Node, outputs: list[tuple[Shape, DType]]) -> None:
    """f16/bf16 are computed on in f32 (the frontend converts around each op): arithmetic on them is refused,
    so a missed conversion is an error, and convert pairs them with f32 only (one rounding, as XLA)."""
    halves = sorted({d.name for d in [v.dtype for v in node.inputs] + [d for _, d in outputs] if d.is_half})
    if not halves:
        return
    if node.op not in HALF_OPS and not _reads_half_weights(node):
        raise _fail(node, f"does not compute on {'/'.join(halves)} (storage types: convert to f32 first)")
    if node.op == "convert" and {node.inputs[0].dtype, outputs[0][1]} - {DType.f32, DType.f16, DType.bf16}:
        raise _fail(node, f"converts {node.inputs[0].dtype.name} to {outputs[0][1].name}: f16/bf16 convert "
                          "to and from f32 only")
