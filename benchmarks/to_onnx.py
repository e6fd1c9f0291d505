"""A jaxpr -> ONNX exporter for the benchmark models, so ONNX Runtime runs the exact Flax weights.

jax2tf's non-native path plus tf2onnx does not work with the pinned onnx/TF versions, and
the models only use a dozen primitives, so each primitive gets one rule below (a dict, not
an if-chain). Closed-over weights become initializers (constants), like in the other two
backends. An unknown primitive raises with its name; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import onnx
from jax.extend import core as jcore
from onnx import helper, numpy_helper

OPSET = 18


class Builder:
    """Accumulates ONNX nodes and initializers with fresh names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, dtype: Any = None) -> str:
        array = np.asarray(value, dtype=dtype)
        name = self.fresh("c")
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, *inputs: str, **attrs: Any) -> str:
        out = self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attrs))
        return out


Rule = Callable[[Builder, Any, list[str]], str]


def _shape(var: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in var.aval.shape)


def _reshape(b: Builder, x: str, shape: tuple[int, ...]) -> str:
    return b.node("Reshape", x, b.const(np.array(shape, np.int64)))


def _to_out_shape(b: Builder, eqn: Any, ins: list[str]) -> str:
    return _reshape(b, ins[0], _shape(eqn.outvars[0]))


def _simple(op: str) -> Rule:
    return lambda b, eqn, ins: b.node(op, *ins)


def _rsqrt(b: Builder, eqn: Any, ins: list[str]) -> str:
    return b.node("Reciprocal", b.node("Sqrt", ins[0]))


def _square(b: Builder, eqn: Any, ins: list[str]) -> str:
    return b.node("Mul", ins[0], ins[0])


def _integer_pow(b: Builder, eqn: Any, ins: list[str]) -> str:
    y = eqn.params["y"]
    if y == 2:
        return b.node("Mul", ins[0], ins[0])
    return b.node("Pow", ins[0], b.const(y, eqn.invars[0].aval.dtype))


def _convert(b: Builder, eqn: Any, ins: list[str]) -> str:
    to = helper.np_dtype_to_tensor_dtype(np.dtype(eqn.params["new_dtype"]))
    return b.node("Cast", ins[0], to=to)


def _reduce(op: str) -> Rule:
    def rule(b: Builder, eqn: Any, ins: list[str]) -> str:
        axes = b.const(np.array(eqn.params["axes"], np.int64))
        return b.node(op, ins[0], axes, keepdims=0)

    return rule


def _broadcast_in_dim(b: Builder, eqn: Any, ins: list[str]) -> str:
    shape = tuple(eqn.params["shape"])
    source = _shape(eqn.invars[0])
    aligned = [1] * len(shape)
    for src_axis, out_axis in enumerate(eqn.params["broadcast_dimensions"]):
        aligned[out_axis] = source[src_axis]
    x = _reshape(b, ins[0], tuple(aligned))
    if tuple(aligned) == shape:
        return x
    return b.node("Expand", x, b.const(np.array(shape, np.int64)))


def _transpose(b: Builder, eqn: Any, ins: list[str]) -> str:
    return b.node("Transpose", ins[0], perm=list(eqn.params["permutation"]))


