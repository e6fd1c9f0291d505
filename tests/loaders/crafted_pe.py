"""Crafted PE32+ (and PE32) programs, built from bytes with no toolchain: one tiny valid program per run-time
behaviour (exit, faults, sleeping, mingw's .bss startup lock) and hostile variants of the exit
program, each breaking one rule that loaders/pe.py and cerebro-peload both check.

`python tests/loaders/crafted_pe.py OUTDIR` writes every case as OUTDIR/<name>.exe (fuzzers seed from them).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

IMAGE_BASE = 0x140000000
HEADERS, FILE_ALIGN, SECTION_ALIGN = 0x400, 0x200, 0x1000
TEXT, IDATA, BSS, RELOC = 0x1000, 0x2000, 0x3000, 0x4000  # section RVAs
TEXT_RAW, IDATA_RAW, RELOC_RAW = 0x400, 0x600, 0x800  # their file offsets (.bss has none)
SIZE_OF_IMAGE, FILE_SIZE = 0x5000, 0xA00
PE_OFFSET = 0x40
OPT = PE_OFFSET + 24  # optional header
SECTIONS = OPT + 240  # section table: .text, .idata, .bss, .reloc
IMPORTS = {"KERNEL32.dll": ["ExitProcess", "Sleep"], "msvcrt.dll": ["abort"]}


def section_field(index: int, field: str) -> int:
    """File offset of a section header field."""
    return SECTIONS + 40 * index + {"vsize": 8, "va": 12, "raw_size": 16, "raw_ptr": 20, "chars": 36}[field]


def directory(index: int) -> int:
    """File offset of data directory @index's RVA (its size follows)."""
    return OPT + 112 + 8 * index


def _idata() -> tuple[bytes, dict[str, int]]:
    """Import descriptors, lookup tables, address tables and names; returns (bytes, {function: IAT RVA})."""
    descriptors = 20 * (len(IMPORTS) + 1)
    tables, names, iat = b"", b"", {}
    layout = []
    name_base = descriptors + sum(16 * (len(fns) + 1) for fns in IMPORTS.values())
    for dll, fns in IMPORTS.items():
        hint_rvas = []
        for fn in fns:
            hint_rvas.append(IDATA + name_base + len(names))
            names += b"\0\0" + fn.encode() + b"\0"
        dll_rva = IDATA + name_base + len(names)
        names += dll.encode() + b"\0"
        thunks = b"".join(struct.pack("<Q", rva) for rva in hint_rvas) + bytes(8)
        lookup = IDATA + descriptors + len(tables)
        address = lookup + len(thunks)
        tables += thunks + thunks
        iat.update({fn: address + 8 * i for i, fn in enumerate(fns)})
        layout.append(struct.pack("<IIIII", lookup, 0, 0, dll_rva, address))
    return b"".join(layout) + bytes(20) + tables + names, iat


IDATA_BYTES, IAT = _idata()


class Code:
    """A tiny x86-64 assembler for the few instructions these programs need (RIP-relative only)."""

    def __init__(self) -> None:
        self.out = bytearray()

    def emit(self, *chunks: bytes) -> Code:
        for chunk in chunks:
            self.out += chunk
        return self

    def rip_disp(self, target_rva: int, tail: int = 0) -> bytes:
        """disp32 from the end of the instruction (@tail bytes follow the displacement) to @target_rva."""
        return struct.pack("<i", target_rva - (TEXT + len(self.out) + 4 + tail))

    def call_import(self, fn: str) -> Code:
        self.emit(b"\xff\x15")
        return self.emit(self.rip_disp(IAT[fn]))

    def here(self) -> int:
        return len(self.out)

    def jmp_back(self, to: int) -> Code:
        return self.emit(b"\xeb", struct.pack("<b", to - (len(self.out) + 2)))


FRAME = b"\x48\x83\xec\x28"  # sub rsp, 40: shadow space and 16-byte alignment for Windows-ABI calls


def exit_with(code: int) -> bytes:
    return bytes(Code().emit(FRAME, b"\xb9", struct.pack("<I", code)).call_import("ExitProcess").out)


def sleep_forever() -> bytes:
    c = Code().emit(FRAME)
    loop = c.here()
    c.emit(b"\xb9\xe8\x03\x00\x00").call_import("Sleep")  # Sleep(1000)
    return bytes(c.jmp_back(loop).out)


