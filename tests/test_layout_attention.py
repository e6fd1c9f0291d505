"""passes/layout.py on broadcasts that add dims, after PyTorch-layout (sequence-first) attention.

A layernorm's keepdims mean is broadcast_in_dim (B, L) -> (B, L, 1). When the value it normalises is
held transposed (the attention's residual add runs on its (L, B, E) stored tensor), the broadcast used
to be taken for a same-rank one: its output got the input's rank-2 permutation and choose_layouts
raised IndexError. Each function is compiled with cerebro.compile and checked against jax.jit
(rtol 1e-4, atol 1e-4: float32 sums in another order than XLA's).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import cerebro

RNG = np.random.default_rng(3)
L, B, E, H = 6, 2, 16, 2  # sequence, batch, embedding, heads
WQKV = (RNG.standard_normal((E, 3 * E)) * 0.2).astype(np.float32)
WO = (RNG.standard_normal((E, E)) * 0.2).astype(np.float32)
W1 = (RNG.standard_normal((E, 4 * E)) * 0.2).astype(np.float32)
W2 = (RNG.standard_normal((4 * E, E)) * 0.2).astype(np.float32)


def _norm(x: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5)


def _attention(x: jax.Array) -> jax.Array:
    """Self-attention as torch.nn.MultiheadAttention lays it out: sequence first, heads folded into batch."""
    seq = jnp.transpose(_norm(x), (1, 0, 2))
    q, k, v = jnp.split(seq @ WQKV, 3, axis=-1)
    q, k, v = (jnp.transpose(t.reshape(L, B * H, E // H), (1, 0, 2)) for t in (q, k, v))
    scores = jax.nn.softmax(q @ jnp.transpose(k, (0, 2, 1)), axis=-1)
    out = jnp.transpose(scores @ v, (1, 0, 2)).reshape(L * B, E) @ WO
    return x + jnp.transpose(out.reshape(L, B, E), (1, 0, 2))


def transformer_block(x: jax.Array) -> jax.Array:
    x = _attention(x)
    return x + jax.nn.gelu(_norm(x) @ W1) @ W2


def broadcast_into_middle(x: jax.Array) -> jax.Array:
    """A transposed value's mean over the sequence, held (E, B) in (B, E) storage, broadcast along a new
    middle dim: dims (0, 2) of (E, 3, B), stored (B, 3, E)."""
    t = jnp.transpose(x, (2, 1, 0)) * 2.0
    mean = jax.lax.broadcast_in_dim(t.mean(1), (E, 3, B), (0, 2))
    return jnp.tanh(mean) + t[:, :1, :]


def _check(fn: object) -> None:
    x = RNG.standard_normal((B, L, E)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(cerebro.compile(fn, cache=False)(x)), np.asarray(jax.jit(fn)(x)),
                               rtol=1e-4, atol=1e-4)


def test_layernorm_and_matmul_after_sequence_first_attention() -> None:
    _check(transformer_block)


def test_broadcast_adding_a_middle_dim_to_a_transposed_value() -> None:
    _check(broadcast_into_middle)
