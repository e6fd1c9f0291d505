"""A conv with a residual add and the same conv without it call one function, the core
(codegen/epilogue.share_residual): ResNet's last conv of a block and the first of the next. The core's
results are the same bits as each conv's own code, with and without the residual (one thread and two),
and JAX's result; a model with only one of the two forms keeps its own function."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen import epilogue
from cerebro.frontends.jax import trace

jax.config.update("jax_platforms", "cpu")
_RNG = np.random.default_rng(13)
C = 32  # 8x8 images: 16 Winograd tiles, too few for passes/winograd.py, so direct convs


def _normal(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (_RNG.standard_normal(shape) * scale).astype(np.float32)


W = [_normal(3, 3, C, C, scale=0.08) for _ in range(4)]
BIAS = [_normal(C, scale=0.1) for _ in range(4)]


def _conv(x: jnp.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> jnp.ndarray:
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
    return y if bias is None else y + bias


def blocks(x: jnp.ndarray) -> jnp.ndarray:
    """ReLU convs, the second and fourth with a residual (ResNet's basic blocks)."""
    a = jax.nn.relu(_conv(x, W[0]))
    b = jax.nn.relu(_conv(a, W[1]) + x)
    c = jax.nn.relu(_conv(b, W[2]))
    return jax.nn.relu(_conv(c, W[3]) + b)


def biased(x: jnp.ndarray) -> jnp.ndarray:
    """A bias before the residual (torchvision's folded batch norm), no activation after it."""
    a = _conv(x, W[0], BIAS[0])
    return _conv(a, W[1], BIAS[1]) + x


def folded(x: jnp.ndarray) -> jnp.ndarray:
    """torchvision's blocks: bias, residual, ReLU (three ops: outlined, epilogue.outlines) and bias, ReLU
    (inline), so the core's two forms run their epilogues at different points of a tile."""
    a = jax.nn.relu(_conv(x, W[0], BIAS[0]))
    b = jax.nn.relu(_conv(a, W[1], BIAS[1]) + x)
    return jax.nn.relu(_conv(b, W[2], BIAS[2]))


P = [_normal(1, 1, C, C, scale=0.2) for _ in range(2)]


def pointwise(x: jnp.ndarray) -> jnp.ndarray:
    """MobileNetV2's linear bottlenecks: 1x1 convs with bias, one with a residual (sizes as arguments)."""
    a = jax.nn.relu(_conv(x, W[0]))
    return jax.lax.conv_general_dilated(a, P[0], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=jax.lax.Precision.HIGHEST) + BIAS[0] + x, \
        jax.lax.conv_general_dilated(x, P[1], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST) + BIAS[1]


def one_form(x: jnp.ndarray) -> jnp.ndarray:
    a = jax.nn.relu(_conv(x, W[0]))
    return jax.nn.relu(_conv(a, W[1]))


def _defined(text: str) -> list[str]:
    return re.findall(r'^define [^\n]*@"?(node[^"(]*_conv)"?\(', text, re.M)


@pytest.mark.parametrize("fn, functions", [(blocks, 3), (biased, 3), (folded, 3), (pointwise, 4)])
def test_residual_and_plain_conv_share_one_core(monkeypatch: pytest.MonkeyPatch, fn, functions: int) -> None:
    """Two node functions that call one core (three functions, one with the core's code); the same bits
    as each conv's own function, one thread and two, and JAX's result within float32 summation error
    (288 terms of ~0.08 per conv: rtol 1e-5, atol 1e-5)."""
    x = _normal(2, 8, 8, C)
    traced = trace(fn, x, name=fn.__name__)
    _, text, _, _ = driver.lower(traced.graph)
    defined = _defined(text)
    assert len(defined) == functions and sum(".core." in name for name in defined) == 1, defined
    assert_shared_is_alone_and_jax(monkeypatch, traced, fn, x, _defined)


def assert_shared_is_alone_and_jax(monkeypatch: pytest.MonkeyPatch, traced, fn, x: np.ndarray, defined) -> None:
    """The build with a shared core gives each conv's own function's bits (built with sharing off), at one
    thread and two, and JAX's result within rtol/atol 1e-5."""
    shared = driver.build(traced.graph)
    got = [runtime.load(shared, threads=threads)(*traced.flatten_inputs(x)) for threads in (1, 2)]
    monkeypatch.setattr(epilogue, "residual_forms", lambda *args, **kwargs: None)
    _, text, _, _ = driver.lower(traced.graph)
    assert not any(".core." in name for name in defined(text))
    alone = driver.build(traced.graph)
    for threads, outs in zip((1, 2), got):
        for g, want in zip(outs, runtime.load(alone, threads=threads)(*traced.flatten_inputs(x))):
            np.testing.assert_array_equal(g, want)
    for g, want in zip(got[0], jax.tree_util.tree_leaves(jax.jit(fn)(x))):
        np.testing.assert_allclose(g, np.asarray(want), rtol=1e-5, atol=1e-5)


def test_one_form_keeps_its_own_function() -> None:
    """Two plain convs: no core, no residual code."""
    x = _normal(1, 8, 8, C)
    _, text, _, _ = driver.lower(trace(one_form, x, name="one_form").graph)
    assert not any(".core." in name for name in _defined(text)), _defined(text)


def test_core_is_optimised_once() -> None:
    """LLVM makes no second copy of the core for the plain form's null residual (function specialisation on
    a constant argument: the wrapper hides the null, epilogue._call_core)."""
    from cerebro.compiler import llvm_parts
    from cerebro.compiler.targets import resolve_target

    x = _normal(1, 8, 8, C)
    _, text, _, _ = driver.lower(trace(blocks, x, name="blocks").graph)
    target = resolve_target("host")
    module = llvm_parts.optimise_in_parts(text, target, target.target_machine(), processes=1)
    defined = [f.name for f in module.functions if not f.is_declaration]
    assert sum(".core." in name for name in defined) == 1, defined
