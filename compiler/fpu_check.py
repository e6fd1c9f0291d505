"""fpu "none": a model's graph is integer only, and its machine code names no FP/SIMD register.

A kernel runs such a model's stages without kernel_fpu_begin/end (kernel_neon_begin/end), so one x87,
MMX, SSE, AVX, FP, NEON or SVE instruction in it would corrupt the FP state of whichever task the
kernel interrupted. The target alone (compiler/targets.py, -sse...,+soft-float or -fp-armv8,-neon) makes
LLVM choose none; this module proves it on the object itself, by disassembling every code section:
at compile time (driver.build) and again in `cerebroc kmod build`, which refuses the .cbx otherwise. The
disassembly (`disassemble`, instructions with the relocations that patch them) is shared with
compiler/stack_check.py: `cerebroc kmod build` disassembles a model once for both checks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NamedTuple

from cerebro.compiler.ir import Graph, Node
from cerebro.elf import EM_AARCH64, EM_X86_64

# Operands or mnemonics that touch FP/SIMD state, per ELF machine (AT&T syntax on x86-64, as both objdumps
# print it). x86-64: x87 (st, every f* mnemonic), MMX (mm0-7), SSE/AVX/AVX-512 (xmm/ymm/zmm, k masks), the
# MXCSR and the state save/restore instructions. aarch64: the b/h/s/d/q/v views of the 32 FP/SIMD registers,
# SVE's z and p registers, and the FP control/status registers.
FP_PATTERNS: dict[int, re.Pattern[str]] = {
    EM_X86_64: re.compile(r"%(?:[xyz]mm\d+|mm[0-7]\b|st\b|k[0-7]\b|mxcsr)"
                          r"|^(?:f\w+|wait|emms|ldmxcsr|stmxcsr|vzero\w+|xsave\w*|xrstor\w*)\b"),
    EM_AARCH64: re.compile(r"\b(?:[bhsdqvz](?:[12]?\d|3[01])|p(?:1[0-5]|\d)|fpcr|fpsr)\b"),
}
# Disassemblers, first found wins: llvm-objdump reads every machine; binutils' objdump is per host.
DISASSEMBLERS: dict[int, tuple[str, ...]] = {
    EM_X86_64: ("llvm-objdump", "objdump", "x86_64-linux-gnu-objdump"),
    EM_AARCH64: ("llvm-objdump", "aarch64-linux-gnu-objdump"),
}
_INSTRUCTION = re.compile(r"^\s*[0-9a-f]+:\s+(\S.*)$")
# objdump -r's line after the instruction a relocation patches: "18c: R_X86_64_PLT32\tmemcpy-0x4"
_RELOCATION = re.compile(r"^\s*[0-9a-f]+:\s+R_[A-Z0-9_]+\s+(\S+)$")
_SYMBOL = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
# Branch targets ("b4 <f+0xb4>": a hex address could read as register b4) and comments name no register.
_NOISE = {EM_X86_64: re.compile(r"(?:\b(?:0x)?[0-9a-f]+\s*)?<[^>]*>|#.*$"),
          EM_AARCH64: re.compile(r"(?:\b(?:0x)?[0-9a-f]+\s*)?<[^>]*>|//.*$")}


class FpuCheckError(ValueError):
    """An fpu "none" model that is not integer only, or whose code uses an FP/SIMD register."""


class Instruction(NamedTuple):
    """One instruction of an objdump -d -r listing."""

    function: str
    offset: str  # hex, as objdump prints it
    text: str  # mnemonic and operands (and objdump's comment)
    relocation: str | None  # the symbol (with its addend, "memcpy-0x4") a relocation in it names


def check_integer_graph(graph: Graph) -> None:
    """Refuse (one line naming the op and its location) the first value of a float type in graph,
    loop bodies included: fpu "none" code has no FP registers to compute it in."""
    for value in graph.inputs:
        if value.dtype.is_float:
            raise FpuCheckError(f"input '{value.name}' is {value.dtype.name}: an fpu 'none' target "
                                "(x86_64-gpr, aarch64-gpr) compiles integer-only models")
    for node in graph.nodes:
        _check_node(node)


def _check_node(node: Node) -> None:
    for role, values in (("input", node.inputs), ("output", node.outputs)):
        for position, value in enumerate(values):
            if value.dtype.is_float:
                raise FpuCheckError(f"{node.where()}: {role} {position} is {value.dtype.name}; an fpu 'none' "
                                    "target (x86_64-gpr, aarch64-gpr) compiles integer-only models")
    for attr in node.attrs.values():
        if isinstance(attr, Graph):
            check_integer_graph(attr)


def fp_instructions(obj: bytes, machine: int) -> list[str]:
    """Every instruction of obj's code sections that touches FP/SIMD state, as 'function+offset: text'."""
    if machine not in FP_PATTERNS:
        raise FpuCheckError(f"fpu 'none' is checked for x86-64 and aarch64 code only, not ELF machine {machine}")
    return fp_instructions_in(disassemble(obj, machine, "prove fpu 'none'", FpuCheckError), machine)


