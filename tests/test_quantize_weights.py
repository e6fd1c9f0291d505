"""quantize="int8-weights" (passes/int8_weights.py, codegen/matmul.py): dense weights int8 per output column.

Tolerances, stated per check:
- against the same model with its weights replaced by their dequantized values (q * scale, in f32), the
  compiled model agrees to f32 rounding (rtol 1e-5, atol 1e-5 of the largest output): the only change is
  the weights' rounding, and the scale applied after the sum instead of to each weight;
- one dense layer against f32: |error[n]| <= sum_k |x_k| * scale[n] / 2 (each weight moves at most half a
  step), plus f32 rounding;
- an MLP against f32 (JAX, ONNX): max abs error of the logits within 3% of the largest |logit|.
"""

from __future__ import annotations

import subprocess
import sys

import jax
import native
import numpy as np
import onnx
import onnx_models
import pytest
from test_aarch64_runtime import run_cbxrun, split_outputs

import cerebro
from cerebro.compiler import driver
from cerebro.compiler.cbx.profile_table import node_info
from cerebro.compiler.ir import IRError
from cerebro.compiler.passes.int8_weights import quantize_columns
from cerebro.frontends.jax import trace

SIZES = [600, 64, 64, 10]  # 600 deep: two K panels (512 + 88) on AVX2 with 16 rows
INT8 = "int8-weights"


def layers(sizes: list[int], seed: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [((rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32), (rng.normal(size=b) * 0.1).astype(np.float32))
            for a, b in zip(sizes, sizes[1:])]


def mlp(weights: list[tuple[np.ndarray, np.ndarray]]) -> object:
    def fn(x):
        for k, (w, b) in enumerate(weights):
            x = x @ w + b
            if k < len(weights) - 1:
                x = jax.nn.relu(x)
        return x

    return fn


def dequantized(weights: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for w, b in weights:
        q, scale = quantize_columns(w)
        out.append((q.astype(np.float32) * scale, b))
    return out


def _inputs(rows: int, seed: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, SIZES[0])).astype(np.float32)


def _close(got: np.ndarray, want: np.ndarray, rtol: float) -> None:
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("rows", [1, 16], ids=["batch1", "batch16"])
def test_jax_mlp_is_the_dequantized_model_and_near_f32(rows: int) -> None:
    """16 rows: several row blocks and K panels, the scale still applied once, after the last panel."""
    weights, x = layers(SIZES), _inputs(rows)
    got = np.asarray(cerebro.compile(mlp(weights), quantize=INT8, cache=False)(x))
    _close(got, np.asarray(jax.jit(mlp(dequantized(weights)))(x)), 1e-5)
    want = np.asarray(jax.jit(mlp(weights))(x))
    assert np.abs(got - want).max() <= 0.03 * np.abs(want).max()
    assert not np.array_equal(got, want)  # the weights really were quantized


@pytest.mark.parametrize("depth", [258, 5], ids=["chains_and_tail", "one_chain"])
def test_one_layer_error_within_half_a_step_per_weight(depth: int) -> None:
    """258 deep: matmul.K_CHAINS partial sums over 256 k, then a tail of 2; 5 deep: one sum."""
    (w, b), = layers([depth, 40], seed=9)
    x = np.random.default_rng(10).normal(size=(1, depth)).astype(np.float32)
    got = np.asarray(cerebro.compile(lambda v: v @ w + b, quantize=INT8, cache=False)(x))
    (dequantized_w, _), = dequantized([(w, b)])
    _close(got, x @ dequantized_w + b, 1e-5)
    _, scale = quantize_columns(w)
    bound = np.abs(x).sum() * scale / 2
    assert np.all(np.abs(got - (x @ w + b)) <= bound * (1 + 1e-5) + 1e-6)


def test_weights_section_shrinks_about_fourfold_and_profile_names_int8_layers() -> None:
    graph = trace(mlp(layers(SIZES)), _inputs(1)).graph
    f32_graph, _, _, f32_weights = driver.lower(graph)
    int8_graph, _, _, int8_weights = driver.lower(graph, quantize=INT8)
    dense = sum(a * b for a, b in zip(SIZES, SIZES[1:]))
    per_column = 2 * 4 * sum(SIZES[1:])  # bias and scale, f32
    assert len(int8_weights) <= dense + per_column + 64 * len(SIZES)  # (each constant's alignment)
    assert len(int8_weights) < 0.3 * len(f32_weights)
    matmuls = [node for node in int8_graph.nodes if node.op == "matmul"]
    assert [node.inputs[1].dtype.name for node in matmuls] == ["i8"] * 3
    assert all("<i8 weights>" in node_info(node, 0).label for node in matmuls)
    assert not any("weights>" in node_info(node, 0).label for node in f32_graph.nodes)


def test_onnx_mlp_quantized_through_compile_onnx() -> None:
    weights, x = layers(SIZES, seed=5), _inputs(1, seed=6)
    data = cerebro.compile_onnx(onnx_models.mlp(weights), quantize=INT8, cache=False)
    got = np.asarray(cerebro.load(data)(x))
    _close(got, np.asarray(jax.jit(mlp(dequantized(weights)))(x)), 1e-5)
    want = np.asarray(jax.jit(mlp(weights))(x))
    assert np.abs(got - want).max() <= 0.03 * np.abs(want).max()
    assert len(data) < 0.5 * len(cerebro.compile_onnx(onnx_models.mlp(weights), cache=False))


def test_unknown_quantize_mode_is_a_one_line_error_listing_the_modes(tmp_path) -> None:
    for call in (lambda: cerebro.compile(lambda v: v, quantize="int4"),
                 lambda: cerebro.compile_onnx(onnx_models.mlp(layers(SIZES)), quantize="int4", cache=False)):
        with pytest.raises(IRError) as error:
            call()
        assert str(error.value) == "unknown quantize mode 'int4': expected one of int8-weights, int8"
    model = tmp_path / "mlp.onnx"
    onnx.save(onnx_models.mlp(layers(SIZES)), model)
    cli = subprocess.run([sys.executable, "-m", "cerebro.cli", "compile", str(model), "-o", str(tmp_path / "m.cbx"),
                          "--quantize", "int4"], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2 and "invalid choice: 'int4' (choose from 'int8-weights', 'int8')" in cli.stderr
    assert not (tmp_path / "m.cbx").exists()


def test_int8_weights_on_aarch64(tmp_path) -> None:
    """The widening loads built for aarch64 and run there (qemu off aarch64 hosts)."""
    weights, x = layers(SIZES), _inputs(1)
    graph = trace(mlp(weights), x).graph
    want = np.asarray(jax.jit(mlp(dequantized(weights)))(x))
    result = run_cbxrun(native.aarch64_runner(tmp_path / "runner"), driver.build(graph, "aarch64", quantize=INT8),
                        [x], tmp_path)
    assert result.returncode == 0, result.stderr
    (got,) = split_outputs((tmp_path / "out.bin").read_bytes(), [want])
    _close(got, want, 1e-5)
