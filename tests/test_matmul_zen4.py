"""The matmul on AVX-512. Its K panels (matmul.depth_block) are at least MIN_DEPTH_BLOCK = 512 rows deep, not
the 128 that a 32 KiB (L1) panel of the 64-column zmm block gives (each pass reloads and stores every C tile:
512 ran 2-9% faster on Zen 4's dense layers); other targets keep their L1-sized panels. Checked on the
depths the panels split (several panels and a remainder, with a fused bias and ReLU after the last one)
against float64 NumPy, on one part and two (same bits). A streamed b's tiles prefetch as many cache lines a
k step as a packed row has (the part's first tile the row PREFETCH_K ahead, the others their walk through
the next panel: matmul.stream_fetches): four for a packed zmm row of 256 bytes, one for AVX2's 64.
A b that does not stream has its tiles prefetch the next row block of a instead (prefetcht1).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from cerebro import runtime
from cerebro.compiler.codegen import matmul
from cerebro.compiler.driver import build, compile_assembly, lower
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.targets import TARGETS, micro_tile, resolve_target
from cerebro.frontends.onnx import import_onnx


@pytest.mark.parametrize("target,dtype,rows", [("x86_64-v4", DType.f32, 512), ("x86_64-v4", DType.f64, 512),
                                               ("x86_64-v3", DType.f32, 512), ("x86_64", DType.f32, 682),
                                               ("aarch64", DType.f32, 682)])
def test_depth_block(target: str, dtype: DType, rows: int) -> None:
    assert matmul.depth_block(TARGETS[target], dtype, micro_tile(TARGETS[target])[1]) == rows


def _dense(m: int, k: int, n: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(k)
    w, bias = rng.standard_normal((k, n)).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["p"]), helper.make_node("Add", ["p", "b"], ["s"]),
         helper.make_node("Relu", ["s"], ["y"])], "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    return model, w, bias


@pytest.mark.skipif(resolve_target("host").vector_width < 16, reason="needs AVX-512 to run x86_64-v4 code")
@pytest.mark.parametrize("m,k,n", [(13, 1100, 80), (31, 512, 64), (7, 1537, 200)])
def test_panels_of_512_rows(m: int, k: int, n: int) -> None:
    model, w, bias = _dense(m, k, n)
    x = runtime.aligned_empty((m, k), np.float32)
    x[...] = np.random.default_rng(m).standard_normal((m, k))
    cbx = build(import_onnx(model), target="x86_64-v4")
    (one,), (two,) = (runtime.load(cbx, threads=t)(x) for t in (1, 2))
    want = np.maximum(x.astype(np.float64) @ w + bias, 0)
    magnitude = np.abs(x).astype(np.float64) @ np.abs(w) + np.abs(bias)
    assert np.all(np.abs(one - want) <= 2 * k * np.finfo(np.float32).eps * magnitude)
    np.testing.assert_array_equal(one, two)


def _kernel_loops(asm: str) -> list[str]:
    """Bodies of the innermost loops of 12 or more vector FMAs (the register tiles' k loops): from a label to
    the jump back to it, with no loop inside (a label inside may be a branch's: prefetch_walk's lines)."""
    loops = []
    for label in re.finditer(r"^(\.LBB\d+_\d+):", asm, re.M):
        back = re.search(rf"^\s+j\w+\s+{re.escape(label.group(1))}\s*$", asm[label.end():], re.M)
        body = asm[label.end():label.end() + back.start()] if back else ""
        inner = re.findall(r"^(\.LBB\d+_\d+):", body, re.M)
        nested = any(re.search(rf"^\s+j\w+\s+{re.escape(name)}\s*$", body[body.index(name + ":"):], re.M)
                     for name in inner)
        if len(re.findall(r"vfmadd\w+", body)) >= 12 and not nested:
            loops.append(body)
    return loops


@pytest.mark.parametrize("target,lines", [("x86_64-v4", 4), ("x86_64-v3", 1)])
def test_streamed_rows_are_prefetched_line_by_line(target: str, lines: int) -> None:
    model, _, _ = _dense(20, 1024, 640)  # 2.5 MiB of weights: streamed (matmul.STREAMED_B_BYTES)
    asm = compile_assembly(lower(import_onnx(model), target)[1], TARGETS[target])
    loops = _kernel_loops(asm)
    assert loops
    assert all(body.count("prefetcht0") == lines for body in loops)


@pytest.mark.parametrize("target", ["x86_64-v4", "x86_64-v3"])
def test_next_row_block_of_a_is_prefetched(target: str) -> None:
    """A b that does not stream: each k step of a tile prefetches (prefetcht1, matmul.A_LOCALITY) the next
    row block's a, once; a streamed b's tiles prefetch b's lines only (a from L3 stalled the broadcasts), and
    an a of one row block has no next one (batch 1's mlp: 1.03x slower with the useless prefetch)."""
    for (m, k, n), fetches in (((200, 96, 384), 1), ((20, 1024, 640), 0), ((6, 96, 384), 0)):
        model, _, _ = _dense(m, k, n)
        loops = _kernel_loops(compile_assembly(lower(import_onnx(model), target)[1], TARGETS[target]))
        assert loops
        assert [body.count("prefetcht1") for body in loops] == [fetches] * len(loops)


@pytest.mark.parametrize("m,k,n", [(203, 96, 384), (61, 40, 100)])
def test_prefetching_a_keeps_the_product(m: int, k: int, n: int) -> None:
    """The prefetch runs past a's end on the last row block (it never faults): the product against float64
    NumPy, with a row and a column tail, on one part and two (same bits)."""
    model, w, bias = _dense(m, k, n)
    x = runtime.aligned_empty((m, k), np.float32)
    x[...] = np.random.default_rng(m).standard_normal((m, k))
    cbx = build(import_onnx(model))
    (one,), (two,) = (runtime.load(cbx, threads=t)(x) for t in (1, 2))
    want = np.maximum(x.astype(np.float64) @ w + bias, 0)
    magnitude = np.abs(x).astype(np.float64) @ np.abs(w) + np.abs(bias)
    assert np.all(np.abs(one - want) <= 2 * k * np.finfo(np.float32).eps * magnitude)
    np.testing.assert_array_equal(one, two)
