"""vpdpbusd run, not only read in the assembly (tests/test_matmul_int.py checks it there, for hosts without
it), on a CPU that has it (Zen 4, Ice Lake and later: AVX-512 VNNI; Alder Lake, Zen 5: AVX-VNNI): the
u8 x s8 reading, the operand flips and zero-point sums of codegen/int_dot.py bit-exact against numpy in
int64, and a static-int8 MLP bit-identical to its portable (SSE pmaddwd) build. Skipped elsewhere."""

from __future__ import annotations

import jax
import llvmlite.binding as llvm
import numpy as np
import pytest
from test_matmul_int import X86_VNNI, _cases

import cerebro
from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen.int_dot import dot_form
from cerebro.compiler.targets import TARGETS, resolve_target


def _host_lacks(target) -> list[str]:
    resolve_target("x86_64")  # initialises LLVM
    flags = llvm.get_host_cpu_features()
    return [f for f in target.meta_features.split(",") if f.startswith("+") and not flags.get(f[1:])]


@pytest.fixture(params=list(X86_VNNI))
def vnni(request):
    target = X86_VNNI[request.param]
    missing = _host_lacks(target)
    if missing:
        pytest.skip(f"this CPU lacks {','.join(missing)}")
    assert dot_form(target, 64).name == "vpdpbusd"
    return target


def test_vpdpbusd_matmul_integer_is_exact(vnni):
    graph, inputs, want = _cases()
    got = runtime.load(driver.build(graph, vnni))(*inputs)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_static_int8_mlp_same_bits_as_the_portable_form(vnni, monkeypatch):
    rng = np.random.default_rng(23)
    sizes = (128, 96, 64, 10)
    params = [((rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32), (rng.standard_normal(o) * 0.1
                                                                               ).astype(np.float32))
              for i, o in zip(sizes, sizes[1:])]

    def mlp(x):
        for k, (w, b) in enumerate(params):
            x = x @ w + b
            x = jax.nn.relu(x) if k < len(params) - 1 else x
        return x
    calibration = [rng.standard_normal((1, 128)).astype(np.float32) for _ in range(16)]
    inputs = [(rng.standard_normal((1, 128)) * 2).astype(np.float32) for _ in range(16)]
    monkeypatch.setitem(TARGETS, "vnni", vnni)
    outs = {}
    for name in ("vnni", "x86_64"):
        model = cerebro.compile(mlp, name, quantize="int8", calibration=calibration, cache=False)
        outs[name] = np.concatenate([np.asarray(model(x)) for x in inputs])
    np.testing.assert_array_equal(outs["vnni"], outs["x86_64"])
