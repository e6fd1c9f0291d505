"""Multi-threaded calls (abi.h's stage word, steps): splitting a call across parts changes no result bit.

Models: whole models at batch 1 and 4, run with threads=2 and 3 by the user-space host, give
exactly the threads=1 outputs (np.testing.assert_array_equal) and jax.jit's within the model
tolerances of tests/jax_cases.py. Kernels: every parallel emitter's node function, called for
each part of P in turn on one thread (P = 1..5 and more parts than units of work), writes the
same bits as with one part, so each output element is computed by exactly one part with the
same instructions.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import subprocess

import jax
import jax.numpy as jnp
import llvmlite.binding as llvm
import numpy as np
import pytest
from jax_cases import MODEL, _Factories, assert_outputs_match, random_variables
from llvmlite import ir
from native import aarch64_runner
from onnx import TensorProto, helper, numpy_helper

from cerebro import runtime
from cerebro.compiler import build
from cerebro.compiler.codegen import EMITTERS, PARALLEL, EmitContext
from cerebro.compiler.codegen.elementwise import CHUNK
from cerebro.compiler.driver import lower
from cerebro.compiler.ir import Graph
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.targets import EM_AARCH64, conv_tile, lanes, matmul_tile, micro_tile, resolve_target
from cerebro.frontends.jax import trace
from cerebro.frontends.onnx import import_onnx

jax.config.update("jax_platforms", "cpu")
HOST = resolve_target("host")


def _mlp(batch: int, rng: np.random.Generator) -> tuple:
    module = _Factories.mlp()
    x = rng.normal(size=(batch, 20)).astype(np.float32)
    return (lambda v, x: module.apply(v, x)), random_variables(module, x, rng=rng), [x]


def _cnn(batch: int, rng: np.random.Generator) -> tuple:
    module = _Factories.cnn()
    x = rng.normal(size=(batch, 16, 16, 3)).astype(np.float32)
    return (lambda v, x: module.apply(v, x)), random_variables(module, x, rng=rng), [x]


def _transformer(batch: int, rng: np.random.Generator) -> tuple:
    module = _Factories.encoder_block()
    x = rng.normal(size=(batch, 8, 32)).astype(np.float32)
    valid = np.ones((batch, 8), np.int32)
    valid[-1, 5:] = 0
    return (lambda v, x, valid: module.apply(v, x, valid)), random_variables(module, x, valid, rng=rng), [x, valid]


MODELS = {"mlp": _mlp, "cnn": _cnn, "transformer": _transformer}


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("name", list(MODELS))
def test_threads_give_the_same_bits(name: str, batch: int) -> None:
    apply, variables, args = MODELS[name](batch, np.random.default_rng(batch))
    fn = functools.partial(apply, variables)
    traced = trace(fn, *args, name=name)
    data = build(traced.graph)
    inputs = traced.flatten_inputs(*args)
    serial = runtime.load(data)
    want = serial(*inputs)
    assert_outputs_match(want, jax.jit(fn)(*args), MODEL["rtol"], MODEL["atol"], name)
    for threads in (2, 3):
        model = runtime.load(data, threads=threads)
        assert model.threads == threads
        for _ in range(3):  # back-to-back calls: each a fresh job of the pool
            for got, expected in zip(model(*inputs), want, strict=True):
                np.testing.assert_array_equal(got, expected, err_msg=f"{name} b{batch} threads={threads}")


def test_sliced_nodes_run_whole_in_a_step() -> None:
    """With a small stage budget the dense layers are cut into slices over many stages; a split call runs
    each as one call per step (the same units), and every thread count still gives the 1-thread bits."""
    rng = np.random.default_rng(2)
    # wide enough for > 10 slices with AVX-512's 64-column panels too (512 x 64 made 9 stages there)
    w1 = (rng.normal(size=(256, 1024)) / 16).astype(np.float32)
    w2 = (rng.normal(size=(1024, 256)) / 32).astype(np.float32)
    x = rng.normal(size=(4, 256)).astype(np.float32)
    fn = lambda x: jnp.tanh(jax.nn.relu(x @ w1) @ w2)  # noqa: E731
    _check_sliced(fn, x, stage_flops=50_000, more_stages_than=10)


def _check_sliced(fn, x: np.ndarray, stage_flops: int, more_stages_than: int) -> None:
    """fn built with a small stage budget: more stages than given, one thread (whole steps) within
    tolerance of jax.jit, and 2 and 3 threads the one thread's bits."""
    data = build(trace(fn, x).graph, stage_flops=stage_flops)
    serial = runtime.load(data)
    assert serial.meta.num_stages > more_stages_than
    (want,) = serial(x)
    np.testing.assert_allclose(want, jax.jit(fn)(x), rtol=MODEL["rtol"], atol=MODEL["atol"])
    for threads in (2, 3):
        (got,) = runtime.load(data, threads=threads)(x)
        np.testing.assert_array_equal(got, want, err_msg=f"threads={threads}")


