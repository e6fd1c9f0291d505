"""The compute kernels (matmul, conv, reductions, reduce_window, take) against numpy and jax.lax.

Each case builds a one-node graph, emits only that node's function with its
EMITTERS entry, optimises it at O3 for the host and runs it through MCJIT
on numpy buffers: this isolates the kernel from the driver and lets the
tests pick the vector width and register tile, so the code shapes of SSE,
NEON, AVX2 and AVX-512 (up to the host's width) all run on the CI host.
The assembly tests compile for x86_64(-v3) and aarch64 without running;
the last tests go through cerebro.compiler.build and the C runtime.

Tolerances, for f32 sums of n products (matmul, conv): two different
summation orders each err by at most about n*eps*sum|a*b|, so outputs must
agree within 2*n*eps*sum|a*b| elementwise (a bound, not a guess; f32 has
no better promise). Blocked reductions are held to 16 eps relative on 2^20
positive values, where a straight running sum is ~100 eps off.
"""

from __future__ import annotations

import ctypes
import dataclasses
import re

import jax
import jax.numpy as jnp
import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax import lax
from llvmlite import ir
from native import aarch64_runner

import cerebro.compiler.codegen  # noqa: F401  (registers every emitter)
from cerebro.compiler.codegen.registry import EMITTERS, EmitContext
from cerebro.compiler.ir import Graph
from cerebro.compiler.ir.dtypes import DType, dtype_from_numpy
from cerebro.compiler.targets import EM_AARCH64, EM_X86_64, TARGETS, Target, resolve_target

jax.config.update("jax_platforms", "cpu")
EPS32 = float(np.finfo(np.float32).eps)
HOST = resolve_target("host")
# Code shapes the host can run: vector width (f32 lanes) and register-tile choice (NEON's 8x3 tile runs
# as 4-lane code on x86 too). Widths above the host's are left out.
_FLAVOURS = {"sse": (4, EM_X86_64), "neon-tile": (4, EM_AARCH64), "avx2": (8, EM_X86_64), "avx512": (16, EM_X86_64)}
TILE_FLAVOURS = [name for name, (width, _) in _FLAVOURS.items() if width <= HOST.vector_width]
WIDTHS = [name for name in TILE_FLAVOURS if name != "neon-tile"]  # for kernels without a register tile
_ENGINES: list = []  # keep JIT engines (and their code) alive for the session


def _module(node, target: Target) -> ir.Module:
    module = ir.Module(name=node.op)
    module.triple = target.triple
    count = len(node.inputs) + len(node.outputs)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.PointerType()] * count), name="kernel")
    EMITTERS[node.op](EmitContext(module, target), node, fn)
    return module


def _optimised(module: ir.Module, target: Target) -> tuple[llvm.ModuleRef, llvm.TargetMachine]:
    tm = target.target_machine()
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    builder = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
    builder.getModulePassManager().run(parsed, builder)
    return parsed, tm


def run(node, arrays: list[np.ndarray], flavour: str | None = None) -> list[np.ndarray]:
    """JIT node's kernel for the host (optionally shaped as for another vector width/tile) and run it."""
    if flavour is None:
        target = HOST
    else:
        width, machine = _FLAVOURS[flavour]
        target = dataclasses.replace(HOST, vector_width=width, machine=machine)
    parsed, tm = _optimised(_module(node, target), target)
    engine = llvm.create_mcjit_compiler(parsed, tm)
    engine.finalize_object()
    _ENGINES.append(engine)
    count = len(node.inputs) + len(node.outputs)
    kernel = ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * count)(engine.get_function_address("kernel"))
    inputs = [np.ascontiguousarray(a, dtype=v.dtype.numpy) for v, a in zip(node.inputs, arrays, strict=True)]
    # poisoned, so an unwritten element shows
    outputs = [np.full(v.nbytes, 0x5A, np.uint8).view(v.dtype.numpy).reshape(v.shape) for v in node.outputs]
    kernel(*[a.ctypes.data for a in inputs + outputs])
    return outputs


def one_node(op: str, inputs: list[np.ndarray], **attrs: object):
    graph = Graph(op)
    values = [graph.add_input(a.shape, dtype_from_numpy(a.dtype), f"in{i}") for i, a in enumerate(inputs)]
    return graph.add1(op, *values, **attrs).producer


def within(out: np.ndarray, reference: np.ndarray, bound: object) -> bool:
    """Every element equal (infinities included) or within bound of the reference."""
    with np.errstate(invalid="ignore"):
        return bool(np.all((out == reference) | (np.abs(out - reference) <= bound)))


