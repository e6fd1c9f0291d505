"""Crafted ELF files whose many names all point into one long string: the shape of issue #10 item 2 (the C
.cbx parser's quadratic string lookups), aimed at the Python ELF reader (cerebro/elf.py), which read each
name up to the end of its table, so N entries on one long name cost N copies of it in time and memory.

`python tests/fuzz/crafted_elf.py OUTDIR` writes them; corpus.py adds them to the regression corpus."""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
SHDR = struct.Struct("<IIQQQQIIQQ")
SYM = struct.Struct("<IBBHQQ")
DYN = struct.Struct("<qQ")
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_DYNAMIC = 1, 2, 3, 6
DT_NEEDED = 1


def elf64(sections: list[tuple[str, int, bytes, int, int]], etype: int = 1) -> bytes:
    """A little-endian x86-64 ELF64 file: sections as (name, type, contents, link, entsize) after the null one."""
    shstrtab = b"\0" + b"".join(name.encode() + b"\0" for name, *_ in sections) + b".shstrtab\0"
    bodies = [body for _, _, body, _, _ in sections] + [shstrtab]
    offsets, at = [], EHDR.size
    for body in bodies:
        offsets.append(at)
        at += len(body) + (-len(body) % 8)
    shoff = at
    headers, name_at = [SHDR.pack(*[0] * 10)], 1
    for (name, typ, body, link, entsize), offset in zip(sections, offsets):
        headers.append(SHDR.pack(name_at, typ, 0, 0, offset, len(body), link, 0, 8, entsize))
        name_at += len(name) + 1
    headers.append(SHDR.pack(name_at, SHT_STRTAB, 0, 0, offsets[-1], len(shstrtab), 0, 0, 1, 0))
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    out = bytearray(EHDR.pack(ident, etype, 62, 1, 0, 0, shoff, 0, EHDR.size, 0, 0, SHDR.size, len(headers),
                              len(headers) - 1))
    for body in bodies:
        out += body + bytes(-len(body) % 8)
    return bytes(out + b"".join(headers))


def symbols_sharing_one_name(name_len: int = 1 << 20, count: int = 20_000) -> bytes:
    """`count` symbols all named by one `name_len`-byte string (old reader: count copies, 20 GiB here)."""
    strtab = b"\0" + b"A" * name_len + b"\0"
    symtab = SYM.pack(0, 0, 0, 0, 0, 0) + SYM.pack(1, 0x10, 0, 0xFFF1, 0, 0) * count
    return elf64([(".strtab", SHT_STRTAB, strtab, 0, 0), (".symtab", SHT_SYMTAB, symtab, 1, SYM.size)])


def symbols_at_successive_offsets(name_len: int = 60_000, count: int = 40_000) -> bytes:
    """Symbol i named from byte i of one long string: all distinct, each almost the whole string long."""
    strtab = b"\0" + b"B" * name_len + b"\0"
    symtab = SYM.pack(0, 0, 0, 0, 0, 0) + b"".join(SYM.pack(1 + i % name_len, 0x10, 0, 0xFFF1, 0, 0)
                                                   for i in range(count))
    return elf64([(".strtab", SHT_STRTAB, strtab, 0, 0), (".symtab", SHT_SYMTAB, symtab, 1, SYM.size)])


def libraries_sharing_one_name(name_len: int = 1 << 20, count: int = 20_000) -> bytes:
    """A shared object whose dynamic section lists one huge library name `count` times (DT_NEEDED)."""
    dynstr = b"\0" + b"C" * name_len + b"\0"
    dynamic = DYN.pack(DT_NEEDED, 1) * count + DYN.pack(0, 0)
    return elf64([(".dynstr", SHT_STRTAB, dynstr, 0, 0), (".dynamic", SHT_DYNAMIC, dynamic, 1, DYN.size)], etype=3)


def sections_sharing_one_name(name_len: int = 4000, count: int = 60_000) -> bytes:
    """`count` section headers all named by one long section name."""
    data = bytearray(elf64([(".x" + "S" * name_len, SHT_PROGBITS, b"", 0, 0)]))
    shoff, shnum = struct.unpack_from("<Q", data, 0x28)[0], struct.unpack_from("<H", data, 0x3C)[0]
    named = data[shoff + SHDR.size:shoff + 2 * SHDR.size]  # the long-named section's header
    strtab_header = data[shoff + (shnum - 1) * SHDR.size:shoff + shnum * SHDR.size]
    data[shoff:] = data[shoff:shoff + SHDR.size] + named * count + strtab_header
    struct.pack_into("<HH", data, 0x3C, count + 2, count + 1)  # e_shnum, e_shstrndx
    return bytes(data)


CRAFTED: dict[str, Callable[[], bytes]] = {
    "name-bomb-symbols-sharing-one-name.o": symbols_sharing_one_name,
    "name-bomb-symbols-at-successive-offsets.o": symbols_at_successive_offsets,
    "name-bomb-libraries-sharing-one-name.so": libraries_sharing_one_name,
    "name-bomb-sections-sharing-one-name.o": sections_sharing_one_name,
}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, make in CRAFTED.items():
        (out / name).write_bytes(make())
