"""The zoo's floor (benchmarks/zoo/work.py, floor.py, floor_report.py): flops counted as a textbook
would, the floor's arithmetic, and the report's floor section."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # benchmarks/ is a top-level folder, not part of the installed package

from benchmarks import floor as machine_floor  # noqa: E402
from benchmarks.zoo import floor, floor_report, report, work  # noqa: E402

H = W = 8
CI, CO, CLASSES = 4, 6, 10


def _model(nodes: list, inputs: list, output_shape: list[int], weights: dict[str, np.ndarray]) -> bytes:
    graph = helper.make_graph(nodes, "floor", inputs,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, output_shape)],
                              [numpy_helper.from_array(a, name) for name, a in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


def _conv_gemm(tmp_path: Path) -> Path:
    """x[1, CI, H, W] -> 3x3 conv (pad 1) -> Relu -> stride-2 3x3 depthwise conv -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)
    weights = {"w": rng.standard_normal((CO, CI, 3, 3), dtype=np.float32),
               "b": rng.standard_normal(CO, dtype=np.float32),
               "dw": rng.standard_normal((CO, 1, 3, 3), dtype=np.float32),
               "fc": rng.standard_normal((CO * (H // 2) * (W // 2), CLASSES), dtype=np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Conv", ["r", "dw"], ["d"], pads=[1, 1, 1, 1], strides=[2, 2], group=CO),
             helper.make_node("Flatten", ["d"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["out"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CI, H, W])
    path = tmp_path / "conv_gemm.onnx"
    path.write_bytes(_model(nodes, [x], [1, CLASSES], weights))
    return path


def test_work_counts_textbook_flops_and_bytes(tmp_path: Path) -> None:
    counted = work.count(_conv_gemm(tmp_path))
    dense = 2 * H * W * CO * CI * 9  # 2 * Ho * Wo * Co * Ci/groups * kh * kw
    depthwise = 2 * (H // 2) * (W // 2) * CO * 1 * 9
    fc = 2 * 1 * CLASSES * CO * (H // 2) * (W // 2)  # 2 * M * N * K
    assert counted["flops"]["conv"] == dense + depthwise
    assert counted["flops"]["matmul"] == fc and counted["flops"]["attention"] == 0
    assert counted["conv3x3_flops"] == dense and counted["grouped_conv_flops"] == depthwise
    assert counted["flops"]["other"] > 0  # the bias add and the ReLU
    weights = 4 * (CO * CI * 9 + CO + CO * 9 + CO * (H // 2) * (W // 2) * CLASSES)
    assert weights <= counted["weight_bytes"] <= weights + 16  # and scalar constants (ReLU's 0)
    pixels = 4 * H * W  # bytes per channel plane
    assert counted["activation_bytes"] == {str(CO * pixels): 2, str(CI * pixels): 1, str(CO * pixels // 4): 2,
                                           str(4 * CLASSES): 1}  # conv outs/ins, the Gemm's in and out


def test_work_counts_batched_matmul_of_two_activations(tmp_path: Path) -> None:
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 3, 5, 7])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 3, 7, 4])
    path = tmp_path / "bmm.onnx"
    path.write_bytes(_model([helper.make_node("MatMul", ["a", "b"], ["out"])], [a, b], [2, 3, 5, 4], {}))
    counted = work.count(path)
    assert counted["flops"] == {"conv": 0, "matmul": 0, "attention": 2 * (2 * 3) * 5 * 4 * 7, "other": 0}
    assert counted["weight_bytes"] == 0


def test_fma_peak_is_plausible() -> None:
    peak = machine_floor.fma_peak(trials=3, steps=200_000)
    assert 1e9 < peak < 1e13  # one core, float32: between a slow emulator and many wide FMA units


def test_gemm_peak_is_below_the_fma_peak() -> None:
    """A real GEMM (packing, cache traffic) runs under the register-only FMA rate of the same core."""
    gemm = machine_floor.gemm_peak(shapes=((96, 256, 128),), seconds=0.05)
    assert "cerebro" in gemm and all(1e8 < rate < 1.1 * machine_floor.fma_peak(trials=5) for rate in gemm.values())


MACHINE = {"cpu": 1, "peak_flops": 1e11, "caches": {"l2": 512 * 1024, "l3": 16 * 2**20}, "date": "today", "load": 0.5,
           "read_bytes_per_s": {"l2": 1e11, "l3": 5e10, "dram": 1e10}}
WORK = {"flops": {"conv": 7e8, "matmul": 1e8, "attention": 0, "other": 0}, "conv3x3_flops": 4e8,
        "grouped_conv_flops": 0, "weight_bytes": 40_000_000,
        "activation_bytes": {"20000000": 2, "1000000": 3, "1000": 9}}


def test_row_floor_is_the_larger_of_flops_and_bytes() -> None:
    one = floor.row_floor(WORK, MACHINE, 1)
    assert one["flop_ms"] == pytest.approx(8.0)  # 8e8 / 1e11
    # weights beyond L3 from DRAM 4 ms; 40 MB of tensors beyond L3 4 ms, 3 MB in L3 0.06 ms; in L2 free
    assert one["byte_ms"] == pytest.approx(4.0 + 4.0 + 0.06)
    assert one["floor_ms"] == one["byte_ms"] and one["bound"] == "bytes" and one["activations_moved"] == 43_000_000
    two = floor.row_floor(WORK, MACHINE, 2)  # twice the peak and bandwidth; 1 MB tensors fit two L2s
    assert two["flop_ms"] == pytest.approx(4.0) and two["byte_ms"] == pytest.approx(4.0)
    assert two["activations_moved"] == 40_000_000
    gemm = dict(MACHINE, gemm_flops={"cerebro": 4e10, "onnxruntime": 5e10})  # the faster GEMM is the peak
    assert floor.row_floor(WORK, gemm, 1)["flop_ms"] == pytest.approx(16.0)


def test_weights_past_the_probed_l3_come_from_memory() -> None:
    """A VM may report its host's whole L3 (480 MiB): weights past what the L3 probe read
    (floor.L3_PROBE_BYTES) are read at DRAM's bandwidth, not L3's."""
    big = dict(MACHINE, caches={"l2": 512 * 1024, "l3": 480 * 2**20})
    work = {**WORK, "weight_bytes": 340_000_000, "activation_bytes": {}}
    assert floor.row_floor(work, big, 1)["byte_ms"] == pytest.approx(34.0)  # 340 MB at 10 GB/s
    inside = {**work, "weight_bytes": floor.L3_PROBE_BYTES}
    assert floor.row_floor(inside, big, 1)["byte_ms"] == pytest.approx(floor.L3_PROBE_BYTES / 5e10 * 1e3)


def _report(tmp_path: Path) -> dict:
    def ok(ms: float, **extra: object) -> dict:
        return {"status": "ok", "median_ms": ms, "p90_ms": ms, "max_abs_diff": 1e-6, **extra}

    from benchmarks import machine

    cheap = {**WORK, "weight_bytes": 1_000_000, "activation_bytes": {}}  # flop floor 8 ms, bytes 0.02 ms
    results = [
        {"model": "resnet18", "batch": 1, "threads": 1, "backends": {"cerebro": ok(10.0), "ort": ok(12.0)}},
        {"model": "resnet18", "batch": 1, "threads": "default", "backends": {"cerebro": ok(6.0, threads=2),
                                                                             "ort": ok(5.0)}},
        {"model": "bert", "batch": 1, "threads": 1, "backends": {"cerebro": ok(10.0), "ort": ok(8.0)}},
    ]
    return {"machine": machine.describe(), "exporter": "torch x", "command": "python -m benchmarks --zoo",
            "budget_text": "few", "results": results, "floor": MACHINE,
            "work": {"resnet18-b1": cheap, "bert-b1": {"error": "OnnxImportError: no rule for Foo"}}}


def test_report_shows_the_floor_section(tmp_path: Path) -> None:
    full = _report(tmp_path)
    text = report.markdown(full)
    assert "### Floor: the least time this machine could take for each row" in text
    assert "Peak, times the row's threads (1, 2): 100.0 GFLOP/s float32 on one core (a register-only" in text
    assert "GB/s: L2 100, L3 50, DRAM 10" in text
    # pinned: floor 8 ms; Cerebro 10 ms is 80% of it, ORT 12 ms 67%, so Cerebro could lead by 1.5x at most
    assert ("| resnet18 | 1 | 1 (pinned) | 0.70 / 0.10 / 0.00 / 0.00 | 50% / 0% | 1.0 | 0.0 | **8.00** | 0.02 "
            "| 10.00 (80%) | 12.00 (67%) | 1.20x | 1.50x | 87% |") in text
    # two threads: floor 4 ms; ORT at 80% of it caps a lead at 1.25x
    assert "| 6.00 (67%) | 5.00 (80%) | 0.83x | 1.25x | 104% |" in text
    assert "Bound by flops in 2 of 2 rows; by bytes in 0." in text  # bert's work was not counted: no floor
    assert "out of reach at the floor" in text and "in 1 of 2 rows: resnet18 b1/t2 80%" in text
    assert "Cerebro at 80% of the floor or closer in 1 of 2 rows" in text
    assert "(1 rows, Cerebro's % of floor): resnet18 b1/t2 67%; of them behind ORT: resnet18 b1/t2 67%" in text
    assert "- b1/t1: median Cerebro vs ORT 1.20x now; at most 1.50x with Cerebro at its floor in every row (a " \
           "row past it as it is), 1.35x at 90% of it (1 models; 1 could reach 1.3x). For a 1.3x median 1 more " \
           "rows must reach it; the closest need Cerebro at 87% (resnet18, now 80%) of their floor." in text
    assert floor_report.plot_marks(full) == {("resnet18", "1", "1"): pytest.approx(1.5),
                                             ("resnet18", "1", "default"): pytest.approx(1.25)}
    report.plot(full, tmp_path / "zoo.png")
    assert (tmp_path / "zoo.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    del full["floor"]
    assert "### Floor" not in report.markdown(full)  # a run from before the floor: no section, no error


def test_median_at_the_floor_keeps_rows_already_past_it() -> None:
    """A row that leads ORT by more than its floor allows (Winograd: fewer flops than counted) counts as it is
    in the most the median could be, not pulled down to its floor: ResNet18's 1.45x against a floor that
    would give 1.06x."""
    def row(now: float, reach: float) -> tuple[dict, dict]:
        return {"model": "m", "batch": 1}, {"threads": 1, "now": now, "reach": reach, "cerebro": reach / now}

    (line,) = floor_report.medians([row(1.45, 1.06), row(1.1, 1.2), row(1.0, 1.4)])
    assert line.startswith("- b1/t1: median Cerebro vs ORT 1.10x now; at most 1.40x with Cerebro at its floor in "
                           "every row (a row past it as it is), 1.26x at 90% of it (3 models; 2 could reach 1.3x).")


def test_rerender_counts_missing_work_and_keeps_the_rows(tmp_path: Path) -> None:
    """python -m benchmarks.zoo.report on a zoo.json without work: counted from the cache, rows unchanged."""
    from benchmarks.zoo.export import paths

    full = _report(tmp_path)
    del full["work"]
    onnx_file = paths(tmp_path / "cache", "resnet18", 1)["onnx"]
    onnx_file.parent.mkdir(parents=True)
    onnx_file.write_bytes(_conv_gemm(tmp_path).read_bytes())
    (tmp_path / "zoo.json").write_text(json.dumps(full))
    report.main([str(tmp_path), "--zoo-cache", str(tmp_path / "cache")])
    again = json.loads((tmp_path / "zoo.json").read_text())
    gemm = again["floor"].pop("gemm_flops")  # a floor from before the GEMM peak gets it measured now
    assert again["floor"].pop("gemm_date") and 1e9 < gemm["cerebro"] < again["floor"]["peak_flops"] * 100
    assert again["results"] == full["results"] and again["floor"] == MACHINE
    assert set(again["work"]) == {"resnet18-b1"}  # bert has no exported file here: no work, no floor
    assert again["work"]["resnet18-b1"]["conv3x3_flops"] == 2 * H * W * CO * CI * 9
    assert "| resnet18 | 1 | 1 (pinned) | 0.00 / 0.00 / 0.00 / 0.00 |" in (tmp_path / "zoo.md").read_text()


def test_profile_against_peak_ranks_kinds_by_excess() -> None:
    from benchmarks.zoo.profile import against_peak, kind

    rows = [{"op": "conv", "what": "conv+[add] 1x56x56x24 1x1x24x144 1x1x1x144 -> 1x56x56x144", "median_us": 600.0,
             "flops": 48e6},  # 80 GFLOP/s
            {"op": "conv", "what": "conv+[add] 1x56x56x144 3x3x1x144 1x1x1x144 -> 1x56x56x144", "median_us": 300.0,
             "flops": 6e6},  # depthwise, 20 GFLOP/s
            {"op": "transpose", "what": "transpose 1x3x4x4 -> 1x4x4x3", "median_us": 10.0, "flops": 0}]
    assert [kind(r) for r in rows] == ["conv 1x1", "conv depthwise 3x3", "transpose"]
    assert kind({"op": "conv", "what": "conv 1x56x56x48 3x3x8x48 -> 1x56x56x48"}) == "conv grouped 3x3"
    lines = against_peak(rows, 1e11)
    assert lines[0] == "FMA peak 100.0 GFLOP/s (benchmarks.floor.fma_peak, this core)"
    assert lines[4:] == ["| conv depthwise 3x3 | 300.0 | 33.0% | 0.006 | 20.0 | 20% | 60.0 | 240.0 |",
                         "| conv 1x1 | 600.0 | 65.9% | 0.048 | 80.0 | 80% | 480.0 | 120.0 |",
                         "| transpose | 10.0 | 1.1% | 0.000 | 0.0 | 0% | 0.0 | 10.0 |"]


def test_a_model_section_sets_its_zoo_row_against_the_floor_and_its_ops_against_the_peak() -> None:
    """--all's section of one model: the one-thread zoo row (Cerebro, ORT, their ratio and each one's share
    of the floor), the nodes' sum, then against_peak's table."""
    from benchmarks.zoo.profile import against_peak, model_section

    rows = [{"op": "matmul", "what": "matmul 128x768 768x768 -> 1x128x768", "median_us": 1000.0, "flops": 1.5e8},
            {"op": "row_kernel", "what": "row_kernel 1x128x768 -> 1x128x768", "median_us": 500.0, "flops": 1e6}]
    record = {"model": "bert", "batch": 1, "backends": {"cerebro": {"median_ms": 10.0}, "ort": {"median_ms": 12.0}}}
    floor = {"threads": 1, "floor_ms": 8.0, "flop_ms": 8.0, "byte_ms": 2.0, "cerebro": 0.8, "ort": 8 / 12}
    lines = model_section("bert", 1, rows, 2e11, (record, floor))
    assert lines[:4] == ["### bert b1, one pinned thread", "",
                         "Zoo run: Cerebro 10.00 ms, ORT 12.00 ms (1.20x); floor 8.00 ms (flops 8.00, bytes 2.00): "
                         "Cerebro at 80% of it, ORT at 67%.",
                         "Its 2 nodes timed alone, weights warm: 1.50 ms in all."]
    assert lines[5:-1] == against_peak(rows, 2e11)
    assert model_section("bert", 1, rows, 2e11, None)[2].startswith("Its 2 nodes")  # no zoo row: no floor line