def _random(rng: np.random.Generator, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-50, 50, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------- matmul

MATMUL_SHAPES = [((), 1, 1, 1), ((), 3, 5, 17), ((2,), 17, 33, 65), ((), 65, 17, 33), ((3,), 7, 0, 9),
                 ((2, 2), 6, 3, 16), ((), 1, 64, 1), ((), 33, 1, 3),
                 ((), 9, 1100, 35), ((2,), 3, 300, 70)]  # K above the K-panel size: panels accumulate into C


@pytest.mark.parametrize("flavour", TILE_FLAVOURS)
@pytest.mark.parametrize("batch,m,k,n", MATMUL_SHAPES)
def test_matmul_f32(batch, m, k, n, flavour):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    a, b = _random(rng, (*batch, m, k)), _random(rng, (*batch, k, n))
    (out,) = run(one_node("matmul", [a, b]), [a, b], flavour)
    reference = np.matmul(a.astype(np.float64), b.astype(np.float64))
    magnitude = np.matmul(np.abs(a).astype(np.float64), np.abs(b).astype(np.float64))
    assert out.shape == reference.shape
    assert np.all(np.abs(out - reference) <= 2 * max(k, 1) * EPS32 * magnitude)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64])
def test_matmul_other_types(dtype):
    rng = np.random.default_rng(1)
    a, b = _random(rng, (2, 9, 13), dtype), _random(rng, (2, 13, 19), dtype)
    (out,) = run(one_node("matmul", [a, b]), [a, b])
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-12)


def test_matmul_constant_weights():
    """b as a graph constant (weights) gives the same kernel contract: a pointer to row-major data."""
    rng = np.random.default_rng(2)
    a, w = _random(rng, (5, 7)), _random(rng, (7, 11))
    graph = Graph("w")
    x = graph.add_input(a.shape, DType.f32, "x")
    node = graph.add1("matmul", x, graph.const(w)).producer
    (out,) = run(node, [a, w])
    np.testing.assert_allclose(out, a @ w, rtol=1e-5, atol=1e-5)


def _assembly(op: str, inputs: list[np.ndarray], target: Target, **attrs: object) -> str:
    node = one_node(op, inputs, **attrs)
    parsed, tm = _optimised(_module(node, target), target)
    return tm.emit_assembly(parsed)


def _loop_bodies(asm: str) -> list[str]:
    """Text of each backward-branch loop: from a label to the jump back to it."""
    bodies = []
    for match in re.finditer(r"^(\.LBB\d+_\d+):", asm, re.M):
        back = re.search(rf"^\s+(?:j\w+|b\.\w+|b)\s+{re.escape(match.group(1))}\s*$", asm[match.end():], re.M)
        if back:
            bodies.append(asm[match.end():match.end() + back.start()])
    return bodies


def test_matmul_inner_loop_is_vector_fma_avx2():
    a, b = np.zeros((64, 64), np.float32), np.zeros((64, 64), np.float32)
    asm = _assembly("matmul", [a, b], TARGETS["x86_64-v3"])
    # the 6x2-vector tile: 12 fmas on ymm registers, 6 broadcasts, in one loop without calls
    kernels = [body for body in _loop_bodies(asm) if len(re.findall(r"vfmadd\d+ps\s+[^\n]*%ymm", body)) >= 12]
    assert kernels, asm
    assert len(re.findall(r"vbroadcastss", kernels[0])) >= 6
    assert "call" not in asm


def test_matmul_inner_loop_is_vector_fma_neon():
    a, b = np.zeros((64, 64), np.float32), np.zeros((64, 64), np.float32)
    asm = _assembly("matmul", [a, b], TARGETS["aarch64"])
    # the 8x3-vector tile: 24 fmla on 4 x f32 q registers
    kernels = [body for body in _loop_bodies(asm) if len(re.findall(r"fmla\s+v\d+\.4s", body)) >= 24]
    assert kernels, asm
    assert not re.search(r"^\s+blr?\s", asm, re.M), asm


