"""A digest of a traced jaxpr covering everything its lowering to IR reads, so the compile cache can be
keyed before lowering (and a hit never lowers).

Covered: every equation's primitive, parameters (nested jaxprs recursively, arrays by their bytes),
operands (variables by position, literals by value), result types and source location, and the
constants' dtypes, shapes and bytes. Callables in parameters (custom_jvp's jvp rule, custom_vjp's
fwd/bwd) are named by their type only: the lowering inlines the primal jaxpr and never calls them.
Anything else enters as repr(), so an object without a stable repr costs a cache miss, never a wrong hit.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import numpy as np
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal

from cerebro.frontends.jax.context import location


class _Digest:
    """A jaxpr's parts as text, each tagged and length-prefixed so none can run into the next, and the arrays'
    bytes in the same order in a hash of their own (their places are marked in the text); one hash update
    per small part cost more than the rest of the walk."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.arrays = hashlib.sha256()
        self.avals: dict[tuple, str] = {}

    def text(self, tag: str, value: str) -> None:
        self.parts.append(f"{tag}:{len(value)}:{value}")

    def array(self, value: Any) -> None:
        dtype = getattr(value, "dtype", None)
        if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.extended):  # a typed PRNG key
            self.text("key", str(dtype))
            value = jax.random.key_data(value)
        array = np.asarray(value)
        self.text("array", f"{array.dtype.name}{array.dtype.str}{array.shape}")
        self.arrays.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))

    def hexdigest(self) -> str:
        return hashlib.sha256("\0".join(self.parts).encode() + b"\0" + self.arrays.digest()).hexdigest()

    def jaxpr(self, jaxpr: Jaxpr, consts: list) -> None:
        names: dict[Any, int] = {}

        def define(var: Any) -> None:
            names[var] = len(names)
            self.aval(var.aval)

        def operand(atom: Any) -> None:
            if isinstance(atom, Literal):
                self.array(atom.val)
                self.aval(atom.aval)
            else:
                self.text("var", str(names[atom]))

        self.text("jaxpr", f"{len(jaxpr.constvars)},{len(jaxpr.invars)},{len(jaxpr.eqns)}")
        for var, const in zip(jaxpr.constvars, consts, strict=True):
            define(var)
            self.array(const)
        for var in jaxpr.invars:
            define(var)
        for eqn in jaxpr.eqns:
            self.text("eqn", eqn.primitive.name)
            self.text("loc", location(eqn.source_info))
            for atom in eqn.invars:
                operand(atom)
            for key in sorted(eqn.params):
                self.text("param", key)
                self.param(eqn.params[key])
            for var in eqn.outvars:
                define(var)
        for atom in jaxpr.outvars:
            operand(atom)

    def aval(self, aval: Any) -> None:
        key = (getattr(aval, "dtype", None), getattr(aval, "shape", None), getattr(aval, "weak_type", None))
        text = self.avals.get(key)
        if text is None:  # naming a dtype is slow, and a jaxpr repeats a few types many times
            text = self.avals[key] = f"{key[0]}{key[1]}{key[2]}"
        self.text("aval", text)

    def param(self, value: Any) -> None:
        if isinstance(value, ClosedJaxpr):
            self.jaxpr(value.jaxpr, list(value.consts))
        elif isinstance(value, Jaxpr):
            self.jaxpr(value, [])
        elif isinstance(value, (tuple, list)) and type(value) in (tuple, list):
            self.text("seq", f"{type(value).__name__}{len(value)}")
            for item in value:
                self.param(item)
        elif isinstance(value, dict):
            self.text("dict", str(len(value)))
            for key in sorted(value, key=repr):
                self.text("key", repr(key))
                self.param(value[key])
        elif isinstance(value, np.ndarray) or (hasattr(value, "__array__") and hasattr(value, "dtype")):
            self.array(value)
        elif callable(value) and not isinstance(value, type):
            self.text("callable", type(value).__qualname__)
        else:
            self.text("repr", f"{type(value).__qualname__}:{value!r}")


def jaxpr_digest(closed: ClosedJaxpr) -> str:
    """Hex SHA-256 of closed (its jaxpr, consts and every nested jaxpr) as the lowering reads it."""
    digest = _Digest()
    digest.jaxpr(closed.jaxpr, list(closed.consts))
    return digest.hexdigest()
