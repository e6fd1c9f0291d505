"""matmul_integer's dot-product kernels (codegen/int_dot.py) bit-exact against numpy in int64, per form:
pmaddwd run for x86_64-v3 (AVX2) and x86_64 (SSE4.2) where this CPU has their features; whichever form
dot_form picks for this host run as the host target (vpdpbusd on an AVX-512 VNNI CPU such as Zen 4, pmaddwd
on plain AVX2); vpdpbusd compiled for AVX-VNNI and AVX-512 VNNI, and run where this CPU has the feature (QEMU
7.2's TCG has neither, so elsewhere that code is checked in the assembly only); sdot run under qemu-aarch64
-cpu max (dotprod). Sizes cover single rows and columns, K below and past one step with odd tails, every
u8/i8 pairing and zero points across the whole range (the flips and corrections of the byte forms); the
portable form also compiles for a target without vector registers (x86_64-gpr) and is exact there."""

from __future__ import annotations

import dataclasses

import native
import numpy as np
import pytest
from test_aarch64_runtime import run_cbxrun, split_outputs

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen.int_dot import dot_form
from cerebro.compiler.ir import DType, Graph
from cerebro.compiler.targets import TARGETS, Target, resolve_target

# (M, K, N): one row/column, K under one step, K = 4*16 + 3, K not a multiple of 32 or 64, a 64-row band
SHAPES = [(1, 3, 1), (3, 17, 17), (17, 67, 5), (1, 131, 64), (64, 45, 3), (2, 200, 9)]
PAIRS = [(DType.u8, DType.i8), (DType.i8, DType.i8), (DType.u8, DType.u8), (DType.i8, DType.u8)]


def _with(base: str, feature: str) -> Target:
    """TARGETS[base] also compiling for `feature`, which its meta then requires (cbxrun refuses the model on a
    CPU without it instead of running into SIGILL)."""
    target = TARGETS[base]
    return dataclasses.replace(target, features=f"{target.features},{feature}",
                               meta_features=f"{target.meta_features},{feature}")


X86_VNNI = {"avx-vnni": _with("x86_64-v3", "+avxvnni"), "avx512-vnni": _with("x86_64-v4", "+avx512vnni")}
ARM_DOTPROD = _with("aarch64", "+dotprod")
HOST = resolve_target("host")
HOST_FORM = dot_form(HOST, 64).name


def _runs_here(target: Target) -> bool:
    """This CPU has every feature the target's .cbx requires (runtime.load refuses the model otherwise)."""
    have = set(HOST.features.split(",")) | set(HOST.meta_features.split(","))
    return set(target.meta_features.split(",")) <= have


def _exact(target: Target | str) -> None:
    graph, inputs, want = _cases()
    got = runtime.load(driver.build(graph, target))(*inputs)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def _cases(shapes: list[tuple[int, int, int]] = SHAPES, seed: int = 5) -> tuple[Graph, list[np.ndarray],
                                                                                  list[np.ndarray]]:
    """One graph holding every shape x pairing (b given as [N, K]), its inputs and the int64 reference."""
    rng = np.random.default_rng(seed)
    g = Graph("matmul_integer_forms")
    inputs, outputs, want = [], [], []
    for s, (m, k, n) in enumerate(shapes):
        for p, (da, db) in enumerate(PAIRS):
            arrays = [rng.integers(*_range(d), size=shape, endpoint=True).astype(d.numpy)
                      for d, shape in ((da, (m, k)), (db, (n, k)), (da, (m,)), (db, (n,)))]
            if s == 0:  # the extremes: the largest products of every sign
                arrays = [np.full_like(x, _range(d)[p % 2]) for x, d in zip(arrays, (da, db, da, db))]
                arrays[2][:] = _range(da)[1 - p % 2]
            values = [g.add_input(x.shape, d, f"x{s}_{p}_{i}")
                      for i, (x, d) in enumerate(zip(arrays, (da, db, da, db)))]
            outputs.append(g.add1("matmul_integer", *values, transpose_b=True))
            inputs += arrays
            a, bt, za, zb = (x.astype(np.int64) for x in arrays)
            want.append(((a - za[:, None]) @ (bt - zb[:, None]).T).astype(np.int32))
    g.set_outputs(outputs)
    return g, inputs, want


def _range(d: DType) -> tuple[int, int]:
    return (0, 255) if d is DType.u8 else (-128, 127)


def _assembly(target: Target) -> str:
    graph, _, _ = _cases(SHAPES[-1:])
    _, text, _, _ = driver.lower(graph, target)
    return driver.compile_assembly(text, target)


@pytest.mark.parametrize("name", ["x86_64-v3", "x86_64", "x86_64-gpr"])
def test_pmaddwd_form_is_exact(name):
    """On AVX2 and SSE vectors, and with general-purpose registers only (x86_64-gpr: the kernel's integer-only
    models, whose build refuses any FP/SIMD register)."""
    target = TARGETS[name]
    assert dot_form(target, 64).name == "pmaddwd"
    if not _runs_here(target):
        pytest.skip(f"this CPU lacks {name}'s features")
    _exact(target)


@pytest.mark.parametrize("form", [HOST_FORM])
def test_host_form_is_exact(form):
    """The host target's own pick (the test id names it: vpdpbusd on Zen 4's AVX-512 VNNI, pmaddwd on AVX2),
    its instruction in the host's code."""
    assert dot_form(HOST, 64).name == form and form in _assembly(HOST)
    _exact("host")


def test_avx2_uses_vpmaddwd():
    assert dot_form(TARGETS["x86_64-v3"], 64).name == "pmaddwd"
    assert "vpmaddwd\t%ymm" in _assembly(TARGETS["x86_64-v3"])


@pytest.mark.parametrize("name", X86_VNNI)
def test_vnni_targets_use_vpdpbusd(name):
    """vpdpbusd on ymm (AVX-VNNI) or zmm (AVX-512 VNNI) in the code, and exact where this CPU runs it."""
    target = X86_VNNI[name]
    assert dot_form(target, 64).name == "vpdpbusd"
    register = "%zmm" if name == "avx512-vnni" else "%ymm"
    assert f"vpdpbusd\t{register}" in _assembly(target)
    if _runs_here(target):  # Zen 4 has AVX-512 VNNI, not AVX-VNNI
        _exact(target)


def test_sdot_form_is_exact_under_qemu(tmp_path):
    """aarch64 with dotprod: sdot in the code, and the results bit-exact under qemu -cpu max."""
    assert dot_form(ARM_DOTPROD, 64).name == "sdot"
    assert "sdot\tv" in _assembly(ARM_DOTPROD)
    runner = native.aarch64_runner(tmp_path)
    if runner[0] == native.QEMU:
        runner = [native.QEMU, "-cpu", "max", *runner[1:]]
    graph, inputs, want = _cases()
    result = run_cbxrun(runner, driver.build(graph, ARM_DOTPROD), inputs, tmp_path)
    assert result.returncode == 0, result.stderr
    for g, w in zip(split_outputs((tmp_path / "out.bin").read_bytes(), want), want):
        np.testing.assert_array_equal(g, w)