def test_sliced_convs_run_whole_steps_on_one_thread() -> None:
    """A conv cut into slices over many stages: one thread runs it whole (CEREBRO_WHOLE_STEP: the steps, a
    step past the last stage it would run otherwise would lose the rest), with the bits of every thread count
    and jax.jit's results within tolerance."""
    rng = np.random.default_rng(3)
    w = (rng.normal(size=(3, 3, 32, 64)) / 24).astype(np.float32)
    x = rng.normal(size=(2, 24, 24, 32)).astype(np.float32)
    fn = lambda x: jax.nn.relu(jax.lax.conv_general_dilated(  # noqa: E731 (strided: no Winograd, sliced)
        x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    _check_sliced(fn, x, stage_flops=100_000, more_stages_than=4)


@pytest.fixture(scope="module")
def cbxrun_aarch64(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return aarch64_runner(tmp_path_factory.mktemp("cbxrun-aarch64"))


@pytest.mark.parametrize("name", ["cnn", "transformer"])
def test_threads_on_aarch64(name: str, cbxrun_aarch64: list[str], tmp_path) -> None:
    """The aarch64 code split across 2 and 3 threads by cbxrun under qemu (its steps, the pool's
    futex meetings): the same bits as 1 thread, and jax.jit's results."""
    apply, variables, args = MODELS[name](2, np.random.default_rng(5))
    fn = functools.partial(apply, variables)
    traced = trace(fn, *args, name=name)
    model_path = tmp_path / "model.cbx"
    model_path.write_bytes(build(traced.graph, target="aarch64"))
    paths = []
    for k, array in enumerate(traced.flatten_inputs(*args)):
        paths.append(tmp_path / f"in{k}.bin")
        paths[-1].write_bytes(np.ascontiguousarray(array).tobytes())
    outputs = {}
    for threads in (1, 2, 3):
        out = tmp_path / f"out{threads}.bin"
        command = [*cbxrun_aarch64, "--threads", str(threads), str(model_path), *map(str, paths), "-o", str(out)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        outputs[threads] = out.read_bytes()
    assert outputs[2] == outputs[1] and outputs[3] == outputs[1]
    (spec,) = traced.graph.outputs
    got = np.frombuffer(outputs[1], spec.dtype.numpy).reshape(spec.shape)
    assert_outputs_match([got], jax.jit(fn)(*args), MODEL["rtol"], MODEL["atol"], f"{name} on aarch64")


def test_serial_meta_allows_parts() -> None:
    """Compiled code always supports splitting (meta.parts) and keeps arena bytes 0..63 reserved (abi.h)."""
    traced = trace(lambda x: jnp.tanh(x) * 2, np.ones((3, 4), np.float32))
    model = runtime.load(build(traced.graph))
    assert model.meta.parts == 256
    assert model.meta.arena_size >= 64


# Kernels: node functions of real compiled graphs, JIT-compiled and called part by part.

_ENGINES: list = []  # keep JIT code alive for the session


# Register-tile shapes the host can run: its own, 4-lane SSE and NEON's 8x3 tile (as 4-lane x86 code).
FLAVOURS = {"host": HOST, "sse": dataclasses.replace(HOST, vector_width=4),
            "neon-tile": dataclasses.replace(HOST, vector_width=4, machine=EM_AARCH64)}


def _kernel(node, target) -> ctypes.CFUNCTYPE:
    module = ir.Module(name=node.op)
    module.triple = HOST.triple
    params = [ir.PointerType()] * (len(node.inputs) + len(node.outputs)) + [ir.IntType(32)] * 2
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), params), name="kernel")
    EMITTERS[node.op](EmitContext(module, target), node, fn)
    tm = HOST.target_machine()
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    builder = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(speed_level=3))
    builder.getModulePassManager().run(parsed, builder)
    engine = llvm.create_mcjit_compiler(parsed, tm)
    engine.finalize_object()
    _ENGINES.append(engine)
    count = len(node.inputs) + len(node.outputs)
    return ctypes.CFUNCTYPE(None, *[ctypes.c_void_p] * count, ctypes.c_int32, ctypes.c_int32)(
        engine.get_function_address("kernel"))


