"""The table from IR op to the emitter that writes its code (JAX-style rules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from llvmlite import ir

from cerebro.compiler.ir import Node
from cerebro.compiler.ir.loop import Layout


@dataclass
class EmitContext:
    """What an emitter may use besides its node.

    module: the llvmlite module being built (declare intrinsics here; names
            are deduplicated by module.get_global / ir.Function lookups).
    target: the compilation target (see compiler/targets.py): vector width
            in f32 lanes, triple, features.
    loops:  the scratch Layout of each prepared loop node, by id(node) (passes/loops.loop_layouts): a
            loop emitter lays out its step's memory from it.
    """

    module: ir.Module
    target: object
    loops: dict[int, Layout] = field(default_factory=dict)


# An emitter fills in `fn`, whose arguments are the buffers of node.inputs
# followed by node.outputs (ptr each, 64-byte aligned, contiguous row-major);
# the function returns void. Outputs never alias inputs. A parallel emitter's
# function has two more, trailing i32 arguments (part, parts): it computes only
# part's share of the output elements (codegen/partition.py). Without them
# (a test calling the emitter directly) it computes everything.
Emitter = Callable[[EmitContext, Node, ir.Function], None]
# How many units of work a parallel emitter's node shares among `parts` parts (target, parts): part p
# of P computes units [U*p/P, U*(p+1)/P) of U. The stage planner (driver.py) uses it to cut a big node
# into slices that fit a stage, and to say how big the biggest slice is.
UnitsRule = Callable[[Node, object, int], int]



@dataclass(frozen=True)
class SizeRules:
    """Sizes a node function takes as trailing i64 arguments instead of constants, so that nodes differing
    only in them share one function (codegen/module.py passes them, codegen/kernel_key.py leaves them out
    of the key). The two rules must agree, so an emitter registers them together.

    arguments(node): the sizes, in the order the emitter reads them from its function's last arguments.
    shapes(node, target): (value id -> shape with the argument sizes as None, the choices the emitter
             makes from those sizes at compile time for target, attr name -> its key where the attr holds
             such a size), or None where this node takes every size as a constant."""

    arguments: Callable[[Node], list[int]]
    shapes: Callable[[Node, object], tuple[dict[int, tuple], tuple, dict[str, object]] | None]


EMITTERS: dict[str, Emitter] = {}
PARALLEL: set[str] = set()  # ops whose emitters split their output among the parts of a call
UNITS: dict[str, UnitsRule] = {}
SIZES: dict[str, SizeRules] = {}


def emitter(*ops: str, units: UnitsRule | None = None) -> Callable[[Emitter], Emitter]:
    """Register fn as the emitter of ops; with `units`, the ops are parallel (see UnitsRule)."""
    def register(fn: Emitter) -> Emitter:
        for op in ops:
            if op in EMITTERS:
                raise RuntimeError(f"two emitters for IR op {op!r}")
            EMITTERS[op] = fn
            if units is not None:
                PARALLEL.add(op)
                UNITS[op] = units
        return fn

    return register


def sizes_as_arguments(rules: SizeRules, *ops: str) -> None:
    """Register the SizeRules of ops' functions (their emitters read the arguments)."""
    for op in ops:
        if op in SIZES:
            raise RuntimeError(f"two size rules for IR op {op!r}")
        SIZES[op] = rules


def unsupported(node: Node, what: str) -> NotImplementedError:
    """The error an emitter raises for a node it has no code for (the caller raises it)."""
    return NotImplementedError(f"{node.where()}: {what} is not supported by the code generator")
