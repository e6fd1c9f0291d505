"""Which LLVM pipeline each kernel is optimised with (compiler/llvm_parts.py PIPELINES): hand-tiled kernels
(direct and Winograd convs, matmuls) at O2 without unrolling nor SLP vectoriser, whatever their size; the
bits are those of O3 (no fast-math)."""

from __future__ import annotations

import numpy as np
import pytest

from cerebro import runtime
from cerebro.compiler import build, llvm_parts
from cerebro.compiler.ir import DType, Graph

RNG = np.random.default_rng(7)


def _build_recording(monkeypatch: pytest.MonkeyPatch, graph: Graph) -> tuple[dict[str, llvm_parts.Pipeline], bytes]:
    """The graph's .cbx, built in this process, and the pipeline each node function went through, by name."""
    seen: dict[str, llvm_parts.Pipeline] = {}
    real = llvm_parts.run_pipeline

    def recording(module, tm, triple, chosen):  # noqa: ANN001, ANN202
        for function in module.functions:
            if not function.is_declaration and function.name.startswith("node"):
                seen[function.name] = chosen
        real(module, tm, triple, chosen)

    monkeypatch.setattr(llvm_parts, "run_pipeline", recording)
    monkeypatch.setattr(llvm_parts, "worth_processes", lambda text: 1)
    return seen, build(graph)


def _winograd_layer() -> tuple[Graph, np.ndarray]:
    """A 3x3 conv + bias + ReLU that passes/winograd.py takes on SSE to AVX-512 (32 -> 64 channels: output
    channels in whole column blocks of 6x4 AVX-512 tiles; 36 tiles)."""
    x = RNG.standard_normal((1, 12, 12, 32)).astype(np.float32)
    w = (RNG.standard_normal((3, 3, 32, 64)) * 0.1).astype(np.float32)
    graph = Graph("winograd_pipeline")
    xv = graph.add_input(x.shape, DType.f32, "x")
    y = graph.add1("conv", xv, graph.const(w), strides=(1, 1), padding=((1, 1), (1, 1)))
    y = graph.add1("max", graph.add1("add", y, graph.const(np.full((1, 1, 1, 64), 0.1, np.float32))),
                   graph.const(np.zeros((1, 1, 1, 1), np.float32)))
    graph.set_outputs([y])
    return graph, x


def test_winograd_kernels_are_optimised_as_hand_tiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Winograd kernel goes through O2 without unrolling (O3 unrolled its tile loops fully: 1.5x the
    LLVM time, no speed) nor SLP vectoriser (a fifth of its optimisation, same code), and gives the same bits
    as at O3 with both."""
    graph, x = _winograd_layer()
    seen, data = _build_recording(monkeypatch, graph)
    winograd = [chosen for name, chosen in seen.items() if name.endswith("_winograd_conv")]
    assert winograd == [llvm_parts.Pipeline(2, unroll=False, slp=False)], seen
    monkeypatch.setattr(llvm_parts, "PIPELINES", {})
    (want,) = runtime.load(build(graph))(x)
    (got,) = runtime.load(data)(x)
    np.testing.assert_array_equal(got, want)


def _layout_graph() -> tuple[Graph, np.ndarray, np.ndarray]:
    """pad -> 2x2/2 max pool (NHWC) -> NCHW transpose, with numpy's result."""
    x = RNG.standard_normal((1, 10, 10, 48)).astype(np.float32)
    graph = Graph("layout_pipeline")
    xv = graph.add_input(x.shape, DType.f32, "x")
    y = graph.add1("pad", xv, lo=(0, 1, 1, 0), hi=(0, 1, 1, 0), value=0.0)
    y = graph.add1("reduce_window", y, kind="max", window=(1, 2, 2, 1), strides=(1, 2, 2, 1),
                   padding=((0, 0),) * 4)
    y = graph.add1("transpose", y, perm=(0, 3, 1, 2))
    graph.set_outputs([y])
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    pooled = padded.reshape(1, 6, 2, 6, 2, 48).max(axis=(2, 4))
    return graph, x, pooled.transpose(0, 3, 1, 2)


def test_pads_pools_and_transposes_are_optimised_as_hand_tiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pads, pools and transposes go through O2 without unrolling (O3's unrolled copies of their vector loops
    were a third to a half of their LLVM time, for no speed), with O3's bits and numpy's values."""
    graph, x, want = _layout_graph()
    seen, data = _build_recording(monkeypatch, graph)
    seen = {name.split("_", 1)[1]: chosen for name, chosen in seen.items()}
    assert {op: seen.get(op) for op in ("pad", "reduce_window", "transpose")} == dict.fromkeys(
        ("pad", "reduce_window", "transpose"), llvm_parts.Pipeline(2, unroll=False, slp=False)), seen
    monkeypatch.setattr(llvm_parts, "PIPELINES", {})
    (o3,) = runtime.load(build(graph))(x)
    (got,) = runtime.load(data)(x)
    np.testing.assert_array_equal(got, o3)
    np.testing.assert_array_equal(got, want)


def test_reductions_are_optimised_as_hand_tiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """A global average pool's reduce_sum (ResNet18's 7x7x512) and a row max go through O2 without unrolling
    (O3 unrolled the 49-row column sum into 3.3 KB of code: 0.032 -> 0.008 CPU s), with O3's bits."""
    x = RNG.standard_normal((1, 7, 7, 512)).astype(np.float32)
    graph = Graph("reductions")
    xv = graph.add_input(x.shape, DType.f32, "x")
    graph.set_outputs([graph.add1("reduce_sum", xv, axes=(1, 2)), graph.add1("reduce_max", xv, axes=(3,))])
    seen, data = _build_recording(monkeypatch, graph)
    seen = {name.split("_", 1)[1]: chosen for name, chosen in seen.items()}
    assert {op: seen.get(op) for op in ("reduce_sum", "reduce_max")} == dict.fromkeys(
        ("reduce_sum", "reduce_max"), llvm_parts.HAND_TILED), seen
    monkeypatch.setattr(llvm_parts, "PIPELINES", {})
    o3 = runtime.load(build(graph))(x)
    got = runtime.load(data)(x)
    for a, b in zip(got, o3, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(got[0], x.astype(np.float64).sum(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[1], x.max(axis=3))
