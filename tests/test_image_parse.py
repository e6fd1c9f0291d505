"""The .cbx parser (runtime_kmod/core, shared with the kernel) costs one pass over any file, however hostile.

Each crafted file below made the old parser rescan a huge name once per section or per symbol (quadratic:
minutes of CPU, soft lockups in the kernel's ioctl). These are complexity tests, not benchmarks: the old
code needs well over 30 s for each, the linear parser a few milliseconds, and the bound leaves a loaded
2-core machine a wide margin.
"""

from __future__ import annotations

import hashlib
import struct
import time

import numpy as np
import pytest
from cbx_fixtures import AFFINE, HOST_ARCH, MACHINES, built, section

from cerebro import _runtime, runtime
from cerebro.compiler.cbx import CbxError, seal
from cerebro.compiler.cbx.format import HASH_LEN
from cerebro.compiler.cbx.writer import hash_offset, parse_elf
from cerebro.elf import SHN_ABS, SHT_STRTAB

MAX_NAME_LEN = 1024  # CBX_MAX_NAME_LEN in runtime_kmod/core/image.h
LINEAR_BOUND_S = 2.0
SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym
EHDR_SIZE = 64


def refusal_time(data: bytes, message: str) -> float:
    """Seconds the runtime takes to refuse data with message."""
    start = time.perf_counter()
    with pytest.raises(CbxError, match=message):
        runtime.load(data)
    return time.perf_counter() - start


def sections_sharing_one_name(name_len: int, shnum: int = 256) -> bytes:
    """An ELF whose shnum - 1 sections (the name table among them) are all named by one name_len-byte name."""
    names = b"\0" + b"A" * name_len + b"\0"
    shoff = EHDR_SIZE + len(names)
    ehdr = (b"\x7fELF\x02\x01\x01" + bytes(9)
            + struct.pack("<HHIQQQIHHHHHH", 1, MACHINES[HOST_ARCH], 1, 0, 0, shoff, 0, EHDR_SIZE, 0, 0,
                          SHDR.size, shnum, 1))
    headers = [bytes(SHDR.size)]
    headers += [SHDR.pack(1, SHT_STRTAB, 0, 0, EHDR_SIZE, len(names), 0, 0, 1, 0)] * (shnum - 1)
    return b"".join([ehdr, names, *headers])


def sealed_at(data: bytearray, hash_at: int) -> bytes:
    """seal() for a file whose hash lies at hash_at: seal's ELF reader would decode every symbol's name."""
    data[hash_at:hash_at + HASH_LEN] = bytes(HASH_LEN)
    data[hash_at:hash_at + HASH_LEN] = hashlib.sha256(data).digest()
    return bytes(data)


def symbols_sharing_one_name(name_len: int, extra: int) -> bytes:
    """The AFFINE model plus `extra` absolute symbols all named by one name_len-byte name, resealed.

    The symbol and string tables are copied to the end of the file with the additions, so the model's
    own symbols and relocations stay valid: with a short enough name it loads and runs."""
    model = built(AFFINE)
    data = bytearray(model)
    symtab, strtab = section(model, ".symtab"), section(model, ".strtab")
    old_strings = bytes(data[strtab.offset:strtab.offset + strtab.size])
    strings = old_strings + b"A" * name_len + b"\0"
    symbols = (bytes(data[symtab.offset:symtab.offset + symtab.size])
               + SYM.pack(len(old_strings), 0, 0, SHN_ABS, 0, 0) * extra)
    data += bytes(-len(data) % 8)
    symbols_at = len(data)
    data += symbols + strings
    shoff = struct.unpack_from("<Q", data, 40)[0]
    for sec, offset, size in ((symtab, symbols_at, len(symbols)), (strtab, symbols_at + len(symbols), len(strings))):
        struct.pack_into("<QQ", data, shoff + sec.index * SHDR.size + 24, offset, size)  # sh_offset, sh_size
    return sealed_at(data, hash_offset(parse_elf(model)))


def test_sections_sharing_a_huge_name_are_refused_at_once():
    """Old parser: 255 scans of a 128 MiB name (14 s here; 68 s and soft lockups in the kernel)."""
    data = sections_sharing_one_name(128 << 20)
    elapsed = refusal_time(data, rf"string table \(section 1\) has a name over {MAX_NAME_LEN} bytes at offset 1")
    assert elapsed < LINEAR_BOUND_S


def test_symbols_sharing_a_huge_name_are_refused_at_once():
    """Old parser (the hash is valid, so it reaches the symbols): 40 000 scans of a 2 MiB name (84 GB read)."""
    data = symbols_sharing_one_name(2 << 20, extra=40_000)
    elapsed = refusal_time(data, rf"has a name over {MAX_NAME_LEN} bytes at offset \d+")
    assert elapsed < LINEAR_BOUND_S


def test_names_up_to_the_bound_load_and_run():
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    expected = AFFINE.reference(x)[0]
    np.testing.assert_array_equal(runtime.load(symbols_sharing_one_name(MAX_NAME_LEN, extra=3))(x)[0], expected)
    with pytest.raises(ValueError, match=f"has a name over {MAX_NAME_LEN} bytes"):
        _runtime.Model(symbols_sharing_one_name(MAX_NAME_LEN + 1, extra=3))


def test_string_tables_must_end_with_a_nul():
    data = bytearray(sections_sharing_one_name(8, shnum=2))
    data[EHDR_SIZE + 9] = ord("B")
    with pytest.raises(CbxError, match=r"string table \(section 1\) does not end with a NUL"):
        runtime.load(bytes(data))


def test_sections_may_not_claim_the_same_bytes_twice():
    """Aliased sections would make the loader copy or relocate one file's bytes up to 255 times."""
    data = bytearray(built(AFFINE))
    text, weights = section(bytes(data), ".text"), section(bytes(data), ".cerebro.weights")
    shoff = struct.unpack_from("<Q", data, 40)[0]
    struct.pack_into("<Q", data, shoff + weights.index * SHDR.size + 24, text.offset)
    struct.pack_into("<Q", data, shoff + weights.index * SHDR.size + 32, len(data) - text.offset)
    with pytest.raises(CbxError, match=r"section \S+ overlaps others: sections claim more bytes than the file has"):
        runtime.load(seal(bytes(data)))
