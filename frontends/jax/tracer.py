"""Trace a JAX/Flax function with jax.make_jaxpr and lower its jaxpr into a verified IR Graph."""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import numpy as np
from jax._src.core import physical_aval
from jax.extend.core import ClosedJaxpr, Jaxpr, Literal

from cerebro.compiler.cbx.tree import CallTree
from cerebro.compiler.ir import DType, Graph, Value, verify
from cerebro.compiler.ir.interpret import run_graph
from cerebro.frontends.jax import (
    half,
    rules_control,
    rules_elementwise,
    rules_gather,
    rules_math,
    rules_nn,
    rules_random,
    rules_scatter,
    rules_sort,
    rules_structural,
)
from cerebro.frontends.jax.calls import StaticArgs, call_tree
from cerebro.frontends.jax.context import Context, UnsupportedPrimitive, ir_dtype, location

RULES = {**rules_elementwise.RULES, **rules_structural.RULES, **rules_gather.RULES, **rules_nn.RULES,
         **rules_control.RULES, **rules_sort.RULES, **rules_scatter.RULES,
         **rules_math.RULES, **rules_random.RULES}

# Primitives that only wrap another jaxpr (jit, custom derivatives, remat): inlined.
_CALLS = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr", "custom_vjp_call_jaxpr": "fun_jaxpr",
          "checkpoint": "jaxpr", "remat": "jaxpr", "remat2": "jaxpr"}

NAME_LIMIT = 63


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: DType


@dataclass
class Traced:
    """A traced function: its IR graph and the pytree structure of its inputs and outputs.

    in_tree is the structure of (traced positional args, traced keyword args); call_tree the same
    (with the static values and the outputs) as the JSON a .cbx keeps."""

    graph: Graph
    in_tree: Any
    out_tree: Any
    input_specs: list[InputSpec]
    call_tree: CallTree
    static: StaticArgs = StaticArgs(frozenset(), frozenset())

    def flatten_inputs(self, *args: Any, **kwargs: Any) -> list[np.ndarray]:
        """The leaves of a call (static arguments left out) as the graph's inputs."""
        call = self.static.split(args, kwargs)
        leaves, tree = jax.tree_util.tree_flatten((call.args, call.kwargs))
        if tree != self.in_tree:
            raise ValueError(f"arguments have structure {tree}, the traced function takes {self.in_tree}")
        arrays = [np.asarray(rules_random.key_data(leaf)) for leaf in leaves]
        return [np.asarray(array, dtype=jax.dtypes.canonicalize_dtype(array.dtype)) for array in arrays]

    def unflatten_outputs(self, outputs: list[np.ndarray]) -> Any:
        return jax.tree_util.tree_unflatten(self.out_tree, outputs)

    def run_reference(self, *args: Any, **kwargs: Any) -> Any:
        """Evaluate the graph with the numpy interpreter on the same pytrees the function takes."""
        return self.unflatten_outputs(run_graph(self.graph, self.flatten_inputs(*args, **kwargs)))


def _sanitize(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9_.]", "_", text).strip("._") or "x"
    if len(text) > NAME_LIMIT:
        text = text[-NAME_LIMIT:].lstrip("._")
    return text


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            suffix = f"_{n}"
            candidate = name[: NAME_LIMIT - len(suffix)] + suffix
            n += 1
        seen.add(candidate)
        out.append(candidate)
    return out


