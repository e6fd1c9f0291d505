"""One image model for executables, whatever the container: ELF, PE/COFF or DEX.

Readers keep their full format-specific detail (ElfFile, PeFile, DexFile); `Image` is the
common view the CLI prints and the loaders reason about: sections, symbols, relocations,
imports, exports, entry and machine.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cerebro import elf as E
from cerebro.binread import FormatError


@dataclass(frozen=True)
class ImageSection:
    name: str
    address: int  # virtual address (ELF sh_addr, PE RVA) or file offset for DEX tables
    size: int
    file_offset: int
    file_size: int
    perms: str  # "rwx" with '-' for missing rights


@dataclass(frozen=True)
class ImageSymbol:
    name: str
    address: int
    size: int
    kind: str  # "func", "object", "class", "method", ...
    defined: bool


@dataclass
class Image:
    format: str  # "elf", "pe", "dex"
    machine: str
    bits: int
    kind: str  # "executable", "shared-library", "relocatable", "dex"
    entry: int
    sections: list[ImageSection] = field(default_factory=list)
    symbols: list[ImageSymbol] = field(default_factory=list)
    relocation_count: int = 0
    imports: list[str] = field(default_factory=list)  # "lib!name" (PE DLL!func, ELF needed-lib or symbol)
    exports: list[str] = field(default_factory=list)
    libraries: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"format": self.format, "machine": self.machine, "bits": self.bits, "kind": self.kind,
                "entry": hex(self.entry), "sections": [asdict(s) for s in self.sections],
                "libraries": self.libraries, "imports": self.imports, "exports": self.exports,
                "relocations": self.relocation_count, "symbols": len(self.symbols)}


ELF_KINDS = {E.ET_REL: "relocatable", E.ET_EXEC: "executable", E.ET_DYN: "shared-library", E.ET_CORE: "core"}
ELF_SYMBOL_KINDS = {E.STT_FUNC: "func", E.STT_OBJECT: "object", E.STT_NOTYPE: "notype", E.STT_SECTION: "section",
                    E.STT_FILE: "file", 6: "tls"}


def _elf_perms(sec: E.Section) -> str:
    f = sec.flags
    return ("r" if f & E.SHF_ALLOC else "-") + ("w" if f & E.SHF_WRITE else "-") + ("x" if f & E.SHF_EXECINSTR else "-")


def image_from_elf(f: E.ElfFile) -> Image:
    kind = ELF_KINDS.get(f.type, f.type_name)
    if f.type == E.ET_DYN and any(s.type == E.PT_INTERP for s in f.segments):
        kind = "executable"  # position-independent executable
    dyn = f.dynamic_symbols or f.symbols
    img = Image("elf", f.machine_name, f.bits, kind, f.entry)
    img.sections = [ImageSection(s.name, s.addr, s.size, s.offset, 0 if s.type == E.SHT_NOBITS else s.size,
                                 _elf_perms(s)) for s in f.sections if s.index]
    img.symbols = [ImageSymbol(s.name, s.value, s.size, ELF_SYMBOL_KINDS.get(s.type, str(s.type)),
                               s.shndx != E.SHN_UNDEF) for s in f.symbols + f.dynamic_symbols if s.name]
    img.relocation_count = len(f.relocations)
    img.libraries = f.needed()
    img.imports = sorted({s.name for s in dyn if s.name and s.shndx == E.SHN_UNDEF})
    img.exports = sorted({s.name for s in dyn if s.name and s.shndx != E.SHN_UNDEF and s.bind != E.STB_LOCAL})
    return img


def image_from_pe(p) -> Image:
    """Image view of a cerebro.loaders.pe.PeFile."""
    kind = "shared-library" if p.is_dll else "executable"
    img = Image("pe", p.machine_name, p.bits, kind, p.image_base + p.entry_rva if p.entry_rva else 0)
    img.sections = [ImageSection(s.name, s.virtual_address, s.virtual_size, s.raw_offset, s.raw_size, s.perms)
                    for s in p.sections]
    img.symbols = [ImageSymbol(e.name or f"#{e.ordinal}", p.image_base + e.rva, 0, "export", True) for e in p.exports]
    img.relocation_count = len(p.relocations)
    img.libraries = list(dict.fromkeys(i.dll for i in p.imports))
    img.imports = [f"{i.dll}!{i.name}" for i in p.imports]
    img.exports = [e.name or f"#{e.ordinal}" for e in p.exports]
    return img


class ElfPackage:
    """A bare ELF file given to `cerebroc pkg`: info, verify (parse) and extract (sections)."""

    run_options = ()

    def __init__(self, f: E.ElfFile):
        self.elf = f
        self.image = image_from_elf(f)

    @classmethod
    def parse(cls, data: bytes) -> ElfPackage:
        return cls(E.ElfFile.parse(data))

    def info(self) -> dict:
        return {**self.image.summary(), "sha256": hashlib.sha256(self.elf.data).hexdigest()}

    def verify(self) -> list[str]:
        return []  # parse() already checked every header, table and bound

    def extract(self, dest: str | os.PathLike) -> list[str]:
        return write_sections(dest, [(s.name, self.elf.section_data(s)) for s in self.elf.sections if s.index])

    def run(self, args: list[str], **_options):
        raise FormatError("ELF: run it directly; `pkg run` is for .deb, .exe and .apk packages")


def write_sections(dest: str | os.PathLike, named: list[tuple[str, bytes]]) -> list[str]:
    """Each section's raw bytes as DEST/<index>-<name>.bin (names sanitised: no paths)."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for i, (name, body) in enumerate(named):
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip(".") or "section"
        path = root / f"{i:02d}-{safe}.bin"
        path.write_bytes(body)
        written.append(path.name)
    return written
