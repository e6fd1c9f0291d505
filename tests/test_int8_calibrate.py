"""quantize="int8" calibration (compiler/passes/int8_calibrate.py): ranges read from a compiled f32 build
with the calibrated values as extra outputs, the same as the reference interpreter's; the percentile and
mse ranges; matmuls whose input's u8 grid is too coarse stay float; calibration_method reaches it."""

from __future__ import annotations

import numpy as np
import onnx_models
import pytest

import cerebro
from cerebro.calibration import exposed_values, quantize_graph
from cerebro.compiler.driver import _private_copy
from cerebro.compiler.ir import IRError
from cerebro.compiler.ir.interpret import run_node
from cerebro.compiler.passes.dce import eliminate_dead_nodes
from cerebro.compiler.passes.fold import fold_constants
from cerebro.compiler.passes.int8_calibrate import Histogram, calibrate, mse_range, percentile_range
from cerebro.compiler.passes.int8_static import find_sites
from cerebro.frontends.onnx import import_onnx

RNG = np.random.default_rng(8)


def layers(sizes: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [((RNG.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32),
             (RNG.standard_normal(n_out) * 0.1).astype(np.float32)) for n_in, n_out in zip(sizes, sizes[1:])]


def folded(sizes: tuple[int, ...]):
    return eliminate_dead_nodes(fold_constants(_private_copy(import_onnx(onnx_models.mlp(layers(sizes))))))


def interpreted_ranges(graph, samples, ids) -> dict[int, tuple[float, float]]:
    """(min, max) of each value in ids over the samples, from the reference interpreter (the old way)."""
    seen: dict[int, list[float]] = {}
    for sample in samples:
        env = {v.id: array for v, array in zip(graph.inputs, sample)}
        for node in graph.nodes:
            for value, result in zip(node.outputs, run_node(node, [v.data if v.is_const else env[v.id]
                                                                   for v in node.inputs])):
                env[value.id] = result
        for i in ids:
            low, high = seen.setdefault(i, [np.inf, -np.inf])
            seen[i] = [min(low, float(env[i].min())), max(high, float(env[i].max()))]
    return {i: tuple(r) for i, r in seen.items()}


def test_compiled_ranges_equal_the_interpreters() -> None:
    graph = folded((64, 48, 32, 10))
    sites = find_sites(graph)
    ids = {site.a.id for site in sites} | {site.tail.id for site in sites}
    assert graph.inputs[0].id in ids  # the first layer reads the graph input itself
    samples = [[RNG.standard_normal((1, 64)).astype(np.float32)] for _ in range(8)]
    got = calibrate(graph, samples, ids, exposed_values).ranges
    want = interpreted_ranges(graph, samples, ids)
    assert got.keys() == want.keys() and len({want[i] for i in ids}) == len(ids)
    for i in ids:
        np.testing.assert_allclose(got[i], want[i], rtol=1e-5, atol=1e-6)


def _histogram(values: np.ndarray) -> Histogram:
    histogram = Histogram(float(values.min()), float(values.max()))
    histogram.add(values.astype(np.float32))
    return histogram


def test_percentile_and_mse_ranges() -> None:
    bulk = RNG.standard_normal(1 << 20)
    tailed = _histogram(np.concatenate([bulk, [200.0, -150.0]]))
    low, high = percentile_range(tailed)
    assert -5.5 < low < -3.5 and 3.5 < high < 5.5  # the 1e-5 tails cut: two outliers and the normal's own
    laplace = RNG.laplace(size=1 << 20)
    low, high = mse_range(_histogram(laplace))
    assert 0.4 < low / laplace.min() < 0.9 and 0.4 < high / laplace.max() < 0.9  # its rare extremes clamped
    uniform = _histogram(RNG.uniform(-1, 3, 1 << 16))
    low, high = mse_range(uniform)
    assert low < -0.99 and high > 2.97  # nothing to gain by clipping a flat distribution


def _integer_layers(samples: list[np.ndarray], method: str | None = None) -> list[str]:
    graph = import_onnx(onnx_models.mlp(PARAMS))
    quantized, _ = quantize_graph(graph, "int8", samples, method)
    return [n.op for n in quantized.nodes if n.op in ("matmul", "matmul_integer")]


PARAMS = layers((1024, 32, 10))


def test_a_matmul_on_a_coarse_grid_stays_float() -> None:
    """One calibration element of 100 among 131072 standard normal ones: the first layer's u8 grid has
    steps of ~0.4 for values of rms ~1.04 (SNR ~78 < MIN_SNR), so that layer stays float; percentile cuts
    the element off (1 in 131072 < its TAIL)."""
    samples = [RNG.standard_normal((1, 1024)).astype(np.float32) for _ in range(128)]
    assert _integer_layers(samples) == ["matmul_integer", "matmul_integer"]
    samples[3][0, 5] = 100
    assert _integer_layers(samples) == ["matmul", "matmul_integer"]
    assert _integer_layers(samples, "percentile") == ["matmul_integer", "matmul_integer"]
    x = RNG.standard_normal((1, 1024)).astype(np.float32)
    f32 = cerebro.load(cerebro.compile_onnx(onnx_models.mlp(PARAMS), cache=False))(x)[0]
    int8 = cerebro.load(cerebro.compile_onnx(onnx_models.mlp(PARAMS), quantize="int8", calibration=samples,
                                             calibration_method="percentile", cache=False))(x)[0]
    assert np.abs(int8 - f32).max() < 0.05 * np.abs(f32).max()


def test_unknown_calibration_method_is_a_one_line_error() -> None:
    for method, mode in (("entropy", "int8"), ("mse", "int8-weights")):
        with pytest.raises(IRError, match="calibration method .*expected one of minmax, percentile, mse") as error:
            cerebro.compile_onnx(onnx_models.mlp(PARAMS), quantize=mode, calibration_method=method,
                                 calibration=[np.zeros((1, 1024), np.float32)] if mode == "int8" else None)
        assert "\n" not in str(error.value)
