"""The per-machine cache of optimised kernels (compiler/kernel_cache.py, llvm_parts.optimise_kernels):
the same code with it as without, kernels shared across models, damaged entries rebuilt, keys, and its size
bound (least recently used entries dropped)."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import cerebro
from cerebro import runtime
from cerebro.cache import CompileCache
from cerebro.compiler import driver, kernel_cache, llvm_parts
from cerebro.compiler.ir import DType, Graph
from cerebro.elf import STB_LOCAL, STT_FUNC, ElfFile
from cerebro.frontends.jax import trace

RNG = np.random.default_rng(3)
X = RNG.standard_normal((2, 8, 8, 4), dtype=np.float32)
K = RNG.standard_normal((3, 3, 4, 8), dtype=np.float32) * 0.3
W = RNG.standard_normal((8 * 8 * 8, 16), dtype=np.float32) * 0.05


def conv_dense(x):
    y = jax.lax.conv_general_dilated(x, K, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.nn.relu(jnp.max(jax.nn.relu(y), axis=3, keepdims=True) + y).reshape(2, -1) @ W


def tanh_then_conv_dense(x):
    return conv_dense(jnp.tanh(x)) * 2.0


def _entries(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*" + kernel_cache.ENTRY_SUFFIX)}


def _optimised_kernels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records the node functions each run of an LLVM pipeline optimises (KERNEL: a kernel alone)."""
    seen: list[str] = []
    real = llvm_parts.run_pipeline

    def recording(module, *args):
        seen.extend(f.name for f in module.functions
                    if not f.is_declaration and f.name.startswith(("node", llvm_parts.KERNEL)))
        return real(module, *args)

    monkeypatch.setattr(llvm_parts, "run_pipeline", recording)
    return seen


def _functions(cbx: bytes) -> list[tuple[str, int, int, int]]:
    return sorted((s.name, s.bind, s.type, s.visibility) for s in ElfFile.parse(cbx).symbols
                  if s.name and (s.bind != STB_LOCAL or s.type == STT_FUNC))


def test_cached_kernels_give_the_same_code_cold_and_warm(tmp_path, monkeypatch):
    traced = trace(conv_dense, X, name="kc")
    inputs = traced.flatten_inputs(X)
    plain = driver.build(traced.graph)
    (want,) = runtime.load(plain)(*inputs)
    seen = _optimised_kernels(monkeypatch)
    builds = {}
    for run in ("cold", "warm"):
        seen.clear()
        with kernel_cache.using(tmp_path):
            builds[run] = driver.build(traced.graph)
        optimised_alone = seen.count(llvm_parts.KERNEL)
        assert optimised_alone == (len(_entries(tmp_path)) if run == "cold" else 0), run
    assert len(_entries(tmp_path)) >= 3  # conv, max reduction, matmul: each a kernel of its own
    assert builds["warm"] == builds["cold"]  # a hit builds the very object a miss did
    for run, data in builds.items():
        assert _functions(data) == _functions(plain), run
        np.testing.assert_array_equal(runtime.load(data)(*inputs)[0], want, err_msg=run)


def test_a_kernel_is_shared_by_another_model(tmp_path, monkeypatch):
    """The second model's conv and matmul are the first's under other node numbers: only its own
    kernels are optimised, and the outputs are right."""
    with kernel_cache.using(tmp_path):
        driver.build(trace(conv_dense, X).graph)
    first = _entries(tmp_path)
    seen = _optimised_kernels(monkeypatch)
    traced = trace(tanh_then_conv_dense, X)
    with kernel_cache.using(tmp_path):
        data = driver.build(traced.graph)
    added = _entries(tmp_path) - first
    assert 1 <= len(added) == seen.count(llvm_parts.KERNEL) < len(first)
    np.testing.assert_allclose(runtime.load(data)(*traced.flatten_inputs(X))[0],
                               tanh_then_conv_dense(X), rtol=1e-4, atol=1e-4)


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize("damage", [_flip_middle, _truncate, _empty])
def test_damaged_entries_are_rebuilt_with_one_warning(tmp_path, capfd, damage):
    traced = trace(conv_dense, X)
    with kernel_cache.using(tmp_path):
        good = driver.build(traced.graph)
    entries = sorted(tmp_path.glob("*" + kernel_cache.ENTRY_SUFFIX))
    whole = {p.name: p.read_bytes() for p in entries}
    for path in entries:
        damage(path)
    capfd.readouterr()
    with kernel_cache.using(tmp_path):
        data = driver.build(traced.graph)
    warning = capfd.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and "corrupt kernel cache entry" in warning[0]
    assert data == good
    assert {p.name: p.read_bytes() for p in entries} == whole  # each entry whole again


