"""The table from IR op to the emitter that writes its code (JAX-style rules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.ir import Node


@dataclass
class EmitContext:
    """What an emitter may use besides its node.

    module: the llvmlite module being built (declare intrinsics here; names
            are deduplicated by module.get_global / ir.Function lookups).
    target: the compilation target (see compiler/targets.py): vector width
            in f32 lanes, triple, features.
    """

    module: ir.Module
    target: object


# An emitter fills in `fn`, whose arguments are the buffers of node.inputs
# followed by node.outputs (ptr each, 64-byte aligned, contiguous row-major);
# the function returns void. Outputs never alias inputs.
Emitter = Callable[[EmitContext, Node, ir.Function], None]

EMITTERS: dict[str, Emitter] = {}


def emitter(*ops: str) -> Callable[[Emitter], Emitter]:
    def register(fn: Emitter) -> Emitter:
        for op in ops:
            if op in EMITTERS:
                raise RuntimeError(f"two emitters for IR op {op!r}")
            EMITTERS[op] = fn
        return fn

    return register
