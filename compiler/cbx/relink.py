"""A .cbx as an object the system linker takes: `cc main.c model.o` (docs/embedding.md).

A .cbx is already an ELF relocatable object whose code reaches its weights through
relocations inside the object; what stops two models from sharing one program is their
global names. Here cerebro_entry, cerebro_weights, cerebro_meta and cerebro_ir become
PREFIX_entry, PREFIX_weights, ... The new names go into a copy of the string table
appended to the file, so every offset already in the file stays valid.
"""

from __future__ import annotations

import re
import struct

from cerebro import elf as elfmod
from cerebro.compiler.cbx.format import CbxError
from cerebro.compiler.cbx.reader import read_cbx
from cerebro.compiler.cbx.writer import ELF_LAYOUTS, parse_elf

# the object's own globals and their names after the prefix
RENAMED = {"cerebro_entry": "entry", "cerebro_weights": "weights", "cerebro_meta": "meta", "cerebro_ir": "ir"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def c_prefix(name: str) -> str:
    """A C identifier made from a model or file name: 'mlp-v2' -> 'mlp_v2', '3net' -> 'm_3net'."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name) or "model"
    return ident if not ident[0].isdigit() else f"m_{ident}"


def linkable_object(cbx: bytes, prefix: str) -> bytes:
    """The .cbx's object with its globals renamed PREFIX_entry, PREFIX_weights, PREFIX_meta, PREFIX_ir."""
    if not _IDENTIFIER.match(prefix):
        raise CbxError(f"symbol prefix {prefix!r} is not a C identifier")
    read_cbx(cbx)  # a corrupt or foreign file fails here, with the reader's message
    elf = parse_elf(cbx)
    out = bytearray(cbx)
    tables = elf.symbol_tables()
    if len(tables) != 1:
        raise CbxError(f"expected one symbol table in the object, found {len(tables)}")
    (index, symbols), = tables.items()
    symtab = elf.sections[index]
    strtab = elf.sections[symtab.link]
    strings = bytearray(elf.section_data(strtab))
    for number, sym in enumerate(symbols):
        if sym.name in RENAMED and sym.shndx != elfmod.SHN_UNDEF:
            struct.pack_into("<I", out, symtab.offset + number * symtab.entsize, len(strings))
            strings += f"{prefix}_{RENAMED[sym.name]}".encode() + b"\0"
    lay = ELF_LAYOUTS[elf.bits]
    header = elf.shoff + strtab.index * lay.shdr.size + lay.sh_offset
    struct.pack_into("<2" + lay.word, out, header, len(out), len(strings))
    return bytes(out + strings)