def bss_startup_lock() -> bytes:
    """mingw's CRT startup: while (__native_startup_lock != 0) Sleep(1000); then exit 7.

    A zero .bss lets it through; .bss filled from the file (the old loader copied file offset 0,
    'MZ...', when SizeOfRawData was set) makes it sleep forever.
    """
    c = Code().emit(FRAME)
    loop = c.here()
    c.emit(b"\x48\x83\x3d")
    c.emit(c.rip_disp(BSS, tail=1), b"\x00")  # cmp qword [rip+lock], 0
    c.emit(b"\x74\x0d")  # je done (skips the 13 bytes below)
    c.emit(b"\xb9\xe8\x03\x00\x00").call_import("Sleep")
    c.jmp_back(loop)
    return bytes(c.emit(b"\xb9\x07\x00\x00\x00").call_import("ExitProcess").out)


def abort_call() -> bytes:
    return bytes(Code().emit(FRAME).call_import("abort").out)


# name -> code; FAULTS says what the fault line must hold for each (cause, RVA of the faulting instruction)
PROGRAMS = {
    "exit7": exit_with(7),
    "sleep_forever": sleep_forever(),
    "bss_lock": bss_startup_lock(),
    "null_read": b"\x31\xc0\x8b\x00",  # xor eax, eax; mov eax, [rax]
    "null_write": b"\x31\xc0\x89\x00",  # xor eax, eax; mov [rax], eax
    "divide_by_zero": b"\x31\xc9\xb8\x01\x00\x00\x00\x99\xf7\xf9",  # xor ecx, ecx; mov eax, 1; cdq; idiv ecx
    "illegal_instruction": b"\x0f\x0b",  # ud2
    "breakpoint": b"\xcc",  # int3
    "stack_overflow": b"\xe8\xfb\xff\xff\xff",  # call self, forever
    "abort": abort_call(),
}
FAULTS = {
    "null_read": ("SIGSEGV (read of unmapped address 0x0)", TEXT + 2),
    "null_write": ("SIGSEGV (write to unmapped address 0x0)", TEXT + 2),
    "divide_by_zero": ("SIGFPE (integer divide by zero)", TEXT + 8),
    "illegal_instruction": ("SIGILL (illegal instruction at address", TEXT),
    "breakpoint": ("SIGTRAP (breakpoint)", TEXT + 1),  # int3 reports the address after it
    "stack_overflow": ("SIGSEGV (write to", TEXT),
    "abort": ("SIGABRT (abort)", None),  # raised inside libc
}


def build(code: bytes) -> bytes:
    """A valid PE32+ console program whose entry point is @code at the start of .text."""
    out = bytearray(FILE_SIZE)
    out[0:2] = b"MZ"
    struct.pack_into("<I", out, 0x3C, PE_OFFSET)
    out[PE_OFFSET:PE_OFFSET + 4] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", out, PE_OFFSET + 4, 0x8664, 4, 0, 0, 0, 240, 0x0022)  # executable, large-address
    struct.pack_into("<HBBIIIIIQIIHHHHHHIIIIHHQQQQII", out, OPT, 0x20B, 2, 40, 0x200, 0x400, 0x1000, TEXT, TEXT,
                     IMAGE_BASE, SECTION_ALIGN, FILE_ALIGN, 6, 0, 0, 0, 6, 0, 0, SIZE_OF_IMAGE, HEADERS, 0, 3,
                     0x0160, 0x200000, 0x1000, 0x100000, 0x1000, 0, 16)
    struct.pack_into("<II", out, directory(1), IDATA, len(IDATA_BYTES))
    struct.pack_into("<II", out, directory(5), RELOC, 12)
    for i, (name, va, vsize, raw, ptr, chars) in enumerate((
            (b".text", TEXT, len(code), 0x200, TEXT_RAW, 0x60000020),
            (b".idata", IDATA, len(IDATA_BYTES), 0x200, IDATA_RAW, 0xC0000040),
            (b".bss", BSS, 0x1000, 0, 0, 0xC0000080),
            (b".reloc", RELOC, 12, 0x200, RELOC_RAW, 0x42000040))):
        struct.pack_into("<8sIIIIIIHHI", out, SECTIONS + 40 * i, name, vsize, va, raw, ptr, 0, 0, 0, 0, chars)
    out[TEXT_RAW:TEXT_RAW + len(code)] = code
    out[IDATA_RAW:IDATA_RAW + len(IDATA_BYTES)] = IDATA_BYTES
    struct.pack_into("<IIHH", out, RELOC_RAW, TEXT, 12, 0, 0)  # one block of padding entries: relocatable
    return bytes(out)


def patched(data: bytes, *fields: tuple[int, str, int]) -> bytes:
    out = bytearray(data)
    for offset, fmt, value in fields:
        struct.pack_into(fmt, out, offset, value)
    return bytes(out)