def _key_text(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _arg_names(fn: Any, count: int) -> list[str]:
    """Parameter names of fn's positional arguments; `*xs` gives xs.0, xs.1, ..."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:count]
    rest = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), "arg")
    return names + [f"{rest}.{i}" for i in range(count - len(names))]


def input_names(arg_names: list[str], args: tuple, kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """Names from key paths, in JAX's order (args, then kwargs sorted by name): a dict argument
    contributes its keys only (`params.Dense_0.kernel`), any other argument starts with its
    parameter or keyword name (`x`, `xs.0`)."""
    kwargs = kwargs or {}
    labelled = [*zip(arg_names, args), *((key, kwargs[key]) for key in sorted(kwargs))]
    names = []
    for label, value in labelled:
        for path, _ in jax.tree_util.tree_flatten_with_path(value)[0]:
            parts = [_key_text(k) for k in path]
            if not (isinstance(value, Mapping) and parts):
                parts.insert(0, label)
            names.append(_sanitize(".".join(parts)))
    return _unique(names)


def output_names(out_shapes: Any) -> list[str]:
    flat = jax.tree_util.tree_flatten_with_path(out_shapes)[0]
    if len(flat) == 1 and not flat[0][0]:
        return ["output"]
    return _unique([_sanitize("output." + ".".join(_key_text(k) for k in path)) for path, _ in flat])


def _inner_jaxpr(ctx: Context, eqn) -> tuple[Jaxpr, list]:
    found = eqn.params.get(_CALLS[eqn.primitive.name])
    if found is None:
        found = next((v for v in eqn.params.values() if isinstance(v, (ClosedJaxpr, Jaxpr))), None)
    if isinstance(found, ClosedJaxpr):
        return found.jaxpr, list(found.consts)
    if isinstance(found, Jaxpr):
        return found, []
    raise ctx.fail("no inner jaxpr to inline")


def _const_site(ctx: Context, jaxpr: Jaxpr, var: Any) -> str:
    """Where a closed-over constant is used: the first equation that reads it."""
    used = next((location(e.source_info) for e in jaxpr.eqns if any(v is var for v in e.invars)), "")
    return f"{used or ctx.where} (a constant the function closes over)"


def _lower_jaxpr(ctx: Context, jaxpr: Jaxpr, consts: list, args: list[Value], call_site: str = "") -> list[Value]:
    """Lower jaxpr's equations; an inlined jaxpr with no user frame of its own takes its call site's location."""
    env: dict[Any, Value] = {}

    def read(atom: Any) -> Value:
        if isinstance(atom, Literal):
            return ctx.const(np.asarray(atom.val), ir_dtype(atom.aval.dtype, ctx.where))
        return env[atom]

    for var, const in zip(jaxpr.constvars, consts):
        env[var] = ctx.const(np.asarray(const), ir_dtype(var.aval.dtype, partial(_const_site, ctx, jaxpr, var)))
    for var, value in zip(jaxpr.invars, args):
        env[var] = value
    for eqn in jaxpr.eqns:
        ctx.loc = location(eqn.source_info) or call_site
        ctx.primitive = eqn.primitive.name
        inputs = [read(v) for v in eqn.invars]
        if eqn.primitive.name in _CALLS:
            inner, inner_consts = _inner_jaxpr(ctx, eqn)
            here = ctx.loc
            outputs = _lower_jaxpr(ctx, inner, inner_consts, inputs[len(inputs) - len(inner.invars):], here)
        elif eqn.primitive.name in RULES:
            for var in eqn.outvars:
                ctx.dtype(physical_aval(var.aval).dtype)
            rule = rules_random.key_data_rule(eqn) or RULES[eqn.primitive.name]
            if half.computes_on_half(eqn, inputs):
                outputs = half.lower_in_f32(ctx, eqn, rule, inputs)
            else:
                outputs = rule(ctx, eqn, *inputs)
        else:
            raise ctx.fail("no lowering rule")
        for var, value in zip(eqn.outvars, outputs):
            aval = physical_aval(var.aval)  # a PRNG key is its key data
            expected = (tuple(aval.shape), ir_dtype(aval.dtype, ctx.where))
            if (value.shape, value.dtype) != expected:
                raise AssertionError(f"rule for '{eqn.primitive.name}' at {ctx.where} produced "
                                     f"{value.shape}/{value.dtype.name}, JAX says {expected}")
            env[var] = value
    return [read(v) for v in jaxpr.outvars]


@dataclass
class Captured:
    """A function as jax.make_jaxpr saw it, before lowering: enough to key the compile cache
    (fingerprint) and to call or export the result (the trees), so a cache hit never lowers."""

    name: str
    jaxpr: ClosedJaxpr
    input_specs: list[InputSpec]
    output_names: list[str]
    in_tree: Any
    out_tree: Any
    call_tree: CallTree
    static: StaticArgs

    def fingerprint(self) -> str:
        """Hex digest of everything lower() makes the graph from (names, types, jaxpr, constants)."""
        from cerebro.frontends.jax.fingerprint import jaxpr_digest

        head = repr((jax.__version__, self.name, [(s.name, s.shape, s.dtype.name) for s in self.input_specs],
                     self.output_names))
        return hashlib.sha256(f"{head}\0{jaxpr_digest(self.jaxpr)}".encode()).hexdigest()


def capture(fn: Any, *example_args: Any, name: str | None = None, kwargs: Mapping[str, Any] | None = None,
            static: StaticArgs | None = None) -> Captured:
    """jax.make_jaxpr of fn(*example_args, **kwargs), with the names and trees trace() gives the graph."""
    static = static or StaticArgs(frozenset(), frozenset())
    call = static.split(example_args, kwargs or {})
    closed, out_shapes = jax.make_jaxpr(call.bind(fn), return_shape=True)(call.args, call.kwargs)
    arg_names = _arg_names(fn, len(example_args))
    leaf_names = input_names([arg_names[i] for i in call.positions], call.args, call.kwargs)
    avals = [physical_aval(var.aval) for var in closed.jaxpr.invars]  # a typed key array is its key data
    specs = [InputSpec(leaf_name, tuple(int(d) for d in aval.shape), ir_dtype(aval.dtype, f"input {leaf_name}"))
             for leaf_name, aval in zip(leaf_names, avals)]
    keys = [out for out, var in zip(output_names(out_shapes), closed.jaxpr.outvars) if rules_random.is_key(var.aval)]
    if keys:
        raise UnsupportedPrimitive(f"output {keys[0]} is an array of typed PRNG keys; return its "
                                   "jax.random.key_data(...) instead")
    return Captured(_sanitize(name or getattr(fn, "__name__", "model")), closed, specs, output_names(out_shapes),
                    jax.tree_util.tree_structure((call.args, call.kwargs)), jax.tree_util.tree_structure(out_shapes),
                    call_tree(arg_names, call, out_shapes), static)


def lower(captured: Captured) -> Traced:
    """Lower a captured jaxpr into a verified IR graph."""
    graph = Graph(captured.name)
    for spec in captured.input_specs:
        graph.add_input(spec.shape, spec.dtype, spec.name)
    ctx = Context(graph, lambda ctx, jaxpr, consts, args: _lower_jaxpr(ctx, jaxpr, consts, args, ctx.loc))
    closed = captured.jaxpr
    outputs = _lower_jaxpr(ctx, closed.jaxpr, list(closed.consts), list(graph.inputs))
    graph.set_outputs(outputs, captured.output_names)
    verify(graph)
    return Traced(graph, captured.in_tree, captured.out_tree, captured.input_specs, captured.call_tree,
                  captured.static)


def trace(fn: Any, *example_args: Any, name: str | None = None, kwargs: Mapping[str, Any] | None = None,
          static: StaticArgs | None = None) -> Traced:
    """Trace fn(*example_args, **kwargs) (pytrees of arrays) into a verified IR graph.

    Inputs are the flattened leaves in pytree order, named from their key paths; static
    arguments (as jax.jit's static_argnums/static_argnames) and closed-over arrays become
    constants. Raises UnsupportedPrimitive naming the primitive and the user's source line
    for anything the IR cannot express.
    """
    return lower(capture(fn, *example_args, name=name, kwargs=kwargs, static=static))
