"""Generated code built with cerebro.compiler.build and run by the user-space runtime: transcendental
accuracy sweeps, layout folding, fusion, stages, aliasing outputs and targets, against numpy / JAX / scipy
references (tolerances stated per test). Every op on every dtype and edge value: tests/test_op_differential.py
(against the reference interpreter) and tests/test_edge_values.py (against jax.jit)."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from cerebro import elf as elfmod
from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.cbx.format import BARRIER_BYTES
from cerebro.compiler.cbx.reader import read_cbx
from cerebro.compiler.driver import compile_assembly, lower
from cerebro.compiler.ir import DType, Graph, IRError
from cerebro.compiler.targets import resolve_target

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _jax_x64():
    """f64/i64 references need JAX's 64-bit mode; scoped to each test so other test files keep the default."""
    with jax.enable_x64(True):
        yield


def run(graph: Graph, *inputs: np.ndarray, **build_args: object) -> list[np.ndarray]:
    return runtime.load(build(graph, **build_args))(*inputs)


def unary_graph(op: str, shape: tuple[int, ...], dtype: DType) -> Graph:
    g = Graph(op)
    x = g.add_input(shape, dtype, "x")
    g.set_outputs([g.add1(op, x)])
    return g


# --- transcendental accuracy sweeps: reference in f64, rounded to the tested type -------------

SWEEPS = {
    # op: (reference, domain, kind of domain)
    "exp": (np.exp, (-110.0, 90.0), "lin"),
    "log": (np.log, (1e-37, 1e37), "log"),
    "log1p": (np.log1p, (-0.999, 1e6), "log1p"),
    "expm1": (np.expm1, (-30.0, 80.0), "lin"),
    "tanh": (np.tanh, (-12.0, 12.0), "lin"),
    "erf": (scipy.special.erf, (-7.0, 7.0), "lin"),
    "logistic": (scipy.special.expit, (-80.0, 80.0), "lin"),
    "sin": (np.sin, (-1e4, 1e4), "lin"),
    "cos": (np.cos, (-1e4, 1e4), "lin"),
}
# relative tolerance over the sweep (sin/cos: absolute, their result is not relative-accurate at roots)
TOLERANCE = {DType.f32: 2e-6, DType.f64: 1e-14}
SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30, -1e-30, 1e30, -1e30, 1e-40, 3.0, -3.0]


