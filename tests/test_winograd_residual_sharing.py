"""A Winograd conv with a residual add and the same Winograd conv without it call one function, the core
(codegen/epilogue.share_residual, as direct convs do: tests/test_conv_residual_sharing.py): ResNet's last
conv of a block and the first of the next. The core's results are the same bits as each conv's own code,
with and without the residual (one thread and two), and JAX's result."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cerebro.compiler.passes.winograd as winograd_pass
from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen import epilogue
from cerebro.compiler.targets import resolve_target
from cerebro.frontends.jax import trace

jax.config.update("jax_platforms", "cpu")
_RNG = np.random.default_rng(14)
C = 2 * winograd_pass.columns(resolve_target("host"))  # two column blocks of the host's Winograd conv
SIZE = 20  # 20x20 images: enough tiles for passes/winograd.py


def _weights() -> np.ndarray:
    return (_RNG.standard_normal((3, 3, C, C)) / np.sqrt(9 * C)).astype(np.float32)


W = [_weights() for _ in range(3)]
BIAS = [(_RNG.standard_normal(C) * 0.1).astype(np.float32) for _ in range(3)]


def _conv(x: jnp.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> jnp.ndarray:
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)
    return y if bias is None else y + bias


def blocks(x: jnp.ndarray) -> jnp.ndarray:
    """ResNet's basic block and the next block's first conv: ReLU, residual + ReLU, ReLU."""
    a = jax.nn.relu(_conv(x, W[0]))
    b = jax.nn.relu(_conv(a, W[1]) + x)
    return jax.nn.relu(_conv(b, W[2]))


def biased(x: jnp.ndarray) -> jnp.ndarray:
    """torchvision's folded batch norm: bias + ReLU, and bias + residual + ReLU."""
    a = jax.nn.relu(_conv(x, W[0], BIAS[0]))
    return jax.nn.relu(_conv(a, W[1], BIAS[1]) + x)


def _defined(text: str) -> list[str]:
    return re.findall(r'^define [^\n]*@"?(node[^"(]*_winograd_conv)"?\(', text, re.M)


@pytest.mark.parametrize("fn", [blocks, biased])
def test_residual_and_plain_winograd_share_one_core(monkeypatch: pytest.MonkeyPatch, fn) -> None:
    """The two Winograd node functions (the plain convs' one and the residual conv's) call one core; the same
    bits as each conv's own function, one thread and two, and JAX's result within 1e-5 (Winograd's float32
    error: within 16 eps of the largest output, tests/test_winograd.py)."""
    x = np.abs(_RNG.standard_normal((1, SIZE, SIZE, C))).astype(np.float32)
    traced = trace(fn, x, name=fn.__name__)
    _, text, _, _ = driver.lower(traced.graph)
    defined = _defined(text)
    assert len(defined) == 3 and sum(".core." in name for name in defined) == 1, defined
    shared = driver.build(traced.graph)
    got = [runtime.load(shared, threads=threads)(*traced.flatten_inputs(x)) for threads in (1, 2)]
    monkeypatch.setattr(epilogue, "residual_forms", lambda *args, **kwargs: None)
    _, text, _, _ = driver.lower(traced.graph)
    assert not any(".core." in name for name in _defined(text)) and len(_defined(text)) == 2
    alone = driver.build(traced.graph)
    for threads, outs in zip((1, 2), got):
        for g, want in zip(outs, runtime.load(alone, threads=threads)(*traced.flatten_inputs(x))):
            np.testing.assert_array_equal(g, want)
    for g, want in zip(got[0], jax.tree_util.tree_leaves(jax.jit(fn)(x))):
        np.testing.assert_allclose(g, np.asarray(want), rtol=1e-5, atol=1e-5)