# name -> (program, fields to overwrite): each breaks one loader rule; all must be refused (exit 126)
HOSTILE = {
    "entry_outside_image": ("exit7", [(OPT + 16, "<I", 0x10000)]),
    "entry_in_data_section": ("exit7", [(OPT + 16, "<I", IDATA)]),
    "entry_past_text_in_its_page": ("exit7", [(OPT + 16, "<I", TEXT + 0x100)]),
    "entry_zero": ("exit7", [(OPT + 16, "<I", 0)]),
    "bss_with_file_data": ("bss_lock", [(section_field(2, "raw_size"), "<I", 0x200)]),
    "section_data_in_headers": ("exit7", [(section_field(0, "raw_ptr"), "<I", 0)]),
    "section_data_misaligned": ("exit7", [(section_field(1, "raw_ptr"), "<I", IDATA_RAW + 0x10)]),
    "sections_share_file_data": ("exit7", [(section_field(3, "raw_ptr"), "<I", IDATA_RAW)]),
    "section_data_past_eof": ("exit7", [(section_field(3, "raw_size"), "<I", 0x10000)]),
    "section_va_misaligned": ("exit7", [(section_field(1, "va"), "<I", IDATA + 0x100)]),
    "sections_overlap": ("exit7", [(section_field(1, "va"), "<I", TEXT)]),
    "section_gap": ("exit7", [(section_field(3, "va"), "<I", RELOC + 0x1000), (OPT + 56, "<I", 0x6000)]),
    "section_past_image": ("exit7", [(section_field(3, "vsize"), "<I", 0x10000)]),
    "import_dir_outside_image": ("exit7", [(directory(1), "<I", 0x7FFFFFF0)]),
    "import_dir_in_bss": ("exit7", [(directory(1), "<I", BSS)]),
    "reloc_dir_outside_image": ("exit7", [(directory(5), "<I", 0x7FFFFFF0)]),
    "reloc_block_size_zero": ("exit7", [(RELOC_RAW + 4, "<I", 0)]),
    "section_alignment_below_page": ("exit7", [(OPT + 32, "<I", 0x200)]),
    "file_alignment_not_power_of_two": ("exit7", [(OPT + 36, "<I", 0x300)]),
    "image_base_misaligned": ("exit7", [(OPT + 24, "<Q", IMAGE_BASE + 0x1000)]),
    "image_base_kernel_space": ("exit7", [(OPT + 24, "<Q", 0xFFFF800000000000)]),
    "not_an_executable_image": ("exit7", [(PE_OFFSET + 22, "<H", 0x0020)]),
    "too_many_sections": ("exit7", [(PE_OFFSET + 6, "<H", 200)]),
    "size_of_headers_misaligned": ("exit7", [(OPT + 60, "<I", HEADERS - 0x10)]),
}


# ---- PE32 (i386): the same layout, 4-byte thunks and pointers, absolute addresses fixed by HIGHLOW ----

IMAGE_BASE32 = 0x400000
SECTIONS32 = OPT + 224  # the PE32 optional header: 96 bytes and 16 data directories
RELOC32_ENTRIES = 2  # one HIGHLOW entry (the IAT address in the call) and one padding entry


def directory32(index: int) -> int:
    return OPT + 96 + 8 * index


def section_field32(index: int, field: str) -> int:
    return section_field(index, field) - SECTIONS + SECTIONS32


def _idata32(imports: dict[str, list[str | int]]) -> tuple[bytes, dict[str, int]]:
    """Like _idata with 4-byte thunks; an int entry is imported by ordinal."""
    descriptors = 20 * (len(imports) + 1)
    tables, names, iat, layout = b"", b"", {}, []
    name_base = descriptors + sum(8 * (len(fns) + 1) for fns in imports.values())
    for dll, fns in imports.items():
        thunks = b""
        for fn in fns:
            if isinstance(fn, int):
                thunks += struct.pack("<I", 0x80000000 | fn)
                continue
            thunks += struct.pack("<I", IDATA + name_base + len(names))
            names += b"\0\0" + fn.encode() + b"\0"
        thunks += bytes(4)
        dll_rva = IDATA + name_base + len(names)
        names += dll.encode() + b"\0"
        lookup = IDATA + descriptors + len(tables)
        address = lookup + len(thunks)
        tables += thunks + thunks
        iat.update({str(fn): address + 4 * i for i, fn in enumerate(fns)})
        layout.append(struct.pack("<IIIII", lookup, 0, 0, dll_rva, address))
    return b"".join(layout) + bytes(20) + tables + names, iat


