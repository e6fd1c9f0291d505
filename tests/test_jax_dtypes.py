"""Unsigned integers, shifts, bitcasts and jax.random through cerebro.compile, against jax.jit.

Integer results and random bits must be bit for bit jax.jit's. jax.random.uniform is exact too (bits,
shift, or, bitcast, subtract). jax.random.normal is erf_inv of a uniform: it matches within NORMAL_ULPS,
because XLA evaluates erf_inv's log1p with its own approximation (frontends/jax/rules_math.py).
The same graphs also run on aarch64 (cbxrun under qemu-aarch64).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import native
import numpy as np
import pytest
from jax import lax
from test_aarch64_runtime import run_cbxrun, split_outputs

import cerebro
from cerebro.compiler import build
from cerebro.frontends.jax.tracer import trace

NORMAL_ULPS = 4  # measured: at most 3 over 10**5 samples


def unsigned_ops(a8, b8, a16, b16, a32, b32, f):
    """Arithmetic, bitwise ops, every shift and the converts between the new types, as jnp spells them."""
    out = []
    for a, b in ((a8, b8), (a16, b16), (a32, b32)):
        out += [a + b, a - b, a * b, a // b, a % b, jnp.maximum(a, b), a < b, a & b, a | b, a ^ b, ~a,
                lax.shift_left(a, b), lax.shift_right_logical(a, b), lax.shift_right_arithmetic(a, b),
                a.astype(jnp.float32), a.astype(jnp.int32), a.astype(jnp.uint8), a.sum(), a.max()]
    out += [f.astype(jnp.uint32), f.astype(jnp.uint16), lax.bitcast_convert_type(f, jnp.uint32),
            lax.bitcast_convert_type(a32, jnp.float32), lax.bitcast_convert_type(a32, jnp.int32)]
    return out


def unsigned_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(13)
    arrays = []
    for dtype in (np.uint8, np.uint16, np.uint32):
        bits = np.iinfo(dtype).bits
        edges = np.array([0, 1, 2, bits - 1, bits, bits + 1, np.iinfo(dtype).max, np.iinfo(dtype).max - 1], dtype)
        a = np.concatenate([np.repeat(edges, edges.size), rng.integers(0, np.iinfo(dtype).max, 40, dtype, True)])
        b = np.concatenate([np.tile(edges, edges.size), rng.integers(0, bits + 3, 40).astype(dtype)])
        arrays += [a, b]
    floats = np.array([0.0, -0.0, 1.5, -1.5, 65535.9, 70000.0, 4.3e9, -3e9, np.inf, -np.inf, np.nan], np.float32)
    return arrays + [np.resize(floats, arrays[0].size)]


def random_draws(key):
    """Random values from a key argument (generated code) and from a constant key (folded by the
    reference): "exact" ones, and normal ones."""
    exact = (jax.random.bits(key, (1000,)), jax.random.bits(key, (3, 5), jnp.uint8),
             jax.random.uniform(key, (2, 500)), jax.random.randint(key, (9,), -5, 40), jax.random.split(key, 4),
             jax.random.fold_in(key, 3), jax.random.uniform(jax.random.PRNGKey(42), (6,)))
    return {"exact": exact, "normal": (jax.random.normal(key, (2000,)), jax.random.normal(jax.random.PRNGKey(1), (6,)))}


def random_normal(key):
    return jax.random.normal(key, (2000,))


KEY = np.asarray(jax.random.PRNGKey(2024))


def _same_bits(got: list, want: list) -> None:
    for k, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape, (k, g.dtype, g.shape, w.dtype, w.shape)
        assert g.tobytes() == w.tobytes(), (k, g, w)


def _ulps(got: list, want: list) -> int:
    return max(int(np.max(np.abs(np.asarray(g).view(np.int32).astype(np.int64)
                                 - np.asarray(w).view(np.int32).astype(np.int64)))) for g, w in zip(got, want))


def test_unsigned_ops_match_jax_bit_for_bit() -> None:
    inputs = unsigned_inputs()
    _same_bits(cerebro.compile(unsigned_ops, cache=False)(*inputs), jax.jit(unsigned_ops)(*inputs))


def test_random_matches_jax() -> None:
    got, want = cerebro.compile(random_draws, cache=False)(KEY), jax.jit(random_draws)(KEY)
    _same_bits(got["exact"], want["exact"])
    assert _ulps(got["normal"], want["normal"]) <= NORMAL_ULPS


def test_typed_key_argument() -> None:
    """A jax.random.key(...) argument (a typed key array) is passed as its key data."""
    key = jax.random.key(5)
    draw = lambda k: jax.random.bits(jax.random.split(k)[1], (8,))  # noqa: E731
    _same_bits([cerebro.compile(draw, cache=False)(key)], [jax.jit(draw)(key)])


def test_typed_key_output_is_refused_with_advice() -> None:
    with pytest.raises(NotImplementedError, match="output.*typed PRNG keys.*key_data"):
        trace(lambda k: jax.random.split(k), jax.random.key(5))


def test_unsupported_bitcast_names_the_primitive() -> None:
    with pytest.raises(NotImplementedError, match="bitcast_convert_type.*changes the width"):
        trace(lambda x: lax.bitcast_convert_type(x, jnp.uint8), np.zeros(3, np.uint32))


@pytest.fixture(scope="module")
def aarch64_runner(tmp_path_factory) -> list[str]:
    return native.aarch64_runner(tmp_path_factory.mktemp("cbxrun-aarch64"))


@pytest.mark.parametrize("fn, args", [(unsigned_ops, unsigned_inputs()), (random_normal, [KEY])],
                         ids=["unsigned", "random"])
def test_aarch64_matches_jax(fn, args, aarch64_runner, tmp_path) -> None:
    want = [np.asarray(w) for w in jax.tree_util.tree_leaves(jax.jit(fn)(*args))]
    result = run_cbxrun(aarch64_runner, build(trace(fn, *args).graph, target="aarch64"), list(args), tmp_path)
    assert result.returncode == 0, result.stderr
    got = split_outputs((tmp_path / "out.bin").read_bytes(), want)
    if fn is random_normal:
        assert _ulps(got, want) <= NORMAL_ULPS
    else:
        _same_bits(got, want)


def test_flax_stylegan2_with_a_key_argument_matches_jax_jit(monkeypatch):
    """The issue's example: flaxmodels' StyleGAN2 generator (random weights) drawing its per-layer noise
    from a PRNG key argument (uint32) failed "unsupported element type uint32 ... at unknown location".
    flaxmodels 0.1.3 still calls jnp.reshape(newshape=), which JAX 0.10 removed: translated here."""
    from flaxmodels import stylegan2

    reshape = jnp.reshape
    monkeypatch.setattr(jnp, "reshape", lambda a, shape=None, newshape=None, **kw:
                        reshape(a, shape if shape is not None else newshape, **kw))
    generator = stylegan2.Generator(resolution=8, num_mapping_layers=2)
    z = jnp.asarray(np.random.default_rng(0).standard_normal((1, 512)), jnp.float32)
    key = jax.random.PRNGKey(3)
    params = generator.init(jax.random.PRNGKey(0), z)

    def generate(z, key):
        return generator.apply(params, z, rng=key, train=False, noise_mode="random")

    want = np.asarray(jax.jit(generate)(z, key))
    got = np.asarray(cerebro.compile(generate)(z, key))
    assert got.shape == want.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
