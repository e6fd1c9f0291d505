"""Fewer, smaller node functions for the same bits: softmaxes differing only in their lead rows share one
function (codegen/rows.py takes them as an argument), and a deep matmul's K panels are one loop over one
copy of its tiles (codegen/matmul.py)."""

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
_RNG = np.random.default_rng(33)
EPS32 = np.finfo(np.float32).eps
NODE_FUNCTION = re.compile(r'^define [^\n]*@"?(node\d+_\w+)"?\([^\n]*\n(.*?)^}', re.S | re.M)


def _normal(*shape: int) -> np.ndarray:
    return (_RNG.standard_normal(shape) * 3).astype(np.float32)


def _functions(graph: object, op: str) -> list[str]:
    """Bodies of graph's node functions of one op, in its LLVM IR."""
    _, text, _, _ = driver.lower(graph)
    return [body for name, body in NODE_FUNCTION.findall(text) if name.endswith(f"_{op}")]


def _softmax64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def softmaxes(a: jnp.ndarray, b: jnp.ndarray, c: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
    """Attention-like softmaxes over windows x heads x 7 rows of 13: lead rows 6x3, 2x5 and 1x4 (7 rows:
    one block of 4 and 3 leftover rows each)."""
    return tuple(jax.nn.softmax(x, axis=-1) for x in (a, b, c))


def test_softmaxes_differing_in_lead_rows_share_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    xs = _normal(6, 3, 7, 13), _normal(2, 5, 7, 13), _normal(1, 4, 7, 13)
    traced = trace(softmaxes, *xs, name="softmaxes")
    assert len(_functions(traced.graph, "row_kernel")) == 1
    shared = runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(*xs))
    monkeypatch.delitem(SIZES, "row_kernel")
    assert len(_functions(traced.graph, "row_kernel")) == 3
    alone = runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(*xs))
    for got, constant, x in zip(shared, alone, xs):
        np.testing.assert_array_equal(got, constant)  # the same bits as with the rows as constants
        np.testing.assert_allclose(got, _softmax64(x), rtol=1e-6, atol=1e-7)


def dense(x: jnp.ndarray, w: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    return jax.nn.relu(x @ w + b)


@pytest.mark.parametrize("depth", [1100, 1024])  # three panels (the last 76 deep), two full ones
def test_deep_matmul_is_one_copy_of_its_tiles(depth: int) -> None:
    """13 rows (a 6-row tile and a 1-row tail) by 37 columns (tail tile): the K panels of 512 run in one loop,
    so the function has as many multiply-adds as a one-panel matmul's (300 deep), and the result, the
    relu epilogue on the last panel included, is the f64 product's within K roundings."""
    x, b = _normal(13, depth), _normal(37)
    w = _normal(depth, 37)
    traced = trace(dense, x, w, b, name="deep")
    (body,) = _functions(traced.graph, "matmul")
    (shallow,) = _functions(trace(dense, x[:, :300], w[:300], b, name="shallow").graph, "matmul")
    assert body.count("fmuladd") == shallow.count("fmuladd")
    (got,) = runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(x, w, b))
    product = x.astype(np.float64) @ w.astype(np.float64) + b
    bound = 2 * depth * EPS32 * (np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64) + np.abs(b))
    assert np.all(np.abs(got - np.maximum(product, 0)) <= bound)


