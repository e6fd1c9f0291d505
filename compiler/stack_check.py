"""Every generated function's stack frame fits STACK_FRAME_BYTES, proven on the object itself.

cerebro.ko runs a model's stages on the calling task's 16 KiB kernel stack (vmap'd: one byte past it is a
guard-page fault, an oops). The emitters keep their stack arrays within codegen/llvm_types.py's budget
(stack_array); this module checks what LLVM made of them, spills and saved registers included, by adding up
each function's stack-pointer decrements in its disassembly: `cerebroc kmod build` refuses the .cbx
otherwise, naming the function and its frame.
"""

from __future__ import annotations

import re

from cerebro.compiler.codegen import llvm_types
from cerebro.compiler.fpu_check import disassemble, instructions
from cerebro.elf import EM_AARCH64, EM_X86_64

_IMM = r"\$?#?(-?(?:0x[0-9a-f]+|\d+))"
# (pattern, bytes of one match as a function of its immediate) per ELF machine; AT&T syntax (both objdumps) on
# x86-64. Return address and pushes, sub of sp, stack realignment (and with -align: up to align - 1 bytes);
# aarch64: sub into sp or into the register sp is realigned from (shifted by 12 with `lsl #12`), and stores
# that pre-decrement sp.
_X86 = [(re.compile(r"^push\w*\s"), lambda _: 8),
        (re.compile(rf"^sub\w*\s+{_IMM},\s*%rsp$"), lambda n: n),
        (re.compile(rf"^and\w*\s+{_IMM},\s*%rsp$"), lambda n: -_signed(n) - 1)]
_ARM = [(re.compile(rf"^sub\s+(?:sp|x\d+),\s*sp,\s*{_IMM}$"), lambda n: n),
        (re.compile(rf"^sub\s+(?:sp|x\d+),\s*sp,\s*{_IMM},\s*lsl\s*#12$"), lambda n: n << 12),
        (re.compile(rf"^and\s+sp,\s*x\d+,\s*{_IMM}$"), lambda n: -_signed(n) - 1),
        (re.compile(rf"^(?:stp|str)\s+.*\[sp,\s*{_IMM}\]!$"), lambda n: -n)]
FRAME_RULES = {EM_X86_64: _X86, EM_AARCH64: _ARM}
# sp moved by a register, other than restored from the frame pointer: a frame sized at run time (an alloca
# outside the entry block)
VARIABLE_FRAME = {EM_X86_64: re.compile(r"^(?:sub\w*\s+%\w+|mov\w*\s+%(?!rbp\b)\w+),\s*%rsp$"),
                  EM_AARCH64: re.compile(r"^(?:sub\s+sp,\s*sp,\s*[xw]\d+|mov\s+sp,\s*x(?!29\b)\d+$)")}
RETURN_ADDRESS = {EM_X86_64: 8, EM_AARCH64: 0}  # x86 call pushes it; aarch64's is in x30, saved by the stp


class StackCheckError(ValueError):
    """A generated function whose stack frame could overflow a kernel stack."""


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def frame_sizes(obj: bytes, machine: int) -> dict[str, int | None]:
    """Each function's stack frame in bytes (None: sized at run time), from obj's disassembly."""
    if machine not in FRAME_RULES:
        raise StackCheckError(f"stack frames are checked for x86-64 and aarch64 code only, not ELF machine {machine}")
    sizes: dict[str, int | None] = {}
    for function, _, instruction in instructions(disassemble(obj, machine, "check stack frames", StackCheckError)):
        text = " ".join(instruction.split("#" if machine == EM_X86_64 else "//")[0].split())
        size = sizes.setdefault(function, RETURN_ADDRESS[machine])
        if size is None or VARIABLE_FRAME[machine].match(text):
            sizes[function] = None
            continue
        for pattern, bytes_of in FRAME_RULES[machine]:
            match = pattern.match(text)
            if match:
                sizes[function] = size + bytes_of(int(match.group(1), 0) if match.groups() else 0)
                break
    return sizes


def check_frames(obj: bytes, machine: int, what: str, limit: int | None = None) -> None:
    """Refuse obj (one line naming the function and its frame) if a function's frame exceeds limit bytes
    (default STACK_FRAME_BYTES)."""
    limit = llvm_types.STACK_FRAME_BYTES if limit is None else limit
    for function, size in frame_sizes(obj, machine).items():
        if size is None:
            raise StackCheckError(f"{what}: function {function} sizes its stack frame at run time; generated "
                                  "code must not (it runs on 16 KiB kernel stacks in cerebro.ko)")
        if size > limit:
            raise StackCheckError(f"{what}: function {function} has a {size}-byte stack frame, over the "
                                  f"{limit}-byte budget of generated code (it runs on 16 KiB kernel stacks "
                                  "in cerebro.ko)")
