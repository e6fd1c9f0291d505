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
from test_conv_residual_sharing import _conv, assert_shared_is_alone_and_jax

import cerebro.compiler.passes.winograd as winograd_pass
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
    assert_shared_is_alone_and_jax(monkeypatch, traced, fn, x, _defined)
    monkeypatch.setattr(epilogue, "residual_forms", lambda *args, **kwargs: None)
    assert len(_defined(driver.lower(traced.graph)[1])) == 2
