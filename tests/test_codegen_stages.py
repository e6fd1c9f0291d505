"""Stages bound the work of one kernel FPU section: a node bigger than the budget (build.STAGE_FLOPS)
is cut into slices over consecutive stages (build.slice_node), and no result bit changes.

Models: a 268 MFLOP matmul (the size that ran 0.6-0.9 s in one section in the VM), a batch-1 dense
layer (split by column blocks), a dense layer with few row blocks whose column blocks each exceed the
budget (split by tiles), convolutions in their three loop orders and a softmax over big rows.
For each: every stage's estimate within the budget, outputs bit-identical to the one-stage build for
threads=1 and 2, and jax.jit's results within the model tolerances of tests/jax_cases.py.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax_cases import MODEL, assert_outputs_match

from cerebro import runtime
from cerebro.compiler import driver
from cerebro.compiler.driver import STAGE_FLOPS, build, lower, node_flops, split_stages
from cerebro.compiler.targets import resolve_target
from cerebro.frontends.jax import trace

jax.config.update("jax_platforms", "cpu")
HOST = resolve_target("host")
ONE_STAGE = 10**15


def _matmul(rng: np.random.Generator) -> tuple:
    a, b = (rng.normal(size=(512, 512)).astype(np.float32) for _ in range(2))
    return (lambda a, b: a @ b), [a, b]


def _dense_batch1(rng: np.random.Generator) -> tuple:
    w = rng.normal(size=(2048, 2048)).astype(np.float32) / 45
    return (lambda x: jnp.tanh(x @ w + 1)), [rng.normal(size=(1, 2048)).astype(np.float32)]


def _dense_few_rows(rng: np.random.Generator) -> tuple:
    """Fewer row blocks than slices and a column block over the budget: slices take tiles."""
    w = rng.normal(size=(2048, 512)).astype(np.float32) / 45
    return (lambda x: x @ w), [rng.normal(size=(64, 2048)).astype(np.float32)]


def _conv(x_shape: tuple, w_shape: tuple, groups: int = 1):
    def case(rng: np.random.Generator) -> tuple:
        w = rng.normal(size=w_shape).astype(np.float32) / 30

        def fn(x):
            return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                                feature_group_count=groups)

        return fn, [rng.normal(size=x_shape).astype(np.float32)]

    return case


def _softmax(rng: np.random.Generator) -> tuple:
    return (lambda x: jax.nn.softmax(x * 2, axis=-1)), [rng.normal(size=(256, 4096)).astype(np.float32)]


CASES = {
    "matmul_512": _matmul,
    "dense_batch1": _dense_batch1,
    "dense_few_rows": _dense_few_rows,
    "conv_pixels": _conv((1, 32, 32, 64), (3, 3, 64, 96)),  # images outweigh weights: pixel blocks
    # weights outweigh an image: channel blocks, here fewer than slices, over 2 blocks of 1 image
    "conv_weights": _conv((2, 16, 16, 256), (3, 3, 256, 128)),
    "conv_depthwise": _conv((2, 64, 64, 128), (3, 3, 1, 128), groups=128),
    "softmax_rows": _softmax,
}


@pytest.mark.parametrize("name", list(CASES))
def test_big_nodes_are_sliced_bit_exactly(name: str) -> None:
    fn, args = CASES[name](np.random.default_rng(3))
    traced = trace(fn, *args, name=name)
    graph = lower(traced.graph)[0]
    biggest = max(node_flops(node) for node in graph.nodes)
    assert biggest > 2 * STAGE_FLOPS, f"{name}: the case must need slicing ({biggest} flops)"

    stages = split_stages(graph.nodes, STAGE_FLOPS, HOST)
    assert max(sum(piece.flops for piece in stage) for stage in stages) <= STAGE_FLOPS
    for node in graph.nodes:  # the slices of a node add up to it (within rounding up)
        pieces = [p for stage in stages for p in stage if p.node is node]
        assert [p.index for p in pieces] == list(range(pieces[0].count))
        assert node_flops(node) <= sum(p.flops for p in pieces) <= node_flops(node) + len(pieces)

    sliced = build(traced.graph)
    whole = build(traced.graph, stage_flops=ONE_STAGE)
    meta = runtime.load(sliced).meta
    assert meta.num_stages == len(stages) > 2
    assert meta.max_stage_flops <= STAGE_FLOPS
    assert runtime.load(whole).meta.num_stages == 1
    inputs = traced.flatten_inputs(*args)
    want = runtime.load(whole)(*inputs)
    assert_outputs_match(want, jax.jit(fn)(*args), MODEL["rtol"], MODEL["atol"], name)
    for threads in (1, 2):
        for got, expected in zip(runtime.load(sliced, threads=threads)(*inputs), want, strict=True):
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} threads={threads}")


def test_slices_share_one_function() -> None:
    """Stages that only continue a node's slices run through one function taking the slice, so a
    node cut into thousands of stages costs LLVM a few functions (80 s -> 1 s for a 2048^3 matmul):
    the first and last slice's stage, the run between, and the step (codegen/calls.py)."""
    fn, args = _matmul(np.random.default_rng(4))
    _, text, meta, _ = lower(trace(fn, *args).graph)
    functions = re.findall(r'^define internal void @"?(\w+)"?\(', text, re.M)
    glue = [name for name in functions if not name.startswith("node")]
    assert meta.num_stages > 50 and len(glue) <= 4, (meta.num_stages, glue)


