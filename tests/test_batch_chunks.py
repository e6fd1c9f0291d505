"""Batch chunking (compiler/passes/batch_chunks.py): a batch whose activations overflow the cache budget runs
as consecutive chunks of a smaller batch. The budget is made tiny here so that small models chunk.

Checked: an ONNX CNN (NCHW, pooling, flatten, Gemm) and a transformer block (attention with PyTorch's
[L * N, E] layout, so the batch is an inner part of a dim) at batch 4/8 against ONNX Runtime / jax.jit;
chunked builds equal the unchunked build to 1e-6 relative (measured bit-identical for both models, but not
promised: a kernel may tile fewer rows another way) and are bit-identical for one and two threads; weights
bigger than half the activations keep a graph whole; graphs that mix samples
(a mean over the batch, x^T x, training-mode batch norm, a constant that differs per sample) are not
chunked and still correct.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.cbx.reader import read_cbx
from cerebro.compiler.passes import batch_chunks, eliminate_dead_nodes, fold_constants
from cerebro.frontends.jax import trace
from cerebro.frontends.onnx import import_onnx

jax.config.update("jax_platforms", "cpu")
TINY = 1  # bytes: every graph that can be chunked runs one sample at a time


def _cnn(batch: int, rng: np.random.Generator) -> onnx.ModelProto:
    """x[N, 3, 16, 16] -> conv 3x3 -> relu -> maxpool 2 -> conv 3x3 + residual-ish add -> global pool -> Gemm."""
    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.normal(size=shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "p1"], ["s2"]),
        helper.make_node("GlobalAveragePool", ["s2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])],
        [init("w1", 8, 3, 3, 3), init("b1", 8), init("w2", 8, 8, 3, 3), init("b2", 8), init("w3", 10, 8),
         init("b3", 10)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _chunk_count(graph) -> int:
    return batch_chunks.chunk_batch(eliminate_dead_nodes(fold_constants(driver._private_copy(graph)))).count


def _run(data: bytes, inputs: list[np.ndarray], threads: int = 1) -> np.ndarray:
    out = runtime.load(data, threads=threads)(*inputs)
    return out[0] if isinstance(out, (tuple, list)) else out


@pytest.fixture
def tiny_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_chunks, "CACHE_BUDGET", TINY)


def test_onnx_cnn_chunks_and_matches_onnxruntime(tiny_budget: None) -> None:
    rng = np.random.default_rng(0)
    model = _cnn(4, rng)
    x = rng.normal(size=(4, 3, 16, 16)).astype(np.float32)
    graph = import_onnx(model.SerializeToString())
    assert _chunk_count(graph) == 4
    chunked = driver.build(graph)
    meta = read_cbx(chunked).meta
    assert [t.shape for t in meta.inputs] == [(4, 3, 16, 16)] and [t.shape for t in meta.outputs] == [(4, 10)]
    whole = driver.lower(graph, chunked=False)[2]
    assert meta.num_stages == 4 * whole.num_stages and meta.arena_size < whole.arena_size
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    one = _run(chunked, [x])
    np.testing.assert_allclose(one, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(_run(chunked, [x], threads=2), one)
    # each chunk is its own sample: changing sample 2 changes only row 2
    x2 = x.copy()
    x2[2] += 1
    moved = _run(chunked, [x2])
    assert np.array_equal(moved[[0, 1, 3]], one[[0, 1, 3]]) and not np.array_equal(moved[2], one[2])


def _attention_block(rng: np.random.Generator, length: int, width: int, heads: int):
    """A pre-norm transformer block whose attention runs in PyTorch's [L, N, E] / [L * N, E] layout."""
    wqkv = rng.normal(size=(width, 3 * width)).astype(np.float32) / np.sqrt(width)
    wo = rng.normal(size=(width, width)).astype(np.float32) / np.sqrt(width)
    w1 = rng.normal(size=(width, 4 * width)).astype(np.float32) / np.sqrt(width)
    w2 = rng.normal(size=(4 * width, width)).astype(np.float32) / np.sqrt(4 * width)
    position = rng.normal(size=(1, length, width)).astype(np.float32)
    head = width // heads

    def norm(x):
        mean = x.mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5)

    def block(x):  # x[N, L, E]
        batch = x.shape[0]
        x = x + position
        seq = jnp.transpose(norm(x), (1, 0, 2))  # [L, N, E]
        q, k, v = jnp.split(seq @ wqkv, 3, axis=-1)
        q, k, v = (jnp.transpose(t.reshape(length, batch * heads, head), (1, 0, 2)) for t in (q, k, v))
        scores = jax.nn.softmax(q @ jnp.transpose(k, (0, 2, 1)) / np.sqrt(head), axis=-1)
        attended = jnp.transpose(scores @ v, (1, 0, 2)).reshape(length * batch, width) @ wo
        x = x + jnp.transpose(attended.reshape(length, batch, width), (1, 0, 2))
        return x + jax.nn.gelu(x @ w1) @ w2  # (norm(x) here trips passes/layout.py at HEAD: IndexError)

    return block


