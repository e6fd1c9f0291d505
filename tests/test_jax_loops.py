"""JAX loops compiled as loops (compiler/ir/loop.py): scan, fori_loop and while_loop against jax.jit.

Float bodies avoid a product followed by an add: XLA contracts those into one fma (one rounding),
Cerebro rounds each op as the IR says, so such a body drifts apart by an ulp per step.
"""

from __future__ import annotations

import jax
import native
import numpy as np
import pytest
from jax import lax
from jax import numpy as jnp
from test_aarch64_runtime import run_cbxrun, split_outputs

from cerebro import runtime
from cerebro.cache import graph_source
from cerebro.compiler import driver
from cerebro.compiler.cbx.writer import finish_object
from cerebro.compiler.ir.loop import UNBOUNDED
from cerebro.compiler.llvm_parts import optimise_in_parts
from cerebro.compiler.targets import resolve_target
from cerebro.frontends.jax import trace
from cerebro.frontends.jax.context import UnsupportedPrimitive


def _compiled(fn, *args, target: str = "host"):
    traced = trace(fn, *args)
    return traced, driver.build(traced.graph, target)


def _run(fn, *args) -> list[np.ndarray]:
    traced, data = _compiled(fn, *args)
    return list(runtime.load(data)(*traced.flatten_inputs(*args)))


def _jit(fn, *args) -> list[np.ndarray]:
    return [np.asarray(o) for o in jax.tree_util.tree_leaves(jax.jit(fn)(*args))]


def _fori(x: jnp.ndarray, k: jnp.ndarray) -> tuple:
    """10^4 steps of float and wrapping int32 arithmetic: add-then-multiply (no fma to contract), a hash."""
    def step(i, state):
        v, h = state
        return (v + i.astype(jnp.float32)) * 0.999, (h ^ i) * 1103515245 + 12345

    return lax.fori_loop(0, 10_000, step, (x, k))


def _rnn(h0, xs, w, u, b):
    def cell(h, x):
        h = jnp.tanh(x @ w + h @ u + b)
        return h, h

    return lax.scan(cell, h0, xs)


def _rnn_args(steps: int = 1000) -> tuple:
    rng = np.random.default_rng(0)
    return (rng.normal(size=32).astype(np.float32), rng.normal(size=(steps, 16)).astype(np.float32),
            (rng.normal(size=(16, 32)) * 0.3).astype(np.float32),
            (rng.normal(size=(32, 32)) * 0.2).astype(np.float32), rng.normal(size=32).astype(np.float32))


def _collatz(n: jnp.ndarray) -> tuple:
    """Steps until n reaches 1: the trip count depends on the data."""
    def step(state):
        n, count = state
        return jnp.where(n % 2 == 0, n // 2, 3 * n + 1), count + 1

    return lax.while_loop(lambda s: s[0] != 1, step, (n, jnp.int32(0)))


def _nested(x):
    """A reverse scan with ys inside a fori_loop."""
    def outer(i, acc):
        last, ys = lax.scan(lambda c, r: (c + r * 0.5, c - r), acc[0], acc, reverse=True)
        return acc + ys * 0.25 + last

    return lax.fori_loop(0, 300, outer, x)


FORI_ARGS = (np.linspace(-2, 2, 5, dtype=np.float32), np.arange(5, dtype=np.int32))


def test_fori_loop_of_ten_thousand_steps_is_bit_exact() -> None:
    traced, _ = _compiled(_fori, *FORI_ARGS)
    (loop,) = [n for n in traced.graph.nodes if n.op == "loop"]  # one node, not 10^4 copies of the body
    assert loop.attrs["length"] == 10_000
    for got, want in zip(_run(_fori, *FORI_ARGS), _jit(_fori, *FORI_ARGS), strict=True):
        np.testing.assert_array_equal(got, want)


def test_rnn_scan_of_a_thousand_steps_matches_jit() -> None:
    """tanh is a polynomial in both (a few ulp apart); the state stays bounded, so the error does too."""
    args = _rnn_args()
    got, want = _run(_rnn, *args), _jit(_rnn, *args)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=2e-5)
    assert got[1].shape == (1000, 32)


