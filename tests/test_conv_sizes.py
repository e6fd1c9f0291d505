"""Strided dense convs take their channel counts and spatial sizes as arguments (codegen/conv.py
runtime_spatial): ResNet's stride-2 convs of one form at other sizes are one function, with the same bits
as with constant sizes, and JAX's result."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.codegen import SIZES
from cerebro.frontends.jax import trace

jax.config.update("jax_platforms", "cpu")
_RNG = np.random.default_rng(12)


def _normal(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (_RNG.standard_normal(shape) * scale).astype(np.float32)


# 3x3/2 padded (Cin from passes/explicit_pad.MAX_CHANNELS, so the padding stays in the conv), weights
# bigger than an image: 14x14 -> 7x7 whose parts split the pixels, 10x10 -> 5x5 the output channels
# (partition.channels_first, a run-time choice here); both 49 and 25 pixels are blocks of 6 then 5.
STRIDED = {128: _normal(3, 3, 128, 64, scale=0.05), 144: _normal(3, 3, 144, 128, scale=0.05)}
# 1x1/2 downsamples, images bigger than the weights
DOWNSAMPLE = {32: _normal(1, 1, 32, 48, scale=0.2), 40: _normal(1, 1, 40, 48, scale=0.2)}


def _conv(x: jnp.ndarray, w: np.ndarray, padding: str) -> jnp.ndarray:
    return jax.lax.conv_general_dilated(x, w, (2, 2), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=jax.lax.Precision.HIGHEST)


def strided_stages(a: jnp.ndarray, b: jnp.ndarray, c: jnp.ndarray, d: jnp.ndarray) -> list[jnp.ndarray]:
    return [jax.nn.relu(_conv(a, STRIDED[128], ((1, 1), (1, 1)))),
            jax.nn.relu(_conv(b, STRIDED[144], ((1, 1), (1, 1)))),
            _conv(c, DOWNSAMPLE[32], "VALID"), _conv(d, DOWNSAMPLE[40], "VALID")]


INPUTS = [(1, 14, 14, 128), (1, 10, 10, 144), (1, 14, 14, 32), (1, 10, 9, 40)]


def _conv_functions(text: str) -> list[str]:
    return re.findall(r'^define [^\n]*@"?(node\d+_conv)"?\(', text, re.M)


def test_strided_convs_at_two_sizes_share_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four convs of two forms are two functions (four with constant sizes); the same bits one thread and
    two (the parts' shares and the channel-or-pixel split are computed from the arguments), and JAX's
    result within float32 summation error (1152 terms of ~0.05: rtol 1e-5, atol 1e-4)."""
    xs = [_normal(*shape) for shape in INPUTS]
    traced = trace(strided_stages, *xs, name="strided_stages")
    _, text, _, _ = driver.lower(traced.graph)
    assert len(_conv_functions(text)) == 2, _conv_functions(text)
    shared = driver.build(traced.graph)
    got = [runtime.load(shared, threads=threads)(*traced.flatten_inputs(*xs)) for threads in (1, 2)]
    monkeypatch.delitem(SIZES, "conv")
    _, text, _, _ = driver.lower(traced.graph)
    assert len(_conv_functions(text)) == 4, _conv_functions(text)
    constants = driver.build(traced.graph)
    alone = [runtime.load(constants, threads=threads)(*traced.flatten_inputs(*xs)) for threads in (1, 2)]
    for outs, want_bits in zip(got, alone):
        for g, a in zip(outs, want_bits):
            np.testing.assert_array_equal(g, a)
    for g, w in zip(alone[0], jax.jit(strided_stages)(*xs)):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-5, atol=1e-4)