def _sweep_points(domain: tuple[float, float], how: str, n: int) -> np.ndarray:
    lo, hi = domain
    if how == "log":
        return np.exp(np.linspace(np.log(lo), np.log(hi), n))
    if how == "log1p":
        return np.concatenate([np.linspace(lo, 1.0, n // 2), np.exp(np.linspace(-40, np.log(hi), n - n // 2))])
    return np.linspace(lo, hi, n)


@pytest.mark.parametrize("dtype", [DType.f32, DType.f64], ids=lambda d: d.name)
def test_transcendental_sweeps(dtype: DType) -> None:
    """Dense sweeps over each function's range plus IEEE special values (exact: nan, inf, signed zero)."""
    n = 100_000
    g = Graph("sweep")
    outs = []
    for op in SWEEPS:
        outs.append(g.add1(op, g.add_input((n,), dtype, op)))
    g.set_outputs(outs, list(SWEEPS))
    points = [_sweep_points(domain, how, n).astype(dtype.numpy) for _, domain, how in SWEEPS.values()]
    got = run(g, *points)
    tiny = np.finfo(dtype.numpy).tiny
    for (op, (ref, _, _)), x, y in zip(SWEEPS.items(), points, got):
        with np.errstate(over="ignore", invalid="ignore"):
            want = ref(x.astype(np.float64)).astype(dtype.numpy).astype(np.float64)
            err = np.abs(y.astype(np.float64) - want)  # inf - inf: nan, checked separately below
        if op in ("sin", "cos"):
            assert err.max() <= 0.5 * TOLERANCE[dtype], f"{op} {dtype.name}: max abs error {err.max():.3g}"
            continue
        finite = np.isfinite(want)
        assert np.array_equal(np.isinf(y), np.isinf(want)), f"{op} {dtype.name}: overflow disagrees"
        rel = err[finite] / np.maximum(np.abs(want[finite]), tiny)
        assert rel.max() <= TOLERANCE[dtype], f"{op} {dtype.name}: max rel error {rel.max():.3g}"

    specials = np.resize(np.array(SPECIALS, dtype.numpy), n)
    got = run(g, *([specials] * len(SWEEPS)))
    for (op, (ref, _, _)), y in zip(SWEEPS.items(), got):
        with np.errstate(all="ignore"):
            want = ref(specials[:len(SPECIALS)].astype(np.float64)).astype(dtype.numpy)
        y = y[:len(SPECIALS)]
        if op in ("sin", "cos"):  # documented: NaN from |x| = 1e15 on (no Payne-Hanek reduction)
            want = np.where(np.abs(specials[:len(SPECIALS)]) >= 1e15, np.nan, want)
        np.testing.assert_allclose(y, want, rtol=TOLERANCE[dtype], atol=0, err_msg=op)
        zeros = want == 0
        assert np.array_equal(np.signbit(y[zeros]), np.signbit(want[zeros])), f"{op}: sign of zero"


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="runs x86-64 code on the host")
@pytest.mark.parametrize("target", ["x86_64", "x86_64-v3"])
def test_sin_cos_large_arguments(target: str) -> None:
    """The argument reduction stays exact up to |x| = 1e14 with and without FMA (x86-64-v2 has none):
    error within half an ulp of 1 (f32: 3e-8, f64: 1.2e-16) against numpy's f64 sin/cos."""
    for dtype in (DType.f32, DType.f64):
        x = np.concatenate([np.geomspace(1e4, 1e14, 2000), -np.geomspace(1.0, 1e14, 2000)]).astype(dtype.numpy)
        g = Graph("sincos")
        xi = g.add_input(x.shape, dtype, "x")
        g.set_outputs([g.add1("sin", xi), g.add1("cos", xi)])
        got = run(g, x, target=target)
        for y, ref in zip(got, (np.sin, np.cos)):
            err = np.abs(y.astype(np.float64) - ref(x.astype(np.float64)))
            assert err.max() <= np.finfo(dtype.numpy).eps, (dtype.name, ref.__name__, err.max())


@pytest.mark.parametrize("dtype,rtol", [(DType.f32, 1.2e-7), (DType.f64, 1e-15)], ids=["f32", "f64"])
def test_pow(dtype: DType, rtol: float) -> None:
    """pow over a grid of bases/exponents and C99's special cases: within 1 ulp (f32) and 5 ulp (f64),
    y*log(x) being carried in extra precision; overflow/underflow exactly where numpy's are."""
    base = np.exp(np.linspace(-9, 9, 301))
    bases = np.concatenate([base, -base, [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan]])
    exps = np.concatenate([np.linspace(-60, 60, 97), [0.5, -0.5, 2.5, 3.0, -3.0, np.inf, -np.inf, np.nan, 0.0, -0.0]])
    xs, ys = (a.ravel().astype(dtype.numpy) for a in np.meshgrid(bases, exps))
    g = Graph("pow")
    a, b = g.add_input(xs.shape, dtype, "a"), g.add_input(xs.shape, dtype, "b")
    g.set_outputs([g.add1("pow", a, b)])
    (got,) = run(g, xs, ys)
    with np.errstate(all="ignore"):
        want = np.power(xs.astype(np.float64), ys.astype(np.float64)).astype(dtype.numpy)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0)
    zeros = want == 0
    assert np.array_equal(np.signbit(got[zeros]), np.signbit(want[zeros]))


def test_unsupported_type_is_a_clear_error() -> None:
    with pytest.raises(IRError, match="'exp'.*i32"):
        build(unary_graph("exp", (4,), DType.i32))


# --- layout ops -------------------------------------------------------------------------------------

def test_layout_ops_fold_as_xla() -> None:
    """broadcast_in_dim (dims in and out of order), transpose, slice (strided), rev, pad (negative and
    interior), concatenate, iota, reshape folded at compile time (the reference implementations):
    exact against jax.lax. The generated code is checked against the same references in
    tests/test_op_differential.py."""
    x = RNG.normal(size=(2, 3, 4)).astype(np.float32)
    y = RNG.integers(-5, 5, (2, 1, 4)).astype(np.int16)
    g = Graph("layout")
    xi, yi = g.const(x), g.const(y)
    cases = [
        (g.add1("broadcast_in_dim", yi, shape=(5, 2, 3, 4), broadcast_dimensions=(1, 2, 3)),
         jax.lax.broadcast_in_dim(y, (5, 2, 3, 4), (1, 2, 3))),
        (g.add1("broadcast_in_dim", xi, shape=(4, 3, 2, 1), broadcast_dimensions=(2, 1, 0)),
         jax.lax.broadcast_in_dim(x, (4, 3, 2, 1), (2, 1, 0))),
        (g.add1("transpose", xi, perm=(2, 0, 1)), jax.lax.transpose(x, (2, 0, 1))),
        (g.add1("slice", xi, start=(0, 1, 0), limit=(2, 3, 4), strides=(1, 1, 3)),
         jax.lax.slice(x, (0, 1, 0), (2, 3, 4), (1, 1, 3))),
        (g.add1("rev", xi, dims=(0, 2)), jax.lax.rev(x, (0, 2))),
        (g.add1("pad", xi, lo=(1, -1, 2), hi=(0, 2, -3), interior=(0, 1, 2), value=-7.5),
         jax.lax.pad(x, np.float32(-7.5), ((1, 0, 0), (-1, 2, 1), (2, -3, 2)))),
        (g.add1("pad", yi, lo=(0, 1, 0), hi=(1, 0, 0), value=3), jax.lax.pad(y, np.int16(3), ((0, 1, 0), (1, 0, 0),
                                                                                          (0, 0, 0)))),
        (g.add1("concatenate", xi, g.add1("neg", xi), xi, axis=1), jnp.concatenate([x, -x, x], axis=1)),
        (g.add1("iota", shape=(3, 5), dtype=DType.i32, dimension=1), jax.lax.broadcasted_iota(np.int32, (3, 5), 1)),
        (g.add1("reshape", g.add1("add", xi, xi), shape=(4, 6)), (x + x).reshape(4, 6)),
    ]
    g.set_outputs([v for v, _ in cases])
    assert [node.op for node in lower(g)[0].nodes] == []  # with constant inputs everything folds
    for k, (got, (_, want)) in enumerate(zip(run(g), cases)):
        want = np.asarray(want)
        assert got.dtype == want.dtype and got.shape == want.shape, k
        np.testing.assert_array_equal(got, want, err_msg=f"case {k}")


# --- driver: stages, memory plan, outputs that need copies, folding ------------------------------

def _chain(n: int, size: int) -> Graph:
    """x -> tanh -> rev -> neg -> rev -> exp -> ...: n intermediates of `size` floats (rev stops fusion)."""
    g = Graph("chain")
    v = g.add_input((size,), DType.f32, "x")
    for k in range(n):
        v = g.add1("rev", v, dims=(0,)) if k % 2 else g.add1(("tanh", "neg", "exp")[k // 2 % 3], v)
    g.set_outputs([v])
    return g


def _chain_reference(x: np.ndarray, n: int) -> np.ndarray:
    v = x.astype(np.float64)
    for k in range(n):
        v = v[::-1] if k % 2 else (np.tanh, np.negative, np.exp)[k // 2 % 3](v)
    return v


def test_stage_split_and_memory_reuse() -> None:
    """A tiny stage budget gives one stage per node and still the right answer; the arena holds
    far less than the sum of the intermediates (dead buffers are reused)."""
    n, size = 12, 1000
    g = _chain(n, size)
    x = RNG.normal(size=size).astype(np.float32)
    want = _chain_reference(x, n)
    for stage_flops, stages in ((1, len(lower(g)[0].nodes)), (10**9, 1)):
        model = runtime.load(build(g, stage_flops=stage_flops))
        assert model.meta.num_stages == stages
        intermediates = sum(v.nbytes for node in lower(g)[0].nodes for v in node.outputs) - size * 4
        # the threads' barrier counter and two live 4000-byte buffers, 64-aligned
        assert model.meta.arena_size <= BARRIER_BYTES + 2 * 4032 < intermediates
        np.testing.assert_allclose(model(x)[0], want, rtol=1e-5)


def test_elementwise_fusion() -> None:
    """Single-reader chains fuse into one loop (broadcast operands included); a value read twice or
    returned as an output stays in memory. Results exact against numpy's float32 arithmetic."""
    x = RNG.normal(size=(4, 1, 8)).astype(np.float32)
    y = RNG.normal(size=(4, 3, 8)).astype(np.float32)
    g = Graph("fuse")
    xi, yi = g.add_input(x.shape, DType.f32, "x"), g.add_input(y.shape, DType.f32, "y")
    shared = g.add1("mul", xi, xi)  # [4,1,8]: smaller than the chain's shape, read twice
    a = g.add1("sub", yi, shared)
    b = g.add1("max", a, g.add1("neg", shared))
    kept = g.add1("abs", b)  # also an output: materialised
    c = g.add1("select", g.add1("gt", kept, yi), g.add1("add", kept, yi), yi)
    row = g.add1("broadcast_in_dim", xi, shape=(3, 4, 8), broadcast_dimensions=(1, 0, 2))  # read in place
    d = g.add1("mul", g.add1("transpose", c, perm=(1, 0, 2)), row)
    g.set_outputs([c, kept, d])
    ops = [node.op for node in lower(g)[0].nodes]
    assert ops.count("fused_elementwise") == 3 and "broadcast_in_dim" not in ops, ops
    got = run(g, x, y)
    s = x * x
    k = np.abs(np.maximum(y - s, -s))
    np.testing.assert_array_equal(got[1], k)
    np.testing.assert_array_equal(got[0], np.where(k > y, k + y, y))
    np.testing.assert_array_equal(got[2], got[0].transpose(1, 0, 2) * x[:, 0, :][None, :, :])


def test_outputs_that_alias() -> None:
    """Outputs that are an input, a constant, the same tensor twice, or reshapes (views) of others."""
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    g = Graph("alias")
    xi = g.add_input(x.shape, DType.f32, "x")
    c = g.const(np.arange(6, dtype=np.float32).reshape(2, 3))
    s = g.add1("add", xi, c)
    r = g.add1("reshape", s, shape=(3, 2))
    rx = g.add1("reshape", xi, shape=(6,))
    w = g.add1("transpose", c, perm=(1, 0))  # folded into a constant at compile time
    g.set_outputs([xi, c, s, s, r, rx, w, g.add1("mul", r, r)])
    got = run(g, x)
    cv = np.arange(6, dtype=np.float32).reshape(2, 3)
    wants = [x, cv, x + cv, x + cv, (x + cv).reshape(3, 2), x.reshape(6), cv.T, ((x + cv) ** 2).reshape(3, 2)]
    for k, (y, want) in enumerate(zip(got, wants)):
        np.testing.assert_allclose(y, want, rtol=1e-6, err_msg=f"output {k}")
    optimised, llvm_text, _, _ = lower(g)
    assert all(node.op != "transpose" for node in optimised.nodes)
    assert "reshape" in [node.op for node in optimised.nodes] and "_reshape" not in llvm_text  # a view: no code


def test_dead_code_and_zero_size() -> None:
    g = Graph("dead")
    x = g.add_input((4,), DType.f32, "x")
    g.add1("exp", x)  # unused
    empty = g.add1("slice", x, start=(2,), limit=(2,))
    gone = g.add1("exp", empty)
    g.set_outputs([g.add1("neg", x), g.add1("concatenate", gone, x, axis=0), gone])
    assert sorted(n.op for n in lower(g)[0].nodes) == ["concatenate", "exp", "neg", "slice"]
    got = run(g, np.ones(4, np.float32))
    assert got[2].shape == (0,)
    np.testing.assert_array_equal(got[0], -np.ones(4, np.float32))
    np.testing.assert_array_equal(got[1], np.ones(4, np.float32))


# --- targets and the object file ---------------------------------------------------------------------

def _readelf_header(data: bytes, tmp_path) -> str:
    path = tmp_path / "m.cbx"
    path.write_bytes(data)
    return subprocess.run(["readelf", "-h", str(path)], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("target,machine", [("x86_64", "X86-64"), ("x86_64-v3", "X86-64"), ("x86_64-v4", "X86-64"),
                                            ("aarch64", "AArch64")])
def test_targets_objects(target: str, machine: str, tmp_path) -> None:
    """REL objects for the right machine, importing only what abi.h allows, meta naming cpu/features."""
    g = Graph("obj")
    x = g.add_input((16, 16), DType.f32, "x")
    g.set_outputs([g.add1("erf", g.add1("exp", x)), x])  # the copied output needs memcpy
    data = build(g, target)
    info = read_cbx(data)
    tgt = resolve_target(target)
    assert (info.meta.cpu, info.meta.features) == (tgt.cpu, tgt.meta_features)
    elf = elfmod.ElfFile.parse(data)
    assert elf.type == elfmod.ET_REL
    imports = {s.name for s in elf.symbols if s.shndx == 0 and s.name}
    allowed = {"memcpy", "memset", "__x86_return_thunk"} if tgt.is_x86 else {"memcpy", "memset"}
    assert imports <= allowed, imports
    if tgt.is_x86:
        assert "__x86_return_thunk" in imports  # fn_ret_thunk_extern took effect
    if shutil.which("readelf"):
        header = _readelf_header(data, tmp_path)
        assert "REL (Relocatable file)" in header and machine in header


@pytest.mark.parametrize("target,register", [("x86_64-v3", "%ymm"), ("x86_64-v4", "%zmm"), ("aarch64", "v0.4s")])
def test_elementwise_loops_vectorise(target: str, register: str) -> None:
    """f32 add and exp (a fused chain) compile to full-width vector code and call only the model's own
    node functions (kept out of line), nothing outside."""
    g = Graph("vec")
    x = g.add_input((64, 256), DType.f32, "x")
    g.set_outputs([g.add1("exp", g.add1("add", x, x))])
    asm = compile_assembly(lower(g, target)[1], resolve_target(target))
    assert register in asm
    callees = re.findall(r"^\s+(?:call|callq|bl)\s+(\S+)", asm, re.MULTILINE)
    assert callees and all(re.fullmatch(r"node\d+_\w+", c) for c in callees), callees


def test_unknown_target() -> None:
    with pytest.raises(ValueError, match="x86_64-v3"):
        resolve_target("riscv")


def test_lowered_graph_is_verified_after_the_passes() -> None:
    """lower() re-verifies the passes' output: fused groups, row kernels and epilogues node by node."""
    import dataclasses

    from cerebro.compiler.ir import verify
    from cerebro.frontends.jax import trace

    w, b = np.ones((8, 16), np.float32), np.ones(16, np.float32)
    traced = trace(lambda x: jax.nn.softmax(jnp.tanh(x @ w + b)) * 2.0 + x[:, :1], np.ones((4, 8), np.float32))
    graph = lower(traced.graph)[0]
    assert {"matmul", "row_kernel"} <= {node.op for node in graph.nodes}
    verify(graph, lowered=True)
    with pytest.raises(IRError, match="expects 2 inputs, got 3"):
        verify(graph)  # a matmul with an epilogue reads the bias too: no plain IR matmul
    matmul = next(node for node in graph.nodes if "epilogue" in node.attrs)
    inner = matmul.attrs["epilogue"].nodes[-1]
    inner.outputs[0] = dataclasses.replace(inner.outputs[0], shape=(4, 17))
    with pytest.raises(IRError, match="disagree with the op's rule"):
        verify(graph, lowered=True)


@pytest.mark.parametrize(("depth", "prefetches"), [(1024, True), (256, False)])
def test_streamed_weights_are_prefetched(depth: int, prefetches: bool) -> None:
    """A packed constant b of 2 MiB or more (codegen/matmul.py STREAMED_B_BYTES) is prefetched by the tiles
    (matmul.stream_fetches), a smaller one (it stays in cache) is not; both, split into parts or not, and
    with a row tail, compute the product."""
    g = Graph("streamed")
    x = g.add_input((20, depth), DType.f32, "x")
    w = RNG.standard_normal((depth, 520)).astype(np.float32)
    g.set_outputs([g.add1("matmul", x, g.const(w))])
    asm = compile_assembly(lower(g, "x86_64-v3")[1], resolve_target("x86_64-v3"))
    assert ("prefetcht0" in asm) == prefetches
    a = RNG.standard_normal((20, depth)).astype(np.float32)
    for threads in (1, 2):
        (got,) = runtime.load(build(g), threads=threads)(a)
        np.testing.assert_allclose(got, a.astype(np.float64) @ w, rtol=1e-4, atol=1e-3)