_EVERY_KERNEL = [
    ("matmul", [((3, 9, 13), np.float32), ((3, 13, 17), np.float32)], {}),
    ("matmul", [((9, 13), np.int64), ((13, 17), np.int64)], {}),
    ("conv", [((1, 6, 6, 8), np.float32), ((3, 3, 8, 8), np.float32)], {"strides": (2, 1), "groups": 1,
                                                                        "padding": ((1, 1), (1, 1))}),
    ("conv", [((1, 6, 6, 8), np.float32), ((3, 3, 1, 8), np.float32)], {"strides": (1, 1), "groups": 8,
                                                                        "padding": ((1, 1), (1, 1))}),
    ("reduce_sum", [((7, 300), np.float32)], {"axes": (1,)}),
    ("reduce_max", [((300, 7), np.float32)], {"axes": (0,)}),
    ("reduce_min", [((7, 40), np.uint8)], {"axes": (1,)}),
    ("reduce_prod", [((7, 40), np.int32)], {"axes": (0,)}),
    ("argmax", [((7, 300), np.float32)], {"axis": 1, "index_dtype": DType.i64}),
    ("argmin", [((7, 40), np.int8)], {"axis": 0, "index_dtype": DType.i32}),
    ("reduce_window", [((1, 6, 6, 8), np.float32)], {"kind": "min", "window": (1, 3, 3, 1), "strides": (1, 2, 2, 1),
                                                     "padding": ((0, 0), (1, 1), (1, 1), (0, 0))}),
    ("take", [((5, 40), np.float32), ((3,), np.int32)], {"axis": 1, "mode": "wrap"}),
]


# fpu "none" targets have no FP registers: their integer kernels are tests/test_integer_only.py's
@pytest.mark.parametrize("target", sorted(name for name, target in TARGETS.items() if target.fpu == "simd"))
@pytest.mark.parametrize("op,inputs,attrs", _EVERY_KERNEL, ids=lambda v: v if isinstance(v, str) else "")
def test_every_kernel_compiles_for_every_target(op, inputs, attrs, target):
    """Instruction selection succeeds everywhere, and the code calls nothing but memcpy/memset
    (plain x86_64 has no fma: llvm.fmuladd must become mul+add there, never a call to libm's fmaf)."""
    asm = _assembly(op, [np.zeros(shape, dtype) for shape, dtype in inputs], TARGETS[target], **attrs)
    calls = re.findall(r"^\s+(?:call\w*|jmp|bl|b)\s+([A-Za-z_]\w*)(?:@PLT)?\s*$", asm, re.M)
    assert set(calls) <= {"memcpy", "memset"}, calls


# ---------------------------------------------------------------- conv

_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}

CONV_CASES = [
    # spatial, kernel, cin, cout, groups, strides, padding, lhs_dilation, rhs_dilation
    ((5, 7), (3, 3), 3, 17, 1, (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1)),
    ((9, 11), (3, 2), 4, 8, 1, (2, 3), ((1, 2), (0, 1)), (1, 1), (1, 1)),
    ((8, 8), (3, 3), 16, 16, 16, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1)),  # depthwise
    ((7, 7), (3, 3), 65, 65, 65, (2, 2), ((1, 1), (1, 1)), (1, 1), (1, 1)),  # depthwise, odd channels
    ((8, 8), (3, 3), 8, 24, 8, (1, 1), ((1, 1), (2, 0)), (1, 1), (2, 1)),  # depthwise x3 multiplier
    ((8, 8), (3, 3), 6, 9, 3, (1, 1), ((1, 1), (1, 1)), (2, 1), (1, 1)),  # grouped, input dilation
    ((17,), (5,), 3, 33, 1, (2,), ((3, 1),), (1,), (2,)),  # 1D
    ((4, 5, 6), (2, 3, 2), 3, 5, 1, (1, 1, 1), ((1, 0), (1, 1), (0, 1)), (1, 1, 1), (1, 1, 1)),  # 3D
    ((3, 3), (1, 1), 33, 1, 1, (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1)),  # 1x1, one output channel
    # wide rows: tiles run along the last spatial dim (few input channels) or over flattened pixels (many)
    ((5, 30), (3, 3), 3, 10, 1, (1, 1), ((1, 1), (2, 0)), (1, 1), (1, 1)),
    ((6, 29), (3, 3), 24, 24, 24, (1, 1), ((1, 1), (1, 1)), (1, 1), (1, 1)),  # depthwise
    ((4, 20), (2, 3), 16, 8, 1, (1, 1), ((1, 0), (1, 1)), (1, 1), (1, 1)),
    ((40,), (3,), 2, 5, 1, (1,), ((1, 1),), (1,), (1,)),
]