def test_transformer_block_chunks_and_matches_jax(tiny_budget: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    block = _attention_block(rng, length=48, width=32, heads=4)
    x = rng.normal(size=(8, 48, 32)).astype(np.float32)
    graph = trace(block, x).graph
    assert _chunk_count(graph) == 8
    chunked = driver.build(graph)
    expected = np.asarray(jax.jit(block)(x))
    one = _run(chunked, [x])
    np.testing.assert_allclose(one, expected, rtol=2e-4, atol=2e-4)
    np.testing.assert_array_equal(_run(chunked, [x], threads=2), one)
    monkeypatch.setattr(batch_chunks, "CACHE_BUDGET", 1 << 40)
    np.testing.assert_allclose(one, _run(driver.build(graph), [x]), rtol=1e-6, atol=1e-6)


def test_chunked_build_equals_unchunked(tiny_budget: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    model = _cnn(8, rng)
    x = rng.normal(size=(8, 3, 16, 16)).astype(np.float32)
    graph = import_onnx(model.SerializeToString())
    chunked = _run(driver.build(graph), [x])
    monkeypatch.setattr(batch_chunks, "CACHE_BUDGET", 1 << 40)
    np.testing.assert_allclose(chunked, _run(driver.build(graph), [x]), rtol=1e-6, atol=1e-7)


def _mean_over_batch(x):
    return x - x.mean(axis=0, keepdims=True)


def _gram(x):
    return x.T @ x


def _train_batchnorm(x):
    mean = x.mean(axis=(0, 1, 2))
    var = ((x - mean) ** 2).mean(axis=(0, 1, 2))
    return jax.nn.relu((x - mean) / jnp.sqrt(var + 1e-5))


_PER_SAMPLE_OFFSETS = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)


def _per_sample_constant(x):
    return x * 2 + _PER_SAMPLE_OFFSETS


@pytest.mark.parametrize("fn, shape", [(_mean_over_batch, (4, 6)), (_gram, (4, 6)),
                                       (_train_batchnorm, (4, 5, 5, 3)), (_per_sample_constant, (4, 6))],
                         ids=["mean over batch", "x^T x", "training batchnorm", "constant per sample"])
def test_graphs_mixing_samples_are_not_chunked(tiny_budget: None, fn, shape: tuple) -> None:
    x = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    graph = trace(fn, x).graph
    assert _chunk_count(graph) == 1
    np.testing.assert_allclose(_run(driver.build(graph), [x]), np.asarray(jax.jit(fn)(x)), rtol=1e-5, atol=1e-5)


def test_shared_constant_the_size_of_the_batch_is_rebuilt(tiny_budget: None) -> None:
    """A constant with equal sample blocks (a folded broadcast) runs at the chunk's batch."""
    offsets = np.tile(np.arange(6, dtype=np.float32), (4, 1))

    def fn(x):
        return jnp.tanh(x) * jnp.exp(x) + offsets

    x = np.random.default_rng(4).normal(size=(4, 6)).astype(np.float32)
    graph = trace(fn, x).graph
    assert _chunk_count(graph) == 4
    np.testing.assert_allclose(_run(driver.build(graph), [x]), np.asarray(jax.jit(fn)(x)), rtol=1e-6, atol=1e-6)


def test_weights_bigger_than_the_activations_are_not_streamed_per_chunk(tiny_budget: None) -> None:
    w = np.random.default_rng(5).normal(size=(256, 1024)).astype(np.float32)
    for rows, chunks in ((8, 1), (512, 512)):  # 1 MB of weights against 8 or 512 rows of activations
        graph = trace(lambda x: jnp.tanh(x @ w), np.zeros((rows, 256), np.float32)).graph
        assert _chunk_count(graph) == chunks


def test_chunk_size_is_the_largest_divisor_that_fits() -> None:
    assert batch_chunks.chunk_size(8, peak=64 << 20, budget=16 << 20) == 2
    assert batch_chunks.chunk_size(8, peak=8 << 20, budget=16 << 20) == 8
    assert batch_chunks.chunk_size(6, peak=60 << 20, budget=25 << 20) == 2
    assert batch_chunks.chunk_size(8, peak=1 << 40, budget=16 << 20) == 1


def test_chunks_too_many_for_the_stage_word_take_bigger_stages(tiny_budget: None,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunked stages share the 16-bit stage word: past it the stage budget doubles, and the build stays
    chunked (it used to fall back to the whole batch: vit_b_16 b8 in chunks of 1, 14% slower)."""
    rng = np.random.default_rng(5)
    model = _cnn(4, rng)
    x = rng.normal(size=(4, 3, 16, 16)).astype(np.float32)
    graph = import_onnx(model.SerializeToString())
    small = 20_000  # flops a stage: the convs slice into many stages
    per_chunk = read_cbx(driver.build(graph, stage_flops=small)).meta.num_stages // 4
    monkeypatch.setattr(driver, "MAX_STAGES", 4 * per_chunk - 1)  # the chunks no longer fit at this budget
    data = driver.build(graph, stage_flops=small)
    meta = read_cbx(data).meta
    assert meta.num_stages < 4 * per_chunk and meta.num_stages % 4 == 0  # still 4 chunks, bigger stages
    assert meta.arena_size < driver.lower(graph, chunked=False)[2].arena_size
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    np.testing.assert_allclose(_run(data, [x]), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("length, chunks", [(256, 2), (128, 1), (32, 1)])
def test_dense_layers_with_enough_rows_a_chunk_stream_their_weights(tiny_budget: None, length: int,
                                                                    chunks: int) -> None:
    """Weights (1 MB) past half the activations' peak: chunked only where each chunk's matmul keeps
    DENSE_CHUNK_ROWS rows (a transformer at sequence 256; not 128 rows, gpt2's chunk of 4 at sequence 32)."""
    rng = np.random.default_rng(6)
    w = rng.normal(size=(512, 512)).astype(np.float32) / 16
    x = rng.normal(size=(2, length, 512)).astype(np.float32)
    graph = trace(lambda x: jnp.tanh(x @ w) @ w, x).graph
    folded = eliminate_dead_nodes(fold_constants(driver._private_copy(graph)))
    assert 2 * sum(v.nbytes for v in folded.constants()) > batch_chunks.peak_live_bytes(folded)
    assert _chunk_count(graph) == chunks
    np.testing.assert_allclose(_run(driver.build(graph), [x]), np.asarray(jax.jit(lambda x: jnp.tanh(x @ w) @ w)(x)),
                               rtol=1e-5, atol=1e-5)


def test_a_forced_chunk_size_bypasses_the_rules() -> None:
    """driver.build(chunk=c) runs chunks of c samples even where the rules keep the graph whole (weights past
    the activations, few rows a chunk: gpt2's case), so benchmarks/batch_chunks.py measures what it names."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(512, 512)).astype(np.float32) / 16
    x = rng.normal(size=(4, 32, 512)).astype(np.float32)
    graph = trace(lambda x: jnp.tanh(x @ w) @ w, x).graph
    folded = eliminate_dead_nodes(fold_constants(driver._private_copy(graph)))
    assert batch_chunks.rule_size(folded) == 4 and _chunk_count(graph) == 1  # the rules: whole
    for size, count in ((1, 4), (2, 2), (4, 1)):
        assert batch_chunks.chunk_batch(folded, size=size).count == count
        data = driver.build(graph, chunk=size)
        assert read_cbx(data).meta.regions == count
        np.testing.assert_allclose(_run(data, [x]), np.asarray(jax.jit(lambda x: jnp.tanh(x @ w) @ w)(x)),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="does not divide"):
        batch_chunks.chunk_batch(folded, size=3)
    mixing = eliminate_dead_nodes(fold_constants(trace(lambda x: x - x.mean(axis=0), x).graph))
    assert batch_chunks.chunk_batch(mixing).count == 1
    with pytest.raises(ValueError, match="cannot run in chunks of 2"):  # not silently the whole batch
        batch_chunks.chunk_batch(mixing, size=2)


def _attention(length: int, rng: np.random.Generator):
    """One attention block (projections, per-sample scores and softmax, output projection, tanh MLP)."""
    wq, wk, wv, wo, w1 = (rng.normal(size=(256, 256)).astype(np.float32) / 16 for _ in range(5))

    def fn(x):
        q, k, v = x @ wq, x @ wk, x @ wv
        a = jax.nn.softmax(jnp.einsum("bqd,bkd->bqk", q, k) / 16, axis=-1)
        h = x + jnp.einsum("bqk,bkd->bqd", a, v) @ wo
        return h + jnp.tanh(h @ w1)

    return fn


@pytest.mark.parametrize("batch, length, size", [(8, 64, 4), (2, 256, 1), (4, 128, 2), (8, 32, 8), (4, 32, 4),
                                                 (8, 16, 8)])
def test_dense_graphs_whose_activations_fit_run_as_parallel_chunks(batch: int, length: int, size: int) -> None:
    """At the default budget (the activations fit it): a transformer runs as chunks of the largest size up to
    half the batch whose matmuls keep DENSE_CHUNK_ROWS rows, so threads run chunks, not split stages
    (whisper_encoder b8 in chunks of 4: 0.85x the time of batch 8 on two threads); fewer rows a chunk, as
    gpt2 b8's 4 x 32: whole (its chunks of 4 took 1.17x pinned, 1.06x on two threads)."""
    rng = np.random.default_rng(8)
    fn, x = _attention(length, rng), rng.normal(size=(batch, length, 256)).astype(np.float32)
    graph = trace(fn, x).graph
    folded = eliminate_dead_nodes(fold_constants(driver._private_copy(graph)))
    assert batch_chunks.peak_live_bytes(folded) < batch_chunks.CACHE_BUDGET
    assert _chunk_count(graph) == batch // size
    data = driver.build(graph)
    expected = np.asarray(jax.jit(fn)(x))
    for threads in (1, 2):
        np.testing.assert_allclose(_run(data, [x], threads), expected, rtol=1e-4, atol=1e-5)
