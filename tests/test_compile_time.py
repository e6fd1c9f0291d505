"""Compile time: nodes whose code would be the same share one node function (codegen/kernel_key.py),
with bit-identical results, and the compile's phases are timed (compiler/progress.py)."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import driver, llvm_parts
from cerebro.compiler.codegen import SIZES
from cerebro.compiler.codegen import module as codegen_module
from cerebro.compiler.codegen.kernel_key import kernel_key
from cerebro.compiler.ir import Graph, Value
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.progress import timed
from cerebro.elf import STB_LOCAL, STT_FUNC, ElfFile
from cerebro.frontends.jax import trace

jax.config.update("jax_platforms", "cpu")
_RNG = np.random.default_rng(14)
NODE_FUNCTION = re.compile(r'^define [^\n]*@"?(node\d+_\w+)"?\(([^\n]*)\n(.*?)^}', re.S | re.M)


def _normal(*shape: int) -> np.ndarray:
    return _RNG.standard_normal(shape).astype(np.float32)


def _unshared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codegen_module, "kernel_key", lambda node, target: None)


def _node_functions(graph: Graph) -> list[tuple[str, str]]:
    """(name, signature and body) of each node function of graph's LLVM IR."""
    _, text, _, _ = driver.lower(graph)
    return [(name, signature + body) for name, signature, body in NODE_FUNCTION.findall(text)]


DENSE = [(_normal(64, 64), _normal(64)) for _ in range(4)]


def dense_stack(x: jnp.ndarray) -> jnp.ndarray:
    """Four dense layers of one shape: three with a relu epilogue (one kernel), one with tanh (another);
    then two elementwise chains of one shape but different bodies (two kernels)."""
    for w, b in DENSE[:3]:
        x = jax.nn.relu(x @ w + b)
    x = jnp.tanh(x @ DENSE[3][0] + DENSE[3][1])
    return (x * 2.0 + 1.0) @ DENSE[0][0] + jnp.exp(x * 3.0 - 1.0)


def test_identical_nodes_share_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _normal(8, 64)
    traced = trace(dense_stack, x, name="shared")
    shared = _node_functions(traced.graph)
    matmuls = [name for name, _ in shared if name.endswith("_matmul")]
    assert len(matmuls) == 3, matmuls  # relu x3, tanh, and the last one's add epilogue
    (got,) = runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(x))
    _unshared(monkeypatch)
    assert len([name for name, _ in _node_functions(traced.graph) if name.endswith("_matmul")]) == 5
    (alone,) = runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(x))
    np.testing.assert_array_equal(got, alone)  # bit-identical with or without sharing
    np.testing.assert_allclose(got, jax.jit(dense_stack)(x), rtol=1e-5, atol=1e-4)


CONV = [_normal(3, 3, 8, 8) * 0.3 for _ in range(3)]