def test_sliced_stages_are_short() -> None:
    """Timed, not only estimated: the longest stage of the sliced 268 MFLOP matmul takes a small
    fraction of the whole product (86 slices on AVX2; asserted at 1/8 for noisy shared CPUs)."""
    fn, args = _matmul(np.random.default_rng(1))
    traced = trace(fn, *args)
    inputs = traced.flatten_inputs(*args)
    whole = np.median(runtime.load(build(traced.graph, stage_flops=ONE_STAGE)).profile(*inputs, repeats=5))
    sliced = runtime.load(build(traced.graph)).profile(*inputs, repeats=5)
    assert np.median(sliced, axis=0).max() < whole / 8


def test_unsliceable_work_is_reported() -> None:
    """A node whose single unit of work exceeds the budget cannot fit: the stage keeps it, and
    meta.max_stage_flops says how big it is (the kernel refuses such models above its limit)."""
    x = np.ones((1, 8192), np.float32)
    w = np.ones((8192, 4), np.float32)  # one row block, one column block: 65536 flops in one unit
    traced = trace(lambda x: x @ w, x)
    meta = runtime.load(build(traced.graph, stage_flops=10_000)).meta
    assert meta.num_stages == 1
    assert meta.max_stage_flops == 2 * 8192 * 4


def test_budget_zero_keeps_nodes_whole() -> None:
    """stage_flops=0 (benchmarks.profile): every node whole in its own stage."""
    fn, args = _matmul(np.random.default_rng(2))
    graph = lower(trace(fn, *args).graph, stage_flops=0)[0]
    stages = split_stages(graph.nodes, 0, HOST)
    assert [[(p.index, p.count) for p in stage] for stage in stages] == [[(0, 1)]]


def test_too_many_stages_raise_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model needing more stages than the stage word holds (ResNet-18 at batch 64 uses 61,741 of
    65,536 at the default budget) still compiles: the budget doubles until the stages fit, and
    meta.max_stage_flops tells a kernel what it must allow."""
    fn, args = _matmul(np.random.default_rng(3))
    graph = lower(trace(fn, *args).graph, stage_flops=0)[0]
    monkeypatch.setattr(driver, "MAX_STAGES", 8)
    stages = split_stages(graph.nodes, STAGE_FLOPS, HOST)
    assert 4 < len(stages) <= 8
    assert max(sum(p.flops for p in stage) for stage in stages) > STAGE_FLOPS
