"""f32 transcendentals (compiler/codegen/mathfn.py) over the whole float range: every 4093rd bit pattern
(both signs, subnormals, inf and nan patterns included), dense sweeps across each formula's breakpoints,
and the IEEE special values, against numpy/scipy in float64 rounded to float32.

Bounds: 2e-6 relative (mathfn's promise; the denominator is at least the smallest normal, so
subnormal results are held to an absolute 2e-6 * 1.2e-38) and a per-function ulp bound a little
above what was measured; nan/inf/signed zero exactly. Run on the host target, on x86-64 also on
x86-64-v2, which has no FMA (fmuladd becomes a multiply and an add), and on aarch64 (qemu)."""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.special
from native import aarch64_runner

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.driver import compile_assembly, lower
from cerebro.compiler.ir import DType, Graph, Value
from cerebro.compiler.targets import resolve_target

REFERENCES = {"exp": np.exp, "expm1": np.expm1, "tanh": np.tanh, "logistic": scipy.special.expit,
              "erf": scipy.special.erf, "log": np.log, "log1p": np.log1p}
# max error in ulps of the f32-rounded reference; measured on x86-64 (v2 and AVX-512): exp 1, expm1 2,
# tanh 5 (4 with FMA), logistic 2, erf 5 (a rational like tanh's), log 1, log1p 2
ULPS = {"exp": 2, "expm1": 3, "tanh": 6, "logistic": 3, "erf": 6, "log": 2, "log1p": 3}
RELATIVE = 2e-6
# where each f32 formula switches path or saturates: swept densely on both sides
BREAKPOINTS = {
    "exp": [-103.97, -87.34, 0.0, 0.3466, 88.72],
    "expm1": [-20.0, -17.33, -0.3466, 0.0, 0.3466, 16.64, 17.33, 88.72],
    "tanh": [-7.905, -4e-4, 0.0, 4e-4, 0.55, 7.905, 9.01],
    "logistic": [-103.97, -87.34, 0.0, 16.64],
    "erf": [-4.0, -1.0, 0.0, 1.0, 3.92, 4.0],
    "log": [1e-38, 0.7071, 1.0, 1.4142],
    "log1p": [-0.9999, -0.2929, 0.0, 0.4142],
}
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-45, -1e-45, 1e-40, -1e-40, 1.1754944e-38,
                     -1.1754944e-38, 3.4028235e38, -3.4028235e38, 1.0, -1.0], np.float32)
TARGETS = ["host", "x86_64"] if platform.machine() in ("x86_64", "AMD64") else ["host"]


def _points(op: str) -> np.ndarray:
    patterns = np.arange(0, 2**32, 4093, dtype=np.uint64).astype(np.uint32).view(np.float32)
    near = [np.linspace(p - 0.05 * max(abs(p), 1.0), p + 0.05 * max(abs(p), 1.0), 20_001, dtype=np.float64)
            for p in BREAKPOINTS[op]]
    return np.concatenate([patterns, SPECIALS, *(n.astype(np.float32) for n in near)])


def _ulp(x: np.ndarray) -> np.ndarray:
    """Spacing of f32 at |x| (the smallest subnormal at 0)."""
    return np.spacing(np.abs(x).astype(np.float32)).astype(np.float64)


def _sweep_graph() -> tuple[Graph, list[np.ndarray]]:
    g = Graph("mathfn")
    points = [_points(op) for op in REFERENCES]
    outs = [g.add1(op, g.add_input(x.shape, DType.f32, op)) for op, x in zip(REFERENCES, points)]
    g.set_outputs(outs, list(REFERENCES))
    return g, points


@pytest.mark.parametrize("target", TARGETS)
def test_f32_whole_range(target: str) -> None:
    g, points = _sweep_graph()
    _check(points, runtime.load(build(g, target=target))(*points))


