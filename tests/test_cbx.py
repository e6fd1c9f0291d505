"""The .cbx container in Python: meta layout, the writer's checks and sealing, the reader."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from cbx_fixtures import (
    AFFINE,
    HOST_ARCH,
    MACHINES,
    SINF,
    TWO_IO,
    build,
    built,
    compile_object,
    meta_for,
    module_text,
    patch,
    section,
)

from cerebro.compiler.cbx import CbxError, Meta, TensorSpec, finish_object, meta_size, read_cbx
from cerebro.compiler.cbx.format import HASH_OFFSET, MAGIC
from cerebro.compiler.ir.dtypes import DType
from cerebro.elf import SHF_WRITE, ElfFile

ARCHES = ["x86_64", "aarch64"]


def sample_meta(**changes) -> Meta:
    fields = dict(machine=62, num_stages=3, arena_size=4096, weights_size=128, flops=10**9, max_stage_flops=4 * 10**8,
                  triple="x86_64-unknown-linux-gnu", cpu="x86-64-v3", features="+avx2,+fma", model_name="net",
                  inputs=[TensorSpec(f"in{c.name}", (2, 3), c) for c in DType] + [TensorSpec("scalar", (), DType.f32)],
                  outputs=[TensorSpec("out", (1, 2, 1, 2, 1, 2, 1, 2), DType.f64)], hash=bytes(range(32)))
    fields.update(changes)
    return Meta(**fields)


def test_meta_round_trips_with_the_header_layout():
    meta = sample_meta()
    raw = meta.pack()
    assert len(raw) == meta_size(len(meta.inputs) + 1) == 536 + 144 * (len(DType) + 2)
    assert Meta.unpack(raw) == meta
    # Field positions from cbx.h, decoded independently of format.py.
    assert raw[:8] == MAGIC
    assert struct.unpack_from("<6I", raw, 8) == (2, 3, 62, len(DType) + 1, 1, 3)
    assert struct.unpack_from("<4Q", raw, 32) == (4096, 128, 10**9, 4 * 10**8)
    assert raw[64:64 + 25] == b"x86_64-unknown-linux-gnu\0"
    assert raw[HASH_OFFSET:HASH_OFFSET + 32] == bytes(range(32))
    assert struct.unpack_from("<2I", raw, 512) == (len(raw), 1)
    assert struct.unpack_from("<2IQ", raw, 520) == (1, 0, 0)  # regions, reserved, region_size
    first = raw[536:536 + 144]
    assert first[:4] == b"inf3" and struct.unpack_from("<2I8QQ", first, 64) == (1, 2, 2, 3, 0, 0, 0, 0, 0, 0, 24)


@pytest.mark.parametrize("change, message", [
    (dict(outputs=[]), "need >= 1 output"),
    (dict(num_stages=0), "num_stages"),
    (dict(machine=8), "unsupported machine"),
    (dict(model_name="n" * 64), "model name"),
    (dict(inputs=[TensorSpec("x" * 64, (1,), DType.f32)]), "tensor name"),
    (dict(inputs=[TensorSpec("x", (1,) * 9, DType.f32)]), "rank 9"),
    (dict(inputs=[TensorSpec("x", (-1,), DType.f32)]), "non-negative"),
])
def test_meta_pack_refuses_what_the_header_cannot_hold(change, message):
    with pytest.raises(CbxError, match=message):
        sample_meta(**change).pack()


def _tensor_field(raw: bytes, index: int, offset: int, value: bytes) -> bytes:
    at = 536 + 144 * index + offset
    return raw[:at] + value + raw[at + len(value):]


@pytest.mark.parametrize("corrupt, message", [
    (lambda r: r[:535], "header alone needs 536"),
    (lambda r: r[:-1], "meta_size"),
    (lambda r: b"CBXMETX\0" + r[8:], "bad magic"),
    (lambda r: r[:8] + struct.pack("<I", 3) + r[12:], "format version 3"),
    (lambda r: r[:8] + struct.pack("<I", 1) + r[12:], r"format version 1 \(this reader handles 2; rebuild"),
    (lambda r: _tensor_field(r, 0, 64, struct.pack("<I", 99)), "unknown dtype code 99"),
    (lambda r: _tensor_field(r, 0, 68, struct.pack("<I", 9)), "rank 9"),
    (lambda r: _tensor_field(r, 0, 136, struct.pack("<Q", 25)), "claims 25 bytes but its shape and dtype need 24"),
    (lambda r: _tensor_field(r, len(DType) + 1, 72 + 8 * 7, struct.pack("<Q", 3)), "claims 128 bytes .* need 192"),
    (lambda r: _tensor_field(r, 0, 0, b"x" * 64), "not NUL-terminated"),
])
def test_meta_unpack_refuses_lies(corrupt, message):
    with pytest.raises(CbxError, match=message):
        Meta.unpack(corrupt(sample_meta().pack()))


def _regions(raw: bytes, regions: int, region_size: int, reserved: int = 0) -> bytes:
    return raw[:520] + struct.pack("<2IQ", regions, reserved, region_size) + raw[536:]


# A split call's arena is (min(parts, regions) - 1) * region_size + arena_size (cbx.h): every field that feeds it
# is bounded, so a host allocating it neither overflows nor asks for more than CBX_MAX_ARENA_SIZE.
REGION_LIES = [
    (dict(regions=0, region_size=0), r"regions 0 \(need 1..parts = 256\)"),
    (dict(regions=257, region_size=4096), r"regions 257 \(need 1..parts = 256\)"),
    (dict(regions=1, region_size=4096), r"region_size 4096 with one region"),
    (dict(regions=2, region_size=2048), r"region_size 2048 \(need a multiple of 64, >= arena_size 4096\)"),
    (dict(regions=2, region_size=4100), r"region_size 4100 \(need a multiple of 64"),
    (dict(regions=256, region_size=1 << 40), r"256 regions of 1099511627776 bytes are impossibly large"),
    (dict(regions=3, region_size=(1 << 64) - 64), r"3 regions of 18446744073709551552 bytes are impossibly large"),
    (dict(regions=2, region_size=4096, reserved=1), r"reserved field is 1"),
]


@pytest.mark.parametrize("fields, message", REGION_LIES)
def test_meta_unpack_refuses_region_lies(fields, message):
    raw = _regions(sample_meta(parts=256).pack(), **fields)
    with pytest.raises(CbxError, match="bad .cerebro.meta: " + message):
        Meta.unpack(raw)


def test_meta_regions_round_trip_and_size_each_host_arena():
    meta = sample_meta(parts=256, regions=4, region_size=8192)
    assert Meta.unpack(meta.pack()) == meta
    assert [meta.arena_bytes(parts) for parts in (1, 2, 3, 4, 16)] == [4096, 12288, 20480, 28672, 28672]
    with pytest.raises(CbxError, match="regions 4 .need 1..parts = 2"):
        sample_meta(parts=2, regions=4, region_size=8192).pack()


@pytest.mark.parametrize("arch", ARCHES)
def test_finish_object_fills_placeholders_and_seals(arch):
    data = built(AFFINE, arch)
    elf = ElfFile.parse(data)
    meta_sec, weights_sec = elf.section(".cerebro.meta"), elf.section(".cerebro.weights")
    assert not meta_sec.flags & SHF_WRITE and not weights_sec.flags & SHF_WRITE
    assert elf.section_data(weights_sec)[:len(AFFINE.weights)] == AFFINE.weights
    meta = Meta.unpack(elf.section_data(meta_sec))
    assert meta.machine == MACHINES[arch] and meta.inputs == AFFINE.inputs and meta.model_name == "affine"
    at = meta_sec.offset + HASH_OFFSET
    assert hashlib.sha256(data[:at] + bytes(32) + data[at + 32:]).digest() == meta.hash
    cbx = read_cbx(data)
    assert cbx.meta == meta and cbx.ir_text is None
    assert {".text", ".cerebro.meta", ".cerebro.weights"} <= {s.name for s in cbx.sections}


def test_reader_returns_the_ir_text():
    text = "graph affine(x: f32[2,4]) -> f32[2,4]\n  \"quoted\" \\ and \t tab"
    assert read_cbx(build(AFFINE, ir_text=text)).ir_text == text


def test_reader_detects_corruption():
    data = built(AFFINE)
    text = section(data, ".text")
    flipped = patch(data, text.offset, bytes([data[text.offset] ^ 1]), reseal=False)
    with pytest.raises(CbxError, match="corrupt .cbx: content hash mismatch"):
        read_cbx(flipped)
    with pytest.raises(CbxError, match="not a valid .cbx object"):
        read_cbx(b"MZ" + bytes(100))
    with pytest.raises(CbxError, match="not a valid .cbx object"):
        read_cbx(data[:200])


def test_reader_refuses_plain_objects():
    obj = compile_object("define i32 @f() {\n  ret i32 0\n}\n", HOST_ARCH)
    with pytest.raises(CbxError, match=r"no .cerebro.meta section"):
        read_cbx(obj)


def _object(model, arch=HOST_ARCH, text=None):
    return compile_object(text or module_text(model, arch), arch)


def test_writer_refuses_imports_the_runtime_lacks():
    with pytest.raises(CbxError, match=r"undefined symbol 'sinf' is not provided by the runtime"):
        finish_object(_object(SINF), meta_for(SINF, HOST_ARCH), b"")


def test_writer_refuses_got_relocations():
    """A default-visibility external global needs the GOT, which no Cerebro host has."""
    text = module_text(TWO_IO, HOST_ARCH).replace(
        "  ret i32 0", "  %g = load volatile i32, ptr @outside\n  ret i32 %g", 1) + "@outside = external global i32\n"
    with pytest.raises(CbxError, match=r"relocation type \d+ against 'outside' .* not supported by the runtime"):
        finish_object(_object(TWO_IO, text=text), meta_for(TWO_IO, HOST_ARCH), b"")


def test_writer_refuses_a_patched_relocation_type():
    obj = _object(AFFINE)
    rela = ElfFile.parse(obj).section(".rela.text")
    at = rela.offset + 8
    info = struct.unpack_from("<Q", obj, at)[0]
    bad = obj[:at] + struct.pack("<Q", (info & ~0xFFFFFFFF) | 42) + obj[at + 8:]
    with pytest.raises(CbxError, match=r"relocation type 42 against .* at .text\+0x"):
        finish_object(bad, meta_for(AFFINE, HOST_ARCH), AFFINE.weights)


def test_writer_checks_machine_and_placeholder_sizes():
    obj = _object(AFFINE)
    meta = meta_for(AFFINE, HOST_ARCH)
    other = 183 if meta.machine == 62 else 62
    with pytest.raises(CbxError, match="wrong machine"):
        finish_object(obj, Meta(**{**meta.__dict__, "machine": other}), AFFINE.weights)
    bigger = Meta(**{**meta.__dict__, "outputs": meta.outputs * 2})
    with pytest.raises(CbxError, match=r".cerebro.meta placeholder is 824 bytes but 968 are needed"):
        finish_object(obj, bigger, AFFINE.weights)
    too_many = np.zeros(17, np.float32).tobytes()
    with pytest.raises(CbxError, match=r".cerebro.weights placeholder is 64 bytes but 68 are needed"):
        finish_object(obj, Meta(**{**meta.__dict__, "weights_size": 68}), too_many)
    with pytest.raises(CbxError, match="weights_size is 32 but 16 weight bytes"):
        finish_object(obj, meta, AFFINE.weights[:16])
    with pytest.raises(CbxError, match="not a valid .cbx object"):
        finish_object(b"\x7fELF" + bytes(10), meta, b"")


def test_writer_refuses_constructors():
    text = module_text(AFFINE, HOST_ARCH) + (
        "define internal void @init() {\n  ret void\n}\n"
        "@llvm.global_ctors = appending global [1 x { i32, ptr, ptr }] [{ i32, ptr, ptr } { i32 65535, ptr @init, "
        "ptr null }]\n")
    with pytest.raises(CbxError, match=r"constructor/destructor section \.(init_array|ctors) is not supported"):
        finish_object(_object(AFFINE, text=text), meta_for(AFFINE, HOST_ARCH), AFFINE.weights)


@pytest.mark.parametrize("placeholder", [".cerebro.weights", ".bss.cerebro.weights"])
def test_weights_given_in_pieces_make_the_same_file(placeholder):
    """A memory plan's arrays and padding may be handed over as they are (no joined blob first): the file is
    byte for byte the one the joined weights make, for a PROGBITS placeholder and for a NOBITS one (appended)."""
    text = module_text(AFFINE, HOST_ARCH).replace('section ".cerebro.weights"', f'section "{placeholder}"')
    obj, meta = compile_object(text, HOST_ARCH), meta_for(AFFINE, HOST_ARCH)
    whole = finish_object(obj, meta, AFFINE.weights)
    pieces = [AFFINE.weights[:8], bytearray(), np.frombuffer(AFFINE.weights[8:], np.float32).reshape(2, 3)]
    assert finish_object(obj, meta, pieces) == whole
    assert ElfFile.parse(whole).section(".cerebro.weights").type == 1  # SHT_PROGBITS, the NOBITS one filled
    assert read_cbx(whole).meta.weights_size == len(AFFINE.weights)
    with pytest.raises(CbxError, match="meta.weights_size is 32 but 28 weight bytes were given"):
        finish_object(obj, meta, pieces[:1] + [AFFINE.weights[12:]])