@pytest.mark.parametrize("flavour", TILE_FLAVOURS)
@pytest.mark.parametrize("spatial,kernel,cin,cout,groups,strides,padding,lhs,rhs", CONV_CASES)
def test_conv(spatial, kernel, cin, cout, groups, strides, padding, lhs, rhs, flavour):
    rng = np.random.default_rng(cin * 100 + cout)
    x = _random(rng, (2, *spatial, cin))
    w = _random(rng, (*kernel, cin // groups, cout))
    attrs = dict(strides=strides, padding=padding, lhs_dilation=lhs, rhs_dilation=rhs, groups=groups)
    (out,) = run(one_node("conv", [x, w], **attrs), [x, w], flavour)

    def conv(a, b):
        return np.asarray(lax.conv_general_dilated(a, b, strides, padding, lhs, rhs, _DIMENSION_NUMBERS[len(spatial)],
                                                   feature_group_count=groups, precision=lax.Precision.HIGHEST))

    terms = int(np.prod(kernel)) * (cin // groups)
    assert out.shape == conv(x, w).shape
    assert np.all(np.abs(out - conv(x, w)) <= 2 * terms * EPS32 * conv(np.abs(x), np.abs(w)) + 1e-30)


@pytest.mark.parametrize("dtype", [np.int32, np.float64])
@pytest.mark.parametrize("groups", [1, 4])
def test_conv_other_types(dtype, groups):
    rng = np.random.default_rng(12)
    # multiples of 1/8 below 50: every product and sum is exact in f32, the reference's type
    x = (_random(rng, (1, 6, 5, 4), np.int32) / (8 if dtype is np.float64 else 1)).astype(dtype)
    w = (_random(rng, (3, 2, 4 // groups, 4), np.int32) / (8 if dtype is np.float64 else 1)).astype(dtype)
    padding = ((1, 1), (0, 1))
    (out,) = run(one_node("conv", [x, w], strides=(1, 2), padding=padding, groups=groups), [x, w])
    reference = lax.conv_general_dilated(x.astype(np.float32), w.astype(np.float32), (1, 2), padding,
                                         dimension_numbers=_DIMENSION_NUMBERS[2], feature_group_count=groups,
                                         precision=lax.Precision.HIGHEST)
    np.testing.assert_array_equal(out, np.asarray(reference))


def test_conv_negative_padding():
    """Negative padding crops the input. The reference crops with lax.pad first: XLA:CPU (jax 0.10.2)
    returns garbage for conv_general_dilated with negative padding itself."""
    rng = np.random.default_rng(3)
    x, w = _random(rng, (2, 6, 6, 4)), _random(rng, (2, 2, 4, 3))
    padding = ((-1, 1), (0, -1))
    (out,) = run(one_node("conv", [x, w], strides=(1, 1), padding=padding), [x, w])
    cropped = lax.pad(x, np.float32(0), ((0, 0, 0), (-1, 1, 0), (0, -1, 0), (0, 0, 0)))
    reference = lax.conv_general_dilated(cropped, w, (1, 1), "VALID", dimension_numbers=_DIMENSION_NUMBERS[2],
                                         precision=lax.Precision.HIGHEST)
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- reductions

_NUMPY_REDUCE = {"reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min, "reduce_prod": np.prod}

REDUCE_CASES = [((3, 17), (1,)), ((3, 17), (0,)), ((5, 33, 65), (0, 2)), ((5, 33, 65), (1,)),
                ((65, 5, 3), (0, 1, 2)), ((4, 1, 7), (1,)), ((2, 3, 4, 5), (1, 3)), ((2, 3, 4, 5), (0, 2)),
                ((7,), ()), ((1, 1), (0, 1)), ((0, 3), (0,))]


@pytest.mark.parametrize("flavour", WIDTHS)
@pytest.mark.parametrize("op", ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod"])
@pytest.mark.parametrize("shape,axes", REDUCE_CASES)
def test_reduce_f32(op, shape, axes, flavour):
    rng = np.random.default_rng(len(shape) * 7 + sum(axes))
    x = _random(rng, shape)
    if op == "reduce_prod":
        x = (np.sign(x) * (1 + np.abs(x) / 16)).astype(np.float32)  # products of ~1, no under/overflow
    (out,) = run(one_node(op, [x], axes=axes), [x], flavour)
    initial = {"reduce_sum": 0.0, "reduce_prod": 1.0, "reduce_max": -np.inf, "reduce_min": np.inf}[op]
    reference = _NUMPY_REDUCE[op](x.astype(np.float64), axis=axes, initial=initial)  # the identity on empty axes
    count = max(1, int(np.prod([shape[a] for a in axes])))
    if op == "reduce_sum":
        bound = count * EPS32 * np.sum(np.abs(x.astype(np.float64)), axis=axes)
    else:
        bound = count * EPS32 * np.abs(reference)  # max/min are exact; prod: one rounding per factor
    assert out.shape == reference.shape
    assert within(out, reference, bound)


@pytest.mark.parametrize("op", ["reduce_max", "reduce_min", "reduce_sum"])
def test_reduce_nan_and_inf_propagate(op):
    x = np.array([[1, np.nan, 3, 4, 5, 6, 7, 8, 9, 10, 11], [-np.inf] * 11, [np.inf, -1] + [0] * 9],
                 np.float32)
    (out,) = run(one_node(op, [x], axes=(1,)), [x])
    np.testing.assert_array_equal(out, np.asarray(getattr(jnp, op[7:])(x, axis=1)))


@pytest.mark.parametrize("dtype,op,shape,axes", [
    (np.int32, "reduce_sum", (3, 17), (1,)), (np.int8, "reduce_max", (33, 17), (0,)),
    (np.int64, "reduce_min", (3, 70), (1,)), (np.uint8, "reduce_max", (5, 40), (1,)),
    (np.int16, "reduce_prod", (4, 5), (0,)), (np.bool_, "reduce_max", (6, 9), (1,)),
    (np.bool_, "reduce_min", (6, 9), (0,)),
])
def test_reduce_integers(dtype, op, shape, axes):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, shape).astype(dtype) if dtype is np.bool_ else _random(rng, shape, dtype)
    if dtype is np.uint8:
        x = rng.integers(0, 256, shape).astype(dtype)
    (out,) = run(one_node(op, [x], axes=axes), [x])
    np.testing.assert_array_equal(out, _NUMPY_REDUCE[op](x, axis=axes).astype(dtype))


@pytest.mark.parametrize("flavour", WIDTHS)
@pytest.mark.parametrize("shape,axes", [((1, 1 << 20), (1,)), ((1 << 18, 4), (0,))])
def test_long_sums_are_blocked(shape, axes, flavour):
    x = np.random.default_rng(5).random(shape, dtype=np.float32)
    (out,) = run(one_node("reduce_sum", [x], axes=axes), [x], flavour)
    reference = x.astype(np.float64).sum(axis=axes)
    assert np.all(np.abs(out - reference) <= 16 * EPS32 * reference)


def _argmax_input() -> np.ndarray:
    x = np.random.default_rng(6).integers(0, 3, (5, 17, 33)).astype(np.float32)  # many ties
    x[1, 3, 4] = np.nan
    x[2, 5, :] = np.nan
    x[0, :, 0] = np.nan
    x[3, 7:9, 10] = np.nan
    return x


@pytest.mark.parametrize("flavour", WIDTHS)
@pytest.mark.parametrize("index_dtype", [DType.i32, DType.i64])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_argmax_ties_and_nan(op, axis, index_dtype, flavour):
    """Rows of 33 along axis 2 run lane-parallel (lanes merged by index), the others column-wise."""
    x = _argmax_input()
    (out,) = run(one_node(op, [x], axis=axis, index_dtype=index_dtype), [x], flavour)
    reference = getattr(jnp, op)(x, axis=axis)
    assert out.dtype == index_dtype.numpy
    np.testing.assert_array_equal(out, np.asarray(reference))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int64, np.bool_])
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_integers(op, dtype):
    x = np.random.default_rng(7).integers(0, 4, (9, 77)).astype(dtype)
    if dtype is not np.bool_:
        x[2, 5] = np.iinfo(dtype).max
        x[4, 6] = np.iinfo(dtype).min
    for axis in (0, 1):
        (out,) = run(one_node(op, [x], axis=axis, index_dtype=DType.i32), [x])
        np.testing.assert_array_equal(out, getattr(np, op)(x, axis=axis))


# ---------------------------------------------------------------- reduce_window

WINDOW_CASES = [
    ((2, 9, 9, 17), (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0))),  # NHWC pooling
    ((2, 7, 8, 3), (1, 2, 2, 1), (1, 2, 2, 1), ((0, 0), (0, 1), (2, 0), (0, 0))),  # asymmetric padding
    ((3, 17), (2, 5), (1, 3), ((1, 0), (2, 2))),  # window on the last dim
    ((33,), (4,), (2,), ((3, 3),)),
    ((4, 6), (3, 3), (1, 1), ((2, 2), (2, 2))),  # windows entirely in padding
    ((2, 5, 65), (2, 3, 1), (2, 1, 1), ((0, 1), (1, 1), (0, 0))),
    ((3, 8, 4), (1, 3, 1), (1, 1, 1), ((0, 0), (-1, 1), (0, 0))),  # negative padding
]


@pytest.mark.parametrize("flavour", WIDTHS)
@pytest.mark.parametrize("kind", ["sum", "max", "min"])
@pytest.mark.parametrize("shape,window,strides,padding", WINDOW_CASES)
def test_reduce_window(kind, shape, window, strides, padding, flavour):
    x = _random(np.random.default_rng(8), shape)
    node = one_node("reduce_window", [x], kind=kind, window=window, strides=strides, padding=padding)
    (out,) = run(node, [x], flavour)
    init = {"sum": 0.0, "max": -np.inf, "min": np.inf}[kind]
    combine = {"sum": lax.add, "max": lax.max, "min": lax.min}[kind]
    reference = np.asarray(lax.reduce_window(x, np.float32(init), combine, window, strides, padding))
    # sums of at most prod(window) terms: the f32 bound as for matmul
    bound = 2 * int(np.prod(window)) * EPS32 * np.asarray(
        lax.reduce_window(np.abs(x), 0.0, lax.add, window, strides, padding)) if kind == "sum" else 0
    assert out.shape == reference.shape
    assert within(out, reference, bound)


@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.uint8])
def test_reduce_window_integers(dtype):
    x = np.random.default_rng(9).integers(0, 100, (2, 7, 7, 5)).astype(dtype)
    for kind, init, combine in (("max", np.iinfo(dtype).min, lax.max), ("sum", 0, lax.add)):
        window, strides, padding = (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (0, 2), (0, 0))
        node = one_node("reduce_window", [x], kind=kind, window=window, strides=strides, padding=padding)
        (out,) = run(node, [x])
        reference = lax.reduce_window(x, np.array(init, dtype), combine, window, strides, padding)
        np.testing.assert_array_equal(out, np.asarray(reference))


# ---------------------------------------------------------------- take

TAKE_CASES = [
    ((5, 3, 4), 1, [[0, 2], [-1, 7]], np.int32, "clip"),
    ((5, 3, 4), 1, [[0, 2], [-1, -4]], np.int8, "wrap"),
    ((5, 17), 0, [4, 200, 0], np.uint8, "clip"),
    ((5, 17), 1, [-(2 ** 63), 2 ** 63 - 1, -17, 16, -1], np.int64, "wrap"),
    ((7,), 0, [[3, -8], [6, 9]], np.int16, "wrap"),
    ((2, 3, 65), 2, [64, 0, 65, -66], np.int32, "wrap"),
]


@pytest.mark.parametrize("shape,axis,indices,index_type,mode", TAKE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_take(shape, axis, indices, index_type, mode, dtype):
    rng = np.random.default_rng(10)
    x = (rng.integers(0, 2, shape) if dtype is np.bool_ else _random(rng, shape)).astype(dtype)
    idx = np.array(indices, dtype=index_type)
    (out,) = run(one_node("take", [x, idx], axis=axis, mode=mode), [x, idx])
    wide = idx.astype(np.int64)
    if mode == "wrap":
        wide = np.where(wide < 0, wide + shape[axis], wide)
    reference = np.take(x, np.clip(wide, 0, shape[axis] - 1), axis=axis)
    np.testing.assert_array_equal(out, reference)


# ---------------------------------------------------------------- random configurations

_RANDOM = settings(max_examples=40, deadline=None, derandomize=True, database=None)


@_RANDOM
@given(st.data())
def test_conv_random_configurations(data):
    groups = data.draw(st.sampled_from([1, 2, 3]), "groups")
    cin, cout = groups * data.draw(st.integers(1, 3)), groups * data.draw(st.integers(1, 4))
    spatial, kernel, strides, padding, lhs, rhs = [], [], [], [], [], []
    for _ in range(data.draw(st.integers(1, 2), "rank")):
        spatial.append(data.draw(st.integers(1, 7)))
        kernel.append(data.draw(st.integers(1, 3)))
        strides.append(data.draw(st.integers(1, 3)))
        lhs.append(data.draw(st.integers(1, 2)))
        rhs.append(data.draw(st.integers(1, 2)))
        padding.append((data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))))
        assume((spatial[-1] - 1) * lhs[-1] + 1 + sum(padding[-1]) >= (kernel[-1] - 1) * rhs[-1] + 1)
    rng = np.random.default_rng(0)
    x, w = _random(rng, (2, *spatial, cin)), _random(rng, (*kernel, cin // groups, cout))
    args = (tuple(strides), tuple(padding), tuple(lhs), tuple(rhs))
    node = one_node("conv", [x, w], strides=args[0], padding=args[1], lhs_dilation=args[2], rhs_dilation=args[3],
                    groups=groups)
    (out,) = run(node, [x, w])

    def conv(a, b):
        return np.asarray(lax.conv_general_dilated(a, b, *args, _DIMENSION_NUMBERS[len(spatial)],
                                                   feature_group_count=groups, precision=lax.Precision.HIGHEST))

    terms = int(np.prod(kernel)) * (cin // groups)
    assert within(out, conv(x, w), 2 * terms * EPS32 * conv(np.abs(x), np.abs(w)))


@_RANDOM
@given(st.data())
def test_reduce_random_configurations(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 9), min_size=1, max_size=4), "shape"))
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)), "axes")))
    op = data.draw(st.sampled_from(["reduce_sum", "reduce_max", "reduce_min"]), "op")
    x = _random(np.random.default_rng(1), shape)
    (out,) = run(one_node(op, [x], axes=axes), [x])
    reference = _NUMPY_REDUCE[op](x.astype(np.float64), axis=axes)
    assert within(out, reference, 2 * x.size * EPS32 * np.sum(np.abs(x.astype(np.float64)), axis=axes))