def test_the_cache_keeps_its_bound_by_least_recent_use(tmp_path):
    """Filled past its bound by one compile, the cache drops the entries used longest ago when the compile
    ends (not per kernel stored); one read during the compile counts as a use."""
    entry = kernel_cache._DIGEST + 1001
    with kernel_cache.using(tmp_path, max_bytes=5000) as cache:
        for n in range(8):
            cache.put(f"k{n}", bytes(1000) + bytes([n]))
            os.utime(tmp_path / f"k{n}.bc", (1000 + n, 1000 + n))  # stored in this order, a second apart
        assert cache.get("k0") == bytes(1001)
        assert len(_entries(tmp_path)) == 8
    assert _entries(tmp_path) == {"k0.bc", "k5.bc", "k6.bc", "k7.bc"}  # 4 entries fit, 5 would not
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) == 4 * entry <= 5000 < 5 * entry
    with kernel_cache.using(tmp_path, max_bytes=0) as cache:
        assert cache.get("k7") is not None
    assert len(_entries(tmp_path)) == 4  # a compile that stored nothing leaves the cache as it is


def test_the_bound_follows_the_compile_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("CEREBRO_CACHE_MAX_BYTES", "1600")
    assert kernel_cache.KernelCache(tmp_path).max_bytes == 100
    monkeypatch.delenv("CEREBRO_CACHE_MAX_BYTES")
    assert kernel_cache.KernelCache(tmp_path).max_bytes == 128 << 20


def test_key_covers_text_machine_pipeline_and_llvm(monkeypatch):
    key = kernel_cache.KernelCache.key
    base = key("define void @f() { ret void }", "x86_64|znver4|+avx2|pic", (3, True))
    assert base != key("define void @f() { ret void } ", "x86_64|znver4|+avx2|pic", (3, True))
    assert base != key("define void @f() { ret void }", "x86_64|znver4|+avx2,-avx512f|pic", (3, True))
    assert base != key("define void @f() { ret void }", "x86_64|znver3|+avx2|pic", (3, True))
    assert base != key("define void @f() { ret void }", "x86_64|znver4|+avx2|pic", (2, False))
    monkeypatch.setattr(kernel_cache.llvm, "llvm_version_info", (0, 0, 1))
    assert base != key("define void @f() { ret void }", "x86_64|znver4|+avx2|pic", (3, True))


def test_a_pipeline_differing_only_in_its_slp_vectoriser_is_another_entry(tmp_path, monkeypatch):
    """The key takes the whole pipeline: kernels cached without the SLP vectoriser (hand-tiled ones) are
    optimised again, and kept apart, when a pipeline differing only in it is asked for."""
    traced = trace(conv_dense, X, name="kc_slp")
    seen = _optimised_kernels(monkeypatch)
    with kernel_cache.using(tmp_path):
        driver.build(traced.graph)
    first = _entries(tmp_path)
    with_slp = llvm_parts.Pipeline(2, unroll=False, slp=True)
    monkeypatch.setattr(llvm_parts, "PIPELINES", {op: with_slp for op in llvm_parts.PIPELINES})
    seen.clear()
    with kernel_cache.using(tmp_path):
        driver.build(traced.graph)
    kernels = llvm_parts.kernel_names(*_split(traced.graph))
    hand_tiled = [name for name in kernels if llvm_parts.pipeline(name) == with_slp]
    assert hand_tiled and seen.count(llvm_parts.KERNEL) == len(hand_tiled)
    assert len(_entries(tmp_path) - first) == len(hand_tiled)


