"""The reference implementations: plain numpy, one function per op, define what the IR means.

compiler/ir/ops.py attaches each to its op's declaration; compiler/ir/interpret.py runs graphs with
them and passes/fold.py folds constants with them. They favour clarity over speed and follow the
semantics in ops.py exactly. An op's function takes (node, *input arrays); elementwise functions
take the arrays only (ops.py adapts them).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.graph import IRError, Node

Impl = Callable[..., np.ndarray]


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C division (toward zero); x/0 is -1 and MIN/-1 is MIN, as XLA defines them."""
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        overflow = (b == -1) & (a == np.iinfo(a.dtype).min) if a.dtype.kind == "i" else np.zeros(a.shape, bool)
        safe = np.where((b == 0) | overflow, 1, b).astype(a.dtype)
        exact = a - np.fmod(a, safe)  # moves toward zero, so it cannot overflow; safe divides it exactly
        quotient = np.where(overflow, a, exact // safe)
        return np.where(b == 0, np.array(-1).astype(a.dtype), quotient).astype(a.dtype)


def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu":
        return _int_div(a, b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.divide(a, b)


def rem(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C remainder (sign of the dividend); x rem 0 is x and MIN rem -1 is 0 (as XLA)."""
    if a.dtype.kind in "iu":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b == 0, a, np.fmod(a, np.where(b == 0, 1, b).astype(a.dtype))).astype(a.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.fmod(a, b)


def extreme(larger: bool) -> Impl:
    """max/min propagating NaN, with -0 < +0 (as XLA): numpy's maximum returns its first argument
    on a tie, so equal values pick the one with the wanted sign."""
    pick = np.maximum if larger else np.minimum

    def impl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            result = pick(a, b)
        if a.dtype.kind != "f":
            return result
        keep_a = np.signbit(a) != larger  # max keeps a +0, min keeps a -0
        return np.where(a == b, np.where(keep_a, a, b), result).astype(result.dtype)

    return impl


def _int_pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer power with wraparound; a negative exponent gives 0 unless |a| is 1."""
    a, b = np.broadcast_arrays(a, b)
    result = np.ones_like(a)
    base, exponent = a.copy(), np.maximum(b, 0)
    with np.errstate(over="ignore"):
        while np.any(exponent > 0):
            odd = (exponent & 1) == 1
            result = np.where(odd, result * base, result)
            base = base * base
            exponent = exponent >> 1
    negative = b < 0
    one_or_minus_one = np.where(b % 2 == 0, 1, a).astype(a.dtype)
    result = np.where(negative & (a == 1), 1, result)
    result = np.where(negative & (a == -1), one_or_minus_one, result)
    return np.where(negative & (np.abs(a) != 1), 0, result).astype(a.dtype)


def power(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu":
        return _int_pow(a, b)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.power(a, b)


def logistic(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x))).astype(x.dtype)


def quiet(fn: Callable[[np.ndarray], np.ndarray]) -> Impl:
    """Wrap a numpy ufunc so it keeps the input dtype and stays quiet on inf/nan results."""

    def impl(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(fn(x)).astype(x.dtype)

    return impl


def erf(x: np.ndarray) -> np.ndarray:
    import scipy.special  # here, not at the top: a loaded model imports the IR but never runs it

    return quiet(scipy.special.erf)(x)


def rsqrt(x: np.ndarray) -> np.ndarray:
    return quiet(lambda v: 1 / np.sqrt(v))(x)


def reciprocal(x: np.ndarray) -> np.ndarray:
    return quiet(lambda v: 1 / v)(x)


def round_half_even(x: np.ndarray) -> np.ndarray:
    """Halves round to even (numpy, ONNX Round, jnp.round)."""
    return np.round(x).astype(x.dtype)


def sign(x: np.ndarray) -> np.ndarray:
    """sign(-0.0) is -0.0 (as XLA; numpy's sign gives +0)."""
    return np.where(x == 0, x, np.sign(x)).astype(x.dtype)


def logical_not(x: np.ndarray) -> np.ndarray:
    return np.logical_not(x) if x.dtype == np.bool_ else np.invert(x)


def wrapping(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Impl:
    def impl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.asarray(fn(a, b)).astype(np.result_type(a, b))

    return impl


def convert(node: Node, x: np.ndarray) -> np.ndarray:
    """float->int truncates toward zero and saturates; NaN becomes 0; anything->bool is x != 0."""
    target: DType = node.attrs["dtype"]
    if target is DType.bool:
        return x != 0
    if x.dtype.kind == "f" and target.is_int:
        info = np.iinfo(target.numpy)
        whole = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0)
        high, low = whole >= float(info.max), whole <= float(info.min)
        inside = np.where(high | low, 0, whole).astype(target.numpy)
        return np.where(high, info.max, np.where(low, info.min, inside)).astype(target.numpy)
    with np.errstate(over="ignore", invalid="ignore"):
        result = np.asarray(x.astype(target.numpy))
    if target is DType.f16 and x.dtype == np.float32:  # NaN: XLA's quiet NaN, the payload's top 9 bits kept
        bits = np.asarray(x).view(np.uint32)            # (numpy keeps a signalling NaN, or makes one of payload 1)
        quiet = ((bits >> 16) & 0x8000) | 0x7E00 | ((bits >> 13) & 0x1FF)
        result = np.where(np.isnan(x), quiet.astype(np.uint16).view(np.float16), result)
    return result


def bitcast(node: Node, x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(node.attrs["dtype"].numpy)


def shift(op: str) -> Impl:
    """XLA's shifts: the amount as unsigned; one >= the bit width gives 0, or the sign fill for
    shift_right_arithmetic. Computed on the unsigned (or, arithmetic, signed) view of the bits."""

    def impl(x: np.ndarray, amount: np.ndarray) -> np.ndarray:
        x, amount = np.broadcast_arrays(x, amount)
        bits = x.dtype.itemsize * 8
        unsigned, signed = np.dtype(f"u{x.dtype.itemsize}"), np.dtype(f"i{x.dtype.itemsize}")
        count = amount.astype(unsigned)  # the same bits: a negative amount is a huge one
        inside = count < bits
        if op == "shift_right_arithmetic":
            moved = x.astype(signed) >> np.minimum(count, bits - 1).astype(signed)
        else:
            safe = np.where(inside, count, 0).astype(unsigned)
            moved = (x.astype(unsigned) << safe) if op == "shift_left" else (x.astype(unsigned) >> safe)
            moved = np.where(inside, moved, 0)
        return np.ascontiguousarray(moved).astype(unsigned).view(x.dtype).reshape(x.shape)

    return impl


def _identity_of(kind: str, dtype: np.dtype) -> object:
    if kind in ("sum", "reduce_sum"):
        return np.zeros((), dtype)
    if kind in ("prod", "reduce_prod"):
        return np.ones((), dtype)
    if dtype == np.bool_:
        return np.array(kind in ("min", "reduce_min"))
    if dtype.kind == "f":
        return np.array(-np.inf if kind in ("max", "reduce_max") else np.inf, dtype)
    info = np.iinfo(dtype)
    return np.array(info.min if kind in ("max", "reduce_max") else info.max, dtype)


_REDUCERS = {"reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min, "reduce_prod": np.prod}


def reduce(node: Node, x: np.ndarray) -> np.ndarray:
    """Integer sums wrap; on bool, reduce_max is any and reduce_min is all; max/min order -0 below +0."""
    axes = tuple(node.attrs["axes"])
    fn = _REDUCERS[node.op]
    if x.dtype == np.bool_ and node.op in ("reduce_sum", "reduce_prod"):
        raise IRError(f"{node.where()}: {node.op} of bool is undefined; convert first")
    initial = _identity_of(node.op, x.dtype).item()
    with np.errstate(over="ignore"):
        result = np.asarray(fn(x, axis=axes, initial=initial)).astype(x.dtype)
    if x.dtype.kind == "f" and node.op in ("reduce_max", "reduce_min"):
        # -0 < +0 (as XLA): numpy keeps whichever zero came first
        negative = node.op == "reduce_min"
        has_wanted_zero = np.any((x == 0) & (np.signbit(x) == negative), axis=axes)
        result = np.where((result == 0) & has_wanted_zero, -0.0 if negative else 0.0, result).astype(x.dtype)
    return result


def argreduce(node: Node, x: np.ndarray) -> np.ndarray:
    """First index of the extreme value; NaN counts as the extreme (as in numpy and XLA)."""
    fn = np.argmax if node.op == "argmax" else np.argmin
    return fn(x, axis=node.attrs["axis"]).astype(node.attrs["index_dtype"].numpy)


def broadcast_in_dim(node: Node, x: np.ndarray) -> np.ndarray:
    """Input axis i becomes output dim dims[i]; dims out of order transpose (as XLA)."""
    shape = tuple(node.attrs["shape"])
    dims = tuple(node.attrs["broadcast_dimensions"])
    order = sorted(range(len(dims)), key=lambda i: dims[i])
    x = np.transpose(x, order)
    expanded = [1] * len(shape)
    for i, d in enumerate(sorted(dims)):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape).copy()


def slice_(node: Node, x: np.ndarray) -> np.ndarray:
    strides = node.attrs.get("strides") or (1,) * x.ndim
    index = tuple(slice(s, e, st) for s, e, st in zip(node.attrs["start"], node.attrs["limit"], strides))
    return x[index].copy()


def pad(node: Node, x: np.ndarray) -> np.ndarray:
    """Interior padding first, then lo/hi; negative lo/hi crop."""
    lo, hi = node.attrs["lo"], node.attrs["hi"]
    interior = node.attrs.get("interior") or (0,) * x.ndim
    value = np.array(node.attrs["value"]).astype(x.dtype)
    spread_shape = tuple(d + max(d - 1, 0) * inner for d, inner in zip(x.shape, interior))
    spread = np.full(spread_shape, value, x.dtype)
    spread[tuple(slice(None, None, inner + 1) for inner in interior)] = x
    grown = np.pad(spread, [(max(low, 0), max(high, 0)) for low, high in zip(lo, hi)], constant_values=value)
    crop = tuple(slice(max(-low, 0), grown.shape[i] - max(-high, 0)) for i, (low, high) in enumerate(zip(lo, hi)))
    return grown[crop].copy()


def iota(node: Node) -> np.ndarray:
    shape = tuple(node.attrs["shape"])
    axis = node.attrs["dimension"]
    line = np.arange(shape[axis]).astype(node.attrs["dtype"].numpy)
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(line.reshape(view), shape).copy()


def take(node: Node, x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    axis = node.attrs["axis"]
    size = x.shape[axis]
    idx = idx.astype(np.int64)
    if node.attrs.get("mode", "clip") == "wrap":
        idx = np.where(idx < 0, idx + size, idx)
    return np.take(x, np.clip(idx, 0, size - 1), axis=axis)


def ordered_key(x: np.ndarray, order: str) -> np.ndarray:
    """uint64 keys whose unsigned order is argsort's order of x (see ops.py): canonical order first
    makes every zero +0 and every NaN the positive quiet NaN, then floats map their sign-magnitude
    bits to an unsigned order and signed integers flip their sign bit."""
    if x.dtype.kind == "f":
        bits_type = np.dtype(f"i{x.dtype.itemsize}")
        if order == "canonical":
            x = np.where(np.isnan(x), np.array(np.nan, x.dtype), np.where(x == 0, np.zeros((), x.dtype), x))
        bits = x.view(bits_type).astype(np.int64)
        width = 8 * x.dtype.itemsize
        unsigned = bits & ((1 << width) - 1) if width < 64 else bits
        key = np.where(bits < 0, ~unsigned, unsigned | np.int64(-(1 << 63) if width == 64 else 1 << (width - 1)))
        return (key & ((1 << width) - 1) if width < 64 else key).astype(np.int64).view(np.uint64)
    if x.dtype.kind == "i":
        return x.astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)
    return x.astype(np.uint64)


def argsort(node: Node, x: np.ndarray) -> np.ndarray:
    key = ordered_key(x, node.attrs.get("order", "canonical"))
    if node.attrs.get("descending", False):
        key = ~key
    k = int(node.attrs.get("k", x.shape[-1]))
    return np.argsort(key, axis=-1, kind="stable")[..., :k].astype(np.int64)


_CUMULATIVE = {"prod": np.multiply}


def logaddexp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(exp(a) + exp(b)) as jax's logaddexp: a + b where a - b is NaN (a NaN, or infinities of one sign)."""
    with np.errstate(all="ignore"):
        delta = a - b
        return np.where(np.isnan(delta), a + b, np.maximum(a, b) + np.log1p(np.exp(-np.abs(delta)))).astype(a.dtype)


def cumulative(node: Node, x: np.ndarray) -> np.ndarray:
    """A running combine along the axis, in order from index 0 (ufunc.accumulate folds that way); a sum
    starts from +0, as XLA's, so a leading -0 sums to +0."""
    axis, kind = node.attrs["axis"], node.attrs["kind"]
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "sum":
            start = np.zeros(x.shape[:axis] + (1,) + x.shape[axis + 1:], x.dtype)
            total = np.add.accumulate(np.concatenate([start, x], axis=axis), axis=axis, dtype=x.dtype)
            return np.delete(total, 0, axis=axis)
        if kind in _CUMULATIVE:
            return _CUMULATIVE[kind].accumulate(x, axis=axis, dtype=x.dtype)
        combine = logaddexp if kind == "logaddexp" else extreme(kind == "max")
        out = np.moveaxis(x.copy(), axis, 0)
        for i in range(1, out.shape[0]):
            out[i] = combine(out[i - 1], out[i])
        return np.moveaxis(out, 0, axis).copy()


_SCATTER_UFUNCS = {"add": np.add, "mul": np.multiply}


def scatter(node: Node, x: np.ndarray, positions: np.ndarray, updates: np.ndarray) -> np.ndarray:
    """Updates applied one at a time in order (ufunc.at does), out-of-range positions dropped."""
    out = x.copy().reshape(-1)
    positions = positions.reshape(-1).astype(np.int64)
    updates = updates.reshape(-1)
    inside = (positions >= 0) & (positions < out.size)
    positions, updates = positions[inside], updates[inside]
    kind = node.attrs["kind"]
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "set":
            out[positions] = updates  # numpy assigns in order: the last duplicate wins
        elif kind in _SCATTER_UFUNCS:
            _SCATTER_UFUNCS[kind].at(out, positions, updates)
        else:
            combine = extreme(kind == "max")
            for p, u in zip(positions, updates):
                out[p] = combine(out[p:p + 1], u.reshape(1))[0]
    return out.reshape(x.shape)


def select(node: Node, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(cond, a, b)


def reshape(node: Node, x: np.ndarray) -> np.ndarray:
    return x.reshape(tuple(node.attrs["shape"]))


def transpose(node: Node, x: np.ndarray) -> np.ndarray:
    return np.transpose(x, tuple(node.attrs["perm"])).copy()


def concatenate(node: Node, *xs: np.ndarray) -> np.ndarray:
    return np.concatenate(xs, axis=node.attrs["axis"])


def rev(node: Node, x: np.ndarray) -> np.ndarray:
    return np.flip(x, tuple(node.attrs["dims"])).copy()


def matmul_integer(node: Node, a: np.ndarray, b: np.ndarray, a_zero: np.ndarray, b_zero: np.ndarray) -> np.ndarray:
    """In int64 (exact: numpy's integer matmul does not round), then wrapped to i32."""
    left = a.astype(np.int64) - a_zero.astype(np.int64)[:, None]
    if node.attrs.get("transpose_b"):
        b = np.swapaxes(b, -1, -2)
    right = b.astype(np.int64) - b_zero.astype(np.int64)
    return np.matmul(left, right).astype(np.int32)


def conv_integer(node: Node, x: np.ndarray, w: np.ndarray, x_zero: np.ndarray, w_zero: np.ndarray) -> np.ndarray:
    """conv() in int64 on the zero-point-shifted operands (padding adds zeros: cells equal to x_zero), wrapped
    to i32; w from [Cout, KH, KW, Cin/g] to conv's [KH, KW, Cin/g, Cout]."""
    shifted_w = np.transpose(w.astype(np.int64) - w_zero.astype(np.int64)[:, None, None, None], (1, 2, 3, 0))
    attrs = {"strides": node.attrs["strides"], "padding": node.attrs["padding"],
             "rhs_dilation": node.attrs.get("rhs_dilation"), "groups": node.attrs.get("groups", 1)}
    return conv(Node("conv", [], [], attrs), x.astype(np.int64) - x_zero.astype(np.int64), shifted_w).astype(np.int32)


def matmul(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    b = b.astype(a.dtype) if b.dtype in (DType.bf16.numpy, DType.f16.numpy) else b  # 16-bit weights, widened
    with np.errstate(over="ignore"):
        return np.matmul(a, b).astype(np.result_type(a, b))


def conv(node: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Dilate the input, pad it (negative pads crop), then sum one shifted slice per kernel tap."""
    spatial = x.ndim - 2
    strides = node.attrs["strides"]
    lhs_dil = node.attrs.get("lhs_dilation") or (1,) * spatial
    rhs_dil = node.attrs.get("rhs_dilation") or (1,) * spatial
    groups = node.attrs.get("groups", 1)
    padded = pad(Node("pad", [], [], {"lo": (0,) + tuple(p[0] for p in node.attrs["padding"]) + (0,),
                                       "hi": (0,) + tuple(p[1] for p in node.attrs["padding"]) + (0,),
                                       "interior": (0,) + tuple(d - 1 for d in lhs_dil) + (0,),
                                       "value": 0}), x)
    kernel = w.shape[:spatial]
    out_sizes = [(padded.shape[1 + i] - ((kernel[i] - 1) * rhs_dil[i] + 1)) // strides[i] + 1 for i in range(spatial)]
    cin_g, cout = w.shape[-2], w.shape[-1]
    cout_g = cout // groups
    grouped_w = w.reshape(kernel + (cin_g, groups, cout_g))
    out = np.zeros((x.shape[0], *out_sizes, groups, cout_g), np.result_type(x, w))
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = tuple(slice(t * d, t * d + (n - 1) * s + 1, s) for t, d, n, s in zip(tap, rhs_dil, out_sizes, strides))
        patch = padded[(slice(None),) + window + (slice(None),)]
        patch = patch.reshape(patch.shape[:-1] + (groups, cin_g))
        out += np.einsum("...gc,cgo->...go", patch, grouped_w[tap])
    return out.reshape(out.shape[:-2] + (cout,))


def reduce_window(node: Node, x: np.ndarray) -> np.ndarray:
    kind = node.attrs["kind"]
    window, strides, padding = node.attrs["window"], node.attrs["strides"], node.attrs["padding"]
    identity = _identity_of(kind, x.dtype)
    padded = pad(Node("pad", [], [], {"lo": tuple(p[0] for p in padding), "hi": tuple(p[1] for p in padding),
                                       "value": identity.item()}), x)
    out_sizes = [(d - k) // s + 1 for d, k, s in zip(padded.shape, window, strides)]
    combine = {"sum": np.add, "max": extreme(True), "min": extreme(False)}[kind]  # -0 < +0, as reduce_max
    out = np.full(out_sizes, identity, x.dtype)
    with np.errstate(over="ignore"):
        for tap in itertools.product(*(range(k) for k in window)):
            index = tuple(slice(t, t + (n - 1) * s + 1, s) for t, n, s in zip(tap, out_sizes, strides))
            out = combine(out, padded[index]).astype(x.dtype)
    return out
