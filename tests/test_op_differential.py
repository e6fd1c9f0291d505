"""Every IR op, compiled and run, against the reference interpreter (in the style of tinygrad's test_ops).

SAMPLES holds one builder per op in the op table (compiler/ir/ops.py OPS): it adds nodes of that op
for a dtype to a graph, reading ordinary values and edge values (zeros of both signs, +-inf, NaN,
integer min/max, division by zero, MIN / -1, out-of-range take indices, empty shapes). An op
accepts a dtype when its shape rule and its emitter (compiler/codegen/registry.py) do; every
accepted (op, dtype) is checked. CHAINS adds small graphs the passes fuse (fused_elementwise, row
kernels, matmul/conv epilogues). For each dtype all of it is ONE graph with many outputs (compiling
is the cost), built for the host and for aarch64 (run by cbxrun under qemu-aarch64), and compared
with compiler/ir/interpret.py's run_graph on the same inputs.

Comparison: integers and bools bit for bit; floats bit for bit (NaN matches any NaN, the sign of
zero counts) except results that go through a transcendental (ops.TRANSCENDENTAL), which match within
TOLERANCE relative (absolute below the smallest normal) where the reference is finite and exactly
elsewhere; the tolerances are test_codegen_ops.py's sweep tolerances against correctly rounded
values. Float sums, products, matmul and conv read small integers (and the specials inf/NaN/-0),
so their result is exact in any summation order. Subnormal results are kept by the reference and the
generated code alike (XLA on CPU flushes them: tests/test_edge_values.py allows for that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import native
import numpy as np
import pytest
from llvmlite import ir
from test_aarch64_runtime import run_cbxrun, split_outputs
from test_edge_values import edge_values

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen import EMITTERS, EmitContext
from cerebro.compiler.codegen.module import _node_function
from cerebro.compiler.driver import lower
from cerebro.compiler.ir import DType, Graph, IRError, Value, dtype_from_numpy
from cerebro.compiler.ir.fused import FUSED, ROW_KERNEL
from cerebro.compiler.ir.interpret import run_graph
from cerebro.compiler.ir.ops import OPS, TRANSCENDENTAL
from cerebro.compiler.ir.plan import VIEW_OPS
from cerebro.compiler.passes.loops import loop_layouts, prepare_loops
from cerebro.compiler.targets import resolve_target

DTYPES = tuple(DType)
ARCHES = ("host", "aarch64")
TOLERANCE = {DType.f32: 2e-6, DType.f64: 1e-14}  # relative, for results that pass through TRANSCENDENTAL
BROADCAST_SAMPLES = frozenset({"sub", "lt"})  # binary ops also run on [3, 1, 5] op [1, 4, 5]


def _rng(dtype: DType, salt: str) -> np.random.Generator:
    return np.random.default_rng([dtype.code, *salt.encode()])


def ordinary(dtype: DType, shape: tuple[int, ...], salt: str) -> np.ndarray:
    """Random values: normal(0, 10) floats, integers over the whole range, fair bools."""
    rng = _rng(dtype, salt)
    if dtype is DType.bool:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.is_float or dtype.is_half:
        return rng.normal(0, 10, shape).astype(dtype.numpy)
    info = np.iinfo(dtype.numpy)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype.numpy)


def small(dtype: DType, shape: tuple[int, ...], salt: str) -> np.ndarray:
    """Small integers (-4..4, u8 0..8): sums and products of a few stay exact in every order."""
    rng = _rng(dtype, salt)
    if dtype is DType.bool:
        return rng.integers(0, 2, shape).astype(bool)
    low = -4 if dtype.is_signed else 0
    return rng.integers(low, low + 9, shape).astype(dtype.numpy)


def with_specials(dtype: DType, array: np.ndarray, salt: str) -> np.ndarray:
    """array with every second element replaced by a special value: inf/-inf/NaN/-0 (floats), min/max
    (integers); the replacements are those whose sums/products do not depend on the order."""
    if dtype is DType.bool:
        return array
    specials = ([np.inf, -np.inf, np.nan, -0.0] if dtype.is_float or dtype.is_half
                else [np.iinfo(dtype.numpy).min, np.iinfo(dtype.numpy).max])
    flat = array.copy().ravel()
    picks = _rng(dtype, salt).integers(0, len(specials), flat.size)
    flat[::2] = np.array(specials, dtype.numpy)[picks[::2]]
    return flat.reshape(array.shape)


@dataclass
class Feed:
    """The graph's inputs with their data: created on first use, shared by name."""

    graph: Graph
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, Value] = field(default_factory=dict)

    def __call__(self, name: str, make: Callable[[], np.ndarray]) -> Value:
        if name not in self.values:
            array = make()
            self.arrays[name] = array
            self.values[name] = self.graph.add_input(array.shape, dtype_from_numpy(array.dtype), name)
        return self.values[name]


@dataclass
class Case:
    label: str
    value: Value
    exact: bool


# --- the inputs, by name: every sample of a dtype reads the same few arrays ---------------------------

