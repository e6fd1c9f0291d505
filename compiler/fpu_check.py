"""fpu "none": a model's graph is integer only, and its machine code names no FP/SIMD register.

A kernel runs such a model's stages without kernel_fpu_begin/end (kernel_neon_begin/end), so one x87,
MMX, SSE, AVX, FP, NEON or SVE instruction in it would corrupt the FP state of whichever task the
kernel interrupted. The target alone (compiler/targets.py, -sse...,+soft-float or -fp-armv8,-neon) makes
LLVM choose none; this module proves it on the object itself, by disassembling every code section:
at compile time (driver.build) and again in `cerebroc kmod build`, which refuses the .cbx otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
_SYMBOL = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
# Branch targets ("b4 <f+0xb4>": a hex address could read as register b4) and comments name no register.
_NOISE = {EM_X86_64: re.compile(r"(?:\b(?:0x)?[0-9a-f]+\s*)?<[^>]*>|#.*$"),
          EM_AARCH64: re.compile(r"(?:\b(?:0x)?[0-9a-f]+\s*)?<[^>]*>|//.*$")}


class FpuCheckError(ValueError):
    """An fpu "none" model that is not integer only, or whose code uses an FP/SIMD register."""


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
    text = disassemble(obj, machine, "prove fpu 'none'", FpuCheckError)
    return [f"{function}+0x{offset}: {' '.join(instruction.split())}"
            for function, offset, instruction in instructions(text) if touches_fp(instruction, machine)]


def instructions(text: str) -> Iterator[tuple[str, str, str]]:
    """(function, hex offset, mnemonic and operands) of every instruction in an objdump -d listing."""
    function = "?"
    for line in text.splitlines():
        symbol = _SYMBOL.match(line.strip())
        if symbol:
            function = symbol.group(1)
            continue
        match = _INSTRUCTION.match(line)
        if match is not None:
            yield function, line.split(":")[0].strip(), match.group(1)


def touches_fp(instruction: str, machine: int) -> bool:
    """Whether one disassembled instruction (mnemonic and operands) touches FP/SIMD state."""
    return bool(FP_PATTERNS[machine].search(" ".join(_NOISE[machine].sub("", instruction).split())))


def check_object(obj: bytes, machine: int, what: str) -> None:
    """Refuse obj (one line) if its code touches any FP/SIMD register."""
    found = fp_instructions(obj, machine)
    if found:
        raise FpuCheckError(f"{what}: fpu 'none' but the code uses FP/SIMD registers in {len(found)} "
                            f"instruction(s), first {found[0]}")


def disassemble(obj: bytes, machine: int, purpose: str, error: type[ValueError]) -> str:
    """objdump -d of obj's code; `error` (one line saying what could not be done: purpose) without one."""
    tool = next((found for name in DISASSEMBLERS[machine] if (found := shutil.which(name))), None)
    if tool is None:
        raise error(f"cannot {purpose} without a disassembler: install one of "
                    f"{', '.join(DISASSEMBLERS[machine])} (binutils or llvm)")
    with tempfile.TemporaryDirectory(prefix="cerebro-fpu-") as tmp:
        path = Path(tmp) / "code.o"
        path.write_bytes(obj)
        result = subprocess.run([tool, "-d", "--no-show-raw-insn", str(path)], capture_output=True, text=True)
    if result.returncode != 0 or "file format" not in result.stdout:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise error(f"cannot disassemble the code to {purpose}: {Path(tool).name}: {reason}")
    return result.stdout
