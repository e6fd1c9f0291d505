"""Constant folding: a transpose/convert of a weight, or batch norm's scale from its variance, is
computed once, at compile time.

Only ops whose numpy spelling is exactly the IR's semantics are folded (layout
ops, and IEEE-exact float arithmetic: + - * / sqrt), and only
when the result is not much larger than its inputs (a broadcast of a scalar to a
big shape stays a cheap kernel instead of bloating the weights).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import Graph, Node

_SMALL = 64 * 1024  # results up to this many bytes fold even if they grow


def _broadcast_in_dim(node: Node, x: np.ndarray) -> np.ndarray:
    shape = tuple(node.attrs["shape"])
    expanded = [1] * len(shape)
    for axis, dim in enumerate(node.attrs["broadcast_dimensions"]):
        expanded[dim] = x.shape[axis]
    return np.broadcast_to(x.reshape(expanded), shape)


def _slice(node: Node, x: np.ndarray) -> np.ndarray:
    strides = node.attrs.get("strides") or (1,) * x.ndim
    return x[tuple(slice(s, e, st) for s, e, st in zip(node.attrs["start"], node.attrs["limit"], strides))]


def _pad(node: Node, x: np.ndarray) -> np.ndarray:
    """lax.pad semantics: interior padding, then lo/hi that may be negative (cropping)."""
    interior = node.attrs.get("interior") or (0,) * x.ndim
    grown = [d + max(d - 1, 0) * k + max(lo, 0) + max(hi, 0)
             for d, k, lo, hi in zip(x.shape, interior, node.attrs["lo"], node.attrs["hi"])]
    out = np.full(grown, node.attrs["value"], dtype=x.dtype)
    out[tuple(slice(max(lo, 0), max(lo, 0) + max(d + max(d - 1, 0) * k, 0), k + 1)
              for d, k, lo in zip(x.shape, interior, node.attrs["lo"]))] = x
    crop = zip(grown, node.attrs["lo"], node.attrs["hi"])
    return out[tuple(slice(-min(lo, 0), g + min(hi, 0)) for g, lo, hi in crop)]


def _convert(node: Node, x: np.ndarray) -> np.ndarray | None:
    dtype = node.attrs["dtype"]
    if x.dtype.kind == "f" and not dtype.is_float:
        return None  # float -> int saturates in generated code; numpy's cast does not
    return x != 0 if dtype.name == "bool" else x.astype(dtype.numpy)


def _iota(node: Node) -> np.ndarray:
    shape, axis = tuple(node.attrs["shape"]), node.attrs["dimension"]
    line = np.arange(shape[axis]).astype(node.attrs["dtype"].numpy)
    return np.broadcast_to(line.reshape([-1 if i == axis else 1 for i in range(len(shape))]), shape)


def _float_only(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray | None]:
    """IEEE-exact float ops, where numpy computes exactly what the generated code does."""

    def fold(node: Node, *xs: np.ndarray) -> np.ndarray | None:
        if xs[0].dtype.kind != "f":
            return None
        with np.errstate(all="ignore"):
            return fn(*xs)

    return fold


FOLDERS: dict[str, Callable[..., np.ndarray | None]] = {
    "add": _float_only(np.add),
    "sub": _float_only(np.subtract),
    "mul": _float_only(np.multiply),
    "div": _float_only(np.divide),
    "neg": _float_only(np.negative),
    "abs": _float_only(np.abs),
    "sqrt": _float_only(np.sqrt),
    "rsqrt": _float_only(lambda x: np.divide(x.dtype.type(1), np.sqrt(x))),
    "reciprocal": _float_only(lambda x: np.divide(x.dtype.type(1), x)),
    "reshape": lambda node, x: x.reshape(node.attrs["shape"]),
    "transpose": lambda node, x: x.transpose(node.attrs["perm"]),
    "broadcast_in_dim": _broadcast_in_dim,
    "slice": _slice,
    "rev": lambda node, x: np.flip(x, tuple(node.attrs["dims"])),
    "concatenate": lambda node, *xs: np.concatenate(xs, axis=node.attrs["axis"]),
    "pad": _pad,
    "convert": _convert,
    "iota": _iota,
}


def fold_constants(graph: Graph) -> Graph:
    """Replace foldable nodes whose inputs are all constants by constants (in place); returns graph."""
    kept = []
    for node in graph.nodes:
        folder = FOLDERS.get(node.op)
        result = None
        if folder is not None and all(v.is_const for v in node.inputs):
            (out,) = node.outputs
            if out.nbytes <= max(sum(v.nbytes for v in node.inputs), _SMALL):
                result = folder(node, *(v.data for v in node.inputs))
        if result is None:
            kept.append(node)
            continue
        (out,) = node.outputs
        out.data = np.ascontiguousarray(np.asarray(result).astype(out.dtype.numpy).reshape(out.shape))
        out.producer = None
    graph.nodes = kept
    return graph
