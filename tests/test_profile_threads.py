"""benchmarks.profile --threads: each step of a split call (a parallel node, or a run of serial ones)
matched to its nodes of the profiling build, timed on one thread and on two."""

from __future__ import annotations

import numpy as np
import pytest
from cbx_fixtures import HOST_ARCH

from benchmarks.profile import profile_threads, render_threads, step_rows
from cerebro.compiler.cbx.profile_table import NodeInfo

pytestmark = pytest.mark.skipif(HOST_ARCH == "unsupported", reason="the runtime supports x86-64 and aarch64 hosts")


def info(op: str, flops: int = 1) -> NodeInfo:
    return NodeInfo(op, op, "", (), flops)


def test_steps_cut_between_parallel_and_serial_nodes_and_repeat_per_chunk() -> None:
    """matmul (parallel) | gather, reshape (a view: no call), sort (serial: one step) | conv
    (parallel) | output copies; a table repeated twice is two batch chunks of those 4 steps."""
    table = [[info("matmul")], [info("gather"), info("reshape", 0)], [info("sort")], [info("conv")]]
    rows = step_rows(table * 2, np.arange(8.0), np.ones(8))
    assert [r["stages"] for r in rows] == [[0], [1, 2], [3], [], [4], [5, 6], [7], []]
    assert [r["op"] for r in rows[:4]] == ["matmul", "serial", "conv", "serial"]
    assert rows[3]["what"] == "output copies" and rows[1]["one_us"] == 3.0
    with pytest.raises(RuntimeError, match="5 steps"):
        step_rows(table * 2, np.arange(8.0), np.ones(5))


def test_profile_threads_matches_a_compiled_models_steps() -> None:
    """A real split call (two dense layers with a softmax between): every step found, the parallel
    ones named by their node, and the render's totals add them up."""
    import jax
    import jax.numpy as jnp

    import cerebro

    w1 = np.linspace(-1, 1, 64 * 256, dtype=np.float32).reshape(64, 256)
    w2 = np.linspace(1, -1, 256 * 32, dtype=np.float32).reshape(256, 32)

    def model(x):
        return jax.nn.softmax(jnp.tanh(x @ w1)) @ w2

    x = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32)
    graph = cerebro.compile(model, name="steps").lower(x)
    rows = profile_threads(graph, (x,), repeats=10, threads=2, rounds=2)
    parallel = [r["op"] for r in rows if r["op"] != "serial"]
    assert parallel[0] == parallel[-1] == "matmul" and len(parallel) >= 2
    assert all(r["one_us"] > 0 and r["split_us"] > 0 for r in rows if r["stages"])
    text = render_threads(rows, 2, None)
    assert f"over {len(rows)} steps" in text and "| matmul |" in text


def test_render_shares_the_loss_among_the_ops_that_lose() -> None:
    """An op faster than a perfect split (its halves fit the caches) gets 0% of the loss, not a negative
    share that inflates the others'; the ops are ranked by the time they lose."""
    rows = [{"step": 0, "op": "matmul", "what": "m", "one_us": 100.0, "split_us": 40.0},
            {"step": 1, "op": "pad", "what": "p", "one_us": 10.0, "split_us": 15.0},
            {"step": 2, "op": "slice", "what": "s", "one_us": 10.0, "split_us": 10.0}]
    table = render_threads(rows, 2, None).split("\n")
    ops = [line for line in table if line.startswith("| ") and line.count("|") == 8][1:]
    assert [line.split(" | ")[0][2:] for line in ops] == ["pad", "slice", "matmul"]
    assert ops[0].endswith("| 10.0 | 67% |") and ops[2].endswith("| -10.0 | 0% |")
