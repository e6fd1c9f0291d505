"""Which targets stream a conv's big weights (targets.streams_conv_weights): every target but a Zen host,
whose L3 a core reads fast enough that the streamed variants only cost a kernel each (docs/benchmarks.md,
Session 22). The streamed code itself is checked on every host in test_codegen_threads.py."""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np
import pytest

from cerebro.compiler.codegen import conv, winograd
from cerebro.compiler.driver import lower
from cerebro.compiler.targets import resolve_target, streams_conv_weights
from cerebro.frontends.jax.tracer import trace

HOST = resolve_target("host")
ZEN4 = dataclasses.replace(HOST, cpu="znver4")
XEON = dataclasses.replace(HOST, cpu="sapphirerapids")
_CONV = functools.partial(jax.lax.conv_general_dilated, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_every_target_streams_but_a_zen_host() -> None:
    assert not streams_conv_weights(ZEN4)
    assert streams_conv_weights(XEON)
    assert streams_conv_weights(resolve_target("x86_64-v4"))  # a named target: the streamed code, wherever it runs
    assert streams_conv_weights(resolve_target("aarch64"))


def _node(x_shape: tuple[int, ...], k_shape: tuple[int, ...], stride: int, op: str):
    rng = np.random.default_rng(3)
    k = (rng.normal(size=k_shape) / 30).astype(np.float32)
    x = rng.normal(size=x_shape).astype(np.float32)
    graph = trace(lambda x: _CONV(x, k, (stride, stride), "SAME"), x).graph
    (node,) = [n for n in lower(graph, HOST)[0].nodes if n.op == op]
    return node


@pytest.mark.skipif(HOST.vector_width < 16, reason="ResNet18's shapes stream as measured on AVX-512 hosts")
def test_resnet18_layers_stream_on_a_xeon_not_on_zen() -> None:
    """ResNet18's 3x3/2 conv 256 -> 512 at 14 x 14 (4.7 MB of weights, 49 outputs) and its 14 x 14 Winograd
    convs (4 MiB transformed kernel): streamed on a Xeon, plain (sharing the smaller layers' kernels) on Zen 4."""
    strided = _node((1, 14, 14, 256), (3, 3, 256, 512), 2, "conv")
    assert conv.streams_weights(strided, XEON) and conv.walks_weights(strided, XEON)
    assert not conv.streams_weights(strided, ZEN4) and not conv.walks_weights(strided, ZEN4)
    geometry = winograd.geometry(_node((1, 14, 14, 256), (3, 3, 256, 256), 1, "winograd_conv"))
    assert winograd.kernel_streams(geometry, XEON) and not winograd.kernel_streams(geometry, ZEN4)