def blocks(x: jnp.ndarray) -> jnp.ndarray:
    """Conv blocks with residuals (epilogues), a strided conv, a layer norm (a row kernel) and
    elementwise chains: a model whose repeated parts should each compile once."""
    def conv(h: jnp.ndarray, w: np.ndarray, stride: int = 1) -> jnp.ndarray:
        return jax.lax.conv_general_dilated(h, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    for w in CONV[:2]:
        x = jax.nn.relu(conv(x, w) + x)
    x = conv(x, CONV[2], 2)
    mean = x.mean(-1, keepdims=True)
    x = (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + 1e-5)
    return jnp.tanh(x) * 0.5 + jax.nn.sigmoid(x[..., ::-1])


def test_sharing_finds_exactly_the_identical_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key merges nodes exactly when their code is the same text: as many functions with sharing
    as distinct bodies without, and no two shared functions alike."""
    graph = trace(blocks, _normal(2, 16, 16, 8), name="blocks").graph
    shared = [body for _, body in _node_functions(graph)]
    _unshared(monkeypatch)
    alone = [body for _, body in _node_functions(graph)]
    assert len(set(shared)) == len(shared) == len(set(alone)) < len(alone)


def test_attrs_it_cannot_describe_share_nothing() -> None:
    graph = Graph("g")
    x = graph.add_input((4,), DType.f32, "x")
    (node_value,) = graph.add("neg", [x])
    node = node_value.producer
    assert kernel_key(node, "host") is not None
    node.attrs["body"] = object()
    assert kernel_key(node, "host") is None


def test_compile_phases_are_timed() -> None:
    graph = trace(dense_stack, _normal(8, 64), name="timed").graph
    with timed() as timings:
        driver.build(graph)
    phases = timings.cpu_seconds
    for name in ("optimise", "lower to LLVM IR", "LLVM optimise", "LLVM machine code", "write .cbx"):
        assert phases[name] >= 0, name
    assert set(timings.wall_seconds) == set(phases)
    assert 0 < sum(phases.values()) <= timings.total_cpu_seconds + 0.05


def test_llvm_in_parts_gives_the_same_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Conv kernels optimised with their own pipeline (llvm_parts.PIPELINES) apart from the rest, and half the node
    functions in a worker process, linked back: the results of one module at O3, bit for bit, and the
    same functions and global symbols (the parts' functions internal again)."""
    x = _normal(2, 16, 16, 8)
    traced = trace(blocks, x, name="parts")
    inputs = traced.flatten_inputs(x)
    monkeypatch.setattr(llvm_parts, "worth_processes", lambda text: 1)
    builds = {"levels": driver.build(traced.graph)}
    monkeypatch.setattr(llvm_parts, "worth_processes", lambda text: 2)
    split = llvm_parts.split_text(driver.lower(traced.graph)[1])
    assert llvm_parts.worker_share(split)  # the worker gets some node functions
    builds["two processes"] = driver.build(traced.graph)
    monkeypatch.setattr(llvm_parts, "worth_processes", lambda text: 1)
    monkeypatch.setattr(llvm_parts, "PIPELINES", {})
    whole = driver.build(traced.graph)
    (want,) = runtime.load(whole)(*inputs)
    for name, data in builds.items():
        assert _symbols(data) == _symbols(whole), name
        np.testing.assert_array_equal(runtime.load(data)(*inputs)[0], want, err_msg=name)


def _symbols(cbx: bytes) -> list[tuple[str, int, int, int]]:
    """(name, binding, type, visibility) of the object's global symbols and its functions (not local data:
    a private constant both processes use is linked in twice, under a second local name)."""
    return sorted((s.name, s.bind, s.type, s.visibility) for s in ElfFile.parse(cbx).symbols
                  if s.name and (s.bind != STB_LOCAL or s.type == STT_FUNC))


def layers(x: jnp.ndarray) -> jnp.ndarray:
    """Eight dense layers of one shape and weights: eight calls of one node function."""
    w, b = DENSE[0]
    for _ in range(8):
        x = jax.nn.relu(x @ (w * 0.2) + b)
    return x


def test_repeated_stages_share_one_calls_function() -> None:
    """Stages and steps calling the same functions on pointers of the same kinds are one function taking
    its pointers from a table row (codegen/calls.py): eight layers, each a stage and a step of its own,
    need the first layer's (reads an input), the middle layers' and the last's (writes the output),
    not 16. The same results with one part and with two."""
    x = _normal(8, 64)
    traced = trace(layers, x, name="layers")
    _, text, meta, _ = driver.lower(traced.graph, stage_flops=0)
    glue = [name for name in re.findall(r'^define internal void @"?(\w+)"?\(', text, re.M)
            if not name.startswith("node")]
    assert meta.num_stages == 8 and len(glue) <= 3, glue
    data = driver.build(traced.graph, stage_flops=0)
    want = np.asarray(jax.jit(layers)(x))
    inputs = traced.flatten_inputs(x)
    (one,) = runtime.load(data, threads=1)(*inputs)
    (two,) = runtime.load(data, threads=2)(*inputs)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_allclose(one, want, rtol=1e-5, atol=1e-5)


def test_weights_never_pass_through_llvm() -> None:
    """LLVM's object holds no placeholder zeros for the weights (a NOBITS section the writer fills by
    appending): for 4 MB of weights it stays small, and the .cbx holds the weights and runs right."""
    w = _normal(1024, 1024)
    x = _normal(2, 1024)
    traced = trace(lambda v: v @ w, x, name="big_weights")
    _, text, meta, weights = driver.lower(traced.graph)
    assert len(weights) >= w.nbytes
    obj = driver.compile_llvm(text, driver.resolve_target("host"))
    assert len(obj) < 256 * 1024, len(obj)
    data = driver.build(traced.graph)
    section = ElfFile.parse(data).section(".cerebro.weights")
    assert section is not None and section.size == len(weights)
    assert data[section.offset:section.offset + section.size] == bytes(weights)
    (got,) = runtime.load(data)(*traced.flatten_inputs(x))
    np.testing.assert_allclose(got, x @ w, rtol=1e-5, atol=1e-3)


GROWTH = [_normal(1, 1, 16 + 8 * k, 8) * 0.3 for k in range(3)]


def dense_block(x: jnp.ndarray) -> jnp.ndarray:
    """DenseNet's pattern: each 1x1 conv reads the concatenation of all before it (16, 24, 32 channels)."""
    for w in GROWTH:
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        x = jnp.concatenate([x, jax.nn.relu(y)], -1)
    return x


def _conv_functions(cbx: bytes) -> list[str]:
    return [name for name, _, kind, _ in _symbols(cbx) if kind == STT_FUNC and name.endswith("_conv")]


def test_convs_differing_in_input_channels_share_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """The input channel count is an argument of a conv's function (codegen/conv.py runtime_channels), so
    the three convs of a dense block are one function in the object, with the same bits as three."""
    x = _normal(1, 8, 8, 16)
    traced = trace(dense_block, x, name="dense_block")
    shared = driver.build(traced.graph)
    assert len(_conv_functions(shared)) == 1, _conv_functions(shared)
    (got,) = runtime.load(shared)(*traced.flatten_inputs(x))
    monkeypatch.delitem(SIZES, "conv")
    constants = driver.build(traced.graph)
    assert len(_conv_functions(constants)) == 3, _conv_functions(constants)
    (alone,) = runtime.load(constants)(*traced.flatten_inputs(x))
    np.testing.assert_array_equal(got, alone)
    np.testing.assert_allclose(got, jax.jit(dense_block)(x), rtol=1e-5, atol=1e-4)


def concatenations(x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Two concatenations of 8-channel runs differing in their row count (8x8 and 4x4) and input count."""
    corner = x[:, :4, :4]
    return (jnp.concatenate([jax.nn.relu(x), x * 2.0], -1),
            jnp.concatenate([-corner, corner + 1.0, corner * 3.0], -1))


def test_concatenations_differing_in_sizes_share_one_copy() -> None:
    """Every input of both is a call to one row copy (codegen/layout.py), its sizes as arguments; each
    concatenation's own function is calls, no loop. A copy: exactly numpy's concatenation."""
    x = _normal(1, 8, 8, 8)
    traced = trace(concatenations, x, name="concatenations")
    _, text, _, _ = driver.lower(traced.graph)
    copies = re.findall(r'^define [^\n]*@"?(copy_rows_\w+)"?\(', text, re.M)
    assert copies == ["copy_rows_float_8"], copies
    concats = [body for name, body in _node_functions(traced.graph) if name.endswith("_concatenate")]
    assert len(concats) == 2 and all(" br " not in body and body.count("call ") >= 2 for body in concats), concats
    got = runtime.load(driver.build(traced.graph))(*traced.flatten_inputs(x))
    xs = np.maximum(x, 0), x * 2, -x[:, :4, :4], x[:, :4, :4] + 1, x[:, :4, :4] * 3
    want = np.concatenate(xs[:2], -1), np.concatenate(xs[2:], -1)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, np.asarray(w))


@pytest.mark.parametrize("depth, columns, block", [(5, 37, 16), (3, 32, 16), (4, 7, 16), (1, 1, 8)])
def test_pack_columns_is_the_documented_block_layout(depth: int, columns: int, block: int) -> None:
    """pack_columns (one strided copy for the full blocks, one for the tail) puts element (k, j0 + c)
    at j0*K + k*width + c, as the matmul tile reads it (passes/prepack.py)."""
    from cerebro.compiler.passes.prepack import pack_columns
    b = np.arange(depth * columns, dtype=np.float32).reshape(depth, columns)
    flat = pack_columns(b, block).reshape(-1)
    for j0 in range(0, columns, block):
        width = min(block, columns - j0)
        for k in range(depth):
            assert (flat[j0 * depth + k * width:][:width] == b[k, j0:j0 + width]).all()


def test_weights_blob_is_every_constant_little_endian_and_aligned() -> None:
    """The weights blob (passes/memplan.py, joined from the arrays' buffers): each constant at an aligned
    offset in its declared element type, little-endian even from a big-endian or strided array."""
    from cerebro.compiler.passes.memplan import ALIGN, plan_memory
    g = Graph("w")
    x = g.add_input((2, 3), DType.f32, "x")
    a = Value((2, 3), DType.f32, data=np.arange(6, dtype=">f4").reshape(2, 3))
    b = Value((2, 3), DType.f32, data=np.arange(12, dtype=np.float32).reshape(3, 4).T[:2, :3])  # strided
    g.set_outputs([g.add1("add", g.add1("add", x, a), b)])
    plan = plan_memory(g)
    for value in (a, b):
        offset = plan.places[value.id].offset
        assert offset % ALIGN == 0
        stored = np.frombuffer(bytes(plan.weights), "<f4", value.size, offset).reshape(value.shape)
        assert (stored == value.data).all()


def test_weights_blob_is_the_constants_own_buffers() -> None:
    """A little-endian contiguous constant goes into the .cbx from its own buffer: the memory plan holds
    no joined copy of the weights (for bert b1 a join was 0.25 CPU s and 440 MB)."""
    from cerebro.compiler.passes.memplan import plan_memory
    g = Graph("w")
    x = g.add_input((256, 256), DType.f32, "x")
    w = Value((256, 256), DType.f32, data=_normal(256, 256))
    g.set_outputs([g.add1("add", x, w)])
    plan = plan_memory(g)
    assert any(np.shares_memory(np.asarray(piece), w.data) for piece in plan.weights)
    assert len(plan.weights) == len(bytes(plan.weights)) >= w.data.nbytes



POINTWISE = {channels: _normal(1, 1, channels, 24) * 0.3 for channels in (43, 75)}
RESIDUAL = _normal(1, 1, 24, 24) * 0.3
BIAS = _normal(24)


def _pointwise(x: jnp.ndarray, w: np.ndarray) -> jnp.ndarray:
    return jax.lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def mobile_stages(*xs: jnp.ndarray) -> list[jnp.ndarray]:
    """Pointwise convs with bias and relu, as MobileNet's stages have them: the same kernel at other
    spatial sizes (117, 400 and 91 pixels: blocks of 6 rows then 3, 2 and 5 blocks of 5) and batches
    (2, 1) and input channels (43, 75); then, on the first two, one with a residual (its rows read
    at pixel x output channels)."""
    hidden = [jax.nn.relu(_pointwise(x, POINTWISE[x.shape[-1]]) + BIAS) for x in xs]
    return [_pointwise(h, RESIDUAL) + h for h in hidden[:2]] + hidden[2:]


def _numpy_pointwise(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The reference, summed in float64."""
    return x.astype(np.float64) @ w[0, 0].astype(np.float64)


def test_convs_differing_in_spatial_size_share_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pointwise conv takes its batch, pixel count and channel counts as arguments (codegen/conv.py
    runtime_sizes): five convs of two kinds are two functions, with the same bits as five with constant
    sizes (one thread and two: the parts' shares are run-time sums too) and the numpy result."""
    xs = [_normal(2, 9, 13, 43), _normal(1, 20, 20, 43), _normal(1, 7, 13, 75)]
    traced = trace(mobile_stages, *xs, name="mobile_stages")
    shared = driver.build(traced.graph)
    assert len(_conv_functions(shared)) == 2, _conv_functions(shared)
    got = [runtime.load(shared, threads=threads)(*traced.flatten_inputs(*xs)) for threads in (1, 2)]
    monkeypatch.delitem(SIZES, "conv")
    constants = driver.build(traced.graph)
    assert len(_conv_functions(constants)) == 5, _conv_functions(constants)
    alone = runtime.load(constants)(*traced.flatten_inputs(*xs))
    for outs in got:
        for g, a in zip(outs, alone):
            np.testing.assert_array_equal(g, a)
    hidden = [np.maximum(_numpy_pointwise(x, POINTWISE[x.shape[-1]]) + BIAS, 0) for x in xs]
    want = [_numpy_pointwise(h, RESIDUAL) + h for h in hidden[:2]] + hidden[2:]
    for g, w in zip(alone, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape,groups,cout", [
    ((1, 7, 7, 1), 1, 1),      # ONNX's test_qlinearconv: one channel, so depthwise; raised at build
    ((1, 1, 1, 8), 8, 16),     # depthwise 1x1 with a channel multiplier, one pixel
    ((2, 5, 3, 8), 8, 8),      # depthwise 1x1 over pixels
])
def test_pointwise_convs_without_a_channel_argument(shape: tuple, groups: int, cout: int) -> None:
    """A 1x1 conv whose input channels stay a constant (depthwise: runtime_channels is False) takes no
    other size arguments either: _take_sizes reads the channels first (before, a one-channel conv passed
    batch, pixels and output channels, and the batch was taken for the channels: ValueError at build)."""
    x = _normal(*shape)
    w = _normal(1, 1, shape[-1] // groups, cout)
    graph = Graph("pointwise")
    xv = graph.add_input(x.shape, DType.f32, "x")
    graph.set_outputs([graph.add1("conv", xv, graph.const(w), strides=(1, 1), padding=((0, 0), (0, 0)),
                                  groups=groups)])
    (got,) = runtime.load(driver.build(graph))(x)
    per_group = shape[-1] // groups
    want = np.concatenate([x[..., g * per_group:(g + 1) * per_group].astype(np.float64)
                           @ w[0, 0, :, g * cout // groups:(g + 1) * cout // groups].astype(np.float64)
                           for g in range(groups)], axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
