"""Epilogue hosts (passes/epilogue.py): the nodes an elementwise chain may run inside, which of their inputs
are the op's own operands, and how many columns their output rows have: the one answer the pass, the
verifier, the reference and codegen share.

A matmul or conv runs the chain on each tile it stores; a matmul_integer with [N, K] weights on each band of
i32 rows; a concatenation on each input's rows as it copies them, at their columns of the output (DenseNet's
batch norm and ReLU after every concatenation: one pass over the features instead of two).
"""

from __future__ import annotations

import math

from cerebro.compiler.ir.graph import Node
from cerebro.compiler.ir.matmul_view import matmul_view
from cerebro.compiler.ir.ops import EPILOGUE_HOSTS, OPS, Role, role_of


def integer_host(node: Node) -> bool:
    """A matmul_integer with b as [N, K] (constant weights): its kernel runs an epilogue on each finished
    row of i32 sums, from a scratch row, so the epilogue may change the dtype (dequantize, requantize)."""
    return node.op == "matmul_integer" and bool(node.attrs.get("transpose_b"))


def concat_host(node: Node) -> bool:
    """A concatenation each of whose inputs gives every output row a run of more than one element (one
    element per row from each is a channel shuffle's interleaving: codegen moves those as vectors)."""
    if node.op != "concatenate":
        return False
    axis = node.attrs["axis"]
    return all(math.prod(x.shape[axis:]) > 1 for x in node.inputs[:operand_count(node)])


def hosts_epilogue(node: Node) -> bool:
    return role_of(node.op) in EPILOGUE_HOSTS or integer_host(node) or concat_host(node)


def operand_count(node: Node) -> int:
    """How many of node's inputs are its op's operands: the values an epilogue loads follow them (a
    concatenation's count is not fixed: its epilogue's load slots say where its inputs end)."""
    arity = OPS[node.op].arity
    if arity is not None:
        return arity
    epilogue = node.attrs.get("epilogue")
    return len(node.inputs) - len({slot for _, slot, _, _ in epilogue.loads}) if epilogue else len(node.inputs)


def epilogue_columns(node: Node) -> int:
    """The columns of the rows an epilogue's loads walk: a matmul's, a conv's output channels, a
    matmul_integer's N, a concatenation's output dims from its axis on."""
    if node.op == "concatenate":
        return math.prod(node.outputs[0].shape[node.attrs["axis"]:])
    if role_of(node.op) is Role.MATMUL:
        return matmul_view(node).columns
    return node.inputs[1].shape[-2 if integer_host(node) else -1]