def fp_instructions_in(listing: list[Instruction], machine: int) -> list[str]:
    """fp_instructions of an object already disassembled."""
    return [f"{i.function}+0x{i.offset}: {' '.join(i.text.split())}" for i in listing if touches_fp(i.text, machine)]


def instructions(text: str) -> list[Instruction]:
    """Every instruction in an objdump -d -r listing, each with the relocation that patches it (objdump prints
    it on the line after)."""
    found: list[Instruction] = []
    function = "?"
    for line in text.splitlines():
        symbol = _SYMBOL.match(line.strip())
        relocation = _RELOCATION.match(line)
        if symbol:
            function = symbol.group(1)
        elif relocation and found:
            found[-1] = found[-1]._replace(relocation=relocation.group(1))
        elif match := _INSTRUCTION.match(line):
            found.append(Instruction(function, line.split(":")[0].strip(), match.group(1), None))
    return found


def touches_fp(instruction: str, machine: int) -> bool:
    """Whether one disassembled instruction (mnemonic and operands) touches FP/SIMD state."""
    return bool(FP_PATTERNS[machine].search(" ".join(_NOISE[machine].sub("", instruction).split())))


def check_object(obj: bytes, machine: int, what: str) -> None:
    """Refuse obj (one line) if its code touches any FP/SIMD register."""
    check_listing(disassemble(obj, machine, "prove fpu 'none'", FpuCheckError), machine, what)


def check_listing(listing: list[Instruction], machine: int, what: str) -> None:
    """check_object of an object already disassembled."""
    found = fp_instructions_in(listing, machine)
    if found:
        raise FpuCheckError(f"{what}: fpu 'none' but the code uses FP/SIMD registers in {len(found)} "
                            f"instruction(s), first {found[0]}")


def disassemble(obj: bytes, machine: int, purpose: str, error: type[ValueError]) -> list[Instruction]:
    """The instructions of obj's code (objdump -d -r); `error` (one line saying what could not be done:
    purpose) without a disassembler for machine, or if it fails."""
    tool = next((found for name in DISASSEMBLERS[machine] if (found := shutil.which(name))), None)
    if tool is None:
        raise error(f"cannot {purpose} without a disassembler: install one of "
                    f"{', '.join(DISASSEMBLERS[machine])} (binutils or llvm)")
    with tempfile.TemporaryDirectory(prefix="cerebro-fpu-") as tmp:
        path = Path(tmp) / "code.o"
        path.write_bytes(obj)
        result = subprocess.run([tool, "-d", "-r", "--no-show-raw-insn", str(path)], capture_output=True, text=True)
    if result.returncode != 0 or "file format" not in result.stdout:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise error(f"cannot disassemble the code to {purpose}: {Path(tool).name}: {reason}")
    return instructions(result.stdout)
