"""Turn the object LLVM emitted into a .cbx: fill the meta and weights placeholders, seal with a hash.

The code generator declares zero-filled .cerebro.meta and .cerebro.weights globals of the
right sizes; their bytes are written here, so megabytes of weights never pass through LLVM IR
text. The weights global may sit in a .bss.cerebro.weights section (NOBITS: LLVM writes no
hundreds of MB of zeros, codegen/module.py does so): its bytes are then appended to the file and
the section becomes the PROGBITS .cerebro.weights (its name is the same string without ".bss").
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from cerebro import elf as elfmod
from cerebro.binread import FormatError
from cerebro.compiler.cbx.format import HASH_LEN, HASH_OFFSET, CbxError, Meta
from cerebro.compiler.cbx.rules import check_object

META_SECTION = ".cerebro.meta"
WEIGHTS_SECTION = ".cerebro.weights"
BSS_PREFIX = ".bss"  # a placeholder section named BSS_PREFIX + WEIGHTS_SECTION is NOBITS, filled by appending


@dataclass(frozen=True)
class ElfLayout:
    """Where the writer patches an ELF header and section headers: the fields are word-sized (word: the
    struct code of an address-sized field), at these offsets."""

    word: str
    shdr: struct.Struct  # Elf{32,64}_Shdr
    sh_flags: int  # offsetof(Shdr, sh_flags)
    sh_offset: int  # offsetof(Shdr, sh_offset), sh_size follows
    e_shoff: int  # offsetof(Ehdr, e_shoff)
    e_shnum: int  # offsetof(Ehdr, e_shnum), e_shstrndx follows


ELF_LAYOUTS = {64: ElfLayout("Q", struct.Struct("<2I4Q2I2Q"), 8, 24, 40, 60),
               32: ElfLayout("I", struct.Struct("<10I"), 8, 16, 32, 48)}


def parse_elf(data: bytes) -> elfmod.ElfFile:
    """The object as the project's ELF reader sees it; its errors become CbxError."""
    try:
        return elfmod.ElfFile.parse(data)
    except FormatError as exc:
        raise CbxError(f"not a valid .cbx object: {exc}") from None


def find_section(data: Any, name: str) -> tuple[int, bytes] | None:
    """(sh_type, bytes) of the section called name in an ELF image, None if it has none: read in place from
    any buffer (bytes, or the runtime's File whose hundreds of MB of weights must not be copied to find a
    note); CbxError if the headers it reads run past the data."""
    view = memoryview(data).cast("B")
    try:
        lay = ELF_LAYOUTS[{1: 32, 2: 64}[view[4]]]
        (shoff,) = struct.unpack_from("<" + lay.word, view, lay.e_shoff)
        shnum, shstrndx = struct.unpack_from("<2H", view, lay.e_shnum)
        headers = [lay.shdr.unpack_from(view, shoff + i * lay.shdr.size) for i in range(shnum)]
        names_at = headers[shstrndx][4]
        wanted = name.encode() + b"\0"
        for sh_name, sh_type, _flags, _addr, offset, size, *_ in headers[1:]:
            start = names_at + sh_name
            if view[start:start + len(wanted)] == wanted:
                if sh_type == elfmod.SHT_NOBITS:
                    return sh_type, b""
                if offset + size > len(view):
                    raise CbxError(f"section {name} runs past the end of the file")
                return sh_type, view[offset:offset + size].tobytes()
    except (IndexError, KeyError, struct.error):
        raise CbxError("not a valid .cbx object: its section headers run past the file") from None
    return None


class Sealed:
    """A sealed .cbx as the buffers that are the file in turn. A model's weights (hundreds of MB) go to a
    file piece by piece (write_to); only bytes(sealed) joins them into one more copy, whose page faults
    alone cost gpt2's build 0.35 s of one core's 5."""

    def __init__(self, pieces: tuple[Any, ...]) -> None:
        self.pieces = pieces
        self.nbytes = sum(memoryview(piece).nbytes for piece in pieces)

    def __bytes__(self) -> bytes:
        if len(self.pieces) == 1 and isinstance(self.pieces[0], bytes):
            return self.pieces[0]
        return b"".join(self.pieces)

    def write_to(self, file: BinaryIO) -> None:
        for piece in self.pieces:
            file.write(piece)

    def write(self, path: str | os.PathLike) -> None:
        with open(path, "wb") as file:
            self.write_to(file)


def finish_object(obj: bytes, meta: Meta, weights: Any) -> bytes:
    """sealed_object's file as one bytes."""
    return bytes(sealed_object(obj, meta, weights))


def sealed_object(obj: bytes, meta: Meta, weights: Any) -> Sealed:
    """Write meta and weights into LLVM's object, make both read-only, validate it and seal it.

    weights: one buffer, or a sequence of buffers that are the weights in turn (a memory plan's arrays
    and padding: each is then copied once, straight into the file's pieces, with no joined blob before
    it)."""
    elf = parse_elf(obj)
    check_object(elf, meta.machine)
    packed = meta.pack()
    pieces = _pieces(weights)
    size = sum(piece.nbytes for piece in pieces)
    if meta.weights_size != size:
        raise CbxError(f"meta.weights_size is {meta.weights_size} but {size} weight bytes were given")
    # one copy of the object, the weights copied into it once: a model's weights can be hundreds of MB
    out = bytearray(obj)
    meta_sec = _placeholder(elf, META_SECTION, len(packed), exact=True)
    weights_sec = _placeholder(elf, WEIGHTS_SECTION, size, exact=False)
    out[meta_sec.offset:meta_sec.offset + meta_sec.size] = packed
    lay = ELF_LAYOUTS[elf.bits]
    tail: tuple[Any, ...] = ()
    if weights_sec.type == elfmod.SHT_NOBITS:
        tail = _append_weights(out, elf, weights_sec, pieces, size)
    else:
        view, at = memoryview(out), weights_sec.offset
        for piece in pieces:
            view[at:at + piece.nbytes] = piece
            at += piece.nbytes
        view[at:weights_sec.offset + weights_sec.size] = bytes(weights_sec.size - size)
        view.release()
    for sec in (meta_sec, weights_sec):
        at = elf.shoff + sec.index * lay.shdr.size + lay.sh_flags
        struct.pack_into("<" + lay.word, out, at, sec.flags & ~elfmod.SHF_WRITE)
    return _sealed(out, hash_offset(elf), tail)


