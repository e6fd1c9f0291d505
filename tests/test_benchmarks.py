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
        "machine": {"date": "then"},
        "results": [record("mlp", 1, "old"), record("cnn", "default", "old")],
    }
    current = {"budget": {"rounds": 4}, "command": "python -m benchmarks --merge", "machine": {"date": "now"}}
    merged = merge_base(previous, {**current, "results": []})
    put(merged["results"], record("mlp", "1", "new"))  # failure records spell threads as a string
    put(merged["results"], record("cnn", 1, "new"))
    assert [(r["model"], r["threads"], r["value"]) for r in merged["results"]] == [
        ("mlp", "1", "new"),
        ("cnn", "default", "old"),
        ("cnn", 1, "new"),
    ]
    assert merged["machine"]["date"] == "then" and "then python -m benchmarks --merge" in merged["command"]
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