def _dot_general(b: Builder, eqn: Any, ins: list[str]) -> str:
    """Any dot_general as Transpose/Reshape around one (batched) MatMul."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    ls, rs = _shape(eqn.invars[0]), _shape(eqn.invars[1])
    lfree = [d for d in range(len(ls)) if d not in lc and d not in lb]
    rfree = [d for d in range(len(rs)) if d not in rc and d not in rb]
    batch = [ls[d] for d in lb]
    k = int(np.prod([ls[d] for d in lc]))
    m = int(np.prod([ls[d] for d in lfree]))
    n = int(np.prod([rs[d] for d in rfree]))
    lhs = _permute_reshape(b, ins[0], [*lb, *lfree, *lc], (*batch, m, k))
    rhs = _permute_reshape(b, ins[1], [*rb, *rc, *rfree], (*batch, k, n))
    product = b.node("MatMul", lhs, rhs)
    return _reshape(b, product, _shape(eqn.outvars[0]))


def _permute_reshape(b: Builder, x: str, perm: list[int], shape: tuple[int, ...]) -> str:
    if perm != sorted(perm):
        x = b.node("Transpose", x, perm=perm)
    return _reshape(b, x, shape)


def _conv(b: Builder, eqn: Any, ins: list[str]) -> str:
    """conv_general_dilated via NCHW/OIHW transposes around ONNX Conv."""
    p = eqn.params
    lhs_spec, rhs_spec, out_spec = p["dimension_numbers"]
    if any(d != 1 for d in p["lhs_dilation"]) or p["batch_group_count"] != 1:
        raise NotImplementedError("to_onnx: conv_general_dilated with lhs_dilation or batch_group_count")
    x = b.node("Transpose", ins[0], perm=list(lhs_spec))
    w = b.node("Transpose", ins[1], perm=list(rhs_spec))
    pads = [lo for lo, _ in p["padding"]] + [hi for _, hi in p["padding"]]
    y = b.node(
        "Conv",
        x,
        w,
        strides=list(p["window_strides"]),
        pads=pads,
        dilations=list(p["rhs_dilation"]),
        group=p["feature_group_count"],
    )
    return b.node("Transpose", y, perm=[int(i) for i in np.argsort(out_spec)])


def _max_pool(b: Builder, eqn: Any, ins: list[str]) -> str:
    """reduce_window_max as MaxPool: untouched axes go first (as N, C), windowed axes after."""
    p = eqn.params
    window, strides, padding = p["window_dimensions"], p["window_strides"], p["padding"]
    if any(d != 1 for d in (*p["base_dilation"], *p["window_dilation"])):
        raise NotImplementedError("to_onnx: reduce_window_max with dilation")
    plain = [a for a in range(len(window)) if window[a] == 1 and strides[a] == 1 and tuple(padding[a]) == (0, 0)]
    if len(plain) < 2:
        raise NotImplementedError("to_onnx: reduce_window_max needs two unpooled axes (batch, channels)")
    order = plain[:2] + [a for a in range(len(window)) if a not in plain[:2]]
    spatial = order[2:]
    x = b.node("Transpose", ins[0], perm=order)
    y = b.node(
        "MaxPool",
        x,
        kernel_shape=[window[a] for a in spatial],
        strides=[strides[a] for a in spatial],
        pads=[padding[a][0] for a in spatial] + [padding[a][1] for a in spatial],
    )
    return b.node("Transpose", y, perm=[int(i) for i in np.argsort(order)])


def _select_n(b: Builder, eqn: Any, ins: list[str]) -> str:
    if len(ins) != 3:
        raise NotImplementedError("to_onnx: select_n with more than two cases")
    pred = ins[0]
    if eqn.invars[0].aval.dtype != np.bool_:
        pred = b.node("Cast", pred, to=onnx.TensorProto.BOOL)
    return b.node("Where", pred, ins[2], ins[1])


RULES: dict[str, Rule] = {
    "add": _simple("Add"),
    "sub": _simple("Sub"),
    "mul": _simple("Mul"),
    "div": _simple("Div"),
    "max": _simple("Max"),
    "min": _simple("Min"),
    "pow": _simple("Pow"),
    "neg": _simple("Neg"),
    "exp": _simple("Exp"),
    "log": _simple("Log"),
    "tanh": _simple("Tanh"),
    "erf": _simple("Erf"),
    "abs": _simple("Abs"),
    "sqrt": _simple("Sqrt"),
    "logistic": _simple("Sigmoid"),
    "stop_gradient": _simple("Identity"),
    "copy": _simple("Identity"),
    "copy_p": _simple("Identity"),
    "rsqrt": _rsqrt,
    "square": _square,
    "integer_pow": _integer_pow,
    "convert_element_type": _convert,
    "reduce_sum": _reduce("ReduceSum"),
    "reduce_max": _reduce("ReduceMax"),
    "reduce_min": _reduce("ReduceMin"),
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _to_out_shape,
    "squeeze": _to_out_shape,
    "expand_dims": _to_out_shape,
    "transpose": _transpose,
    "dot_general": _dot_general,
    "conv_general_dilated": _conv,
    "reduce_window_max": _max_pool,
    "select_n": _select_n,
}
# Call-like primitives whose body is inlined; the value names the param holding the body.
INLINED = {
    "pjit": "jaxpr",
    "jit": "jaxpr",
    "closed_call": "call_jaxpr",
    "custom_jvp_call": "call_jaxpr",
    "custom_vjp_call": "call_jaxpr",
    "remat": "jaxpr",
    "checkpoint": "jaxpr",
}


def _emit(b: Builder, jaxpr: Any, consts: list[Any], args: list[str]) -> list[str]:
    env: dict[Any, str] = {}
    for var, value in zip(jaxpr.constvars, consts):
        env[var] = b.const(np.asarray(value))
    for var, name in zip(jaxpr.invars, args):
        env[var] = name

    def read(atom: Any) -> str:
        if isinstance(atom, jcore.Literal):
            return b.const(np.asarray(atom.val, dtype=atom.aval.dtype))
        return env[atom]

    for eqn in jaxpr.eqns:
        ins = [read(v) for v in eqn.invars]
        prim = eqn.primitive.name
        if prim in INLINED:
            body = eqn.params[INLINED[prim]]
            inner, inner_consts = (body.jaxpr, body.consts) if hasattr(body, "consts") else (body, [])
            outs = _emit(b, inner, inner_consts, ins)
        elif prim in RULES:
            outs = [RULES[prim](b, eqn, ins)]
        else:
            where = eqn.source_info.name_stack if hasattr(eqn.source_info, "name_stack") else ""
            raise NotImplementedError(f"to_onnx: no rule for JAX primitive '{prim}' (at {where})")
        for var, name in zip(eqn.outvars, outs):
            env[var] = name
    return [read(v) for v in jaxpr.outvars]


def export(fn: Callable, inputs: tuple[np.ndarray, ...], name: str = "model") -> onnx.ModelProto:
    """ONNX model computing fn(*inputs) (inputs named x0, x1, ...), closed-over weights as initializers."""
    closed = jax.make_jaxpr(fn)(*inputs)
    b = Builder()
    names = [f"x{i}" for i in range(len(inputs))]
    outputs = _emit(b, closed.jaxpr, closed.consts, names)
    graph_outputs = []
    for i, (var, out) in enumerate(zip(closed.jaxpr.outvars, outputs)):
        final = f"y{i}"
        b.nodes.append(helper.make_node("Identity", [out], [final]))
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(var.aval.dtype))
        graph_outputs.append(helper.make_tensor_value_info(final, elem, _shape(var)))
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
        for n, a in zip(names, inputs)
    ]
    graph = helper.make_graph(b.nodes, name, graph_inputs, graph_outputs, b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="cerebro-bench")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model
