"""Chunks in parallel (codegen/calls.py emit_entry, passes/batch_chunks.py PARALLEL_CHUNKS): a split call of a
chunked graph is one step whose groups of parts each run their share of the chunks, stage after stage, in an
arena region of their own.

Checked on batch_chunks' small ONNX CNN at batch 4 in chunks of 1 (the budget made tiny): two threads give the
bits of one and match ONNX Runtime, and the code passes cerebro.ko's stack check (no recursion); and, calling
the JIT-compiled entry one part at a time on a poisoned arena, every chunk is run by exactly one part for
every part count, and the parts that run chunks never write another region's bytes (two chunks sharing a
region would corrupt each other when run at once).
"""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import numpy as np
import onnxruntime as ort
import pytest
from test_batch_chunks import _cnn, _run

from cerebro.compiler import driver, stack_check
from cerebro.compiler.cbx.format import BARRIER_BYTES, LAST_STEP
from cerebro.compiler.cbx.reader import read_cbx
from cerebro.compiler.codegen.calls import Chunking
from cerebro.compiler.passes import batch_chunks
from cerebro.compiler.targets import resolve_target
from cerebro.frontends.onnx import import_onnx
from cerebro.runtime import aligned_empty

BATCH = 4
POISON = 0xA5
_ENGINES: list = []  # keep JIT code alive for the session


@pytest.fixture
def chunked(monkeypatch: pytest.MonkeyPatch) -> tuple:
    """(ONNX model, its graph, an input): chunks of one sample, two regions."""
    monkeypatch.setattr(batch_chunks, "CACHE_BUDGET", 1)
    rng = np.random.default_rng(3)
    model = _cnn(BATCH, rng)
    return model, import_onnx(model.SerializeToString()), rng.normal(size=(BATCH, 3, 16, 16)).astype(np.float32)


def _plan_bytes(graph, monkeypatch: pytest.MonkeyPatch) -> int:
    """The memory plan's arena (one region): the build with chunks run one after another."""
    with monkeypatch.context() as patch:
        patch.setattr(batch_chunks, "PARALLEL_CHUNKS", 1)
        return driver.lower(graph)[2].arena_size


def test_two_threads_give_the_bits_of_one_and_match_onnxruntime(chunked: tuple,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    model, graph, x = chunked
    data = driver.build(graph)
    chunking = Chunking(BATCH, regions=min(BATCH, batch_chunks.PARALLEL_CHUNKS))
    assert read_cbx(data).meta.arena_size == chunking.arena_bytes(_plan_bytes(graph, monkeypatch))
    _, chain = stack_check.check_frames(data, resolve_target("host").machine, "chunked cnn")  # cerebro.ko's check
    assert chain[:2] == ["cerebro_entry", "cerebro_stages"]  # not itself: the check refuses recursion
    one = _run(data, [x], threads=1)
    for _ in range(20):  # the chunks run at once: a shared region would show as a race
        np.testing.assert_array_equal(_run(data, [x], threads=2), one)
    reference = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(one, reference[0], rtol=1e-5, atol=1e-5)


def _entry(graph) -> tuple:
    """The lowered model JIT-compiled: (cerebro_entry, meta)."""
    _, text, meta, weights = driver.lower(graph)
    text = text.replace(" fn_ret_thunk_extern", "")  # returns through the kernel's thunk: not in this process
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(text), resolve_target("host").target_machine())
    engine.finalize_object()
    _ENGINES.append(engine)
    ctypes.memmove(engine.get_global_value_address("cerebro_weights"), weights, len(weights))
    entry = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32)(
        engine.get_function_address("cerebro_entry"))
    return entry, meta


def _call(entry, x: np.ndarray, words: list[int], arena_size: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(statuses, output with NaN where not written, arena bytes) of the stage words called in turn on a
    poisoned arena."""
    x_aligned, out, arena = aligned_empty(x.shape, x.dtype), aligned_empty((BATCH, 10), np.float32), aligned_empty(
        (arena_size,), np.uint8)  # the code may assume CEREBRO_BUFFER_ALIGN
    x_aligned[...], out[...], arena[...] = x, np.nan, POISON
    inputs, outputs = (ctypes.c_void_p * 1)(x_aligned.ctypes.data), (ctypes.c_void_p * 1)(out.ctypes.data)
    return [entry(inputs, outputs, arena.ctypes.data, word) for word in words], out, arena


def test_each_chunk_runs_once_in_its_group_region(chunked: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    _, graph, x = chunked
    entry, meta = _entry(graph)
    region_count = min(BATCH, batch_chunks.PARALLEL_CHUNKS)
    region = Chunking(BATCH, regions=region_count).region_bytes(_plan_bytes(graph, monkeypatch))
    statuses, expected, _ = _call(entry, x, list(range(meta.num_stages)), meta.arena_size)  # as with one part
    assert statuses == [0] * meta.num_stages and not np.isnan(expected).any()
    for parts in range(2, 18):
        runs, regions = np.zeros(BATCH, int), []
        for part in range(parts):
            (status,), out, arena = _call(entry, x, [part << 16 | (parts - 1) << 24], meta.arena_size)
            assert status == LAST_STEP
            written = ~np.isnan(out).all(axis=1)
            runs += written
            np.testing.assert_array_equal(out[written], expected[written])
            touched = np.flatnonzero(arena != POISON)
            assert written.any() == bool(touched.size)
            if touched.size:
                assert touched.min() % region >= BARRIER_BYTES
                assert len(set(touched // region)) == 1, f"part {part} of {parts} wrote {set(touched // region)}"
                regions.append(touched[0] // region)
        np.testing.assert_array_equal(runs, np.ones(BATCH, int))
        groups = min(parts, BATCH, batch_chunks.PARALLEL_CHUNKS)
        assert sorted(regions) == list(range(groups)), f"{parts} parts: regions {regions}"