def test_f32_whole_range_aarch64(tmp_path: Path) -> None:
    """The same sweeps compiled for aarch64 (NEON) and run by cbxrun, under qemu off aarch64 hosts."""
    runner = aarch64_runner(tmp_path)
    g, points = _sweep_graph()
    model = tmp_path / "mathfn.cbx"
    model.write_bytes(build(g, target="aarch64"))
    paths = []
    for op, x in zip(REFERENCES, points):
        paths.append(tmp_path / f"{op}.bin")
        paths[-1].write_bytes(x.astype("<f4").tobytes())
    result = subprocess.run([*runner, str(model), *map(str, paths), "-o", str(tmp_path / "out.bin")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    flat = np.frombuffer((tmp_path / "out.bin").read_bytes(), "<f4")
    assert flat.size == sum(x.size for x in points)
    _check(points, np.split(flat, np.cumsum([x.size for x in points])[:-1]))


def _check(points: list[np.ndarray], got: list[np.ndarray]) -> None:
    tiny = np.finfo(np.float32).tiny
    failures = []
    for (op, ref), x, y in zip(REFERENCES.items(), points, got):
        with np.errstate(all="ignore"):  # signalling-nan patterns warn when widened
            want = ref(x.astype(np.float64)).astype(np.float32).astype(np.float64)
            y = y.astype(np.float64)
        assert np.array_equal(np.isnan(y), np.isnan(want)), f"{op}: nan at {x[np.isnan(y) != np.isnan(want)][:5]}"
        infinite = np.isinf(want) | np.isinf(y)
        wrong_inf = y[infinite] != want[infinite]
        assert not wrong_inf.any(), f"{op}: inf at {x[infinite][wrong_inf][:5]}"
        zeros = want == 0
        bad_sign = np.signbit(y[zeros]) != np.signbit(want[zeros])
        assert not bad_sign.any(), f"{op}: sign of zero at {x[zeros][bad_sign][:5]}"
        finite = np.isfinite(want) & np.isfinite(y)
        err = np.abs(y[finite] - want[finite])
        rel = err / np.maximum(np.abs(want[finite]), tiny)
        ulps = err / _ulp(want[finite])
        worst = x[finite][np.argmax(ulps)]
        if rel.max() > RELATIVE or ulps.max() > ULPS[op]:
            failures.append(f"{op}: max rel {rel.max():.3g}, max {ulps.max():.1f} ulp (at x={worst!r})")
    assert not failures, "; ".join(failures)


@pytest.mark.parametrize("target,vector,scalar", [("x86_64-v4", r"vdivps\s+%zmm", r"v?divss"),
                                                  ("x86_64-v3", r"vdivps\s+%ymm", r"v?divss"),
                                                  ("aarch64", r"fdiv\s+v\d+\.4s", r"fdiv\s+s\d+")])
def test_gelu_epilogue_vectorises(target: str, vector: str, scalar: str) -> None:
    """A matmul with jax.nn.gelu's tanh chain fused as its epilogue (64-column tiles plus a 16-column
    tail): tanh's one division runs on full vectors, never one lane at a time."""
    g = Graph("gelu")
    a, w = g.add_input((8, 32), DType.f32, "a"), g.add_input((32, 80), DType.f32, "w")
    h = g.add1("matmul", a, w)
    inner = g.add1("mul", g.add1("add", h, g.add1("mul", g.add1("mul", g.add1("mul", h, h), h), _scalar(g, 0.044715))),
                   _scalar(g, 0.7978845608))
    g.set_outputs([g.add1("mul", g.add1("mul", h, _scalar(g, 0.5)), g.add1("add", g.add1("tanh", inner),
                                                                          _scalar(g, 1.0)))])
    optimised, text, _, _ = lower(g, target)
    matmuls = [n for n in optimised.nodes if n.op == "matmul"]
    assert matmuls and "tanh" in [n.op for n in matmuls[0].attrs["epilogue"].nodes]
    asm = compile_assembly(text, resolve_target(target))
    assert re.search(vector, asm), f"{target}: no vector division"
    assert not re.search(scalar, asm), f"{target}: scalar division in the epilogue"


def _scalar(g: Graph, value: float) -> Value:
    return g.const(np.full((1, 1), value, np.float32))


def test_f32_erf_is_one_short_rational() -> None:
    """GELU's erf runs on every element of a transformer's widest matmul, as its epilogue: the f32 form is
    one rational (x*P(x^2)/Q(x^2), one division, no exp) of at most 20 IR instructions per vector; the
    two-polynomial form it replaced was 33 (2 ulp instead of 5: _check holds both to the same bounds)."""
    from llvmlite import ir

    from cerebro.compiler.codegen.mathfn import erf

    vector = ir.VectorType(ir.FloatType(), 16)
    fn = ir.Function(ir.Module("erf"), ir.FunctionType(vector, [vector]), "erf")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    b.ret(erf(b, fn.args[0]))
    body = [line for line in str(fn).splitlines() if " = " in line]
    assert len(body) <= 20, "\n".join(body)
    assert sum(" fdiv " in line for line in body) == 1


AVX512 = platform.machine() in ("x86_64", "AMD64") and "+avx512f" in resolve_target("host").features.split(",")


@pytest.mark.skipif(not AVX512, reason="runs AVX-512 code")
def test_f32_exp_scales_with_vscalef_same_bits() -> None:
    """On AVX-512, f32 exp applies 2**n with one vscalefps (mathfn.use_target): the same bits as the two
    multiplies of every other target (x86-64-v3 here: FMA too, so the same polynomial), subnormal results,
    overflow and nan included; targets without it never call libm's ldexpf."""
    g = Graph("exp")
    x = np.concatenate([_points("exp"), np.linspace(-110.0, 95.0, 400_001, dtype=np.float32)])
    g.set_outputs([g.add1("exp", g.add_input(x.shape, DType.f32, "x"))])
    scaled, plain = (runtime.load(build(g, target=t))(x)[0] for t in ("x86_64-v4", "x86_64-v3"))
    assert np.array_equal(scaled.view(np.uint32), plain.view(np.uint32))
    for target, scales in (("x86_64-v4", True), ("x86_64-v3", False), ("x86_64", False), ("aarch64", False)):
        asm = compile_assembly(lower(g, target)[1], resolve_target(target))
        assert ("vscalefps" in asm) == scales and "ldexp" not in asm, target
