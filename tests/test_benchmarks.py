"""Smoke test of the benchmark suite: one tiny configuration end to end, plus its ONNX exporter.

No timing assertions: timings on a shared CI machine mean nothing. What must hold is that
every backend's output matched the reference and the three reports are well formed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # benchmarks/ is a top-level folder, not part of the installed package

from benchmarks import backends, floor, profile, timing, to_onnx, worker  # noqa: E402
from benchmarks.models import workload  # noqa: E402

TINY = {"warmup": 1, "min_repeats": 5, "min_seconds": 0.0, "max_seconds": 1.0, "floor_repeats": 1}


@pytest.mark.timeout(120)
def test_suite_runs_end_to_end(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "benchmarks", "--models", "mlp", "--batch", "2", "--threads", "1",
        "--budget", json.dumps(TINY), "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[ 1/1] mlp" in done.stdout  # the progress line

    report = json.loads((tmp_path / "latest.json").read_text())
    assert report["machine"]["logical_cpus"] >= 1 and report["machine"]["cpu"]
    (record,) = report["results"]
    assert (record["model"], record["batch"], record["threads"]) == ("mlp", 2, 1)
    assert record["cpus_available"] == 1  # pinned like taskset
    for name in ("cerebro", "xla", "ort"):
        result = record["backends"][name]
        assert result["status"] == "ok", (name, result.get("reason"))
        assert result["max_abs_diff"] < 1e-3
        assert result["repeats"] >= TINY["min_repeats"] and 0 < result["median_ms"] <= result["p90_ms"]

    table = (tmp_path / "latest.md").read_text()
    assert "| mlp | 2 | 1 (pinned) |" in table and report["machine"]["cpu"] in table
    png = (tmp_path / "latest.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    import matplotlib.pyplot as plt

    assert plt.imread(tmp_path / "latest.png").shape[0] > 100


@pytest.mark.parametrize("model", ["cnn", "transformer"])
def test_onnx_export_matches_jax(model: str) -> None:
    """ORT running the exported graph agrees with JAX (atol 1e-4 + rtol 1e-4 of the output range)."""
    import onnxruntime

    w = workload(model, 2)
    session = onnxruntime.InferenceSession(to_onnx.export(w.fn, w.inputs).SerializeToString())
    got = session.run(None, {"x0": w.inputs[0]})[0]
    expected = np.asarray(jax.jit(w.fn)(*w.inputs))
    np.testing.assert_allclose(got, expected, atol=1e-4 + 1e-4 * np.abs(expected).max(), rtol=0)


def test_onnx_export_names_unsupported_primitive() -> None:
    with pytest.raises(NotImplementedError, match="'sort'"):
        to_onnx.export(lambda x: jnp.sort(x) * 2, (np.ones((3, 4), np.float32),))


def test_wrong_output_is_not_timed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A backend whose output disagrees with the reference is reported 'wrong' and never timed."""
    calls = []

    def off_by_one(w, threads, workdir):
        def call():
            calls.append(1)
            return np.asarray(w.fn(*w.inputs)) + 1.0

        return backends.Prepared(0.0, call, call)

    monkeypatch.setitem(backends.BACKENDS, "off_by_one", off_by_one)
    w = workload("mlp", 1)
    result, prepared = worker.prepare("off_by_one", w, 1, worker.reference(w), tmp_path)
    assert result["status"] == "wrong" and "tolerance" in result["reason"]
    assert prepared is None and len(calls) == 1 and "median_ms" not in result


def test_interleaved_sampling_meets_the_budget() -> None:
    budget = timing.Budget(warmup=2, min_repeats=12, min_seconds=0.0, max_seconds=5.0, floor_repeats=1, rounds=3)
    order = []
    samples = timing.sample_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, budget)
    assert [len(samples[k]) for k in "ab"] == [12, 12]
    assert order[:12] == ["a"] * 6 + ["b"] * 6 and order[12:16] == ["a"] * 4  # 2 warmup + 4 per round