def test_while_loop_with_a_data_dependent_trip_count() -> None:
    traced, data = _compiled(_collatz, np.int32(27))
    model = runtime.load(data)
    for start in (27, 97, 1, 6171):
        got = model(*traced.flatten_inputs(np.int32(start)))
        for g, w in zip(got, _jit(_collatz, np.int32(start)), strict=True):
            np.testing.assert_array_equal(g, w)
    assert int(model(*traced.flatten_inputs(np.int32(27)))[1]) == 111


def test_reverse_scan_with_ys_inside_a_fori_loop() -> None:
    x = np.linspace(-1, 1, 7, dtype=np.float32)
    (got,), (want,) = _run(_nested, x), _jit(_nested, x)
    np.testing.assert_array_equal(got, want)


def test_half_carries_round_after_every_op_in_the_body() -> None:
    """The body's own equations compute f16/bf16 in f32 and round each result, as XLA; the loop only
    carries the 16-bit values."""
    def model(x, y):
        def step(i, state):
            a, b = state
            return a * 0.75 + 0.5, jnp.tanh(b) + (b.astype(jnp.float32).sum() * 0.01).astype(jnp.bfloat16)

        return lax.fori_loop(0, 300, step, (x, y))

    args = (np.linspace(-3, 3, 6).astype(jnp.float16), np.linspace(-1, 1, 6).astype(jnp.bfloat16))
    for got, want in zip(_run(model, *args), _jit(model, *args), strict=True):
        np.testing.assert_array_equal(got, want)


def _random_walk(seed, x):
    """A typed PRNG key carried through 300 steps (its key data is the carry)."""
    def step(i, state):
        key, acc = state
        key, sub = jax.random.split(key)
        return key, acc + jax.random.uniform(sub, acc.shape)

    return lax.fori_loop(0, 300, step, (jax.random.key(seed), x))[1]


FORMS = {  # name: (function, arguments); every output bit-exact with jax.jit
    "no steps": (lambda x: lax.scan(lambda c, r: (c + r, c * 2), x[0], x[:0]), (np.ones((5, 3), np.float32),)),
    "12-byte rows, a constant y, a carry passed through": (
        lambda x: lax.scan(lambda c, r: ((c[0] + r, c[1]), (r * 2, 1.0, c[0])), (x[0], x[1, :2]), x),
        (np.arange(15, dtype=np.float32).reshape(5, 3),)),
    "bool and int carries": (lambda n: lax.fori_loop(0, 1001, lambda i, s: (~s[0], s[1] + jnp.where(s[0], i, -i)),
                                                     (True, n)), (np.int32(3),)),
    "scan inside while": (lambda x: lax.while_loop(
        lambda s: s[1] < 5, lambda s: (lax.scan(lambda c, r: (c + r, None), s[0], jnp.ones((300, 3)))[0] * 0.5,
                                       s[1] + 1), (x, 0)), (np.ones(3, np.float32),)),
    "while that never steps": (lambda x: lax.while_loop(lambda v: v.sum() < 0, lambda v: v * 2, x),
                               (np.ones(3, np.float32),)),
    "fori_loop with traced bounds": (lambda x, n: lax.fori_loop(0, n, lambda i, v: v + i, x),
                                     (np.int32(1), np.int32(100))),
    "a PRNG key carried": (_random_walk, (np.uint32(3), np.zeros(4, np.float32))),
}


