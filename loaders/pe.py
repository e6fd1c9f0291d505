"""PE/COFF reader (PE32 and PE32+): headers, sections, imports, exports, base relocations, TLS.

Bounds-checked like the ELF reader: every RVA is translated through the section table and
every count is limited by the bytes that could hold it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cerebro.binread import FormatError, Reader, count_limit

PE32, PE32PLUS = 0x10B, 0x20B
MACHINES = {0x14C: "x86", 0x8664: "x86-64", 0xAA64: "arm64", 0x1C0: "arm", 0x1C4: "armnt", 0x200: "ia64", 0: "unknown"}
SUBSYSTEMS = {1: "native", 2: "windows-gui", 3: "windows-console", 7: "posix-console", 9: "windows-ce-gui",
              10: "efi-application", 11: "efi-boot-service-driver", 12: "efi-runtime-driver", 14: "xbox",
              16: "windows-boot-application"}
DIR_EXPORT, DIR_IMPORT, DIR_RESOURCE, DIR_SECURITY, DIR_BASERELOC, DIR_TLS = 0, 1, 2, 4, 5, 9
SCN_CNT_CODE, SCN_MEM_EXECUTE, SCN_MEM_READ, SCN_MEM_WRITE = 0x20, 0x20000000, 0x40000000, 0x80000000
SCN_CNT_INITIALIZED_DATA, SCN_CNT_UNINITIALIZED_DATA = 0x40, 0x80
FILE_RELOCS_STRIPPED, FILE_EXECUTABLE_IMAGE, FILE_DLL = 0x1, 0x2, 0x2000
PAGE = 0x1000
USER_SPACE_END = {64: 1 << 47, 32: 1 << 32}  # by PE bits: where a 32-bit image must fit
REL_ABSOLUTE, REL_HIGHLOW, REL_DIR64 = 0, 3, 10
MAX_SECTIONS = 96  # the Windows loader's own limit
MAX_IMPORTS = 1 << 16
MAX_EXPORTS = 1 << 16
MAX_NAME = 512


@dataclass(frozen=True)
class PeSection:
    name: str
    virtual_address: int
    virtual_size: int
    raw_offset: int
    raw_size: int
    characteristics: int

    @property
    def span(self) -> int:
        """Bytes in memory: VirtualSize, or SizeOfRawData when that is 0 (as Windows maps it)."""
        return self.virtual_size or self.raw_size

    @property
    def perms(self) -> str:
        c = self.characteristics
        return "".join(ch if c & bit else "-" for ch, bit in
                       (("r", SCN_MEM_READ), ("w", SCN_MEM_WRITE), ("x", SCN_MEM_EXECUTE)))


@dataclass(frozen=True)
class PeImport:
    dll: str
    name: str  # function name, or "#<ordinal>" when imported by ordinal
    iat_rva: int  # where the loader writes the bound address


@dataclass(frozen=True)
class PeExport:
    name: str
    ordinal: int
    rva: int
    forwarder: str = ""


@dataclass
class PeFile:
    machine: int
    magic: int
    characteristics: int
    entry_rva: int
    image_base: int
    section_alignment: int
    file_alignment: int
    size_of_image: int
    size_of_headers: int
    checksum: int
    checksum_offset: int
    subsystem: int
    dll_characteristics: int
    directories: list[tuple[int, int]]
    sections: list[PeSection] = field(default_factory=list)
    imports: list[PeImport] = field(default_factory=list)
    exports: list[PeExport] = field(default_factory=list)
    relocations: list[tuple[int, int]] = field(default_factory=list)  # (type, rva)
    tls_callbacks: list[int] = field(default_factory=list)  # VAs
    data: bytes = b""
    section_table_end: int = 0  # file offset just past the section headers

    @property
    def bits(self) -> int:
        return 64 if self.magic == PE32PLUS else 32

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"{self.machine:#x}")

    @property
    def subsystem_name(self) -> str:
        return SUBSYSTEMS.get(self.subsystem, str(self.subsystem))

    @property
    def is_dll(self) -> bool:
        return bool(self.characteristics & 0x2000)

    def rva_to_offset(self, rva: int, size: int = 1) -> int:
        if rva < self.size_of_headers and rva + size <= self.size_of_headers:
            return rva
        for s in self.sections:
            if s.virtual_address <= rva and rva + size <= s.virtual_address + max(s.raw_size, s.virtual_size):
                if rva + size > s.virtual_address + s.raw_size:
                    raise FormatError(f"PE: RVA {rva:#x} lies in section {s.name!r} but past its file data")
                return s.raw_offset + rva - s.virtual_address
        raise FormatError(f"PE: RVA {rva:#x} is not inside any section")

    def computed_checksum(self) -> int:
        """The PE image checksum (as IMAGEHLP CheckSumMappedFile computes it)."""
        data = self.data
        total = 0
        padded = data + b"\0" * (len(data) & 1)
        for i in range(0, len(padded), 2):
            if self.checksum_offset <= i < self.checksum_offset + 4:
                continue
            total += padded[i] | padded[i + 1] << 8
            total = (total & 0xFFFF) + (total >> 16)
        total = (total & 0xFFFF) + (total >> 16)
        return (total & 0xFFFF) + len(data)

    @classmethod
    def parse(cls, data: bytes) -> PeFile:
        data = bytes(data)
        r = Reader(data, "PE")
        if len(data) < 64 or data[:2] != b"MZ":
            raise FormatError("PE: not a PE file (missing MZ header)")
        lfanew = r.u32(0x3C, "e_lfanew")
        if r.bytes(lfanew, 4, "PE signature") != b"PE\0\0":
            raise FormatError(f"PE: no PE signature at offset {lfanew:#x} (DOS-only executable?)")
        machine, nsections, _time, _symptr, _nsyms, opt_size, chars = r.unpack("HHIIIHH", lfanew + 4, "COFF header")
        opt = lfanew + 24
        magic = r.u16(opt, "optional header magic")
        if magic not in (PE32, PE32PLUS):
            raise FormatError(f"PE: unknown optional header magic {magic:#x}")
        plus = magic == PE32PLUS
        entry = r.u32(opt + 16, "entry point")
        image_base = r.u64(opt + 24, "image base") if plus else r.u32(opt + 28, "image base")
        sect_align, file_align = r.unpack("II", opt + 32, "alignment")
        size_of_image, size_of_headers, checksum, subsystem, dll_chars = r.unpack("IIIHH", opt + 56, "image sizes")
        ndirs_off = opt + (108 if plus else 92)
        ndirs = min(r.u32(ndirs_off, "NumberOfRvaAndSizes"), 16)
        if opt_size < (ndirs_off - opt) + 4 + 8 * ndirs:
            raise FormatError(f"PE: optional header size {opt_size} too small for {ndirs} data directories")
        dirs = [r.unpack("II", ndirs_off + 4 + 8 * i, f"data directory {i}") for i in range(ndirs)]
        dirs += [(0, 0)] * (16 - len(dirs))
        pe = cls(machine, magic, chars, entry, image_base, sect_align, file_align, size_of_image, size_of_headers,
                 checksum, opt + 64, subsystem, dll_chars, dirs, data=data)
        pe.sections = _read_sections(r, opt + opt_size, nsections, size_of_image)
        pe.section_table_end = opt + opt_size + 40 * nsections
        pe.imports = _read_imports(pe, r)
        pe.exports = _read_exports(pe, r)
        pe.relocations = _read_relocations(pe, r)
        pe.tls_callbacks = _read_tls(pe, r)
        return pe


def _read_sections(r: Reader, offset: int, count: int, size_of_image: int) -> list[PeSection]:
    if count > MAX_SECTIONS:
        raise FormatError(f"PE: {count} sections exceeds the limit of {MAX_SECTIONS}")
    out = []
    for i in range(count):
        raw = r.unpack("8sIIIIIIHHI", offset + 40 * i, f"section header {i}")
        name = raw[0].rstrip(b"\0").decode("utf-8", "replace")
        vsize, vaddr, rawsize, rawptr, chars = raw[1], raw[2], raw[3], raw[4], raw[9]
        if rawsize:
            r.check(rawptr, rawsize, f"section {name!r} data")
        if vaddr + vsize > size_of_image:
            raise FormatError(f"PE: section {name!r} ({vaddr:#x}+{vsize:#x}) extends past "
                              f"SizeOfImage {size_of_image:#x}")
        out.append(PeSection(name, vaddr, vsize, rawptr, rawsize, chars))
    spans = sorted((s.virtual_address, s.virtual_address + max(s.virtual_size, 1), s.name) for s in out)
    for (a0, a1, an), (b0, _b1, bn) in zip(spans, spans[1:], strict=False):
        if b0 < a1:
            raise FormatError(f"PE: sections {an!r} and {bn!r} overlap in memory ({a0:#x}-{a1:#x} vs {b0:#x})")
    return out


def _name_at(pe: PeFile, r: Reader, rva: int, what: str) -> str:
    return r.cstring(pe.rva_to_offset(rva), what, limit=MAX_NAME)


def _read_imports(pe: PeFile, r: Reader) -> list[PeImport]:
    rva, size = pe.directories[DIR_IMPORT]
    if not rva:
        return []
    out: list[PeImport] = []
    thunk_size = 8 if pe.bits == 64 else 4
    ordinal_flag = 1 << (thunk_size * 8 - 1)
    for d in range(MAX_IMPORTS):
        desc = r.unpack("IIIII", pe.rva_to_offset(rva + 20 * d, 20), "import descriptor")
        lookup, _time, _fwd, name_rva, iat = desc
        if desc == (0, 0, 0, 0, 0):
            break
        dll = _name_at(pe, r, name_rva, "import DLL name")
        table = lookup or iat
        for t in range(MAX_IMPORTS):
            off = pe.rva_to_offset(table + thunk_size * t, thunk_size)
            value = r.u64(off) if thunk_size == 8 else r.u32(off)
            if value == 0:
                break
            if value & ordinal_flag:
                name = f"#{value & 0xFFFF}"
            else:
                name = _name_at(pe, r, (value & 0x7FFFFFFF) + 2, f"import name in {dll}")
            out.append(PeImport(dll, name, iat + thunk_size * t))
            if len(out) > MAX_IMPORTS:
                raise FormatError(f"PE: more than {MAX_IMPORTS} imports")
        else:
            raise FormatError(f"PE: import table of {dll} is not terminated")
    else:
        raise FormatError("PE: import directory is not terminated")
    return out


def _read_exports(pe: PeFile, r: Reader) -> list[PeExport]:
    rva, size = pe.directories[DIR_EXPORT]
    if not rva:
        return []
    (_c, _t, _mj, _mn, _name, base, nfuncs, nnames, funcs, names, ords) = r.unpack(
        "IIHHIIIIIII", pe.rva_to_offset(rva, 40), "export directory")
    if nfuncs > MAX_EXPORTS or nnames > nfuncs and nnames > MAX_EXPORTS:
        raise FormatError(f"PE: export table claims {nfuncs} functions / {nnames} names (limit {MAX_EXPORTS})")
    count_limit(nfuncs, 4, len(r), "PE", "export")
    addrs = [r.u32(pe.rva_to_offset(funcs + 4 * i, 4), "export address") for i in range(nfuncs)]
    named = {}
    for i in range(nnames):
        idx = r.u16(pe.rva_to_offset(ords + 2 * i, 2), "export ordinal")
        if idx >= nfuncs:
            raise FormatError(f"PE: export name {i} refers to function {idx} of {nfuncs}")
        named[idx] = _name_at(pe, r, r.u32(pe.rva_to_offset(names + 4 * i, 4)), "export name")
    out = []
    for i, addr in enumerate(addrs):
        if addr == 0:
            continue
        forwarder = _name_at(pe, r, addr, "export forwarder") if rva <= addr < rva + size else ""
        out.append(PeExport(named.get(i, ""), base + i, addr, forwarder))
    return out


def _read_relocations(pe: PeFile, r: Reader) -> list[tuple[int, int]]:
    rva, size = pe.directories[DIR_BASERELOC]
    if not rva:
        return []
    out = []
    pos = 0
    while pos + 8 <= size:
        page, block = r.unpack("II", pe.rva_to_offset(rva + pos, 8), "base relocation block")
        if block < 8 or pos + block > size:
            raise FormatError(f"PE: base relocation block at {rva + pos:#x} has bad size {block}")
        body = r.bytes(pe.rva_to_offset(rva + pos + 8, block - 8), block - 8, "base relocations")
        for i in range(0, len(body) - 1, 2):
            entry = body[i] | body[i + 1] << 8
            out.append((entry >> 12, page + (entry & 0xFFF)))
        pos += block
    return out


def _read_tls(pe: PeFile, r: Reader) -> list[int]:
    rva, _size = pe.directories[DIR_TLS]
    if not rva:
        return []
    ptr = 8 if pe.bits == 64 else 4
    fields = r.unpack("QQQQ" if ptr == 8 else "IIII", pe.rva_to_offset(rva, 4 * ptr), "TLS directory")
    callbacks_va = fields[3]
    out = []
    if not callbacks_va:
        return out
    cb_rva = callbacks_va - pe.image_base
    for i in range(256):
        off = pe.rva_to_offset(cb_rva + ptr * i, ptr)
        va = r.u64(off) if ptr == 8 else r.u32(off)
        if va == 0:
            return out
        out.append(va)
    raise FormatError("PE: TLS callback list is not terminated within 256 entries")


def _align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _pow2(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _header_rules(pe: PeFile) -> list[tuple[bool, str]]:
    sa, fa = pe.section_alignment, pe.file_alignment
    return [
        (bool(pe.characteristics & FILE_EXECUTABLE_IMAGE), "not marked as an executable image"),
        (_pow2(sa) and sa >= PAGE, f"SectionAlignment {sa:#x} is not a power of two of at least the 4 KiB page"),
        (_pow2(fa) and 512 <= fa <= 65536 and fa <= sa,
         f"FileAlignment {fa:#x} is not a power of two from 512 to 64 KiB and at most SectionAlignment"),
        (0 < pe.size_of_image <= 1 << 30, f"SizeOfImage {pe.size_of_image:#x} is 0 or over 1 GiB"),
        (pe.image_base % 0x10000 == 0 and pe.image_base < USER_SPACE_END[pe.bits] - pe.size_of_image,
         f"ImageBase {pe.image_base:#x} is not a 64 KiB-aligned user-space address"),
        (pe.size_of_headers % max(fa, 1) == 0 and pe.size_of_headers <= len(pe.data),
         f"SizeOfHeaders {pe.size_of_headers:#x} is not FileAlignment-aligned or lies past the end of the file"),
        (0 < len(pe.sections), "no sections"),
        (pe.section_table_end <= pe.size_of_headers,
         f"the section table (ends at {pe.section_table_end:#x}) lies outside SizeOfHeaders {pe.size_of_headers:#x}"),
    ]


def _section_rules(pe: PeFile, s: PeSection, start: int, earlier: list[PeSection]) -> list[tuple[bool, str]]:
    rules = [(s.virtual_address == start, f"section {s.name!r} starts at RVA {s.virtual_address:#x}, not at "
              f"{start:#x} where the headers or the previous section end (sections must be aligned and contiguous)"),
             (s.virtual_address + s.span <= pe.size_of_image,
              f"section {s.name!r} extends past SizeOfImage {pe.size_of_image:#x}")]
    if s.raw_size:
        only_bss = s.characteristics & (SCN_CNT_INITIALIZED_DATA | SCN_CNT_UNINITIALIZED_DATA) == \
            SCN_CNT_UNINITIALIZED_DATA
        rules += [(not only_bss, f"section {s.name!r} holds only uninitialized data but claims {s.raw_size:#x} "
                   "bytes of file data (SizeOfRawData must be 0)"),
                  (s.raw_offset % pe.file_alignment == 0,
                   f"section {s.name!r} file data at {s.raw_offset:#x} is not aligned to FileAlignment"),
                  (s.raw_offset >= pe.size_of_headers, f"section {s.name!r} file data overlaps the headers"),
                  *((not o.raw_size or s.raw_offset >= o.raw_offset + o.raw_size
                     or o.raw_offset >= s.raw_offset + s.raw_size,
                     f"sections {o.name!r} and {s.name!r} share file data") for o in earlier)]
    return rules


# base relocation type -> bytes it patches, by PE bits (peload.c relocate(): DIR64 only in PE32+)
RELOCATION_WIDTHS = {64: {REL_ABSOLUTE: 0, REL_HIGHLOW: 4, REL_DIR64: 8}, 32: {REL_ABSOLUTE: 0, REL_HIGHLOW: 4}}


def _relocation_rules(pe: PeFile) -> list[tuple[bool, str]]:
    """The first base relocation of a type this format lacks, or patching bytes outside the image."""
    widths = RELOCATION_WIDTHS[pe.bits]
    for kind, rva in pe.relocations:
        if kind not in widths:
            return [(False, f"unsupported base relocation type {kind} at RVA {rva:#x} in a "
                           f"{'PE32+' if pe.bits == 64 else 'PE32'} image")]
        if widths[kind] and rva + widths[kind] > pe.size_of_image:
            return [(False, f"relocation target at RVA {rva:#x} (+{widths[kind]:#x}) lies outside the image")]
    return []


def _code_rule(pe: PeFile, rva: int, what: str) -> tuple[bool, str]:
    where = next((s for s in pe.sections if s.virtual_address <= rva < s.virtual_address + s.span), None)
    return (where is not None and bool(where.characteristics & SCN_MEM_EXECUTE),
            f"{what} RVA {rva:#x} is not inside an executable section")


def check_loadable(pe: PeFile) -> None:
    """The rules cerebro-peload checks before mapping a program (loaders/native/peload.c: keep
    the two in step): Windows' own layout rules, plus code entered only in executable sections.
    Raises FormatError naming the first rule broken."""
    rules = _header_rules(pe)
    if all(ok for ok, _ in rules):
        start = _align_up(pe.size_of_headers, pe.section_alignment)
        for i, s in enumerate(pe.sections):
            rules += _section_rules(pe, s, start, pe.sections[:i])
            start = _align_up(s.virtual_address + s.span, pe.section_alignment)
        rules.append(_code_rule(pe, pe.entry_rva, "entry point"))
        rules += [_code_rule(pe, va - pe.image_base, "TLS callback") for va in pe.tls_callbacks]
        rules += _relocation_rules(pe)
    for ok, message in rules:
        if not ok:
            raise FormatError(f"PE: {message}")