@_RANDOM
@given(st.data())
def test_reduce_window_random_configurations(data):
    shape, window, strides, padding = [], [], [], []
    for _ in range(data.draw(st.integers(1, 3), "rank")):
        shape.append(data.draw(st.integers(1, 8)))
        window.append(data.draw(st.integers(1, 3)))
        strides.append(data.draw(st.integers(1, 3)))
        padding.append((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))))
        assume(shape[-1] + sum(padding[-1]) >= window[-1])
    kind = data.draw(st.sampled_from(["sum", "max", "min"]), "kind")
    x = _random(np.random.default_rng(2), tuple(shape))
    attrs = dict(window=tuple(window), strides=tuple(strides), padding=tuple(padding))
    (out,) = run(one_node("reduce_window", [x], kind=kind, **attrs), [x])
    init = {"sum": 0.0, "max": -np.inf, "min": np.inf}[kind]
    combine = {"sum": lax.add, "max": lax.max, "min": lax.min}[kind]
    reference = np.asarray(lax.reduce_window(x, np.float32(init), combine, *attrs.values()))
    magnitude = np.asarray(lax.reduce_window(np.abs(x), 0.0, lax.add, *attrs.values()))
    assert within(out, reference, 2 * int(np.prod(window)) * EPS32 * magnitude)