def _split(graph: Graph) -> tuple[llvm_parts.Split, dict[str, str]]:
    split = llvm_parts.split_text(driver.lower(graph)[1])
    return split, llvm_parts.header_names(split)


def test_kernel_text_holds_no_node_number_and_only_what_it_uses():
    split = llvm_parts.split_text(driver.lower(trace(conv_dense, X).graph)[1])
    named = llvm_parts.header_names(split)
    by_name = {f.name: f for f in split.functions}
    for name in llvm_parts.kernel_names(split, named):
        text = llvm_parts.kernel_text(split, named, by_name[name])
        assert name not in text and "cerebro_ir" not in text and "cerebro_weights" not in text
        assert f'define void @"{llvm_parts.KERNEL}"' in text


def test_only_a_compile_the_compile_cache_keeps_uses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CEREBRO_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CEREBRO_COMPILE_CACHE", "1")
    cerebro.compile(conv_dense, cache=False)(X)
    assert not (tmp_path / "kernels").exists()
    np.testing.assert_allclose(cerebro.compile(conv_dense)(X), conv_dense(X), rtol=1e-4, atol=1e-4)
    assert _entries(tmp_path / "kernels")
    CompileCache().clear()
    assert not (tmp_path / "kernels").exists()


def test_only_functions_that_stand_alone_are_kernels():
    text = "\n".join([
        'target triple = "x86_64-unknown-linux-gnu"',
        '@"table" = internal constant [2 x float] zeroinitializer',
        '@"counter" = internal global i32 0',
        'declare float @"llvm.sqrt.f32"(float %".1")',
        'define internal void @"node0_alone"(ptr %".1") #1', "{", "entry:",
        '  %".2" = load float, ptr @"table"', '  %".3" = call float @"llvm.sqrt.f32"(float %".2")', "  ret void", "}",
        'define internal void @"node1_counts"(ptr %".1") #1', "{", "entry:",
        '  store i32 1, ptr @"counter"', "  ret void", "}",
        'define internal void @"node2_with_metadata"(ptr %".1") #1', "{", "entry:",
        '  %".2" = load float, ptr %".1", !range !0', "  ret void", "}",
        'define internal void @"node3_loop"(ptr %".1") #1', "{", "entry:",
        '  call void @"node0_alone"(ptr %".1")', "  ret void", "}",
        "attributes #1 = { noinline nounwind }", "attributes #2 = { nounwind }"])
    split = llvm_parts.split_text(text)
    named = llvm_parts.header_names(split)
    assert llvm_parts.kernel_names(split, named) == {"node0_alone"}
    alone = llvm_parts.kernel_text(split, named, split.functions[0])
    assert '@"table" = internal constant' in alone and "sqrt" in alone and "counter" not in alone
    assert "attributes #1" in alone and "attributes #2" not in alone and "node0" not in alone


def _hardswish_conv() -> Graph:
    """A 1x1 conv (40 -> 40 channels) with bias and hardswish, as ONNX HardSwish imports: a long epilogue,
    which the conv's tiles call out of line (codegen/epilogue.rows_function)."""
    graph = Graph("hardswish_conv")
    x = graph.add_input((2, 7, 7, 40), DType.f32, "x")
    w = (RNG.standard_normal((1, 1, 40, 40)) / np.sqrt(40)).astype(np.float32)
    y = graph.add1("conv", x, graph.const(w), strides=(1, 1), padding=((0, 0), (0, 0)), groups=1)
    y = graph.add1("add", y, graph.const(RNG.standard_normal((1, 1, 1, 40)).astype(np.float32)))
    scalar = {v: graph.const(np.full((1, 1, 1, 1), v, np.float32)) for v in (1 / 6, 0.5, 0.0, 1.0)}
    gate = graph.add1("add", graph.add1("mul", y, scalar[1 / 6]), scalar[0.5])
    gate = graph.add1("min", graph.add1("max", gate, scalar[0.0]), scalar[1.0])
    graph.set_outputs([graph.add1("mul", y, gate)])
    return graph


