"""A call's arguments as jax.jit sees them: static values apart, the rest traced pytrees.

StaticArgs resolves static_argnums/static_argnames as jax.jit does (when only one of them is
given, the other follows from the signature: an argnum of a named parameter also makes that
name static when passed by keyword, and the other way round);
describe() turns a pytree into the JSON node of compiler/cbx/tree.py, which the loader
reads without JAX.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jax

from cerebro.compiler.cbx.tree import LEAF, CallTree

_KEY_KINDS = {jax.tree_util.DictKey: "dict", jax.tree_util.GetAttrKey: "dict",
              jax.tree_util.SequenceKey: "tuple", jax.tree_util.FlattenedIndexKey: "tuple"}
_EXACT = {tuple: "tuple", list: "list", dict: "dict"}


@dataclass(frozen=True)
class Call:
    """One call split apart: the traced arguments and the static ones (hashable, by position or name)."""

    args: tuple  # the positional arguments that are traced
    kwargs: dict[str, Any]  # the keyword arguments that are traced
    positions: tuple[int, ...]  # where each of args sits in the full call
    static_args: dict[int, Any]
    static_kwargs: dict[str, Any]

    @property
    def key(self) -> tuple:
        """The static part of a compile-cache key."""
        return tuple(sorted(self.static_args.items())), tuple(sorted(self.static_kwargs.items()))

    def bind(self, fn: Callable) -> Callable:
        """fn as a function of (args, kwargs) of the traced arguments only."""
        def traced(args: tuple, kwargs: dict) -> Any:
            full = dict(self.static_args)
            full.update(zip(self.positions, args))
            return fn(*(full[i] for i in range(len(full))), **self.static_kwargs, **kwargs)

        return traced


@dataclass(frozen=True)
class StaticArgs:
    argnums: frozenset[int]
    argnames: frozenset[str]

    @classmethod
    def of(cls, fn: Callable, argnums: int | Iterable[int] | None = None,
           argnames: str | Iterable[str] | None = None) -> StaticArgs:
        nums = {argnums} if isinstance(argnums, int) else set(argnums or ())
        names = {argnames} if isinstance(argnames, str) else set(argnames or ())
        if not all(isinstance(n, int) for n in nums) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"static_argnums must be ints and static_argnames strings, got {argnums!r}, "
                            f"{argnames!r}")
        params = _positional_names(fn)
        if argnames is None:
            names = {params[n] for n in nums if -len(params) <= n < len(params)}
        if argnums is None:
            nums = {i for i, name in enumerate(params) if name in names}
        return cls(frozenset(nums), frozenset(names))

    def split(self, args: tuple, kwargs: Mapping[str, Any]) -> Call:
        """args and kwargs apart; ValueError if a static value is not hashable (it keys the compile cache)."""
        static_positions = {n % len(args) for n in self.argnums if -len(args) <= n < len(args)}
        positions = tuple(i for i in range(len(args)) if i not in static_positions)
        call = Call(tuple(args[i] for i in positions), {k: v for k, v in kwargs.items() if k not in self.argnames},
                    positions, {i: args[i] for i in sorted(static_positions)},
                    {k: v for k, v in kwargs.items() if k in self.argnames})
        for where, value in [*call.static_args.items(), *call.static_kwargs.items()]:
            try:
                hash(value)
            except TypeError:
                raise ValueError(f"static argument {where!r} must be hashable (it selects the compiled "
                                 f"function), got {type(value).__name__} {value!r}"[:300]) from None
        return call


def _positional_names(fn: Callable) -> list[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def describe(tree: Any) -> Any:
    """The JSON node for tree (see compiler/cbx/tree.py); containers of other types name their type."""
    if tree is None:
        return None
    children = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda node: node is not tree)[0]
    if len(children) == 1 and children[0][0] == ():
        return LEAF
    kind = _EXACT.get(type(tree)) or (_KEY_KINDS.get(type(children[0][0][0]), "tuple") if children else "tuple")
    nodes = [describe(child) for _, child in children]
    if kind == "dict":
        node: dict[str, Any] = {"dict": [[_key(path[0]), child] for (path, _), child in zip(children, nodes)]}
    else:
        node = {kind: nodes}
    if type(tree) not in _EXACT:
        node["type"] = type(tree).__name__
    return node


def _key(key: Any) -> str | int:
    value = getattr(key, "key", None)
    if value is None:
        value = getattr(key, "name", None)
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else str(value)


def call_tree(names: list[str], call: Call, out_shapes: Any) -> CallTree:
    """The .cerebro.tree description of a call returning out_shapes; names: every positional parameter's."""
    args = [(names[i], {"static": repr(call.static_args[i])} if i in call.static_args else None)
            for i in range(len(names))]
    for position, value in zip(call.positions, call.args):
        args[position] = (names[position], describe(value))
    kwargs = {**{k: {"static": repr(v)} for k, v in call.static_kwargs.items()},
              **{k: describe(v) for k, v in call.kwargs.items()}}
    return CallTree(args, sorted(kwargs.items()), describe(out_shapes))
