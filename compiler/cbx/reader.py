"""Read and check a .cbx file: structure, meta and content hash (used by `cerebroc inspect`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cerebro import elf as elfmod
from cerebro.compiler.cbx.format import HASH_LEN, MACHINES, CbxError, Meta
from cerebro.compiler.cbx.rules import ELF_FORMS
from cerebro.compiler.cbx.writer import META_SECTION, hash_offset, parse_elf

IR_SECTION = ".cerebro.ir"


@dataclass(frozen=True)
class SectionSummary:
    name: str
    type: int
    flags: int
    size: int


@dataclass(frozen=True)
class CbxFile:
    meta: Meta
    ir_text: str | None
    sections: list[SectionSummary]


def read_cbx(data: bytes) -> CbxFile:
    """Parse data as a .cbx; CbxError on anything malformed, including a content hash mismatch."""
    data = bytes(data)
    elf = parse_elf(data)
    bits = ELF_FORMS.get(elf.machine, (64,))[0]
    if elf.bits != bits or elf.endian != "<" or elf.type != elfmod.ET_REL:
        raise CbxError(f"not a .cbx file: expected a {bits}-bit little-endian ELF relocatable object")
    at = hash_offset(elf)
    meta = Meta.unpack(elf.section_data(elf.section(META_SECTION)))
    if meta.machine != elf.machine or meta.machine not in MACHINES:
        raise CbxError(f"bad .cerebro.meta: machine {meta.machine} disagrees with the ELF header ({elf.machine})")
    view = memoryview(data)  # hashed in place: copying a 100 MB model twice cost more than the hash
    digest = hashlib.sha256(view[:at])
    digest.update(bytes(HASH_LEN))
    digest.update(view[at + HASH_LEN:])
    if digest.digest() != meta.hash:
        raise CbxError("corrupt .cbx: content hash mismatch")
    ir_sec = elf.section(IR_SECTION)
    ir_text = None
    if ir_sec is not None:
        ir_text = elf.section_data(ir_sec).split(b"\0", 1)[0].decode("utf-8", errors="replace")
    sections = [SectionSummary(s.name, s.type, s.flags, s.size) for s in elf.sections[1:]]
    return CbxFile(meta, ir_text, sections)
