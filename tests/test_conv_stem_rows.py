"""A stem conv (few input channels) whose output channels fill part of the register tile takes as many more
rows as leave its pixel walk no short block (codegen/conv.py dense_rows): one tile body for LLVM instead of
two (the benchmark cnn's first conv: 28 = 4 x 7, not 3 x 6 + 2 x 5). Each pixel sums in the same order,
so the same bits as with the register tile's own rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_cnn_kernels import _lax_conv
from test_codegen_kernels import EPS32, HOST, _module, _random, one_node, run

from cerebro.compiler.codegen import conv
from cerebro.compiler.targets import micro_tile

AVX512 = dataclasses.replace(HOST, vector_width=16)
CASES = [
    # x shape (unpadded: after passes/explicit_pad.py), w shape, strides, rows on a 16-lane target
    ((1, 30, 30, 1), (3, 3, 1, 32), (1, 1), 7),  # the benchmark cnn's first conv: 28 = 4 x 7
    ((2, 33, 33, 3), (3, 3, 3, 16), (2, 2), 8),  # a stride-2 stem to 16 channels: 16 = 2 x 8
    ((1, 30, 30, 1), (3, 3, 1, 64), (1, 1), 6),  # 64 channels fill the tile's vectors: its own rows
    ((1, 30, 30, 16), (3, 3, 16, 32), (1, 1), 12),  # 16 input channels, 32 outputs (half the vectors): 12 x 2
    ((1, 30, 30, 16), (3, 3, 16, 48), (1, 1), 6),  # 16 input channels, 48 outputs: the ci loop outweighs the rows
    ((1, 25, 25, 1), (3, 3, 1, 32), (1, 1), 6),  # 23 rows: no count up to the accumulators divides it
]


@pytest.mark.parametrize("x_shape,w_shape,strides,rows", CASES)
def test_stem_rows(x_shape, w_shape, strides, rows):
    node = one_node("conv", [np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32)], strides=strides,
                    padding=((0, 0), (0, 0)))
    assert conv.dense_rows(node, AVX512) == rows
    assert conv.dense_rows(node, dataclasses.replace(HOST, vector_width=8)) == 6  # AVX2: 16+ channels fill 6 x 2


@pytest.mark.skipif(HOST.vector_width < 16, reason="the 16-lane tile runs on AVX-512 hosts only")
@pytest.mark.parametrize("x_shape,w_shape,strides,rows", CASES[:2])
def test_one_tile_body_same_bits(monkeypatch: pytest.MonkeyPatch, x_shape, w_shape, strides, rows):
    rng = np.random.default_rng(sum(x_shape))
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    node = one_node("conv", [x, w], strides=strides, padding=((0, 0), (0, 0)))
    assert '"ci.body.1"' not in str(_module(node, HOST))  # one tile body: one ci loop
    (more,) = run(node, [x, w])
    monkeypatch.setattr(conv, "dense_rows", lambda node, target: micro_tile(target)[0])
    assert '"ci.body.1"' in str(_module(node, HOST))  # 6 rows: blocks of 6 and a tail or blocks of 5
    (six,) = run(node, [x, w])
    np.testing.assert_array_equal(more, six)
    padding = ((0, 0), (0, 0))
    want = _lax_conv(x, w, strides, padding, (1, 1), (1, 1), 1)
    bound = 2 * int(np.prod(w_shape[:-1])) * EPS32 * _lax_conv(np.abs(x), np.abs(w), strides, padding, (1, 1),
                                                                (1, 1), 1)
    assert np.all(np.abs(more - want) <= bound + 1e-30)