# ---------------------------------------------------------------- errors

def test_unsupported_types_name_the_op():
    x = np.zeros((2, 3), np.uint8)
    node = one_node("matmul", [x, x.T.copy()])
    with pytest.raises(NotImplementedError, match="matmul"):
        _module(node, HOST)


# ---------------------------------------------------------------- through the driver and the runtime

def _driver_cases() -> list:
    rng = np.random.default_rng(11)
    x4, w4 = _random(rng, (2, 9, 9, 6)), _random(rng, (3, 3, 2, 12))
    x3 = _random(rng, (3, 17, 33))
    conv = dict(strides=(2, 1), padding=((1, 1), (0, 2)), rhs_dilation=(1, 2), groups=3)
    return [
        ("matmul", x3, _random(rng, (3, 33, 65)), {}, lambda a, b: a.astype(np.float64) @ b),
        ("conv", x4, w4, conv, lambda a, b: lax.conv_general_dilated(
            a, b, (2, 1), ((1, 1), (0, 2)), None, (1, 2), _DIMENSION_NUMBERS[2], feature_group_count=3,
            precision=lax.Precision.HIGHEST)),
        ("reduce_sum", x3, None, {"axes": (0, 2)}, lambda a: a.astype(np.float64).sum(axis=(0, 2))),
        ("argmax", x3, None, {"axis": 1, "index_dtype": DType.i32}, lambda a: np.argmax(a, axis=1)),
        ("reduce_window", x4, None, {"kind": "max", "window": (1, 3, 3, 1), "strides": (1, 2, 2, 1),
                                     "padding": ((0, 0), (1, 1), (1, 1), (0, 0))},
         lambda a: lax.reduce_window(a, -np.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                     ((0, 0), (1, 1), (1, 1), (0, 0)))),
        ("take", x3, np.array([[2, -1], [40, 0]], np.int32), {"axis": 2, "mode": "wrap"},
         lambda a, i: np.take(a, np.clip(np.where(i < 0, i + 33, i), 0, 32), axis=2)),
        ("take", x3, np.array([2, -1, 7], np.int64), {"axis": 0, "mode": "clip"},  # row copies (memcpy)
         lambda a, i: np.take(a, np.clip(i, 0, 2), axis=0)),
    ]


