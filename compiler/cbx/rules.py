"""What a .cbx object may contain: the relocations and imports every host implements.

Mirrors runtime_kmod/arch/*.c (relocation types) and abi.h (imports); the writer refuses
anything else so that a file it produced always loads.
"""

from __future__ import annotations

from cerebro import elf as elfmod
from cerebro.compiler.cbx.format import EM_386, EM_AARCH64, EM_X86_64, MACHINES, CbxError

ENTRY_SYMBOL = "cerebro_entry"
_CONSTRUCTOR_SECTIONS = (elfmod.SHT_INIT_ARRAY, elfmod.SHT_FINI_ARRAY, 16)  # 16: SHT_PREINIT_ARRAY
_SHF_TLS = 0x400

RELOCATIONS: dict[int, dict[int, str]] = {
    EM_X86_64: {1: "R_X86_64_64", 2: "R_X86_64_PC32", 4: "R_X86_64_PLT32", 11: "R_X86_64_32S",
                24: "R_X86_64_PC64"},
    EM_AARCH64: {257: "R_AARCH64_ABS64", 258: "R_AARCH64_ABS32", 260: "R_AARCH64_PREL64", 261: "R_AARCH64_PREL32",
                 273: "R_AARCH64_LD_PREL_LO19", 274: "R_AARCH64_ADR_PREL_LO21", 275: "R_AARCH64_ADR_PREL_PG_HI21",
                 277: "R_AARCH64_ADD_ABS_LO12_NC", 278: "R_AARCH64_LDST8_ABS_LO12_NC", 279: "R_AARCH64_TSTBR14",
                 280: "R_AARCH64_CONDBR19", 282: "R_AARCH64_JUMP26", 283: "R_AARCH64_CALL26",
                 284: "R_AARCH64_LDST16_ABS_LO12_NC", 285: "R_AARCH64_LDST32_ABS_LO12_NC",
                 286: "R_AARCH64_LDST64_ABS_LO12_NC", 299: "R_AARCH64_LDST128_ABS_LO12_NC"},
    EM_386: {1: "R_386_32", 2: "R_386_PC32", 4: "R_386_PLT32"},
}

IMPORTS: dict[int, frozenset[str]] = {
    EM_X86_64: frozenset({"memcpy", "memmove", "memset", "__x86_return_thunk"}),
    EM_AARCH64: frozenset({"memcpy", "memmove", "memset"}),
    EM_386: frozenset({"memcpy", "memmove", "memset", "__x86_return_thunk",
                       "__udivdi3", "__umoddi3", "__divdi3", "__moddi3"}),  # libgcc's i64 division
}

# The ELF class and relocation section type of each machine's objects: i386 objects are ELF32 with
# SHT_REL (addends in place), as LLVM and every i386 toolchain write them.
ELF_FORMS: dict[int, tuple[int, int]] = {EM_X86_64: (64, elfmod.SHT_RELA), EM_AARCH64: (64, elfmod.SHT_RELA),
                                          EM_386: (32, elfmod.SHT_REL)}


def check_object(elf: elfmod.ElfFile, machine: int) -> None:
    """Raise CbxError naming the first thing in elf that a Cerebro host would refuse."""
    bits, relocs = ELF_FORMS.get(machine, (64, elfmod.SHT_RELA))
    if elf.bits != bits or elf.endian != "<":
        raise CbxError(f"not a {bits}-bit little-endian ELF object")
    if elf.type != elfmod.ET_REL:
        raise CbxError(f"not a relocatable object (ELF type {elf.type_name})")
    if elf.machine != machine:
        raise CbxError(f"wrong machine: object is {elf.machine_name}, meta says "
                       f"{MACHINES.get(machine, machine)}")
    for sec in elf.sections:
        if sec.type in (elfmod.SHT_REL, elfmod.SHT_RELA) and sec.type != relocs:
            kind, used = ("SHT_REL", "RELA") if sec.type == elfmod.SHT_REL else ("SHT_RELA", "REL")
            raise CbxError(f"unsupported {kind} section {sec.name} (only {used} is used)")
        if sec.type in _CONSTRUCTOR_SECTIONS or sec.name in (".ctors", ".dtors"):
            raise CbxError(f"constructor/destructor section {sec.name} is not supported (no host runs them)")
        if sec.flags & elfmod.SHF_ALLOC and sec.flags & _SHF_TLS:
            raise CbxError(f"thread-local section {sec.name} is not supported")
        if sec.type == relocs and not 0 < sec.info < len(elf.sections):
            raise CbxError(f"{sec.name} applies to unknown section index {sec.info}")
    _check_relocations(elf, machine)
    _check_symbols(elf, machine)


def _check_relocations(elf: elfmod.ElfFile, machine: int) -> None:
    allowed = RELOCATIONS[machine]
    for rel in elf.relocations:
        target = elf.sections[rel.section]
        if rel.type in allowed or not target.flags & elfmod.SHF_ALLOC:
            continue
        name = _symbol_name(elf, rel.symbol)
        raise CbxError(f"relocation type {rel.type} against '{name}' at {target.name}+{rel.offset:#x} is not "
                       f"supported by the runtime on {MACHINES[machine]} "
                       f"(supported: {', '.join(sorted(allowed.values()))})")


def _check_symbols(elf: elfmod.ElfFile, machine: int) -> None:
    entry = [s for s in elf.symbols if s.name == ENTRY_SYMBOL]
    if not entry:
        raise CbxError(f"the object defines no '{ENTRY_SYMBOL}'")
    sym = entry[0]
    if sym.shndx == elfmod.SHN_UNDEF or sym.bind != elfmod.STB_GLOBAL or sym.type != elfmod.STT_FUNC:
        raise CbxError(f"'{ENTRY_SYMBOL}' must be a defined global function")
    for index, sym in enumerate(elf.symbols):
        if sym.shndx == elfmod.SHN_COMMON:
            raise CbxError(f"common symbol '{sym.name}' is not supported")
        if index == 0 or sym.shndx != elfmod.SHN_UNDEF:
            continue
        if sym.name not in IMPORTS[machine]:
            raise CbxError(f"undefined symbol '{sym.name}' is not provided by the runtime "
                           f"(allowed imports: {', '.join(sorted(IMPORTS[machine]))})")


def _symbol_name(elf: elfmod.ElfFile, index: int) -> str:
    if index >= len(elf.symbols):
        return f"#{index}"
    sym = elf.symbols[index]
    if sym.type == elfmod.STT_SECTION and sym.shndx < len(elf.sections):
        return elf.sections[sym.shndx].name
    return sym.name
