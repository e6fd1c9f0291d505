"""An unpadded dense conv (a stem after passes/explicit_pad.py) runs each tile row's kernel columns and
input channels as one ci loop (codegen/conv.py _column_run): a 7x7 kernel with Cin 3 is 7 loops of 21,
not 49 of 3. Same multiply-adds in the same order, so the same bits as the loop per kernel column."""

from __future__ import annotations

import numpy as np
import pytest
from test_cnn_kernels import _lax_conv
from test_codegen_kernels import EPS32, HOST, _module, _random, one_node, run

from cerebro.compiler.codegen import conv

CASES = [
    # x shape, w shape, strides, rhs dilation, kernel loops left (their names)
    ((2, 23, 21, 3), (7, 7, 3, 8), (2, 2), (1, 1), ["kp0"]),  # ResNet's stem
    ((1, 9, 10, 5), (3, 3, 5, 20), (1, 1), (1, 1), ["kp0"]),  # output channels 16 + 4
    ((2, 30, 6), (5, 6, 24), (1,), (1,), []),  # 1-D: one ci loop per tile
    ((1, 9, 11, 4), (3, 3, 4, 8), (1, 1), (1, 2), ["kp0", "kp1"]),  # dilated columns are not contiguous
]


@pytest.mark.parametrize("x_shape,w_shape,strides,rhs,loops", CASES)
def test_kernel_columns_run_with_the_channels(monkeypatch: pytest.MonkeyPatch, x_shape, w_shape, strides, rhs,
                                             loops):
    rng = np.random.default_rng(sum(x_shape))
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    spatial = len(strides)
    node = one_node("conv", [x, w], strides=strides, padding=((0, 0),) * spatial, rhs_dilation=rhs)
    text = str(_module(node, HOST))
    assert [f"kp{i}" for i in range(spatial) if f'"kp{i}.body"' in text] == loops
    (merged,) = run(node, [x, w])
    monkeypatch.setattr(conv, "_column_run", lambda _: 1)
    assert f'"kp{spatial - 1}.body"' in str(_module(node, HOST))
    (per_column,) = run(node, [x, w])
    np.testing.assert_array_equal(merged, per_column)
    padding = ((0, 0),) * spatial
    want = _lax_conv(x, w, strides, padding, (1,) * spatial, rhs, 1)
    bound = 2 * int(np.prod(w_shape[:-1])) * EPS32 * _lax_conv(np.abs(x), np.abs(w), strides, padding,
                                                                (1,) * spatial, rhs, 1)
    assert np.all(np.abs(merged - want) <= bound + 1e-30)
