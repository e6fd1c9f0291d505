"""The IR's operations: one shape-and-type rule per op, in one table.

Semantics every frontend and backend agrees on:
- elementwise ops take inputs of equal rank; each input dim equals the
  output dim or is 1 (broadcast). Comparisons return bool.
- integer div truncates toward zero and rem takes the dividend's sign (C).
- matmul: a[*B, M, K] @ b[*B, K, N] -> [*B, M, N], batch dims equal.
- conv: x[N, *S, Cin] (channels last), w[*K, Cin/groups, Cout] -> [N, *S', Cout];
  padding is ((lo, hi), ...) per spatial dim, dilations per spatial dim.
- reduce_window: window/strides/padding over every dim of x; kind in
  sum|max|min; padded cells hold the identity of the kind.
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
- max/min propagate NaN and order -0 below +0. select(cond, a, b) is cond ? a : b.
- float rem is C fmod, exact (fmod(x, 0) and fmod(inf, y) are NaN, fmod(x, inf) = x).
- subnormals are kept (XLA on CPU flushes them to zero; that is its float mode, not an op's meaning).
- pad: interior padding (attr "interior", default 0) goes between elements
  first, then lo/hi; negative lo/hi crop. "value" is a Python scalar.
- conv optional attrs: lhs_dilation, rhs_dilation (default 1s), groups
  (default 1); padding may be negative (crops). With groups g, output
  channel o belongs to group o // (Cout/g) and reads input channels
  [group*Cin/g, (group+1)*Cin/g) (XLA's feature_group_count).
- pow on floats is C pow (a negative base needs an integral exponent, else NaN).
- compiler/ir/interpret.py is the executable form of these rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.graph import IRError, Node

Shape = tuple[int, ...]
Rule = Callable[[Node], list[tuple[Shape, DType]]]

UNARY = ("neg", "abs", "exp", "log", "log1p", "expm1", "tanh", "erf", "sqrt", "rsqrt",
         "logistic", "floor", "ceil", "round", "sign", "not", "sin", "cos", "reciprocal",
         "is_finite")
BINARY = ("add", "sub", "mul", "div", "rem", "max", "min", "pow", "and", "or", "xor")
COMPARE = ("eq", "ne", "lt", "le", "gt", "ge")
REDUCE = ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod")
ELEMENTWISE = frozenset(UNARY + BINARY + COMPARE + ("select", "convert"))


@dataclass(frozen=True)
class OpDef:
    name: str
    arity: int | None  # None: variadic
    rule: Rule
    attrs: tuple[str, ...] = ()


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


def _matmul(node: Node) -> list:
    a, b = node.inputs
    if a.rank < 2 or a.rank != b.rank or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
        raise _fail(node, f"matmul shapes {a.shape} @ {b.shape} do not agree")
    return [(a.shape[:-1] + (b.shape[-1],), _same_dtype(node, [a, b]))]


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


OPS: dict[str, OpDef] = {}


def _register(name: str, arity: int | None, rule: Rule, attrs: tuple[str, ...] = ()) -> None:
    OPS[name] = OpDef(name, arity, rule, attrs)


for _name in UNARY:
    _register(_name, 1, _unary)
for _name in BINARY:
    _register(_name, 2, _binary)
for _name in COMPARE:
    _register(_name, 2, _compare)
for _name in REDUCE:
    _register(_name, 1, _reduce, ("axes",))
_register("select", 3, _select)
_register("convert", 1, _convert, ("dtype",))
_register("argmax", 1, _argreduce, ("axis", "index_dtype"))
_register("argmin", 1, _argreduce, ("axis", "index_dtype"))
_register("broadcast_in_dim", 1, _broadcast_in_dim, ("shape", "broadcast_dimensions"))
_register("reshape", 1, _reshape, ("shape",))
_register("transpose", 1, _transpose, ("perm",))
_register("slice", 1, _slice, ("start", "limit"))
_register("pad", 1, _pad, ("lo", "hi", "value"))
_register("concatenate", None, _concatenate, ("axis",))
_register("rev", 1, _rev, ("dims",))
_register("iota", 0, _iota, ("shape", "dtype", "dimension"))
_register("take", 2, _take, ("axis",))
_register("matmul", 2, _matmul)
_register("conv", 2, _conv, ("strides", "padding"))
_register("reduce_window", 1, _reduce_window, ("kind", "window", "strides", "padding"))


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
    return opdef.rule(node)
