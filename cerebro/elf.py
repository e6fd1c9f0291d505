"""The project's one ELF reader and its one table of ELF constants: pure Python, bounds-checked,
ELF32/ELF64, either endianness.

A base below both users: the .cbx format (compiler/cbx) validates and patches objects with it, the
loaders (.deb/.apk native-library info, the image model) read packages with it, and targets.py and
kmod.py name machines by its EM_* constants. Hostile input gets FormatError, never an IndexError or
an allocation sized by the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cerebro.binread import FormatError, Reader, count_limit

ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_NONE, ET_REL, ET_EXEC, ET_DYN, ET_CORE = 0, 1, 2, 3, 4
EM_386, EM_MIPS, EM_PPC, EM_PPC64, EM_S390, EM_ARM, EM_X86_64, EM_AARCH64, EM_RISCV = 3, 8, 20, 21, 22, 40, 62, 183, 243
MACHINE_NAMES = {EM_386: "x86", EM_MIPS: "mips", EM_PPC: "ppc", EM_PPC64: "ppc64", EM_S390: "s390", EM_ARM: "arm",
                 EM_X86_64: "x86-64", EM_AARCH64: "aarch64", EM_RISCV: "riscv"}
TYPE_NAMES = {ET_NONE: "NONE", ET_REL: "REL", ET_EXEC: "EXEC", ET_DYN: "DYN", ET_CORE: "CORE"}

SHT_NULL, SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA = 0, 1, 2, 3, 4
SHT_HASH, SHT_DYNAMIC, SHT_NOTE, SHT_NOBITS, SHT_REL, SHT_DYNSYM = 5, 6, 7, 8, 9, 11
SHT_INIT_ARRAY, SHT_FINI_ARRAY, SHT_GROUP = 14, 15, 17
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_MERGE, SHF_STRINGS, SHF_INFO_LINK = 0x1, 0x2, 0x4, 0x10, 0x20, 0x40
SHN_UNDEF, SHN_LORESERVE, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xFF00, 0xFFF1, 0xFFF2, 0xFFFF
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_FILE = 0, 1, 2, 3, 4
PT_NULL, PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_PHDR, PT_TLS = 0, 1, 2, 3, 4, 6, 7
PF_X, PF_W, PF_R = 1, 2, 4
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME = 0, 1, 5, 14

MAX_SECTIONS = 65536
MAX_SEGMENTS = 65536
MAX_SYMBOLS = 1 << 22
MAX_RELOCATIONS = 1 << 23
MAX_NAME = 1 << 16  # longest section/symbol/library name read (real C++ names reach a few KiB)
NAME_BUDGET = 4  # all names read from one file add up to at most this many times its size (+ MAX_NAME)


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    align: int
    entsize: int


@dataclass(frozen=True)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int
    size: int
    bind: int
    type: int
    visibility: int
    shndx: int
    table: str = ".symtab"  # which symbol table it came from (.symtab or .dynsym)


@dataclass(frozen=True)
class Relocation:
    section: int  # index of the section the relocation patches
    offset: int
    type: int
    symbol: int  # index into the symbol table named by the relocation section's sh_link
    addend: int
    rela: bool  # True for SHT_RELA (explicit addend), False for SHT_REL (addend 0 here, implicit in place)
    symtab: int = 0  # section index of the symbol table used


# Header layouts per class: struct formats (without endianness) of ehdr/shdr/phdr/sym/rel/rela.
LAYOUT = {
    ELFCLASS32: dict(ehdr="HHIIIIIHHHHHH", shdr="IIIIIIIIII", phdr="IIIIIIII", sym="IIIBBH", rel="II", rela="IIi",
                     rsym=lambda info: info >> 8, rtype=lambda info: info & 0xFF),
    ELFCLASS64: dict(ehdr="HHIQQQIHHHHHH", shdr="IIQQQQIIQQ", phdr="IIQQQQQQ", sym="IBBHQQ", rel="QQ", rela="QQq",
                     rsym=lambda info: info >> 32, rtype=lambda info: info & 0xFFFFFFFF),
}


class Names:
    """Strings of a file's string tables, each read once per (table, offset) and at most MAX_NAME bytes
    long, all together within NAME_BUDGET times the file: many entries naming one long string (or
    successive offsets into it) cannot cost quadratic time or memory (issue #10, item 2's shape)."""

    def __init__(self, r: Reader):
        self.r = r
        self.left = NAME_BUDGET * len(r) + MAX_NAME
        self.read: dict[tuple[int, int], str] = {}

    def get(self, table_offset: int, table_size: int, offset: int, item: str) -> str:
        name = self.read.get((table_offset, offset))
        if name is None:
            if offset >= table_size:
                raise FormatError(f"ELF: {item} offset {offset:#x} outside its string table ({table_size:#x} bytes)")
            name = self.r.cstring(table_offset + offset, item, limit=min(table_size - offset, MAX_NAME))
            self.left -= len(name) + 1
            if self.left < 0:
                raise FormatError(f"ELF: names add up to more than {NAME_BUDGET}x the file (overlapping strings?)")
            self.read[(table_offset, offset)] = name
        return name


@dataclass
class ElfFile:
    ei_class: int
    endian: str
    machine: int
    type: int
    entry: int
    flags: int
    sections: list[Section] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    dynamic_symbols: list[Symbol] = field(default_factory=list)
    relocations: list[Relocation] = field(default_factory=list)
    data: bytes = b""
    shoff: int = 0  # file offset of the section header table (for in-place patching of section flags)

    @property
    def bits(self) -> int:
        return 32 if self.ei_class == ELFCLASS32 else 64

    @property
    def machine_name(self) -> str:
        return MACHINE_NAMES.get(self.machine, f"EM_{self.machine}")

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"ET_{self.type}")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def section_data(self, sec: Section) -> bytes:
        if sec.type in (SHT_NOBITS, SHT_NULL):
            return b""
        return Reader(self.data, "ELF").bytes(sec.offset, sec.size, f"section {sec.name!r}")

    def symbol_tables(self) -> dict[int, list[Symbol]]:
        """Symbols of each symbol-table section, by that section's index (what relocations refer to)."""
        names = Names(Reader(self.data, "ELF", self.endian))
        return {s.index: _read_symbols(self, s, names) for s in self.sections if s.type in (SHT_SYMTAB, SHT_DYNSYM)}

    def needed(self) -> list[str]:
        """DT_NEEDED shared libraries named by the dynamic section."""
        return [v for tag, v in self.dynamic_strings() if tag == DT_NEEDED]

    def soname(self) -> str | None:
        return next((v for tag, v in self.dynamic_strings() if tag == DT_SONAME), None)

    def dynamic_strings(self) -> list[tuple[int, str]]:
        dyn = next((s for s in self.sections if s.type == SHT_DYNAMIC), None)
        if dyn is None or not (0 < dyn.link < len(self.sections)):
            return []
        strtab = self.sections[dyn.link]
        r = Reader(self.data, "ELF", self.endian)
        names = Names(r)
        fmt = "ii" if self.bits == 32 else "qQ"
        step = 8 if self.bits == 32 else 16
        out = []
        for off in range(dyn.offset, dyn.offset + min(dyn.size, len(self.data)) - step + 1, step):
            tag, val = r.unpack(fmt, off, "dynamic entry")
            if tag == DT_NULL:
                break
            if tag in (DT_NEEDED, DT_SONAME):
                out.append((tag, _string(names, strtab, val)))
        return out

    @classmethod
    def parse(cls, data: bytes) -> ElfFile:
        data = bytes(data)
        if len(data) < 16 or data[:4] != b"\x7fELF":
            raise FormatError("ELF: not an ELF file (bad magic)")
        ei_class, ei_data = data[4], data[5]
        if ei_class not in LAYOUT:
            raise FormatError(f"ELF: unknown class {ei_class} (expected 1=ELF32 or 2=ELF64)")
        if ei_data not in (ELFDATA2LSB, ELFDATA2MSB):
            raise FormatError(f"ELF: unknown data encoding {ei_data}")
        endian = "<" if ei_data == ELFDATA2LSB else ">"
        lay = LAYOUT[ei_class]
        r = Reader(data, "ELF", endian)
        (etype, machine, _version, entry, phoff, shoff, flags, ehsize, phentsize, phnum,
         shentsize, shnum, shstrndx) = r.unpack(lay["ehdr"], 16, "ELF header")
        elf = cls(ei_class, endian, machine, etype, entry, flags, data=data, shoff=shoff)
        names = Names(r)
        elf.sections = _read_sections(r, lay, shoff, shentsize, shnum, shstrndx, names)
        elf.segments = _read_segments(r, lay, phoff, phentsize, phnum)
        for sec in elf.sections:
            if sec.type == SHT_SYMTAB:
                elf.symbols += _read_symbols(elf, sec, names)
            elif sec.type == SHT_DYNSYM:
                elf.dynamic_symbols += _read_symbols(elf, sec, names)
            elif sec.type in (SHT_RELA, SHT_REL):
                elf.relocations += _read_relocations(elf, r, lay, sec)
            # tables may overlap (many sections over the same bytes): bound the total, not just each one
            budget = min(MAX_SYMBOLS, len(data) // 8)  # real tables hold >= 8 bytes per entry and never overlap
            if len(elf.symbols) + len(elf.dynamic_symbols) > budget or len(elf.relocations) > budget:
                raise FormatError("ELF: symbol or relocation tables exceed their total limit (overlapping tables?)")
        return elf


def _read_sections(r: Reader, lay: dict, shoff: int, shentsize: int, shnum: int, shstrndx: int,
                   names_read: Names) -> list[Section]:
    if shoff == 0:
        return []
    size = struct.calcsize("<" + lay["shdr"])
    if shentsize < size:
        raise FormatError(f"ELF: section header entry size {shentsize} is smaller than {size}")
    r.check(shoff, shentsize, "section header table")
    if shnum == 0:  # extended numbering: the real count is in section 0's sh_size
        shnum = r.unpack(lay["shdr"], shoff, "section header 0")[5]
    if shstrndx == SHN_XINDEX:
        shstrndx = r.unpack(lay["shdr"], shoff, "section header 0")[6]
    if shnum > MAX_SECTIONS:
        raise FormatError(f"ELF: {shnum} sections exceeds the limit of {MAX_SECTIONS}")
    count_limit(shnum, shentsize, len(r) - shoff, "ELF", "section header")
    raw = [r.unpack(lay["shdr"], shoff + i * shentsize, f"section header {i}") for i in range(shnum)]
    if shstrndx >= len(raw) and shstrndx != 0:
        raise FormatError(f"ELF: section name table index {shstrndx} out of range ({shnum} sections)")
    names = raw[shstrndx] if raw else None
    out = []
    for i, (name, typ, flags, addr, off, size_, link, info, align, entsize) in enumerate(raw):
        if typ not in (SHT_NOBITS, SHT_NULL):
            r.check(off, size_, f"section {i} contents")
        nm = ""
        if names is not None and i != 0 and shstrndx != 0:
            nm = names_read.get(names[4], names[5], name, f"section {i} name")
        out.append(Section(i, nm, typ, flags, addr, off, size_, link, info, align, entsize))
    return out


def _read_segments(r: Reader, lay: dict, phoff: int, phentsize: int, phnum: int) -> list[Segment]:
    if phoff == 0 or phnum == 0:
        return []
    size = struct.calcsize("<" + lay["phdr"])
    if phentsize < size:
        raise FormatError(f"ELF: program header entry size {phentsize} is smaller than {size}")
    count_limit(phnum, phentsize, len(r) - phoff, "ELF", "program header")
    out = []
    for i in range(phnum):
        f = r.unpack(lay["phdr"], phoff + i * phentsize, f"program header {i}")
        if lay is LAYOUT[ELFCLASS32]:  # ELF32: type offset vaddr paddr filesz memsz flags align
            typ, off, vaddr, paddr, filesz, memsz, flags, align = f
        else:  # ELF64: type flags offset vaddr paddr filesz memsz align
            typ, flags, off, vaddr, paddr, filesz, memsz, align = f
        out.append(Segment(typ, flags, off, vaddr, paddr, filesz, memsz, align))
    return out


def _string(names: Names, strtab: Section, offset: int) -> str:
    if strtab.type != SHT_STRTAB:
        raise FormatError(f"ELF: section {strtab.index} used as a string table is not SHT_STRTAB")
    return names.get(strtab.offset, strtab.size, offset, f"string in {strtab.name!r}")


def _linked(elf: ElfFile, sec: Section, what: str) -> Section:
    if not (0 < sec.link < len(elf.sections)):
        raise FormatError(f"ELF: {sec.name!r} links to {what} section {sec.link}, which does not exist")
    return elf.sections[sec.link]


def _table_entries(sec: Section, size: int, limit: int, what: str) -> tuple[int, int]:
    """(entry size, entry count) of a table section whose entries are at least size bytes; FormatError for
    smaller entries or more than limit of them."""
    entsize = sec.entsize or size
    if entsize < size:
        raise FormatError(f"ELF: {sec.name!r} entry size {entsize} is smaller than {size}")
    count = sec.size // entsize
    if count > limit:
        raise FormatError(f"ELF: {sec.name!r} has {count} {what}, over the limit of {limit}")
    return entsize, count


def _read_symbols(elf: ElfFile, sec: Section, names: Names) -> list[Symbol]:
    lay = LAYOUT[elf.ei_class]
    r = Reader(elf.data, "ELF", elf.endian)
    size = struct.calcsize("<" + lay["sym"])
    entsize, count = _table_entries(sec, size, MAX_SYMBOLS, "symbols")
    strtab = _linked(elf, sec, "string table")
    out = []
    for i in range(count):
        f = r.unpack(lay["sym"], sec.offset + i * entsize, f"symbol {i} of {sec.name!r}")
        if elf.ei_class == ELFCLASS32:
            name, value, size_, info, other, shndx = f
        else:
            name, info, other, shndx, value, size_ = f
        nm = _string(names, strtab, name) if name else ""
        out.append(Symbol(nm, value, size_, info >> 4, info & 0xF, other & 3, shndx, sec.name))
    return out


def _read_relocations(elf: ElfFile, r: Reader, lay: dict, sec: Section) -> list[Relocation]:
    rela = sec.type == SHT_RELA
    fmt = lay["rela" if rela else "rel"]
    size = struct.calcsize("<" + fmt)
    entsize, count = _table_entries(sec, size, MAX_RELOCATIONS, "relocations")
    if sec.info >= len(elf.sections):
        raise FormatError(f"ELF: {sec.name!r} applies to section {sec.info}, which does not exist")
    nsyms = 0
    if sec.link:
        symtab = _linked(elf, sec, "symbol table")
        nsyms = symtab.size // (symtab.entsize or struct.calcsize("<" + lay["sym"]))
    out = []
    for i in range(count):
        f = r.unpack(fmt, sec.offset + i * entsize, f"relocation {i} of {sec.name!r}")
        addend = f[2] if rela else 0
        if lay["rsym"](f[1]) >= max(nsyms, 1) and sec.link:
            raise FormatError(f"ELF: relocation {i} of {sec.name!r} names symbol {lay['rsym'](f[1])}, "
                              f"but the symbol table has {nsyms}")
        out.append(Relocation(sec.info, f[0], lay["rtype"](f[1]), lay["rsym"](f[1]), addend, rela, sec.link))
    return out