def _warm_build_optimises_nothing(tmp_path, monkeypatch, graph: Graph, x: np.ndarray, want: np.ndarray) -> None:
    """A cold build optimises each cached kernel once; a warm one optimises no node function at all and
    builds the cold build's object, which computes `want`."""
    seen = _optimised_kernels(monkeypatch)
    builds = {}
    for run in ("cold", "warm"):
        seen.clear()
        with kernel_cache.using(tmp_path):
            builds[run] = driver.build(graph)
        assert seen == ([llvm_parts.KERNEL] * len(_entries(tmp_path)) if run == "cold" else []), run
    assert builds["warm"] == builds["cold"]
    np.testing.assert_array_equal(runtime.load(builds["warm"])(x)[0], want)


def test_a_kernel_calling_an_outlined_epilogue_is_cached(tmp_path, monkeypatch):
    """The conv calls its epilogue.* function: its module declares it, so a warm build optimises no node
    function at all, and builds the cold build's object."""
    graph = _hardswish_conv()
    assert 'define internal void @"epilogue.' in driver.lower(graph)[1]
    x = RNG.standard_normal((2, 7, 7, 40)).astype(np.float32)
    (want,) = runtime.load(driver.build(graph))(x)
    _warm_build_optimises_nothing(tmp_path, monkeypatch, graph, x, want)


def _residual_blocks() -> Graph:
    """ResNet's blocks as direct convs (8x8 images): ReLU, residual + ReLU, ReLU; the plain and residual convs
    call one core (codegen/epilogue.share_residual)."""
    graph = Graph("residual_blocks")
    x = graph.add_input((1, 8, 8, 32), DType.f32, "x")
    zero = graph.const(np.zeros((1, 1, 1, 1), np.float32))
    pad = ((1, 1), (1, 1))

    def conv(value):
        w = (RNG.standard_normal((3, 3, 32, 32)) / np.sqrt(9 * 32)).astype(np.float32)
        return graph.add1("conv", value, graph.const(w), strides=(1, 1), padding=pad)

    h = graph.add1("max", conv(x), zero)
    y = graph.add1("max", graph.add1("add", conv(h), x), zero)
    graph.set_outputs([graph.add1("max", conv(y), zero)])
    return graph


def test_calls_of_a_shared_core_are_cached(tmp_path, monkeypatch):
    """The node functions that call a residual-sharing core declare it (llvm_parts.SHARED_CORE), as the core
    is a kernel of its own: a warm build optimises no node function at all, and builds the cold build's
    object, with the bits of a build without the cache."""
    graph = _residual_blocks()
    split, named = _split(graph)
    cores = [f.name for f in split.functions if ".core." in f.name]  # epilogue.share_residual names them so
    callers = [f.name for f in split.functions for core in cores if f'@"{core}"(' in f.text.split("\n", 1)[-1]]
    assert len(cores) == 1 and len(callers) == 2, (cores, callers)
    assert {*cores, *callers} <= llvm_parts.kernel_names(split, named)
    assert llvm_parts.pipeline(cores[0]) == llvm_parts.pipeline(callers[0]) == llvm_parts.PIPELINES["conv"]
    x = RNG.standard_normal((1, 8, 8, 32)).astype(np.float32)
    (want,) = runtime.load(driver.build(graph))(x)
    _warm_build_optimises_nothing(tmp_path, monkeypatch, graph, x, want)