def x_vector(feed: Feed, d: DType) -> Value:
    """The edge values, ordinary ones, then both again shuffled and longer: edge values reach the
    vectorised loop bodies as well as the scalar tails."""
    def make() -> np.ndarray:
        shuffled = _rng(d, "x2").permutation(np.tile(edge_values(d), 6))
        return np.concatenate([edge_values(d), ordinary(d, (24,), "x"), shuffled, ordinary(d, (64,), "x3")])

    return feed(f"x.{d.name}", make)


def pair(feed: Feed, d: DType) -> tuple[Value, Value]:
    """Every pair of edge values (division by zero, MIN / -1, inf - inf, ...), then ordinary pairs."""
    def side(k: int) -> np.ndarray:
        grid = np.meshgrid(edge_values(d), edge_values(d), indexing="ij")[k].ravel()
        return np.concatenate([grid, ordinary(d, (40,), f"ab{k}")])

    return feed(f"a.{d.name}", lambda: side(0)), feed(f"b.{d.name}", lambda: side(1))


def broadcast_pair(feed: Feed, d: DType) -> tuple[Value, Value]:
    """[3, 1, 5] and [1, 4, 5] operands (broadcast both ways), specials among ordinary values."""
    return (feed(f"p.{d.name}", lambda: with_specials(d, ordinary(d, (3, 1, 5), "p"), "p")),
            feed(f"q.{d.name}", lambda: ordinary(d, (1, 4, 5), "q")))


def empty(feed: Feed, d: DType) -> Value:
    return feed(f"empty.{d.name}", lambda: np.zeros((0, 3), d.numpy))


def condition(feed: Feed, size: int) -> Value:
    return feed(f"c{size}", lambda: np.arange(size) % 3 == 1)


def cube(feed: Feed, d: DType) -> Value:
    """[2, 3, 4] ordinary values for the layout ops."""
    return feed(f"t.{d.name}", lambda: with_specials(d, ordinary(d, (2, 3, 4), "t"), "t"))


def matrix(feed: Feed, d: DType, rows: int, cols: int, salt: str, specials: bool = True) -> Value:
    """Small integers, with order-independent specials in every second element."""
    def make() -> np.ndarray:
        values = small(d, (rows, cols), salt)
        return with_specials(d, values, salt) if specials else values

    return feed(f"{salt}.{d.name}", make)


def extremes(feed: Feed, d: DType) -> Value:
    """[7, 4] rows of edge values for max/min/argmax: ties, NaN first or later, -0 vs +0."""
    def make() -> np.ndarray:
        rows = _rng(d, "m").choice(edge_values(d), (7, 4))
        rows[0] = rows[0, 0]  # a tie over the whole row
        if d.is_float or d.is_half:
            rows[1] = [0.0, -0.0, -0.0, 0.0]
            rows[2] = [1.0, np.nan, 5.0, np.nan]
        return rows

    return feed(f"m.{d.name}", make)


# --- one builder per op -------------------------------------------------------------------------------

Builder = Callable[[Graph, Feed, str, DType], list[Case]]


