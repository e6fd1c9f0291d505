"""Lowering of jax.random's primitives: a key is its uint32 key data, and every random primitive is
JAX's own implementation of it (the function XLA's lowering runs: impl.seed/split/fold_in/random_bits,
vmapped over key arrays), traced and inlined, so the bits are jax.jit's bit for bit. threefry2x32
inlines JAX's unrolled hash (adds, xors, rotations on uint32), which fuses into one elementwise loop.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import numpy as np
from jax._src import core
from jax._src.random import prng
from jax._src.random import threefry2x32 as threefry

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.jax.context import Context

Rule = Callable[..., list[Value]]


def _inline(ctx: Context, fn: Callable, eqn, *args: Value) -> list[Value]:
    """Trace fn on the physical types of eqn's inputs (key data for keys) and lower it in place."""
    avals = [core.physical_aval(v.aval) for v in eqn.invars]
    closed = jax.make_jaxpr(fn)(*(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in avals))
    return ctx.inline(closed.jaxpr, list(closed.consts), list(args))


def is_key(x: object) -> bool:
    """Whether x (an array or an aval) holds typed PRNG keys (jax.random.key)."""
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def key_data(leaf: object) -> object:
    """An argument as the graph takes it: a typed key array becomes its uint32 key data."""
    return jax.random.key_data(leaf) if is_key(leaf) else leaf


def _impl(eqn):
    """The PRNG implementation of the equation's key input (or of its impl parameter)."""
    return eqn.params["impl"] if "impl" in eqn.params else eqn.invars[0].aval.dtype._impl


def _key_data(ctx: Context, eqn, *xs: Value) -> list[Value]:
    """random_wrap / random_unwrap: a key is its data already."""
    return list(xs)


def _seed(ctx: Context, eqn, seeds: Value) -> list[Value]:
    return _inline(ctx, partial(prng.random_seed_impl_base, impl=_impl(eqn)), eqn, seeds)


def _split(ctx: Context, eqn, keys: Value) -> list[Value]:
    ndim = eqn.invars[0].aval.ndim
    return _inline(ctx, partial(prng.random_split_impl_base, _impl(eqn), keys_ndim=ndim, shape=eqn.params["shape"]),
                   eqn, keys)


def _fold_in(ctx: Context, eqn, keys: Value, messages: Value) -> list[Value]:
    shape = eqn.invars[0].aval.shape
    return _inline(ctx, lambda k, m: prng.random_fold_in_impl_base(_impl(eqn), k, m, shape), eqn, keys, messages)


def _bits(ctx: Context, eqn, keys: Value) -> list[Value]:
    ndim = eqn.invars[0].aval.ndim
    return _inline(ctx, partial(prng.random_bits_impl_base, _impl(eqn), keys_ndim=ndim,
                                bit_width=eqn.params["bit_width"], shape=eqn.params["shape"]), eqn, keys)


def _threefry2x32(ctx: Context, eqn, *args: Value) -> list[Value]:
    return _inline(ctx, partial(threefry._threefry2x32_lowering, use_rolled_loops=False), eqn, *args)


def _iota_2x32_shape(ctx: Context, eqn) -> list[Value]:
    """The high and low words of a uint64 row-major iota over shape (high is 0 below 2**32 elements)."""
    shape = tuple(eqn.params["shape"])
    size = int(np.prod(shape, dtype=np.int64))
    if size > 2**32:
        raise ctx.fail(f"{size} random values (at most 2**32 are supported)")
    low = ctx.reshape(ctx.add("iota", shape=(size,), dtype=DType.u32, dimension=0), shape)
    high = ctx.broadcast(ctx.const(np.zeros((1,) * len(shape), np.uint32)), shape)
    return [high, low]


def _physical_shape(var) -> tuple[int, ...]:
    return tuple(core.physical_aval(var.aval).shape)


def _key_dims(eqn) -> int:
    """How many trailing dims a key's data adds (1: a threefry key is two words)."""
    return len(_physical_shape(eqn.invars[0])) - eqn.invars[0].aval.ndim


def _key_slice(ctx: Context, eqn, x: Value) -> list[Value]:
    rank, k = eqn.invars[0].aval.ndim, _key_dims(eqn)
    strides = tuple(eqn.params.get("strides") or (1,) * rank)
    return [ctx.add("slice", x, start=tuple(eqn.params["start_indices"]) + (0,) * k,
                    limit=tuple(eqn.params["limit_indices"]) + x.shape[rank:], strides=strides + (1,) * k)]


def _key_reshape(ctx: Context, eqn, x: Value, *dynamic: Value) -> list[Value]:
    if (eqn.primitive.name == "reshape" and eqn.params.get("dimensions") is not None) or dynamic:
        raise ctx.fail("a transposing or dynamic reshape of PRNG keys")
    return [ctx.reshape(x, _physical_shape(eqn.outvars[0]))]


def _key_broadcast_in_dim(ctx: Context, eqn, x: Value, *dynamic: Value) -> list[Value]:
    rank, shape = eqn.outvars[0].aval.ndim, _physical_shape(eqn.outvars[0])
    trailing = tuple(range(rank, len(shape)))
    if dynamic:
        raise ctx.fail("a dynamic broadcast of PRNG keys")
    return [ctx.add("broadcast_in_dim", x, shape=shape,
                    broadcast_dimensions=tuple(eqn.params["broadcast_dimensions"]) + trailing)]


def _key_transpose(ctx: Context, eqn, x: Value) -> list[Value]:
    rank = eqn.invars[0].aval.ndim
    return [ctx.transpose(x, tuple(eqn.params["permutation"]) + tuple(range(rank, x.rank)))]


# Structural primitives on key arrays: the same move on the key data, whose key dims trail.
KEY_DATA_RULES: dict[str, Rule] = {
    "slice": _key_slice, "squeeze": _key_reshape, "expand_dims": _key_reshape, "reshape": _key_reshape,
    "broadcast_in_dim": _key_broadcast_in_dim, "transpose": _key_transpose,
}


def key_data_rule(eqn) -> Rule | None:
    """The rule for a structural primitive applied to PRNG keys, if eqn is one (else the usual rule applies)."""
    if eqn.primitive.name not in KEY_DATA_RULES or not eqn.invars:
        return None
    return KEY_DATA_RULES[eqn.primitive.name] if is_key(getattr(eqn.invars[0], "aval", None)) else None


RULES: dict[str, Rule] = {
    "random_wrap": _key_data,
    "random_unwrap": _key_data,
    "random_seed": _seed,
    "random_split": _split,
    "random_fold_in": _fold_in,
    "random_bits": _bits,
    "threefry2x32": _threefry2x32,
    "iota_2x32_shape": _iota_2x32_shape,
}