def _pieces(weights: Any) -> tuple[memoryview, ...]:
    """The weights as flat byte views, in order: one buffer, or each of a sequence of buffers."""
    try:
        return (memoryview(weights).cast("B"),)
    except TypeError:
        return tuple(memoryview(piece).cast("B") for piece in weights)


def _append_weights(out: bytearray, elf: elfmod.ElfFile, sec: elfmod.Section, pieces: tuple[memoryview, ...],
                    size: int) -> tuple[Any, ...]:
    """Fill the NOBITS placeholder `sec` (.bss.cerebro.weights) with bytes to append to out (at its
    alignment), returned as pieces (the weights are copied once, into the final file), and make it the
    PROGBITS .cerebro.weights there."""
    padding = bytes(-len(out) % max(1, sec.align))
    offset = len(out) + len(padding)
    lay = ELF_LAYOUTS[elf.bits]
    header = elf.shoff + sec.index * lay.shdr.size
    name, _ = struct.unpack_from("<2I", out, header)  # sh_name, sh_type lead both ELF classes' headers
    struct.pack_into("<2I", out, header, name + len(BSS_PREFIX), elfmod.SHT_PROGBITS)
    struct.pack_into("<" + lay.word, out, header + lay.sh_offset, offset)
    return padding, *pieces, bytes(sec.size - size)


def add_section(cbx: bytes, name: str, payload: bytes, kind: int = elfmod.SHT_PROGBITS, align: int = 1) -> bytes:
    """cbx with one more non-allocated section of type kind (never loaded: hosts ignore it), resealed.

    The new section, a longer copy of the section name table and a new section header table
    are appended; the old table and names stay behind as bytes no section claims."""
    elf = parse_elf(cbx)
    if elf.section(name) is not None:
        raise CbxError(f"the .cbx already has a {name} section")
    lay = ELF_LAYOUTS[elf.bits]
    shnum, shstrndx = struct.unpack_from("<2H", cbx, lay.e_shnum)
    names = elf.section_data(elf.sections[shstrndx])
    out = bytearray(cbx)

    def append(blob: bytes) -> int:
        out.extend(bytes(-len(out) % 8))
        out.extend(blob)
        return len(out) - len(blob)

    names_at = append(names + name.encode() + b"\0")
    payload_at = append(payload)
    headers = bytearray(cbx[elf.shoff:elf.shoff + shnum * lay.shdr.size])
    struct.pack_into("<2" + lay.word, headers, shstrndx * lay.shdr.size + lay.sh_offset, names_at,
                     len(names) + len(name) + 1)
    headers += lay.shdr.pack(len(names), kind, 0, 0, payload_at, len(payload), 0, 0, align, 0)
    struct.pack_into("<" + lay.word, out, lay.e_shoff, append(bytes(headers)))
    struct.pack_into("<H", out, lay.e_shnum, shnum + 1)
    return seal(bytes(out))


def seal(data: bytes) -> bytes:
    """data with meta.hash set to the SHA-256 of the file (hash bytes taken as zero)."""
    return bytes(_sealed(bytearray(data), hash_offset(parse_elf(data))))


def _sealed(out: bytearray, at: int, tail: tuple[Any, ...] = ()) -> Sealed:
    """out followed by tail, sealed (hash at offset `at` of out): hashed piece by piece, never joined."""
    out[at:at + HASH_LEN] = bytes(HASH_LEN)
    digest = hashlib.sha256(out)
    for piece in tail:
        digest.update(piece)
    out[at:at + HASH_LEN] = digest.digest()
    return Sealed((out, *tail))


def hash_offset(elf: elfmod.ElfFile) -> int:
    """File offset of the 32 hash bytes inside .cerebro.meta."""
    sec = elf.section(META_SECTION)
    if sec is None or sec.type != elfmod.SHT_PROGBITS:
        raise CbxError(f"no {META_SECTION} section: not a .cbx file")
    if sec.size < HASH_OFFSET + HASH_LEN:
        raise CbxError(f"bad {META_SECTION}: {sec.size} bytes is too small for its header")
    return sec.offset + HASH_OFFSET


def _placeholder(elf: elfmod.ElfFile, name: str, needed: int, exact: bool) -> elfmod.Section:
    """The PROGBITS placeholder section `name`, or for the weights a NOBITS one named with BSS_PREFIX."""
    sec, kind = elf.section(name), (elfmod.SHT_PROGBITS, "PROGBITS")
    if sec is None and name == WEIGHTS_SECTION:
        sec, kind = elf.section(BSS_PREFIX + name), (elfmod.SHT_NOBITS, "NOBITS")
    if sec is None:
        raise CbxError(f"the object has no {name} section (the code generator must declare its placeholder)")
    if sec.type != kind[0]:
        raise CbxError(f"{sec.name} must be a {kind[1]} section, not type {sec.type} (declare it non-constant and "
                       f"in its own named section)")
    if sec.size < needed or (exact and sec.size != needed):
        raise CbxError(f"{name} placeholder is {sec.size} bytes but {needed} are needed")
    return sec