def unary(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    return [Case(f"{op}(x)", g.add1(op, x_vector(feed, d)), op not in TRANSCENDENTAL),
            Case(f"{op}(empty)", g.add1(op, empty(feed, d)), True)]


def binary(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """Edge pairs and ordinary pairs; the broadcasting loop (the same for every op) with two of them."""
    a, b = pair(feed, d)
    e = empty(feed, d)
    exact = op not in TRANSCENDENTAL
    cases = [Case(f"{op}(a, b)", g.add1(op, a, b), exact), Case(f"{op}(empty)", g.add1(op, e, e), True)]
    if op in BROADCAST_SAMPLES:
        p, q = broadcast_pair(feed, d)
        cases.append(Case(f"{op}(p, q)", g.add1(op, p, q), exact))
    return cases


def select(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    a, b = pair(feed, d)
    p, q = broadcast_pair(feed, d)
    c = feed("c315", lambda: np.array([[[True]], [[False]], [[True]]]))
    return [Case("select(c, a, b)", g.add1(op, condition(feed, a.size), a, b), True),
            Case("select(c[3,1,1], p, q)", g.add1(op, c, p, q), True)]


def convert(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    x = x_vector(feed, d)
    halves = {DType.f32, DType.f16, DType.bf16}  # f16/bf16 convert to and from these only
    return [Case(f"convert(x, {to.name})", g.add1(op, x, dtype=to), True) for to in DTYPES
            if not (d.is_half or to.is_half) or {d, to} <= halves]


def shift(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """The edge pairs, and every amount from 0 past the bit width (the widths themselves included)."""
    x = x_vector(feed, d)
    amounts = feed(f"amounts.{d.name}", lambda: np.resize(np.arange(d.itemsize * 8 + 2), x.size).astype(d.numpy))
    return binary(g, feed, op, d) + [Case(f"{op}(x, 0..bits+1)", g.add1(op, x, amounts), True)]


def bitcast(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    x = x_vector(feed, d)
    return [Case(f"bitcast(x, {to.name})", g.add1(op, x, dtype=to), True) for to in DTYPES
            if to.itemsize == d.itemsize and DType.bool not in (d, to)]


def reduce(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    rows = extremes(feed, d) if op in ("reduce_max", "reduce_min") else matrix(feed, d, 6, 5, "r")
    deep = feed(f"r3.{d.name}", lambda: small(d, (2, 3, 4), "r3"))
    e = empty(feed, d)
    return [Case(f"{op}(r, {axes})", g.add1(op, rows, axes=axes), True) for axes in ((1,), (0, 1))] + [
        Case(f"{op}(r3, (0, 2))", g.add1(op, deep, axes=(0, 2)), True),
        Case(f"{op}(empty, (0,))", g.add1(op, e, axes=(0,)), True),
        Case(f"{op}(empty, (1,))", g.add1(op, e, axes=(1,)), True)]


def argreduce(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    m = extremes(feed, d)
    return [Case(f"{op}(m, {axis}, {index.name})", g.add1(op, m, axis=axis, index_dtype=index), True)
            for axis, index in ((0, DType.i32), (1, DType.i64))]


def broadcast_in_dim(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    t = cube(feed, d)
    scalar = feed(f"s.{d.name}", lambda: edge_values(d)[-1:].reshape(()))
    row = feed(f"t1.{d.name}", lambda: ordinary(d, (2, 1, 4), "t1"))
    return [Case("broadcast_in_dim(t1, (5, 2, 3, 4))",
                 g.add1(op, row, shape=(5, 2, 3, 4), broadcast_dimensions=(1, 2, 3)), True),
            Case("broadcast_in_dim(t, (4, 3, 2) transposed)",
                 g.add1(op, t, shape=(4, 3, 2, 1), broadcast_dimensions=(2, 1, 0)), True),
            Case("broadcast_in_dim(scalar)", g.add1(op, scalar, shape=(3, 2), broadcast_dimensions=()), True),
            Case("broadcast_in_dim(empty)", g.add1(op, empty(feed, d), shape=(2, 0, 3),
                                                   broadcast_dimensions=(1, 2)), True)]


def reshape(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    t = cube(feed, d)
    return [Case("reshape(t, (4, 6))", g.add1(op, t, shape=(4, 6)), True),
            Case("reshape(transpose t, (24,))", g.add1(op, g.add1("transpose", t, perm=(1, 0, 2)), shape=(24,)),
                 True),
            Case("reshape(empty, (3, 0))", g.add1(op, empty(feed, d), shape=(3, 0)), True)]


def transpose(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    wide = feed(f"w.{d.name}", lambda: ordinary(d, (9, 37), "w"))
    return [Case("transpose(t, (2, 0, 1))", g.add1(op, cube(feed, d), perm=(2, 0, 1)), True),
            Case("transpose(w)", g.add1(op, wide, perm=(1, 0)), True),
            Case("transpose(empty)", g.add1(op, empty(feed, d), perm=(1, 0)), True)]


def slice_(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    t = cube(feed, d)
    return [Case("slice(t, strided)", g.add1(op, t, start=(0, 1, 0), limit=(2, 3, 4), strides=(1, 1, 3)), True),
            Case("slice(t, empty)", g.add1(op, t, start=(1, 2, 0), limit=(1, 3, 4)), True)]


def pad(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    t = cube(feed, d)
    fill = edge_values(d)[-1].item()  # NaN for floats, the maximum for integers, True for bool
    return [Case("pad(t, negative and interior)",
                 g.add1(op, t, lo=(1, -1, 2), hi=(0, 2, -3), interior=(0, 1, 2), value=fill), True),
            Case("pad(t, -0.0)", g.add1(op, t, lo=(0, 1, 0), hi=(1, 0, 0), value=-0.0 if d.is_float else 0), True),
            Case("pad(empty)", g.add1(op, empty(feed, d), lo=(1, 0), hi=(1, 1), value=fill), True)]


def concatenate(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    t = cube(feed, d)
    nothing = feed(f"t0.{d.name}", lambda: np.zeros((2, 0, 4), d.numpy))
    return [Case("concatenate(t, nothing, t, axis 1)", g.add1(op, t, nothing, t, axis=1), True),
            Case("concatenate(t, t, axis 2)", g.add1(op, t, t, axis=2), True)]


def rev(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    return [Case("rev(t, (0, 2))", g.add1(op, cube(feed, d), dims=(0, 2)), True)]


def iota(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """Bigger than the folder's 64 KiB, so the code is generated; i8/u8 counts wrap."""
    n = 65536 // (3 * d.itemsize) + 8
    return [Case(f"iota(dimension {k})", g.add1(op, shape=(3, n), dtype=d, dimension=k), True) for k in (0, 1)]


def take(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """Indices out of range both ways (clip clamps, wrap adds the size once, then clamps), over both axes
    and in both modes: i32 and i64 indices, and an integer d's own (so every integer dtype is an index)."""
    data = matrix(feed, d, 5, 3, "g", specials=False)
    cases = []
    indices = [DType.i32, DType.i64] + ([d] if d.is_int and d not in (DType.i32, DType.i64) else [])
    for index, (axis, mode) in zip(indices, [(0, "clip"), (1, "wrap"), (0, "wrap")]):
        info = np.iinfo(index.numpy)
        raw = [v for v in (int(info.min), -7, -4, -1, 0, 2, 4, 5, 100, int(info.max)) if info.min <= v <= info.max]
        idx = feed(f"idx.{index.name}", lambda raw=raw, index=index: np.array(raw * 2, index.numpy)[:8].reshape(2, 4))
        cases.append(Case(f"take(g, idx.{index.name}, {axis}, {mode})", g.add1(op, data, idx, axis=axis, mode=mode),
                          True))
    return cases


def matmul(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """Batched, tile tails (17 x 33 @ 33 x 19), K = 0, and the specials with K = 2."""
    batch_a = feed(f"ma.{d.name}", lambda: small(d, (2, 3, 4), "ma"))
    batch_b = feed(f"mb.{d.name}", lambda: small(d, (2, 4, 5), "mb"))
    tall, wide = matrix(feed, d, 17, 33, "mt", specials=False), matrix(feed, d, 33, 19, "mw", specials=False)
    no_k = feed(f"mk.{d.name}", lambda: np.zeros((3, 0), d.numpy))
    no_k2 = feed(f"mk2.{d.name}", lambda: np.zeros((0, 4), d.numpy))
    two, right = matrix(feed, d, 6, 2, "m2"), matrix(feed, d, 2, 3, "m3", specials=False)
    return [Case("matmul(batched)", g.add1(op, batch_a, batch_b), True),
            Case("matmul(17x33 @ 33x19)", g.add1(op, tall, wide), True),
            Case("matmul(K = 0)", g.add1(op, no_k, no_k2), True),
            Case("matmul(specials, K = 2)", g.add1(op, two, right), True)]


def matmul_integer(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """a of d (u8/i8) against b of both types: values and zero points over the whole range (differences up
    to +-255, sums past 2^16), register-tile tails (13 x 70 @ 70 x 21), batched, and K = 0; b as given
    and transposed (the dot-product form: 70 = 4 x 16 + a tail of 6, 21 outputs = 5 tiles of 4 + 1)."""
    def zeros(dtype: DType, n: int, salt: str) -> Value:
        return feed(f"{salt}.{dtype.name}", lambda: ordinary(dtype, (n,), salt))

    a = feed(f"qa.{d.name}", lambda: ordinary(d, (13, 70), "qa"))
    batch_a = feed(f"qba.{d.name}", lambda: ordinary(d, (2, 3, 4), "qba"))
    cases = []
    for e in (DType.u8, DType.i8):
        b = feed(f"qb.{e.name}", lambda e=e: ordinary(e, (70, 21), "qb"))
        bt = feed(f"qbt.{e.name}", lambda e=e: ordinary(e, (21, 70), "qbt"))
        cases += [Case(f"matmul_integer(13x70 @ 70x21 {e.name})", g.add1(op, a, b, zeros(d, 13, "qz"),
                                                                            zeros(e, 21, "qw")), True),
                  Case(f"matmul_integer(13x70 @ (21x70)^T {e.name})", g.add1(op, a, bt, zeros(d, 13, "qz"),
                                                                              zeros(e, 21, "qw"), transpose_b=True),
                       True)]
    batch_b = feed(f"qbb.{d.name}", lambda: ordinary(d, (2, 4, 5), "qbb"))
    no_k, no_k2 = (feed(f"qk{s}.{d.name}", lambda s=s: np.zeros(s, d.numpy)) for s in ((3, 0), (0, 4)))
    batch_bt = feed(f"qbbt.{d.name}", lambda: ordinary(d, (2, 5, 4), "qbbt"))
    return cases + [Case("matmul_integer(batched)", g.add1(op, batch_a, batch_b, zeros(d, 3, "qz3"),
                                                           zeros(d, 5, "qw5")), True),
                    Case("matmul_integer(batched, transpose_b)", g.add1(op, batch_a, batch_bt, zeros(d, 3, "qz3"),
                                                                        zeros(d, 5, "qw5"), transpose_b=True), True),
                    Case("matmul_integer(K = 0)", g.add1(op, no_k, no_k2, zeros(d, 3, "qz3"), zeros(d, 4, "qw4")),
                         True)]


def conv_integer(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """x of d against w of both types, values over the whole range; padded, strided and dilated, grouped, and
    K = 3 * 3 * 5 (the dot-product core's tail). tests/test_conv_int.py covers the kernel forms."""
    x = feed(f"qcx.{d.name}", lambda: ordinary(d, (2, 6, 7, 10), "qcx"))
    xz = feed(f"qcxz.{d.name}", lambda: ordinary(d, (), "qcxz"))
    cases = []
    for e in (DType.u8, DType.i8):
        w = feed(f"qcw.{e.name}", lambda e=e: ordinary(e, (4, 3, 3, 5), "qcw"))
        wz = feed(f"qcwz.{e.name}", lambda e=e: ordinary(e, (4,), "qcwz"))
        cases.append(Case(f"conv_integer({e.name})", g.add1(op, x, w, xz, wz, strides=(2, 1),
                                                            padding=((1, 0), (2, 1)), rhs_dilation=(1, 2), groups=2),
                          True))
    return cases


def conv(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    x = feed(f"cx.{d.name}", lambda: small(d, (2, 6, 7, 4), "cx"))
    w = feed(f"cw.{d.name}", lambda: small(d, (3, 2, 2, 6), "cw"))
    x1 = feed(f"cx1.{d.name}", lambda: small(d, (1, 9, 3), "cx1"))
    w1 = feed(f"cw1.{d.name}", lambda: small(d, (3, 3, 5), "cw1"))
    return [Case("conv(grouped, strided, dilated, cropped)",
                 g.add1(op, x, w, strides=(2, 1), padding=((1, -1), (2, 0)), lhs_dilation=(1, 2),
                        rhs_dilation=(2, 1), groups=2), True),
            Case("conv(1-d, same)", g.add1(op, x1, w1, strides=(1,), padding=((1, 1),)), True)]


def reduce_window(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """Sums over small integers and specials; max/min over zeros of both signs (floats) or edge values."""
    def window(kind: str, x: Value) -> Case:
        return Case(f"reduce_window({kind})", g.add1(op, x, kind=kind, window=(2, 3), strides=(2, 1),
                                                     padding=((1, 0), (1, 2))), True)

    zeros = feed(f"z.{d.name}", lambda: np.where(small(DType.bool, (6, 5), "z"), 0.0, -0.0).astype(d.numpy))
    extreme = zeros if d.is_float else extremes(feed, d)
    return [window("sum", matrix(feed, d, 6, 5, "rw"))] + [window(kind, extreme) for kind in ("max", "min")]


def argsort(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """Edge values (ties, NaNs of both signs, -0 vs +0) in both orders and directions, rows of edge values;
    the whole sort (radix) and the first k (selection)."""
    x, m = x_vector(feed, d), extremes(feed, d)
    return [Case(f"argsort(x, {order}, descending={down})", g.add1(op, x, order=order, descending=down), True)
            for order, down in (("canonical", False), ("total", True))] + [
        Case("argsort(m rows)", g.add1(op, m), True),
        Case("argsort(x, total, descending, k=5)", g.add1(op, x, order="total", descending=True, k=5), True),
        Case("argsort(m rows, k=2)", g.add1(op, m, k=2), True)]


def cumulative(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """Sums and products of small integers and specials (exact in order), max/min over edge rows; on
    floats logaddexp over both (inf - inf, NaN, -0), within the transcendental tolerance."""
    kinds = ("max", "min") if d is DType.bool else ("sum", "prod", "max", "min")
    r, m = matrix(feed, d, 6, 5, "r"), extremes(feed, d)
    every_kind_once = [(kind, k % 2) for k, kind in enumerate(kinds)]  # the axes alternating
    cases = [Case(f"cumulative({kind}, {axis})", g.add1(op, r if kind in ("sum", "prod") else m, kind=kind, axis=axis),
                  True) for kind, axis in every_kind_once]
    if d.is_float:
        cases += [Case(f"cumulative(logaddexp, {axis})", g.add1(op, x, kind="logaddexp", axis=axis), False)
                  for x, axis in ((r, 0), (m, 1))]
    return cases


def scatter(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """Duplicate positions (accumulated in order; the last set wins), positions out of range both ways."""
    data = matrix(feed, d, 5, 3, "g", specials=False)
    updates = feed(f"su.{d.name}", lambda: with_specials(d, small(d, (2, 4), "su"), "su"))
    cases = []
    for index, kind in zip((DType.i64, DType.i32, DType.i8, DType.i64, DType.i32), ("set", "add", "mul", "max", "min")):
        raw = [[3, -1, 3, 15], [0, 14, 100, 3]]
        positions = feed(f"sp.{index.name}", lambda index=index, raw=raw: np.array(raw, index.numpy))
        cases.append(Case(f"scatter({kind}, sp.{index.name})", g.add1(op, data, positions, updates, kind=kind), True))
    return cases


def tree_ensemble(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """Every test mode (NaN going either way, set members), a tree that is one leaf, a leaf with two
    entries, and malformed tables (a bad feature, child, root, leaf, target, bounds and a cycle), on
    rows of edge values; each aggregate."""
    modes = dict(zip(("leq", "lt", "gte", "gt", "eq", "neq", "member", "never"), range(8)))
    nan_true = 8
    nodes = np.array([  # mode, feature, true child, false child, members start, end (~l: leaf l)
        [modes["leq"], 0, 1, 2, 0, 0], [modes["member"] | nan_true, 1, ~0, ~1, 0, 3],
        [modes["neq"], 2, 3, ~2, 0, 0], [modes["gt"], 0, ~3, 4, 0, 0], [modes["eq"] | nan_true, 1, ~4, 5, 0, 0],
        [modes["gte"], 2, ~0, 6, 0, 0], [modes["lt"], 0, 7, ~5, 0, 0], [modes["never"], 1, ~0, ~6, 0, 0],
        [modes["leq"], 0, 8, 8, 0, 0], [modes["member"], 7, ~0, ~0, 2, 99], [modes["member"], 2, ~3, 30, 1, 5]],
        np.int32)
    real = d.numpy if d.is_float else np.float64  # the rule refuses other x types
    tables = {"nodes": nodes, "splits": np.array([0.5, 0, 0, 5, 2, -1, 100, 0, np.inf, 0, 0], real),
              "roots": np.array([0, 3, ~1, 8, 9, 12, 10, 0], np.int32),
              "bounds": np.array([0, 1, 3, 4, 5, 5, 99], np.int32),
              "targets": np.array([0, 0, 1, 5, 1, 0, -1], np.int32),
              "weights": np.array([1.5, -2, 0.25, 9, 3, -0.0, 4], real),
              "members": np.array([1, 2, 3, -0.0, np.inf], real)}
    inputs = [feed(f"tree.{name}.{d.name}", lambda array=array: array) for name, array in tables.items()]
    x = feed(f"tree.x.{d.name}", lambda: _rng(d, "tree").choice(np.concatenate(
        [edge_values(d), np.array([0.5, 1, 2, 3, 5, 6, -1, 100]).astype(d.numpy)]), (40, 3)))
    return [Case(f"tree_ensemble({kind})", g.add1(op, x, *inputs, n_targets=3, aggregate=kind), True)
            for kind in ("sum", "average", "min", "max")]


def loop(g: Graph, feed: Feed, op: str, d: DType) -> list[Case]:
    """A reverse scan over the rows of a cube: carry = select(mask row, x row, carry), y = carry; prepared
    here (body planned, scratch added) as the driver does, so the emitter sees what it compiles."""
    x = cube(feed, d)
    mask = g.add1("reshape", condition(feed, x.size), shape=x.shape)
    body = Graph("step")
    carry, row, keep = (body.add_input(v.shape[1:], v.dtype, name) for v, name in ((x, "carry"), (x, "x"), (mask, "m")))
    body.set_outputs([body.add1("select", keep, row, carry), carry])
    first = g.add1("reshape", g.add1("slice", x, start=(1, 0, 0), limit=x.shape), shape=x.shape[1:])
    g.add(op, [first, x, mask], body=body, num_consts=0, num_carry=1, length=x.shape[0], cond=None, reverse=True)
    prepare_loops(g, lambda graph: graph)
    carry_out, ys = g.nodes[-1].outputs[:2]
    return [Case("loop carry", carry_out, True), Case("loop ys", ys, True)]


SAMPLES: dict[str, Builder] = {
    **{op: unary for op in ("neg", "abs", "exp", "log", "log1p", "expm1", "tanh", "erf", "sqrt", "rsqrt",
                            "logistic", "floor", "ceil", "round", "sign", "not", "sin", "cos", "reciprocal",
                            "is_finite")},
    **{op: binary for op in ("add", "sub", "mul", "div", "rem", "max", "min", "pow", "and", "or", "xor",
                             "eq", "ne", "lt", "le", "gt", "ge")},
    "select": select, "convert": convert, "bitcast": bitcast,
    **{op: shift for op in ("shift_left", "shift_right_logical", "shift_right_arithmetic")},
    **{op: reduce for op in ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod")},
    "argmax": argreduce, "argmin": argreduce,
    "broadcast_in_dim": broadcast_in_dim, "reshape": reshape, "transpose": transpose, "slice": slice_,
    "pad": pad, "concatenate": concatenate, "rev": rev, "iota": iota, "take": take,
    "matmul": matmul, "matmul_integer": matmul_integer, "conv_integer": conv_integer, "conv": conv,
    "reduce_window": reduce_window,
    "argsort": argsort, "cumulative": cumulative, "scatter": scatter, "tree_ensemble": tree_ensemble,
    "loop": loop,
}


# --- small graphs the passes fuse -----------------------------------------------------------------------

def chains(g: Graph, feed: Feed, d: DType) -> list[Case]:
    """An elementwise chain with a broadcast read in place (fused_elementwise), softmax and a
    layernorm-like row (row kernels, floats), matmul and conv with a bias-and-max epilogue."""
    a, b = pair(feed, d)
    p, q = broadcast_pair(feed, d)
    cases = []
    if d is DType.bool:
        cases.append(Case("xor(and(a, b), not(a))", g.add1("xor", g.add1("and", a, b), g.add1("not", a)), True))
    elif d.is_float:
        cases.append(Case("mul(add(a, b), sub(a, b))", g.add1("mul", g.add1("add", a, b), g.add1("sub", a, b)), True))
        cases.append(Case("logistic(tanh(neg(x)))",
                          g.add1("logistic", g.add1("tanh", g.add1("neg", x_vector(feed, d)))), False))
    elif d.is_half:  # computed in f32 and rounded back, as the JAX frontend lowers f16/bf16 arithmetic
        wide = [g.add1("convert", v, dtype=DType.f32) for v in (a, b)]
        cases.append(Case("convert(mul(f32(a), f32(b)))", g.add1("convert", g.add1("mul", *wide), dtype=d), True))
    else:
        cases.append(Case("select(lt(a, b), div(a, b), rem(a, b))",
                          g.add1("select", g.add1("lt", a, b), g.add1("div", a, b), g.add1("rem", a, b)), True))
    if d is not DType.bool and not d.is_half:
        spread = g.add1("broadcast_in_dim", p, shape=(3, 4, 5), broadcast_dimensions=(0, 1, 2))
        cases.append(Case("max(broadcast(p), q) - q", g.add1("sub", g.add1("max", spread, q), q), True))
    if d.is_float:
        cases += [Case("softmax(r)", _softmax(g, matrix(feed, d, 6, 5, "sr", specials=False)), False),
                  Case("layernorm(r)", _layernorm(g, matrix(feed, d, 6, 5, "ln", specials=False)), False)]
    if d in (DType.f32, DType.f64, DType.i32, DType.i64):
        bias = feed(f"bias.{d.name}", lambda: small(d, (19,), "bias"))
        product = g.add1("matmul", matrix(feed, d, 17, 33, "mt", specials=False),
                         matrix(feed, d, 33, 19, "mw", specials=False))
        cases.append(Case("max(matmul + bias, 0)", _bias_max(g, product, bias), True))
        x = feed(f"cx.{d.name}", lambda: small(d, (2, 6, 7, 4), "cx"))
        w = feed(f"ew.{d.name}", lambda: small(d, (3, 3, 4, 8), "ew"))
        conv = g.add1("conv", x, w, strides=(1, 1), padding=((1, 1), (1, 1)))
        channel_bias = feed(f"cbias.{d.name}", lambda: small(d, (8,), "cbias"))
        cases.append(Case("max(conv + bias, 0)", _bias_max(g, conv, channel_bias), True))
    return cases


def _bias_max(g: Graph, product: Value, bias: Value) -> Value:
    shape = product.shape
    spread = g.add1("broadcast_in_dim", bias, shape=shape, broadcast_dimensions=(len(shape) - 1,))
    zero = g.add1("broadcast_in_dim", g.const(0, product.dtype), shape=shape, broadcast_dimensions=())
    return g.add1("max", g.add1("add", product, spread), zero)


def _per_row(g: Graph, x: Value, op: str) -> Value:
    rows = x.shape[:-1]
    total = g.add1(op, x, axes=(x.rank - 1,))
    return g.add1("broadcast_in_dim", total, shape=x.shape, broadcast_dimensions=tuple(range(len(rows))))


def _softmax(g: Graph, x: Value) -> Value:
    e = g.add1("exp", g.add1("sub", x, _per_row(g, x, "reduce_max")))
    return g.add1("div", e, _per_row(g, e, "reduce_sum"))


def _layernorm(g: Graph, x: Value) -> Value:
    n = g.add1("broadcast_in_dim", g.const(x.shape[-1], x.dtype), shape=x.shape, broadcast_dimensions=())
    centred = g.add1("sub", x, g.add1("div", _per_row(g, x, "reduce_sum"), n))
    variance = g.add1("div", _per_row(g, g.add1("mul", centred, centred), "reduce_sum"), n)
    return g.add1("mul", centred, g.add1("rsqrt", variance))


# --- which dtypes each op accepts, and the graph of a dtype ------------------------------------------

def accepts(op: str, d: DType) -> bool:
    """The op's shape rule builds the sample and its emitter writes code for every node of it."""
    g = Graph("probe")
    try:
        SAMPLES[op](g, Feed(g), op, d)
    except IRError:
        return False
    ctx = EmitContext(ir.Module(), resolve_target("host"), loop_layouts(g))
    for k, node in enumerate(g.nodes):
        if node.op in VIEW_OPS:
            continue
        try:
            _node_function(ctx, node, k)
        except (IRError, NotImplementedError):
            return False
    return True


ACCEPTED: dict[str, list[DType]] = {}


def accepted(op: str) -> list[DType]:
    if op not in ACCEPTED:
        ACCEPTED[op] = [d for d in DTYPES if accepts(op, d)]
    return ACCEPTED[op]


@dataclass
class Program:
    graph: Graph
    inputs: list[np.ndarray]
    cases: list[Case]
    want: list[np.ndarray]


PROGRAMS: dict[DType, Program] = {}


def program(d: DType) -> Program:
    """Every accepted op's samples and the chains for d as one graph, with the interpreter's answers."""
    if d not in PROGRAMS:
        g = Graph(f"ops_{d.name}")
        feed = Feed(g)
        cases = [case for op in SAMPLES if d in accepted(op) for case in SAMPLES[op](g, feed, op, d)]
        cases += chains(g, feed, d)
        g.set_outputs([c.value for c in cases], [f"out{k}" for k in range(len(cases))])
        inputs = list(feed.arrays.values())
        with np.errstate(all="ignore"):  # inf - inf and friends are the point
            PROGRAMS[d] = Program(g, inputs, cases, run_graph(g, inputs))
    return PROGRAMS[d]


def known_gaps(d: DType) -> frozenset[tuple[str, int]]:
    """(case, element) pairs where the generated code is known to differ, and must (a closed gap fails):
    sin/cos reduce their argument by Cody-Waite, not Payne-Hanek (compiler/codegen/mathfn.py), and give
    NaN for finite |x| >= 1e15, where the reference has sin/cos of the float."""
    if not d.is_float:
        return frozenset()
    prog = program(d)
    x = next(array for value, array in zip(prog.graph.inputs, prog.inputs) if value.name == f"x.{d.name}")
    huge = np.flatnonzero(np.isfinite(x) & (np.abs(x) >= 1e15))
    return frozenset((f"{op}(x)", int(i)) for op in ("sin", "cos") for i in huge)


def mismatches(case: Case, d: DType, got: np.ndarray, want: np.ndarray) -> list[tuple[int, str]]:
    """(flat index, description) of each element where got and want differ beyond the case's tolerance."""
    if got.dtype != want.dtype or got.shape != want.shape:
        return [(-1, f"{case.label}: {got.dtype}{got.shape}, reference {want.dtype}{want.shape}")]
    got, want = got.ravel(), want.ravel()
    if want.dtype.kind != "f" and not dtype_from_numpy(want.dtype).is_half:  # bf16 is numpy kind 'V'
        bad = got != want
    else:
        same = (got == want) & (np.signbit(got) == np.signbit(want)) | np.isnan(got) & np.isnan(want)
        if case.exact:
            bad = ~same
        else:
            tiny = np.finfo(want.dtype).tiny
            with np.errstate(all="ignore"):
                close = np.abs(got - want) <= TOLERANCE[dtype_from_numpy(want.dtype)] * np.maximum(np.abs(want), tiny)
            bad = ~np.where(np.isfinite(want) & (want != 0), close, same)
    return [(int(i), f"{case.label} [{d.name}] at {i}: got {got[i]!r}, reference {want[i]!r}")
            for i in np.flatnonzero(bad)]


def check(d: DType, outputs: list[np.ndarray]) -> None:
    prog, gaps = program(d), known_gaps(d)
    problems, found = [], set()
    for case, got, want in zip(prog.cases, outputs, prog.want):
        for index, line in mismatches(case, d, np.asarray(got), want):
            found.add((case.label, index))
            if (case.label, index) not in gaps:
                problems.append(line)
    problems += [f"{label} [{d.name}] at {index}: listed as a gap but matches" for label, index in gaps
                 if (label, index) not in found]
    assert not problems, f"{len(problems)} mismatches with the interpreter:\n" + "\n".join(problems[:60])


# --- the tests ----------------------------------------------------------------------------------------------

# Ops a pass lays out for one target (its register tile in the attrs and the weights), so no one graph
# holds a node of them that both targets build; passes/winograd.py takes 8-lane (AVX2) targets only, and
# tests/test_winograd.py runs it on the host against a float64 conv.
TARGET_LAID_OUT = {"winograd_conv": "tests/test_winograd.py"}


def test_every_op_has_a_sample_a_reference_and_an_emitter() -> None:
    assert set(SAMPLES) == set(OPS) - set(TARGET_LAID_OUT), \
        f"ops without a sample builder: {sorted(set(OPS) - set(SAMPLES) - set(TARGET_LAID_OUT))}"
    for op in sorted(set(OPS) - set(TARGET_LAID_OUT)):
        assert op in EMITTERS or op in VIEW_OPS, f"{op}: no emitter (compiler/codegen/registry.py)"
        dtypes = accepted(op)
        assert dtypes, f"{op}: the emitter accepts no dtype"
        g = Graph("reference")
        feed = Feed(g)
        g.set_outputs([c.value for c in SAMPLES[op](g, feed, op, dtypes[0])])
        with np.errstate(all="ignore"):
            run_graph(g, list(feed.arrays.values()))  # IRError if the interpreter has no implementation


def test_chains_are_fused() -> None:
    """The chains really reach the fused kernels: fused_elementwise, row_kernel and epilogues (f32 has
    all three chains; the other dtypes build theirs with the same code)."""
    nodes = lower(program(DType.f32).graph)[0].nodes
    kinds = {node.op for node in nodes} | {"epilogue" for node in nodes if "epilogue" in node.attrs}
    assert {FUSED, ROW_KERNEL, "epilogue"} <= kinds, kinds


@pytest.fixture(scope="module")
def aarch64_runner(tmp_path_factory) -> list[str]:
    return native.aarch64_runner(tmp_path_factory.mktemp("cbxrun-aarch64"))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_host_matches_interpreter(dtype: DType) -> None:
    """Every accepted op's samples and the chains of one dtype: one .cbx for this machine."""
    prog = program(dtype)
    check(dtype, runtime.load(build(prog.graph))(*prog.inputs))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_aarch64_matches_interpreter(dtype: DType, aarch64_runner, tmp_path) -> None:
    """The same graph built for aarch64 and run by cbxrun (under qemu-aarch64 off aarch64 hosts)."""
    prog = program(dtype)
    result = run_cbxrun(aarch64_runner, build(prog.graph, target="aarch64"), prog.inputs, tmp_path)
    assert result.returncode == 0, result.stderr
    check(dtype, split_outputs((tmp_path / "out.bin").read_bytes(), prog.want))