def _run_parts(kernel, node, inputs: list[np.ndarray], parts: int, only: int | None = None,
               fill: float = np.nan) -> list[np.ndarray]:
    """Outputs (`fill` where nothing wrote) after running every part of `parts`, or just part `only`."""
    outputs = [np.full(v.shape, fill, v.dtype.numpy) for v in node.outputs]
    pointers = [a.ctypes.data for a in inputs + outputs]
    for part in range(parts) if only is None else [only]:
        kernel(*pointers, part, parts)
    return outputs


_PREFETCHED: list[int] = []
_RECORD = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(_PREFETCHED.append)


def _recording_prefetch(builder: ir.IRBuilder, base: ir.Value, at: ir.Value, elem: ir.Type, locality: int = 3
                        ) -> None:
    """matmul.prefetch that calls record_prefetch(address) instead (llvm.add_symbol: _PREFETCHED)."""
    pointer = builder.gep(base, [at], source_etype=elem)
    record = builder.module.globals.get("record_prefetch") or ir.Function(
        builder.module, ir.FunctionType(ir.VoidType(), [pointer.type]), "record_prefetch")
    builder.call(record, [pointer])


def _prefetched_lines(node, inputs: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> tuple[set[int], np.ndarray]:
    """(the cache lines of inputs[1] that node's kernel prefetched, run as one part, its output)."""
    from cerebro.compiler.codegen import conv, matmul

    for module in (matmul, conv):  # the walks (Winograd's too) prefetch through matmul.prefetch_walk
        monkeypatch.setattr(module, "prefetch", _recording_prefetch)
    llvm.add_symbol("record_prefetch", ctypes.cast(_RECORD, ctypes.c_void_p).value)
    kernel = _kernel(node, HOST)
    _PREFETCHED.clear()
    got = _run_parts(kernel, node, inputs, 1)[0]  # a Winograd conv: and its scratch
    return {(p - inputs[1].ctypes.data) // 64 for p in _PREFETCHED}, got


def _rows_lines(rows, pitch: int) -> set[int]:
    """The cache lines of packed rows (`pitch` f32 each)."""
    per_row = pitch * 4 // 64
    return {row * per_row + c for row in rows for c in range(per_row)}


@pytest.mark.parametrize("rows", [30, 90])
def test_streamed_tiles_fetch_every_line_of_b(rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A b of 2 MiB or more streams (matmul.stream_fetches): each K panel's first tile prefetches its own
    rows from PREFETCH_K on, every other tile its share of the next column block's rows, so every cache line
    of b but the first PREFETCH_K rows of the first column block's K panels is fetched ahead of its reads
    (a share rounded the wrong way, or a walk that starts at the wrong row, leaves lines out), each about once."""
    from cerebro.compiler.codegen import matmul

    g = Graph("streamed")
    w = np.random.default_rng(rows).normal(size=(1100, 640)).astype(np.float32)  # 2.7 MiB; K panels of 512
    g.set_outputs([g.add1("matmul", g.add_input((rows, 1100), DType.f32, "x"), g.const(w))])
    node = next(n for n in lower(g)[0].nodes if n.op == "matmul")
    pitch = node.attrs["packed_b"]
    assert matmul.tile(node, HOST)[0] < rows and node.inputs[1].nbytes >= matmul.STREAMED_B_BYTES
    a = np.random.default_rng(1).normal(size=(rows, 1100)).astype(np.float32)
    packed = np.ascontiguousarray(node.inputs[1].data)
    fetched, got = _prefetched_lines(node, [a, packed], monkeypatch)
    np.testing.assert_allclose(got, a.astype(np.float64) @ w, rtol=1e-4, atol=1e-3)
    step = matmul.depth_block(HOST, DType.f32, pitch // lanes(HOST, DType.f32))
    ahead_only = _rows_lines([k0 + k for k0 in range(0, 1100, step) for k in range(matmul.PREFETCH_K)], pitch)
    want = set(range(packed.nbytes // 64)) - ahead_only
    assert not want - fetched, f"{len(want - fetched)} of {len(want)} lines of b never prefetched"
    # a walk step under one line (90 rows: 14 walkers share a 64-column panel, 5 floats a k step) prefetches
    # that line once a step, not once per line of a row (3.5 prefetches a line here; 13.6 when it was 4)
    assert len(_PREFETCHED) <= 4 * len(fetched), f"{len(_PREFETCHED)} prefetches for {len(fetched)} lines"


def test_a_part_walks_its_own_columns_of_b(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts that split b's column blocks go K panel by K panel over their own; the tiles of a part's last
    block walk its first block's next K panel (matmul._panel_walks), not the next part's block, which the
    other core streams: part 0 of 2 prefetches every line of its blocks but the first PREFETCH_K rows, and
    none of the next block's in the K panels before the last (but the first rows a rounded-up walk of the
    last panel runs on into)."""
    from cerebro.compiler.codegen import conv, matmul

    g = Graph("parts")
    w = np.random.default_rng(3).normal(size=(1100, 640)).astype(np.float32)  # 2.7 MiB; K panels of 512
    g.set_outputs([g.add1("matmul", g.add_input((90, 1100), DType.f32, "x"), g.const(w))])
    node = next(n for n in lower(g)[0].nodes if n.op == "matmul")
    pitch = node.attrs["packed_b"]
    step = matmul.depth_block(HOST, DType.f32, pitch // lanes(HOST, DType.f32))
    assert node.inputs[1].nbytes >= matmul.STREAMED_B_BYTES and step < 1100
    a = np.random.default_rng(2).normal(size=(90, 1100)).astype(np.float32)
    packed = np.ascontiguousarray(node.inputs[1].data)
    for module in (matmul, conv):
        monkeypatch.setattr(module, "prefetch", _recording_prefetch)
    llvm.add_symbol("record_prefetch", ctypes.cast(_RECORD, ctypes.c_void_p).value)
    _PREFETCHED.clear()
    got = _run_parts(_kernel(node, HOST), node, [a, packed], 2, only=0)[0]
    written = ~np.isnan(got).all(axis=0)
    columns = int(written.sum())  # part 0's: the first ones, whole blocks
    assert written[:columns].all() and 0 < columns < 640 and columns % pitch == 0
    np.testing.assert_allclose(got[:, :columns], a.astype(np.float64) @ w[:, :columns], rtol=1e-4, atol=1e-3)
    fetched = {(p - packed.ctypes.data) // 64 for p in _PREFETCHED}
    own = set(range(columns * 1100 * 4 // 64))
    assert not own - _rows_lines(range(matmul.PREFETCH_K), pitch) - fetched
    next_block = {len(own) + line for line in _rows_lines(range(128, 1100 // step * step), pitch)}
    assert not fetched & next_block, f"{len(fetched & next_block)} lines of the next part's block prefetched"


@pytest.fixture
def streaming(monkeypatch: pytest.MonkeyPatch) -> None:
    """Convs stream their weights as on a target whose L3 is slow (targets.streams_conv_weights), whatever
    this host is: the streamed code paths run and are checked on every machine."""
    from cerebro.compiler.codegen import conv, winograd

    for module in (conv, winograd):
        monkeypatch.setattr(module, "streams_conv_weights", lambda target: True)


@pytest.mark.parametrize("cin, cout, size", [(2048, 512, 7), (512, 1000, 13)])
def test_streamed_conv_tiles_fetch_every_line_of_the_weights(cin: int, cout: int, size: int, streaming: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for a weights-outer conv whose weights stream and whose channel blocks' weights fit L2 twice
    (conv.walks_weights: a 1x1 conv 2048 -> 512 on 7x7 pixels, as in ResNet50; SqueezeNet's 512 -> 1000 on
    13 x 13, 2.0 MB, streams because its outputs are few, conv.FEW_PIXELS): every line but the first
    PREFETCH_K rows (Cin steps) of the first channel block's."""
    from cerebro.compiler.codegen import conv, matmul

    w = (np.random.default_rng(4).normal(size=(cout, cin, 1, 1)) / np.sqrt(cin)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "pointwise",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, size, size])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    node = next(n for n in lower(import_onnx(model.SerializeToString()))[0].nodes if n.op == "conv")
    assert conv.walks_weights(node, HOST) and len(node.inputs) == 2
    x = np.random.default_rng(5).normal(size=node.inputs[0].shape).astype(np.float32)
    packed = np.ascontiguousarray(node.inputs[1].data)
    fetched, got = _prefetched_lines(node, [x, packed], monkeypatch)
    want_out = np.einsum("nhwc,oc->nhwo", x.astype(np.float64), w[:, :, 0, 0].astype(np.float64))
    np.testing.assert_allclose(got, want_out, rtol=1e-4, atol=1e-3)
    want = set(range(packed.nbytes // 64)) - _rows_lines(range(matmul.PREFETCH_K), node.attrs["packed_b"])
    assert not want - fetched, f"{len(want - fetched)} of {len(want)} lines of the weights never prefetched"


def test_conv_tiles_prefetch_their_residual_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A conv whose epilogue adds a residual (an operand laid out as the output, written layers before: from L3
    or memory) prefetches each tile's rows of it before the tile's k loop (conv._prefetch_operand_rows), so the
    epilogue's loads do not wait for them: every line of the residual is fetched ahead, and the result holds."""
    from cerebro.compiler.codegen import conv

    rng = np.random.default_rng(6)
    k = (rng.normal(size=(1, 1, 32, 96)) / 6).astype(np.float32)
    conv_nhwc = functools.partial(jax.lax.conv_general_dilated, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x, r = rng.normal(size=(1, 9, 9, 32)).astype(np.float32), rng.normal(size=(1, 9, 9, 96)).astype(np.float32)
    traced = trace(lambda x, r: jax.nn.relu(conv_nhwc(x, k, (1, 1), "VALID") + r), x, r)
    (node,) = [n for n in lower(traced.graph, HOST)[0].nodes if n.op == "conv"]
    (slot,) = [i for i, v in enumerate(node.inputs) if v.shape == node.outputs[0].shape]
    inputs = [np.ascontiguousarray(v.data if v.data is not None else (r if i == slot else x))
              for i, v in enumerate(node.inputs)]
    monkeypatch.setattr(conv, "prefetch", _recording_prefetch)
    llvm.add_symbol("record_prefetch", ctypes.cast(_RECORD, ctypes.c_void_p).value)
    kernel = _kernel(node, HOST)
    _PREFETCHED.clear()
    got = _run_parts(kernel, node, inputs, 1)[0]
    want = np.maximum(np.einsum("nhwc,co->nhwo", x.astype(np.float64), k[0, 0].astype(np.float64)) + r, 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    residual = inputs[slot].ctypes.data
    fetched = {(p - residual) // 64 for p in _PREFETCHED if 0 <= p - residual < r.nbytes}
    assert fetched == set(range(r.nbytes // 64)), f"{r.nbytes // 64 - len(fetched)} residual lines never prefetched"


def test_streamed_winograd_products_fetch_every_line_of_the_kernel(streaming: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for a Winograd conv whose transformed kernel streams (codegen/winograd.py kernel_streams: 16 x
    128 x 256 f32, 2 MiB): each position's row tiles walk the next position's panel of U, which follows it
    in memory, so every line but the first PREFETCH_K rows (Cin steps) of the first panel is fetched ahead."""
    from cerebro.compiler.codegen import matmul, winograd

    rng = np.random.default_rng(13)
    k = (rng.normal(size=(3, 3, 128, 256)) / 34).astype(np.float32)
    x = rng.normal(size=(1, 14, 14, 128)).astype(np.float32)
    conv = functools.partial(jax.lax.conv_general_dilated, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    (node,) = [n for n in lower(trace(lambda x: conv(x, k, (1, 1), "SAME"), x).graph, HOST)[0].nodes
               if n.op == "winograd_conv"]
    geometry = winograd.geometry(node)
    assert winograd.kernel_streams(geometry, HOST) and geometry.block // micro_tile(HOST)[0] > 1  # row tiles walk
    inputs = [np.ascontiguousarray(v.data if v.data is not None else x) for v in node.inputs]
    fetched, got = _prefetched_lines(node, inputs, monkeypatch)
    np.testing.assert_allclose(got, conv(x, k, (1, 1), "SAME"), rtol=1e-3, atol=1e-3)
    want = set(range(inputs[1].nbytes // 64)) - _rows_lines(range(matmul.PREFETCH_K), geometry.columns)
    assert not want - fetched, f"{len(want - fetched)} of {len(want)} lines of the kernel never prefetched"


def _graphs() -> dict[str, object]:
    rng = np.random.default_rng(7)
    w = rng.normal(size=(40, 70)).astype(np.float32)
    k = rng.normal(size=(3, 3, 20, 24)).astype(np.float32)
    deep = rng.normal(size=(3, 3, 32, 160)).astype(np.float32)
    dw = rng.normal(size=(3, 3, 1, 16)).astype(np.float32)
    wide = rng.normal(size=(1, 1, 32, 96)).astype(np.float32)
    conv = functools.partial(jax.lax.conv_general_dilated, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return {
        "dense_b1": (lambda x: jax.nn.gelu(x @ w), [(1, 40)]),
        "dense_b13": (lambda x: x @ w + 1.0, [(13, 40)]),
        "batched": (lambda a, b: jnp.einsum("bij,bjk->bik", a, b), [(3, 7, 9), (3, 9, 11)]),
        "conv": (lambda x: jax.nn.relu(conv(x, k, (1, 1), "SAME")), [(2, 9, 7, 20)]),
        "conv_strided": (lambda x: conv(x, k, (2, 2), "VALID"), [(1, 11, 12, 20)]),
        "conv_deep": (lambda x: conv(x, deep, (1, 1), "SAME"), [(1, 5, 5, 32)]),
        "depthwise": (lambda x: conv(x, dw, (1, 1), "SAME", feature_group_count=16), [(1, 6, 9, 16)]),
        "conv_batch": (lambda x: conv(x, wide, (1, 1), "VALID"), [(8, 6, 6, 32)]),
        "conv_expand": (lambda x: conv(x, wide, (1, 1), "VALID"), [(1, 6, 6, 32)]),
        "pool": (lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME"),
                 [(2, 9, 8, 5)]),
        "softmax": (lambda x: jax.nn.softmax(x, axis=-1), [(2, 3, 7, 33)]),
        "elementwise": (lambda x, y: jnp.tanh(x) * y + jnp.exp(-x), [(3000,), (3000,)]),
        "broadcast": (lambda x, y: jnp.maximum(x, 0) * y, [(5, 70, 3), (70, 1)]),
        "layernorm": (lambda x: (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5),
                      [(5, 19)]),
        "transpose": (lambda x: jnp.transpose(x, (0, 2, 3, 1)), [(2, 20, 9, 7)]),
        "slice_concatenate": (lambda x, y: jnp.concatenate([x[:, 1:8], y], axis=1), [(6, 10, 5), (6, 3, 5)]),
        "shuffle": (lambda x, y: jnp.swapaxes(jnp.concatenate([x, y], axis=-1).reshape(2, 5, 2, 11), -1, -2)
                    .reshape(2, 5, 22), [(2, 5, 11), (2, 5, 11)]),  # passes/shuffle.py: interleaved rows
        "pad": (lambda x: jax.lax.pad(x, 0.5, ((1, 0, 0), (-1, 2, 0), (2, -1, 0), (0, 1, 0))), [(3, 9, 7, 5)]),
        "global_pool": (lambda x: jnp.sum(x, axis=(1, 2)), [(5, 6, 7, 9)]),
        "row_sums": (lambda x: jnp.max(x, axis=-1), [(7, 3, 40)]),
    }


def _unwritten(kernel, node, inputs: list[np.ndarray], part: int) -> np.ndarray:
    """Where part `part` of 2 leaves the first output alone: it keeps either of two fill values."""
    a, b = (_run_parts(kernel, node, inputs, 2, only=part, fill=fill)[0] for fill in (1e30, -1e30))
    return a.view(np.uint32) != b.view(np.uint32)


@pytest.mark.parametrize("flavour", list(FLAVOURS))
@pytest.mark.parametrize("name", list(_graphs()))
def test_kernel_parts_cover_the_output_exactly(name: str, flavour: str) -> None:
    fn, shapes = _graphs()[name]
    rng = np.random.default_rng(3)
    args = [rng.normal(size=s).astype(np.float32) for s in shapes]
    graph = lower(trace(fn, *args).graph, FLAVOURS[flavour])[0]
    nodes = [n for n in graph.nodes if n.op in PARALLEL]
    assert nodes, f"{name}: no parallel node in {[n.op for n in graph.nodes]}"
    for node in nodes:
        inputs = [np.ascontiguousarray(v.data if v.data is not None else
                                       rng.normal(size=v.shape).astype(v.dtype.numpy)) for v in node.inputs]
        kernel = _kernel(node, FLAVOURS[flavour])
        want = _run_parts(kernel, node, inputs, 1)
        for parts in (2, 3, 4, 5, 64):
            for got, expected in zip(_run_parts(kernel, node, inputs, parts), want, strict=True):
                np.testing.assert_array_equal(got, expected, err_msg=f"{name} {node.op} parts={parts}")
        if node.outputs[0].size < 2 * CHUNK and node.op not in ("matmul", "conv", "row_kernel", "reduce_window",
                                                                         "transpose", "slice", "concatenate", "pad",
                                                                         "reduce_sum", "reduce_max"):
            continue  # an elementwise loop this short is one unit of work
        halves = [_unwritten(kernel, node, inputs, part) for part in (0, 1)]
        assert halves[0].any() and halves[1].any(), f"{name} {node.op}: a part computed everything"
        assert not (halves[0] & halves[1]).any(), f"{name} {node.op}: an element neither part wrote"


@pytest.mark.parametrize("name, op, whole_along", [("dense_b13", "matmul", 0), ("conv_batch", "conv", -1),
                                                   ("conv_expand", "conv", -1), ("conv_deep", "conv", (0, 1, 2))])
def test_parts_split_the_operand_that_outweighs(name: str, op: str, whole_along: int | tuple[int, ...]) -> None:
    """Each part reads all of the smaller operand and its share of the bigger (partition.first_wins):
    the 13-row dense layer's 11 KB weights outweigh its 2 KB input, so part 0 of 2 writes whole
    columns (all rows); the batch-8 1x1 conv's 36 KB of images outweigh its 12 KB weights, so part 0
    writes whole pixels (all channels), the images the other part does not touch. A conv splits by
    channels only where its weights outweigh 3x its images and outputs (partition.channels_first:
    those cross between cores when split by channels): the batch-1 conv's 12 KB of weights outweigh
    its 4.6 KB image but not 3x (4.6 + 14 KB), so it writes whole pixels too; the 3x3 conv's 184 KB
    of weights outweigh 3x (3 + 16 KB), so part 0 writes whole channels (all pixels). (The one
    register tile at the seam of the two shares may be split.)"""
    fn, shapes = _graphs()[name]
    rng = np.random.default_rng(5)
    args = [rng.normal(size=s).astype(np.float32) for s in shapes]
    (node,) = [n for n in lower(trace(fn, *args).graph, HOST)[0].nodes if n.op == op]
    inputs = [np.ascontiguousarray(v.data if v.data is not None else rng.normal(size=v.shape).astype(np.float32))
              for v in node.inputs]
    written = ~_unwritten(_kernel(node, HOST), node, inputs, 0)
    assert written.any() and not written.all()
    split = written.any(axis=whole_along) & ~written.all(axis=whole_along)  # only the tile at the shares' seam
    seam = lanes(HOST, DType.f32) * (matmul_tile(HOST, 13) if op == "matmul" else micro_tile(HOST))[1]
    assert split.sum() < max(0.4 * split.size, seam + 1), f"{name}: part 0 split {split.sum()} of {split.size} lines"


@pytest.mark.parametrize("x_shape, w_shape", [((1, 5, 5, 32), (3, 3, 32, 160)), ((8, 14, 14, 1024), (1, 1, 1024, 512))],
                         ids=["split_by_channels", "streamed_weights"])
def test_many_parts_of_a_big_conv_take_one_channel_block_each(x_shape: tuple, w_shape: tuple, streaming: None) -> None:
    """With more parts than channel blocks (a conv sliced into stages of STAGE_FLOPS), a weights-outer conv split
    by channels (3x3x32x160 on one 5x5 image), or whose weights stream from L3 or memory (conv.streams_weights:
    1x1x1024x512, 2 MiB, on 8 images), takes its (channel block, pixel block) tiles channel block by channel
    block (partition.grid_share's first_major): consecutive parts find one block's weights in cache.
    Numbered pixel block by pixel block, each stage read every block's weights again: ResNet18 at batch 1,
    whose 3x3x512x512 convs are 58 stages each, ran 39.9 -> 27.9 ms on one Xeon core, ResNet50 at batch 8
    560 -> 480 ms, the same bits."""
    rng = np.random.default_rng(5)
    k = rng.normal(size=w_shape).astype(np.float32)
    conv = functools.partial(jax.lax.conv_general_dilated, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = rng.normal(size=x_shape).astype(np.float32)
    (node,) = [n for n in lower(trace(lambda x: conv(x, k, (1, 1), "SAME"), x).graph, HOST)[0].nodes if n.op == "conv"]
    inputs = [np.ascontiguousarray(v.data if v.data is not None else x) for v in node.inputs]
    block = conv_tile(HOST, node)[1] * lanes(HOST, DType.f32)  # 5 x 5 outputs: targets.conv_tile's taller
    blocks = -(-node.outputs[0].shape[-1] // block)
    kernel = _kernel(node, HOST)
    for part in range(2 * blocks):
        a, b = (_run_parts(kernel, node, inputs, 2 * blocks, only=part, fill=fill)[0] for fill in (1e30, -1e30))
        channels = np.flatnonzero((a.view(np.uint32) == b.view(np.uint32)).any(axis=(0, 1, 2)))
        assert channels.size and channels[0] // block == channels[-1] // block == part // 2, (part, channels)


def test_winograd_units_go_group_by_group_where_the_kernel_streams(streaming: None) -> None:
    """A Winograd conv whose transformed kernel is 2 MB or more (codegen/winograd.py's _kernel_streams: 16 x
    256 x 256 f32, 4 MiB) numbers its units column group by column group, each group's kernel read once
    and then found in L2 by every tile block: part p of one unit each writes only group p // tile blocks'
    channels. (Tile block by tile block, ResNet18's 256-channel convs read the whole kernel once per tile
    block: 9 times from L3; one thread 28.7 -> 26.7-27.9 ms, two 14.1 -> 12.4 ms on a Xeon, the same bits.)"""
    rng = np.random.default_rng(11)
    k = (rng.normal(size=(3, 3, 256, 256)) / 48).astype(np.float32)
    conv = functools.partial(jax.lax.conv_general_dilated, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = rng.normal(size=(1, 14, 14, 256)).astype(np.float32)
    (node,) = [n for n in lower(trace(lambda x: conv(x, k, (1, 1), "SAME"), x).graph, HOST)[0].nodes
               if n.op == "winograd_conv"]
    inputs = [np.ascontiguousarray(v.data if v.data is not None else x) for v in node.inputs]
    groups, columns = node.attrs["groups"], node.attrs["columns"]
    tile_blocks = -(-(14 // 2) ** 2 // node.attrs["block"])
    assert groups > 1 and tile_blocks > 1
    kernel = _kernel(node, HOST)
    units = groups * tile_blocks
    for part in range(units):
        a, b = (_run_parts(kernel, node, inputs, units, only=part, fill=fill)[0] for fill in (1e30, -1e30))
        channels = np.flatnonzero((a.view(np.uint32) == b.view(np.uint32)).any(axis=(0, 1, 2)))
        group = part // tile_blocks
        assert channels.size and (channels // (columns * (node.outputs[0].shape[-1] // columns // groups))
                                  == group).all(), (part, channels)
