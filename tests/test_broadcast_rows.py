"""Elementwise chains broadcasting a per-channel ([N,1,1,C], [C]) or per-row ([N,H,W,1]) operand over the
rows of a channels-last tensor (codegen/elementwise.row_vectors: explicit vectors along the row), against
NumPy's float32 arithmetic: the same single rounding per op, so bits are equal."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.special

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.driver import compile_assembly, lower
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.targets import resolve_target

RNG = np.random.default_rng(0)
TARGETS = ["host", "x86_64-v3", "x86_64"]  # 16, 8 and 4 lanes on an AVX-512 host: each row's tail differs


def _se_graph(x_shape: tuple[int, ...], gate_shape: tuple[int, ...]) -> Graph:
    g = Graph("se")
    gate = g.add_input(gate_shape, DType.f32, "gate")
    x = g.add_input(x_shape, DType.f32, "x")
    g.set_outputs([g.add1("mul", gate, x)])
    return g


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("channels", [17, 31, 40, 120, 1152])
def test_gate_times_activation(channels: int, target: str) -> None:
    """A squeeze-excitation scale, batch 2: [2,1,1,C] * [2,H,W,C], odd C (full vectors plus 8/4/2/1-lane
    pieces), exact."""
    gate = RNG.uniform(0.0, 1.0, (2, 1, 1, channels)).astype(np.float32)
    x = RNG.normal(size=(2, 5, 7, channels)).astype(np.float32)
    (got,) = runtime.load(build(_se_graph(x.shape, gate.shape), target))(gate, x)
    np.testing.assert_array_equal(got, gate * x)


@pytest.mark.parametrize("target", TARGETS[:2])
def test_chain_with_bias_row_scalar_and_literal(target: str) -> None:
    """A fused chain: relu(x * gate + bias) / s - y, gate per channel, bias a [C] row, s one per row, the 0 a
    literal; then logistic (the rule's vector form, compared to scipy at 2e-6 relative)."""
    c = 120
    x = RNG.normal(size=(2, 6, 5, c)).astype(np.float32)
    y = RNG.normal(size=x.shape).astype(np.float32)
    gate = RNG.uniform(0.0, 1.0, (2, 1, 1, c)).astype(np.float32)
    bias = RNG.normal(size=(c,)).astype(np.float32)
    s = RNG.uniform(0.5, 2.0, (2, 6, 5, 1)).astype(np.float32)
    g = Graph("chain")
    xi, yi = g.add_input(x.shape, DType.f32, "x"), g.add_input(y.shape, DType.f32, "y")
    gi, bi, si = (g.add_input(v.shape, DType.f32, n) for v, n in ((gate, "gate"), (bias, "bias"), (s, "s")))
    scaled = g.add1("add", g.add1("mul", xi, gi), g.add1("broadcast_in_dim", bi, shape=x.shape,
                                                           broadcast_dimensions=(3,)))
    out = g.add1("sub", g.add1("div", g.add1("max", scaled, g.const(np.zeros((1, 1, 1, 1), np.float32))), si), yi)
    g.set_outputs([out, g.add1("logistic", g.add1("mul", xi, gi))])
    assert [n.op for n in lower(g, target)[0].nodes].count("fused_elementwise") == 2  # one loop per output
    got, sig = runtime.load(build(g, target))(x, y, gate, bias, s)
    np.testing.assert_array_equal(got, np.maximum(x * gate + bias, np.float32(0)) / s - y)
    np.testing.assert_allclose(sig, scipy.special.expit((x * gate).astype(np.float64)), rtol=2e-6)


def test_rows_are_vector_code_not_gathers() -> None:
    """EfficientNet-B0's 112x112x32 scale for AVX-512: every multiply a full zmm one, no gather or scatter.
    Left to LLVM, its 32-element rows were unrolled whole and the row loop vectorised with 96 gathers and
    scatters (0.34 ms, ~10x the time of this code)."""
    g, text, _, _ = lower(_se_graph((1, 112, 112, 32), (1, 1, 1, 32)), "x86_64-v4")
    asm = compile_assembly(text, resolve_target("x86_64-v4"))
    body = asm.split("node0_mul:")[1].split(".cfi_endproc")[0]
    assert not re.findall(r"gather|scatter", body)
    multiplies = re.findall(r"vmul[ps]s\s+[^\n]*", body)
    assert multiplies and all("zmm" in m for m in multiplies), multiplies