def test_merge_replaces_only_rerun_configurations() -> None:
    from benchmarks.__main__ import merge_base, put

    def record(model, threads, value):
        return {"model": model, "batch": 1, "threads": threads, "backends": {}, "value": value}

    previous = {
        "budget": {"rounds": 4},
        "command": "python -m benchmarks",
        "machine": {"date": "then", "commit": "abc1234"},
        "results": [record("mlp", 1, "old"), record("cnn", "default", "old")],
    }
    current = {"budget": {"rounds": 4}, "command": "python -m benchmarks --merge",
               "machine": {"date": "now", "commit": "def5678"}}
    merged = merge_base(previous, {**current, "results": []})
    put(merged["results"], record("mlp", "1", "new"))  # failure records spell threads as a string
    put(merged["results"], record("cnn", 1, "new"))
    assert [(r["model"], r["threads"], r["value"]) for r in merged["results"]] == [
        ("mlp", "1", "new"),
        ("cnn", "default", "old"),
        ("cnn", 1, "new"),
    ]
    assert merged["machine"]["date"] == "then" and merged["machine"]["commit"] == "abc1234"
    assert merged["command"].endswith("; then python -m benchmarks --merge (now, commit def5678)")
    with pytest.raises(SystemExit, match="budget"):
        merge_base(previous, {**current, "budget": {"rounds": 2}})


def test_profile_gives_one_row_per_node() -> None:
    rows, weight_bytes = profile.profile("mlp", 1, repeats=20)
    assert weight_bytes >= 4 * (784 * 512 + 512 * 512 + 512 * 10)
    assert [r["what"].split(" ")[0] for r in rows] == ["matmul+[add,max]", "matmul+[add,max]", "matmul+[add]"]
    assert all(r["median_us"] > 0 and r["p90_us"] >= r["median_us"] for r in rows)
    assert 2 * 784 * 512 < rows[0]["flops"] <= 2 * 785 * 512  # the product and its epilogue (bias, relu)
    assert all(r["where"].startswith("models.py:") for r in rows)  # benchmarks/models.py, the Flax MLP
    table = profile.render(rows, top=2, weight_bytes=weight_bytes, floor_us=10.0)
    assert table.count("| `matmul+[add") == 2 and "| matmul | " in table and "merely reading them" in table


def test_read_floor_scales_with_bytes() -> None:
    small, large = floor.read_time(64 * 1024, trials=5), floor.read_time(16 * 1024 * 1024, trials=3, repeats=3)
    assert 0 < small < large


# The model zoo (benchmarks/zoo): its plumbing without PyTorch (no export here; the exporter needs .venv-zoo).


def test_zoo_arguments() -> None:
    from benchmarks.__main__ import parse_args
    from benchmarks.zoo import run

    args = parse_args(["--zoo", "--zoo-models", "resnet18,bert", "--threads", "default,1"])
    assert [m.name for m in args.zoo_models] == ["resnet18", "bert"]
    assert args.batch == [1, 8] and args.budget == run.BUDGET and args.zoo_cache.name == "zoo"
    assert run.plan(args.zoo_models, [1, 8], ["default"]) == [("resnet18", 1, "default"), ("bert", 1, "default"),
                                                            ("resnet18", 8, "default"), ("bert", 8, "default")]
    assert run.plan(args.zoo_models, [1], args.threads) == [("resnet18", 1, "1"), ("resnet18", 1, "default"),
                                                          ("bert", 1, "1"), ("bert", 1, "default")]  # pinned compiles
    assert parse_args([]).batch == [1, 64]  # the suite's default is unchanged
    with pytest.raises(SystemExit):
        parse_args(["--zoo", "--zoo-models", "resnet18,nosuchnet"])


def _tiny_onnx_in_cache(cache: Path, name: str, batch: int) -> np.ndarray:
    """A Relu(MatMul) model where the exporter would put one, with its inputs and numpy's output."""
    from onnx import TensorProto, helper, numpy_helper

    from benchmarks.zoo.export import paths

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((batch, 16), dtype=np.float32), rng.standard_normal((16, 8), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["output"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 8])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    files = paths(cache, name, batch)
    files["onnx"].parent.mkdir(parents=True)
    files["onnx"].write_bytes(model.SerializeToString())
    np.savez(files["npz"], input_0=x, expected=np.maximum(x @ w, 0))
    return x