IMPORTS32 = {"KERNEL32.dll": ["ExitProcess"]}
IAT32 = _idata32(IMPORTS32)[1]
# push CODE; call [ExitProcess] (stdcall: it takes its argument off the stack); the address at +4 is HIGHLOW-relocated
EXIT32 = b"\x6a\x07\xff\x15" + struct.pack("<I", IMAGE_BASE32 + IAT32["ExitProcess"])
PROGRAMS32 = {"exit7": EXIT32, "null_read": b"\x31\xc0\x8b\x00",  # xor eax, eax; mov eax, [eax]
              "stack_overflow": b"\xe8\xfb\xff\xff\xff"}  # call self, forever


def build32(code: bytes, imports: dict[str, list[str | int]] = IMPORTS32) -> bytes:
    """A valid PE32 i386 console program: .text (@code), .idata, .bss, .reloc (HIGHLOW at .text+4)."""
    idata = _idata32(imports)[0]
    out = bytearray(FILE_SIZE)
    out[0:2] = b"MZ"
    struct.pack_into("<I", out, 0x3C, PE_OFFSET)
    out[PE_OFFSET:PE_OFFSET + 4] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", out, PE_OFFSET + 4, 0x14C, 4, 0, 0, 0, 224, 0x0102)  # executable, 32-bit machine
    struct.pack_into("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII", out, OPT, 0x10B, 2, 40, 0x200, 0x400, 0x1000, TEXT, TEXT,
                     IDATA, IMAGE_BASE32, SECTION_ALIGN, FILE_ALIGN, 4, 0, 0, 0, 4, 0, 0, SIZE_OF_IMAGE, HEADERS, 0, 3,
                     0x0140, 0x200000, 0x1000, 0x100000, 0x1000, 0, 16)
    struct.pack_into("<II", out, directory32(1), IDATA, len(idata))
    struct.pack_into("<II", out, directory32(5), RELOC, 8 + 2 * RELOC32_ENTRIES)
    for i, (name, va, vsize, raw, ptr, chars) in enumerate((
            (b".text", TEXT, len(code), 0x200, TEXT_RAW, 0x60000020),
            (b".idata", IDATA, len(idata), 0x200, IDATA_RAW, 0xC0000040),
            (b".bss", BSS, 0x1000, 0, 0, 0xC0000080),
            (b".reloc", RELOC, 8 + 2 * RELOC32_ENTRIES, 0x200, RELOC_RAW, 0x42000040))):
        struct.pack_into("<8sIIIIIIHHI", out, SECTIONS32 + 40 * i, name, vsize, va, raw, ptr, 0, 0, 0, 0, chars)
    out[TEXT_RAW:TEXT_RAW + len(code)] = code
    out[IDATA_RAW:IDATA_RAW + len(idata)] = idata
    struct.pack_into("<IIHH", out, RELOC_RAW, TEXT, 8 + 2 * RELOC32_ENTRIES, 0x3000 | 4, 0)
    return bytes(out)


# name -> PE32 file breaking one rule of the 32-bit loader (and loaders/pe.py): exit 126, or 127 for the ordinal
HOSTILE32 = {
    "highlow_outside_image": lambda: patched(build32(EXIT32), (RELOC_RAW, "<I", 0x10000)),  # block's page: no image
    "highlow_straddles_image_end": lambda: patched(build32(EXIT32), (RELOC_RAW, "<I", SIZE_OF_IMAGE - 0x1000),
                                                   (RELOC_RAW + 8, "<H", 0x3000 | 0xFFE)),
    "dir64_in_pe32": lambda: patched(build32(EXIT32), (RELOC_RAW + 8, "<H", 0xA000 | 4)),
    "optional_header_truncated": lambda: patched(build32(EXIT32), (PE_OFFSET + 20, "<H", 200)),
    "file_ends_in_optional_header": lambda: build32(EXIT32)[:OPT + 60],
    "image_base_past_4gib": lambda: patched(build32(EXIT32), (OPT + 28, "<I", 0xFFFF0000), (OPT + 56, "<I", 0x20000)),
    "import_by_ordinal": lambda: build32(EXIT32, {"KERNEL32.dll": ["ExitProcess", 5]}),
}


def program(name: str) -> bytes:
    return build(PROGRAMS[name])


def hostile(name: str) -> bytes:
    base, fields = HOSTILE[name]
    return patched(program(base), *fields)


def all_cases() -> dict[str, bytes]:
    """Every crafted file by name: the programs, then the hostile variants."""
    return {**{name: program(name) for name in PROGRAMS}, **{name: hostile(name) for name in HOSTILE},
            **{f"pe32_{name}": build32(code) for name, code in PROGRAMS32.items()},
            **{f"pe32_{name}": make() for name, make in HOSTILE32.items()}}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/loaders/crafted_pe.py OUTDIR")
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    for case, data in all_cases().items():
        (folder / f"{case}.exe").write_bytes(data)
    print(f"wrote {len(all_cases())} files to {folder}")
