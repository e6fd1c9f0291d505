"""matmul's aligned copy of b (codegen/matmul.aligned_copy): where b's rows do not start on a vector
boundary (attention scores with 197 keys: b = K^T [64, 197]), each full column block of b is copied to an
aligned stack buffer and the register tiles read it there.

The copy must not change a bit: the same fmas run on the same values in the same order, so the kernel
equals the one that reads b in place (aligned_copy patched off) exactly, for every vector width and tile
the host can run, with odd row, column and depth tails at the copied blocks' edges, and for any split
into parts. Against float64 numpy the bound is 4 * depth * eps * sum |a||b| (float32 sums of depth terms).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_codegen_kernels import _FLAVOURS, HOST, TILE_FLAVOURS, one_node, run
from test_codegen_threads import _kernel, _run_parts

from cerebro.compiler.codegen import matmul

# (batch, rows, depth, columns): 197 keys of a 64-deep head; odd everything; one k; the largest copy
SHAPES = [((2,), 13, 64, 197), ((), 37, 33, 41), ((3,), 7, 1, 17), ((), 25, 85, 13)]


def _target(flavour: str) -> object:
    width, machine = _FLAVOURS[flavour]
    return dataclasses.replace(HOST, vector_width=width, machine=machine)


def _operands(shape: tuple, dtype: type) -> list[np.ndarray]:
    batch, rows, depth, columns = shape
    rng = np.random.default_rng(rows * columns + depth)
    return [rng.standard_normal((*batch, rows, depth)).astype(dtype),
            rng.standard_normal((*batch, depth, columns)).astype(dtype)]


def _copied_cases() -> list[tuple]:
    """(flavour, shape, dtype) where the copy is taken: the tests below are about that path."""
    cases = []
    for flavour in TILE_FLAVOURS:
        for dtype in (np.float32, np.float64):
            for shape in SHAPES:
                if matmul.aligned_copy(one_node("matmul", _operands(shape, dtype)), _target(flavour)):
                    cases.append((flavour, shape, dtype))
    return cases


def test_the_copy_is_taken_where_b_rows_are_misaligned_and_only_there() -> None:
    avx = _target("avx2") if "avx2" in TILE_FLAVOURS else _target("sse")
    assert matmul.aligned_copy(one_node("matmul", _operands(((2,), 13, 64, 197), np.float32)), avx)
    for shape in [((2,), 13, 64, 192), ((2,), 13, 64, 200)] if "avx2" in TILE_FLAVOURS else []:
        assert not matmul.aligned_copy(one_node("matmul", _operands(shape, np.float32)), avx)  # aligned rows
    assert not matmul.aligned_copy(one_node("matmul", _operands(((), 6, 64, 197), np.float32)), avx)  # one row block
    assert not matmul.aligned_copy(one_node("matmul", _operands(((), 13, 4096, 197), np.float32)), avx)  # too deep
    assert len(_copied_cases()) >= 6


@pytest.mark.parametrize("flavour, shape, dtype", _copied_cases())
def test_copied_b_gives_the_same_bits_as_b_read_in_place(flavour: str, shape: tuple, dtype: type,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = _operands(shape, dtype)
    node = one_node("matmul", arrays)
    (copied,) = run(node, arrays, flavour)
    reference = arrays[0].astype(np.float64) @ arrays[1].astype(np.float64)
    bound = 4 * shape[2] * np.finfo(dtype).eps * (np.abs(arrays[0]).astype(np.float64) @ np.abs(arrays[1]))
    assert np.all(np.abs(copied - reference) <= bound), f"{flavour} {shape}: off float64 numpy"
    monkeypatch.setattr(matmul, "aligned_copy", lambda node, target: False)
    (in_place,) = run(node, arrays, flavour)
    np.testing.assert_array_equal(copied, in_place)


def test_parts_of_a_copied_matmul_cover_it_with_the_same_bits() -> None:
    arrays = _operands(((2,), 13, 64, 197), np.float32)
    node = one_node("matmul", arrays)
    target = _target("avx2") if "avx2" in TILE_FLAVOURS else _target("sse")  # AVX-512's copy would pass 4 KiB
    assert matmul.aligned_copy(node, target)
    kernel = _kernel(node, target)
    (whole,) = _run_parts(kernel, node, arrays, 1)
    np.testing.assert_allclose(whole, arrays[0] @ arrays[1], rtol=1e-4, atol=1e-4)
    for parts in (2, 3, 7):
        np.testing.assert_array_equal(_run_parts(kernel, node, arrays, parts)[0], whole, err_msg=f"parts={parts}")
