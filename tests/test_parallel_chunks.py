"""Chunks in parallel (codegen/calls.py emit_entry, passes/batch_chunks.py PARALLEL_CHUNKS): a split call of a
chunked graph is one step whose groups of parts each run their share of the chunks, stage after stage, in an
arena region of their own.

Checked on batch_chunks' small ONNX CNN at batch 4 in chunks of 1 (the budget made tiny): two threads give the
bits of one and match ONNX Runtime, and the code passes cerebro.ko's stack check (no recursion); and, calling
the JIT-compiled entry one part at a time on a poisoned arena, every chunk is run by exactly one part for
every part count, and the parts that run chunks never write another region's bytes (two chunks sharing a
region would corrupt each other when run at once) nor past the arena a host allocates for that part count
(min(parts, regions) regions, cbx.h); the Python binding allocates one region per thread, up to the chunks.
"""

from __future__ import annotations

import ctypes
import subprocess

import llvmlite.binding as llvm
import numpy as np
import onnxruntime as ort
import pytest
from cbx_fixtures import HOST_ARCH
from test_batch_chunks import _cnn, _run

from cerebro import runtime
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


def test_two_threads_give_the_bits_of_one_and_match_onnxruntime(chunked: tuple) -> None:
    model, graph, x = chunked
    data = driver.build(graph)
    meta = read_cbx(data).meta
    # as many regions as chunks whatever this machine's CPUs (the file is the same everywhere), each a page-aligned
    # copy of the one-part arena, which is all meta.arena_size counts
    assert (meta.regions, meta.parts) == (BATCH, 256)
    assert meta.region_size == Chunking(BATCH, regions=BATCH).region_bytes(meta.arena_size) >= meta.arena_size
    assert driver.lower(graph, chunked=False)[2].arena_size > meta.arena_size
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
    ctypes.memmove(engine.get_global_value_address("cerebro_weights"), bytes(weights), len(weights))
    entry = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32)(
        engine.get_function_address("cerebro_entry"))
    return entry, meta


GUARD = 4096  # poisoned bytes after the arena a host allocates: the code must leave them alone


def _call(entry, x: np.ndarray, words: list[int], arena_size: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(statuses, output with NaN where not written, arena bytes and GUARD more) of the stage words called in
    turn on a poisoned arena."""
    x_aligned, out, arena = aligned_empty(x.shape, x.dtype), aligned_empty((BATCH, 10), np.float32), aligned_empty(
        (arena_size + GUARD,), np.uint8)  # the code may assume CEREBRO_BUFFER_ALIGN
    x_aligned[...], out[...], arena[...] = x, np.nan, POISON
    inputs, outputs = (ctypes.c_void_p * 1)(x_aligned.ctypes.data), (ctypes.c_void_p * 1)(out.ctypes.data)
    return [entry(inputs, outputs, arena.ctypes.data, word) for word in words], out, arena


def test_each_chunk_runs_once_in_its_group_region(chunked: tuple) -> None:
    """Each part count N gets exactly the arena a host allocates for it (Meta.arena_bytes: min(N, regions)
    regions) with a poisoned guard after it, which no part may touch."""
    _, graph, x = chunked
    entry, meta = _entry(graph)
    region = meta.region_size
    statuses, expected, arena = _call(entry, x, list(range(meta.num_stages)), meta.arena_bytes(1))  # one part
    assert statuses == [0] * meta.num_stages and not np.isnan(expected).any()
    assert (arena[meta.arena_size:] == POISON).all()
    for parts in range(2, 18):
        runs, regions, size = np.zeros(BATCH, int), [], meta.arena_bytes(parts)
        assert size == (min(parts, BATCH) - 1) * region + meta.arena_size
        for part in range(parts):
            (status,), out, arena = _call(entry, x, [part << 16 | (parts - 1) << 24], size)
            assert status == LAST_STEP
            written = ~np.isnan(out).all(axis=1)
            runs += written
            np.testing.assert_array_equal(out[written], expected[written])
            touched = np.flatnonzero(arena != POISON)
            assert written.any() == bool(touched.size)
            if touched.size:
                assert touched.max() < size, f"part {part} of {parts} wrote past the host's arena"
                assert touched.min() % region >= BARRIER_BYTES
                assert len(set(touched // region)) == 1, f"part {part} of {parts} wrote {set(touched // region)}"
                regions.append(touched[0] // region)
        np.testing.assert_array_equal(runs, np.ones(BATCH, int))
        groups = min(parts, BATCH)
        assert sorted(regions) == list(range(groups)), f"{parts} parts: regions {regions}"


def test_each_host_allocates_the_regions_its_threads_use(chunked: tuple) -> None:
    """The Python binding's arena per call: one region for one thread, one per thread up to the chunks (its
    pool splits a chunked call into a part per thread), never the file's every region."""
    _, graph, _ = chunked
    data = driver.build(graph)
    meta = read_cbx(data).meta
    sizes = {threads: runtime.load(data, threads=threads).arena_bytes for threads in (1, 2, 3, 5)}
    align = lambda n: -(-n // 64) * 64  # noqa: E731
    assert sizes == {threads: align(meta.arena_bytes(threads)) for threads in sizes}
    assert sizes[1] == align(meta.arena_size) and sizes[2] == meta.region_size + align(meta.arena_size)
    assert sizes[5] == (BATCH - 1) * meta.region_size + align(meta.arena_size)  # 5 threads, 4 chunks: 4 regions


def test_cbxrun_threads_size_their_arena(chunked: tuple, tmp_path) -> None:
    """cbxrun allocates the regions of its pool's parts (cbx_model_arena_bytes): 1, 2 and 3 threads give the
    1-thread bits of the Python binding."""
    from cerebro.toolchain import build_cbxrun

    _, graph, x = chunked
    data = driver.build(graph)
    (tmp_path / "m.cbx").write_bytes(data)
    np.ascontiguousarray(x).tofile(tmp_path / "x.bin")
    want = _run(data, [x])
    exe = str(build_cbxrun(HOST_ARCH, tmp_path))
    for threads in ("1", "2", "3"):
        out = tmp_path / f"out{threads}.bin"
        subprocess.run([exe, "--threads", threads, tmp_path / "m.cbx", tmp_path / "x.bin", "-o", out], check=True,
                       timeout=120)
        np.testing.assert_array_equal(np.fromfile(out, np.float32).reshape(want.shape), want)
