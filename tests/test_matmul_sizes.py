"""matmul with M, K and N as arguments (codegen/matmul.runtime_sizes), or the batch count (runtime_batch):
dense layers differing only in their sizes, and batched products (attention's scores) only in their batch,
share one node function, and give the bits the constant-size kernels give (same tiles, same sum order), for
leftover rows and columns, one K panel or several, bias and residual epilogues, on one part or two. The
shapes keep M % tile rows and N % tile columns equal on every target (M = 11 mod 24: a third of a tile or
more left over, so matmul.balanced_rows keeps every target's tile; N a multiple of 192), so the function
counts hold on any host.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cerebro import runtime
from cerebro.compiler.codegen import matmul
from cerebro.compiler.driver import build, lower
from cerebro.compiler.targets import matmul_tile, resolve_target
from cerebro.frontends.onnx import import_onnx

# (M, K, N, epilogue): one bias group and one residual group, each with one K panel and several (K=600)
SHARED = [(35, 40, 192, "bias"), (59, 600, 384, "bias"), (107, 72, 192, "bias"),
          (35, 40, 192, "residual"), (59, 600, 384, "residual")]
# leftover rows and columns on any target (M % 4, 6, 8 and N % 12, 16, 64 not 0), and a one-row layer
LEFTOVERS = [(13, 33, 41, "bias"), (31, 520, 70, "residual"), (1, 64, 100, "bias")]
BATCHES = [2, 5, 12]  # x [B, 49, 32] @ y [B, 32, 49]: swin_t's scores per window and head


def _batched_model() -> bytes:
    """One graph: x_i [B_i, 49, 32] @ y_i [B_i, 32, 49] -> output i, both operands inputs."""
    nodes, inputs, outputs = [], [], []
    for i, batch in enumerate(BATCHES):
        inputs += [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [batch, 49, 32]),
                   helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [batch, 32, 49])]
        nodes.append(helper.make_node("MatMul", [f"x{i}", f"y{i}"], [f"z{i}"]))
        outputs.append(helper.make_tensor_value_info(f"z{i}", TensorProto.FLOAT, [batch, 49, 49]))
    graph = helper.make_graph(nodes, "scores", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _model(layers: list[tuple[int, int, int, str]]) -> bytes:
    """One graph: input i [M, K] @ W + bias (+ residual input) -> output i, per layer."""
    rng = np.random.default_rng(7)
    nodes, inputs, outputs, weights = [], [], [], []
    for i, (m, k, n, kind) in enumerate(layers):
        weights += [numpy_helper.from_array(rng.standard_normal((k, n)).astype(np.float32), f"w{i}"),
                    numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), f"b{i}")]
        inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [m, k]))
        nodes += [helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"p{i}"]),
                  helper.make_node("Add", [f"p{i}", f"b{i}"], [f"y{i}" if kind == "bias" else f"s{i}"])]
        if kind == "residual":
            inputs.append(helper.make_tensor_value_info(f"r{i}", TensorProto.FLOAT, [m, n]))
            nodes.append(helper.make_node("Add", [f"s{i}", f"r{i}"], [f"y{i}"]))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [m, n]))
    graph = helper.make_graph(nodes, "dense", inputs, outputs, weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _matmul_functions(model: bytes) -> int:
    _, text, _, _ = lower(import_onnx(model), "host")
    return len(re.findall(r'^define internal void @"node\d+_matmul"', text, re.MULTILINE))


def _inputs(model: bytes) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    arrays = []
    for value in onnx.load_from_string(model).graph.input:
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        array = runtime.aligned_empty(tuple(shape), np.float32)
        array[...] = rng.standard_normal(shape)
        arrays.append(array)
    return arrays


def _reference(layers: list[tuple[int, int, int, str]], model: bytes, arrays: list[np.ndarray]) -> list[np.ndarray]:
    initializers = onnx.load_from_string(model).graph.initializer
    weights = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in initializers}
    results, at = [], 0
    for i, (_, _, _, kind) in enumerate(layers):
        y = arrays[at].astype(np.float64) @ weights[f"w{i}"] + weights[f"b{i}"]
        at += 1
        if kind == "residual":
            y, at = y + arrays[at], at + 1
        results.append(y)
    return results


def _outputs(cbx: bytes, arrays: list[np.ndarray], threads: int = 1) -> list[np.ndarray]:
    return [np.array(out) for out in runtime.load(cbx, threads=threads)(*arrays)]


def test_dense_layers_of_other_sizes_share_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(SHARED)
    # one per epilogue (bias and residual) and register tile (targets.matmul_tile: taller for short matmuls on
    # some hosts)
    tiles = {(epilogue, matmul_tile(resolve_target("host"), m)) for m, _, _, epilogue in SHARED}
    assert _matmul_functions(model) == len(tiles) <= 4
    monkeypatch.setattr(matmul, "runtime_sizes", lambda node: False)
    assert _matmul_functions(model) == len(SHARED)


def test_batched_products_of_other_batch_counts_share_one_function(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _batched_model()
    arrays = _inputs(model)
    assert _matmul_functions(model) == 1
    shared = build(import_onnx(model), target="host")
    results = _outputs(shared, arrays)
    for i, got in enumerate(results):
        want = arrays[2 * i].astype(np.float64) @ arrays[2 * i + 1]
        np.testing.assert_allclose(got, want, rtol=0, atol=4 * 32 * np.finfo(np.float32).eps * np.abs(want).max())
    for got, split in zip(results, _outputs(shared, arrays, threads=2)):
        np.testing.assert_array_equal(got, split)
    monkeypatch.setattr(matmul, "runtime_batch", lambda node: False)
    assert _matmul_functions(model) == len(BATCHES)
    for got, want in zip(results, _outputs(build(import_onnx(model), target="host"), arrays)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("layers", [SHARED, LEFTOVERS], ids=["shared", "leftovers"])
def test_shared_kernels_give_the_constant_kernels_bits(layers: list, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(layers)
    arrays = _inputs(model)
    shared = build(import_onnx(model), target="host")
    results = _outputs(shared, arrays)
    for got, want, (_, k, _, _) in zip(results, _reference(layers, model, arrays), layers):
        np.testing.assert_allclose(got, want, rtol=0, atol=4 * k * np.finfo(np.float32).eps * np.abs(want).max())
    for got, split in zip(results, _outputs(shared, arrays, threads=2)):  # parts share rows or columns
        np.testing.assert_array_equal(got, split)
    monkeypatch.setattr(matmul, "runtime_sizes", lambda node: False)
    constants = build(import_onnx(model), target="host")
    assert constants != shared
    for got, want in zip(results, _outputs(constants, arrays)):
        np.testing.assert_array_equal(got, want)
