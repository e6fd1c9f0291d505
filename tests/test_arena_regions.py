"""A .cbx whose arena-region fields lie is refused by the C loader every host shares (core/meta.c), before
any host sizes an arena from them: the user-space runtime here, cerebro.ko in tests/kernel (the same check).

The fields (cbx.h): regions (1..parts), a reserved 0, region_size (0 with one region, else a multiple of
CEREBRO_BUFFER_ALIGN at least arena_size apart), and all regions within CBX_MAX_ARENA_SIZE, so a host's
cbx_arena_bytes() cannot overflow. A file of the format before regions (version 1) says to rebuild it.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from cbx_fixtures import build, parallel_model, patch, section

from cerebro import runtime
from cerebro.compiler.cbx import CbxError, read_cbx

REGIONS_AT = 520  # offsetof(struct cbx_meta, regions): regions u32, reserved u32, region_size u64


@pytest.fixture(scope="module")
def parallel() -> bytes:
    return build(parallel_model(256, "regions"))


def _with(data: bytes, regions: int, region_size: int, reserved: int = 0) -> bytes:
    at = section(data, ".cerebro.meta").offset + REGIONS_AT
    return patch(data, at, struct.pack("<2IQ", regions, reserved, region_size))


def _lies(arena: int) -> list[tuple[dict, str]]:
    return [
        (dict(regions=0, region_size=0), r"regions 0 \(need 1..parts = 256\)"),
        (dict(regions=300, region_size=4096), r"regions 300 \(need 1..parts = 256\)"),
        (dict(regions=1, region_size=4096), r"region_size 4096 with one region \(need 0\)"),
        (dict(regions=2, region_size=arena - 64 & ~63), rf"region_size {arena - 64 & ~63} \(need a multiple of 64, "
                                                         rf">= arena_size {arena}\)"),
        (dict(regions=2, region_size=8196), r"region_size 8196 \(need a multiple of 64"),
        (dict(regions=256, region_size=1 << 40), r"256 regions of 1099511627776 bytes are impossibly large"),
        (dict(regions=3, region_size=2**64 - 64), r"3 regions of 18446744073709551552 bytes are impossibly large"),
        (dict(regions=2, region_size=8192, reserved=7), r"reserved field is 7, not 0"),
    ]


def test_crafted_region_fields_are_refused_by_the_c_loader_and_the_reader(parallel: bytes) -> None:
    arena = read_cbx(parallel).meta.arena_size
    for fields, message in _lies(arena):
        bad = _with(parallel, **fields)
        with pytest.raises(CbxError, match="bad .cerebro.meta: " + message):
            runtime.load(bad)
        with pytest.raises(CbxError, match="bad .cerebro.meta: " + message):
            read_cbx(bad)


def test_honest_regions_load_and_size_each_threads_arena(parallel: bytes) -> None:
    """Regions that pass the checks: the binding's arena is min(threads, regions) of them (the pool splits a
    chunked call into a part per thread), however many the file allows."""
    arena = read_cbx(parallel).meta.arena_size
    aligned = -(-arena // 64) * 64
    stride = -(-arena // 4096) * 4096
    good = _with(parallel, regions=8, region_size=stride)
    assert read_cbx(good).meta.regions == 8
    assert [runtime.load(good, threads=t).arena_bytes for t in (1, 2, 3)] == [aligned, stride + aligned,
                                                                             2 * stride + aligned]
    assert runtime.load(parallel, threads=3).arena_bytes == aligned  # one region: the same for every thread count
    x = np.arange(read_cbx(good).meta.inputs[0].shape[0], dtype=np.float32)
    np.testing.assert_array_equal(runtime.load(good)(x)[0], runtime.load(parallel)(x)[0])


def test_a_file_of_the_format_before_regions_says_to_rebuild(parallel: bytes) -> None:
    old = patch(parallel, section(parallel, ".cerebro.meta").offset + 8, struct.pack("<I", 1))
    with pytest.raises(CbxError, match=r"unsupported .cbx format version 1 \(runtime reads 2; rebuild the model\)"):
        runtime.load(old)