@pytest.mark.parametrize("name", FORMS)
def test_loop_forms_match_jit(name: str) -> None:
    fn, args = FORMS[name]
    for got, want in zip(_run(fn, *args), _jit(fn, *args), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_while_loop_is_unbounded_for_the_kernel() -> None:
    """A kernel runs a stage with preemption off: a loop whose steps the data decides has no bound, and
    the meta says so (the kernel's max_stage_flops limit refuses it); a scan's stage costs its steps."""
    traced = trace(_collatz, np.int32(27))
    assert driver.lower(traced.graph)[2].max_stage_flops == UNBOUNDED
    traced = trace(_rnn, *_rnn_args(10))
    meta = driver.lower(traced.graph)[2]
    assert 10 * 2 * (16 * 32 + 32 * 32) <= meta.max_stage_flops < UNBOUNDED


def test_the_graph_cache_key_covers_constants_inside_a_loop_body() -> None:
    """Two models that differ only in a constant the body closes over must not share a cache entry."""
    def keyed(scale: float) -> str:
        return graph_source(trace(lambda x: lax.fori_loop(0, 300, lambda i, v: v * scale, x), FORI_ARGS[0]).graph)

    assert keyed(0.5) != keyed(0.25)


def test_a_scan_over_the_stage_budget_is_cut_into_scans_that_fit() -> None:
    """Each chunk is a stage of its own (the kernel runs a stage with preemption off); the carries pass
    on, the xs are sliced and the ys concatenated, so the results are the same bits; reverse too."""
    def reverse(x):
        return lax.scan(lambda c, r: (c * 0.5 + r, (c, r.sum())), x[0], x, reverse=True)

    x = np.random.default_rng(1).normal(size=(1000, 5)).astype(np.float32)
    for fn, args, budget in ((_rnn, _rnn_args(300), 100_000), (reverse, (x,), 6000)):
        traced = trace(fn, *args)
        graph, _, meta, _ = driver.lower(traced.graph, stage_flops=budget)
        assert sum(node.op == "loop" for node in graph.nodes) >= 3
        assert meta.max_stage_flops <= budget
        inputs = traced.flatten_inputs(*args)
        whole = runtime.load(driver.build(traced.graph))(*inputs)
        for got, want in zip(runtime.load(driver.build(traced.graph, stage_flops=budget))(*inputs), whole, strict=True):
            np.testing.assert_array_equal(got, want)


def test_a_loop_compiles_when_llvm_optimises_in_two_processes() -> None:
    """Big modules are optimised in halves (compiler/llvm_parts.py); a loop's function calls its body's
    node functions, so the two must not be split apart (the body's were dropped as unused: an undefined
    symbol). Four small kernels in the body leave the loop's own function among the biggest. (XLA fuses
    c + r * k into an fma, so the reference is the build optimised in one process.)"""
    def model(x):
        return lax.scan(lambda c, r: (sum(jnp.cumsum(c + r * k) for k in range(4)) * 0.01, None), x[0], x)[0]

    x = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    traced = trace(model, x)
    _, text, meta, weights = driver.lower(traced.graph)
    target = resolve_target("host")
    machine = target.target_machine()
    data = finish_object(machine.emit_object(optimise_in_parts(text, target, machine)), meta, weights)
    (got,) = runtime.load(data)(x)
    np.testing.assert_array_equal(got, runtime.load(driver.build(traced.graph))(x)[0])  # one process


def test_loops_run_on_aarch64(tmp_path, tmp_path_factory) -> None:
    runner = native.aarch64_runner(tmp_path_factory.mktemp("cbxrun-aarch64"))
    cases = [(_fori, FORI_ARGS), (_collatz, (np.int32(27),)), (_nested, (np.linspace(-1, 1, 7, dtype=np.float32),))]
    for k, (fn, args) in enumerate(cases):
        traced, data = _compiled(fn, *args, target="aarch64")
        want = _jit(fn, *args)
        (tmp_path / str(k)).mkdir()
        result = run_cbxrun(runner, data, traced.flatten_inputs(*args), tmp_path / str(k))
        assert result.returncode == 0, result.stderr
        for got, w in zip(split_outputs((tmp_path / str(k) / "out.bin").read_bytes(), want), want, strict=True):
            np.testing.assert_array_equal(got, w)


def test_an_unsupported_primitive_in_a_loop_body_names_it_and_its_line() -> None:
    def model(x):
        return lax.fori_loop(0, 2000, lambda i, v: lax.igamma(v, v), x)  # marker: igamma

    with pytest.raises(UnsupportedPrimitive) as error:
        trace(model, np.ones(3, np.float32))
    assert "'igamma'" in str(error.value) and "test_jax_loops.py" in str(error.value)
