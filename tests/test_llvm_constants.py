"""llvm_types.constant and splat: vector constants are made once and printed short (zeroinitializer for all
zeros), and mean what llvmlite's long form means: LLVM parses both to the same module."""

from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir

from cerebro.compiler.codegen.llvm_types import constant, splat

F32 = ir.FloatType()


def _module(make) -> str:
    """A module of one function returning make(builder, x) for a float argument x, as text."""
    module = ir.Module()
    fn = ir.Function(module, ir.FunctionType(ir.VectorType(F32, 16), [F32]), "f")
    builder = ir.IRBuilder(fn.append_basic_block())
    builder.ret(make(builder, fn.args[0]))
    return str(module)


def _long_splat(builder: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """splat as it was before: llvmlite's own constants, every lane spelled."""
    vector = builder.insert_element(ir.Constant(ir.VectorType(F32, 16), None), x, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), 16), [0] * 16)
    return builder.shuffle_vector(vector, ir.Constant(vector.type, None), mask)


def _parsed(text: str) -> str:
    module = llvm.parse_assembly(text)
    module.verify()
    return str(module)


def test_zero_vectors_print_short_and_parse_as_the_long_form() -> None:
    short = _module(lambda b, x: b.fadd(splat(b, x, 16), constant(F32, 0.0, 16)))
    long = _module(lambda b, x: b.fadd(_long_splat(b, x), ir.Constant(ir.VectorType(F32, 16), [0.0] * 16)))
    assert "float 0.0," not in short and "i32 0," not in short
    assert "float 0.0," in long
    assert _parsed(short) == _parsed(long)


def test_negative_zero_and_other_values_keep_their_lanes() -> None:
    for value in (-0.0, 1.5):
        made = _module(lambda b, x, v=value: b.fadd(splat(b, x, 16), constant(F32, v, 16)))
        full = _module(lambda b, x, v=value: b.fadd(splat(b, x, 16), ir.Constant(ir.VectorType(F32, 16), [v] * 16)))
        assert "zeroinitializer, %" not in made.split("fadd")[1]
        assert _parsed(made) == _parsed(full)


def test_constants_are_made_once() -> None:
    assert constant(F32, 2.0, 16) is constant(F32, 2.0, 16)
    assert constant(F32, 0.0, 16) is not constant(F32, -0.0, 16)
    assert constant(ir.IntType(32), 0, 8) is not constant(ir.IntType(32), 0, 16)