@pytest.mark.timeout(120)
def test_zoo_worker_compiles_once_per_run_and_times_phases(tmp_path: Path) -> None:
    from benchmarks.zoo import worker
    from benchmarks.zoo.phases import grouped

    _tiny_onnx_in_cache(tmp_path / "cache", "squeezenet1_1", 2)
    budget = timing.Budget(**TINY)
    first = worker.run("squeezenet1_1", 2, 1, tmp_path / "cache", tmp_path, budget)
    again = worker.run("squeezenet1_1", 2, None, tmp_path / "cache", tmp_path, budget)
    for record in (first, again):
        for name in ("cerebro", "ort"):
            assert record["backends"][name]["status"] == "ok", record["backends"][name]
    compiled = first["backends"]["cerebro"]
    assert compiled["compiled_here"] and compiled["nodes"] >= 1
    split = grouped(compiled["phases"])
    assert {"import", "passes", "emit IR", "LLVM", "write+load"} <= set(split)
    assert "write file" in compiled["phases"] and "other" not in split  # every phase in a report column
    assert sum(split.values()) <= compiled["compile_s"] + 1e-6
    assert "compiled_here" not in again["backends"]["cerebro"]  # loaded the first row's .cbx
    assert set(grouped(again["backends"]["cerebro"]["phases"])) == {"write+load"}


def test_zoo_worker_reports_a_failed_export(tmp_path: Path) -> None:
    from benchmarks.zoo import worker
    from benchmarks.zoo.export import paths

    files = paths(tmp_path, "gpt2", 1)
    files["error"].parent.mkdir(parents=True)
    files["error"].write_text("export failed: UnsupportedOperatorError: aten::diff\n\nTraceback ...")
    with pytest.raises(worker.ExportFailed, match="^export failed: UnsupportedOperatorError: aten::diff$"):
        worker.onnx_workload(tmp_path, "gpt2", 1)


def test_zoo_report_shows_speedups_phases_and_failures(tmp_path: Path) -> None:
    from benchmarks import machine
    from benchmarks.zoo import report

    def ok(ms: float, **extra: object) -> dict:
        return {"status": "ok", "median_ms": ms, "p90_ms": ms * 1.1, "max_abs_diff": 1e-6, **extra}

    phases = {"import": 0.5, "verify": 0.1, "optimise": 1.0, "lower to LLVM IR": 0.4, "LLVM optimise": 3.0,
              "write .cbx": 0.05, "load": 0.05}
    results = [
        {"model": "resnet18", "batch": 1, "threads": 1, "load_before": 1.5, "load_after": 2.5, "backends": {
            "cerebro": ok(10.0, compile_s=5.2, phases=phases, nodes=60, compiled_here=True),
            "ort": ok(12.0, compile_s=0.3), "xla": ok(20.0, compile_s=2.0)}},
        {"model": "resnet18", "batch": 1, "threads": "default", "backends": {
            "cerebro": ok(6.0), "ort": ok(5.0)}},
        {"model": "bert", "batch": 1, "threads": 1, "backends": {
            "cerebro": {"status": "error", "reason": "OnnxImportError: no rule for Foo"}, "ort": ok(8.0)}},
        {"model": "gpt2", "batch": 1, "threads": 1, "backends": {}, "error": "export failed: aten::diff"},
    ]  # fmt: skip
    full = {"machine": machine.describe(), "exporter": "torch x", "command": "python -m benchmarks --zoo",
            "budget_text": "few", "results": results}
    text = report.markdown(full)
    row = "| resnet18 | 1 | 1 (pinned) | 10.000 (11.000) | 12.000 (13.200) | 20.000 (22.000) | 1.20x | 2.00x |"
    assert row + " 1.0e-06 / 1.0e-06 | 1.5 |" in text
    assert "| resnet18 | 1 | 60 | 0.50 | 1.10 | 0.40 | 3.00 | 0.10 | 0.10 | 5.20 | 0.30 | 2.00 |" in text
    assert "batch 1, threads 1: median Cerebro vs ORT 1.20x over 1 models; 1 at or above 1.0x" in text
    assert "batch 1, threads default: median Cerebro vs ORT 0.83x over 1 models; 0 at or above 1.0x" in text
    assert "error [1]" in text and "[1] OnnxImportError: no rule for Foo" in text
    assert "| gpt2 | 1 | 1 (pinned) | failed [2] |" in text and "[2] export failed: aten::diff" in text
    assert "load average 1.5-2.5" in text
    report.plot(full, tmp_path / "zoo.png")
    assert (tmp_path / "zoo.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