@pytest.mark.parametrize("case", _driver_cases(), ids=lambda case: f"{case[0]}-{case[3]}")
def test_through_build_and_runtime(case):
    """The same kernels compiled into a .cbx by cerebro.compiler.build and run by the C runtime,
    with the second operand (weights, indices) as a graph constant in the weights section."""
    from cerebro.compiler.driver import build
    from cerebro.runtime import load

    op, x, second, attrs, reference = case
    graph = Graph(op)
    inputs = [graph.add_input(x.shape, dtype_from_numpy(x.dtype), "x")]
    if second is not None:
        inputs.append(graph.const(second))
    graph.set_outputs([graph.add1(op, *inputs, **attrs)])
    (out,) = load(build(graph))(x)
    expected = np.asarray(reference(x) if second is None else reference(x, second))
    # outputs are sums of at most 33 f32 products of magnitude ~1: the f32 bound 2*n*eps*sum|ab| is below 2e-5*|.|+2e-5
    np.testing.assert_allclose(out, expected.astype(out.dtype), rtol=2e-5, atol=2e-5)


def test_kernels_run_on_aarch64(tmp_path):
    """Every kernel compiled for aarch64 (the NEON 8x3 tile, depthwise, pooling, lane-merged argmax...)
    and run by the standalone runtime, natively or under qemu-aarch64-static."""
    import subprocess

    from cerebro.compiler.driver import build

    runner = aarch64_runner(tmp_path / "cbxrun")

    rng = np.random.default_rng(13)
    rows, image = _random(rng, (17, 40)), _random(rng, (2, 9, 9, 8))
    weights, kernel, depthwise = _random(rng, (40, 65)), _random(rng, (3, 3, 8, 12)), _random(rng, (3, 3, 1, 8))
    window = dict(window=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding=((0, 0), (1, 1), (1, 1), (0, 0)))
    graph = Graph("kernels")
    x, im = graph.add_input(rows.shape, DType.f32, "rows"), graph.add_input(image.shape, DType.f32, "image")
    outputs = [
        graph.add1("matmul", x, graph.const(weights)),
        graph.add1("conv", im, graph.const(kernel), strides=(1, 2), padding=((1, 1), (0, 2))),
        graph.add1("conv", im, graph.const(depthwise), strides=(1, 1), padding=((1, 1), (1, 1)), groups=8),
        graph.add1("reduce_sum", x, axes=(1,)),
        graph.add1("reduce_max", x, axes=(0,)),
        graph.add1("argmax", x, axis=1, index_dtype=DType.i32),
        graph.add1("reduce_window", im, kind="max", **window),
        graph.add1("take", x, graph.const(np.array([3, -1, 99], np.int32)), axis=0, mode="wrap"),
    ]
    graph.set_outputs(outputs)
    (tmp_path / "model.cbx").write_bytes(build(graph, "aarch64"))
    for name, array in (("rows", rows), ("image", image)):
        (tmp_path / f"{name}.bin").write_bytes(array.astype("<f4").tobytes())
    result = subprocess.run([*runner, str(tmp_path / "model.cbx"), str(tmp_path / "rows.bin"),
                             str(tmp_path / "image.bin"), "-o", str(tmp_path / "out.bin")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

    def conv(a, b, strides, padding, groups=1):
        return lax.conv_general_dilated(a, b, strides, padding, dimension_numbers=_DIMENSION_NUMBERS[2],
                                        feature_group_count=groups, precision=lax.Precision.HIGHEST)

    expected = [rows.astype(np.float64) @ weights, conv(image, kernel, (1, 2), ((1, 1), (0, 2))),
                conv(image, depthwise, (1, 1), ((1, 1), (1, 1)), 8), rows.astype(np.float64).sum(axis=1),
                rows.max(axis=0), np.argmax(rows, axis=1),
                lax.reduce_window(image, -np.inf, lax.max, window["window"], window["strides"], window["padding"]),
                rows[[3, 16, 16]]]
    raw, at = (tmp_path / "out.bin").read_bytes(), 0
    for value, want in zip(outputs, expected, strict=True):
        got = np.frombuffer(raw[at:at + value.nbytes], value.dtype.numpy.newbyteorder("<")).reshape(value.shape)
        at += value.nbytes
        # sums of at most 72 f32 products of magnitude ~1: within 2e-5 relative + 2e-5 absolute (see above)
        np.testing.assert_allclose(got, np.asarray(want).astype(got.dtype), rtol=2e-5, atol=2e-5)
    assert at == len(raw)
