"""Generated code's stack fits a kernel stack, proven on the object itself: each function's frame within
STACK_FRAME_BYTES, and the frames of every call chain together within STACK_CHAIN_BYTES.

cerebro.ko runs a model's stages on the calling task's 16 KiB kernel stack (vmap'd: one byte past it is a
guard-page fault, an oops). The emitters keep their stack arrays within codegen/llvm_types.py's budget
(stack_array); this module checks what LLVM made of them, spills and saved registers included, by adding up
each function's stack-pointer decrements in its disassembly. A stage calls helpers (cerebro_entry -> stage ->
loop body -> math helper, memcpy), whose frames add up: the call graph comes from the same disassembly (direct
calls and tail calls, by their printed target or the relocation that patches them), and its deepest chain must
fit STACK_CHAIN_BYTES. Recursion, a call or jump through a register or memory, and a call to a function
outside the object other than the runtime's imports cannot be bounded and are refused. `cerebroc kmod build`
refuses the .cbx otherwise, naming the function or the chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from cerebro.compiler.cbx.rules import IMPORTS
from cerebro.compiler.codegen import llvm_types
from cerebro.compiler.fpu_check import Instruction, disassemble
from cerebro.elf import EM_AARCH64, EM_X86_64

# All generated frames on one call chain: half the 16 KiB stack (x86-64 and arm64 THREAD_SIZE with 4 KiB
# pages). The other half is the kernel's: the syscall entry and its pt_regs, the ioctl path through
# cerebro.ko and model_glue.c (gcc's -Wframe-larger-than=2048 bounds each of those frames), and the
# exceptions taken on the task stack while the model runs (interrupts have stacks of their own).
STACK_CHAIN_BYTES = 8192
# The imports (compiler/cbx/rules.py: memcpy, memmove, memset, the return thunk) are the kernel's assembly
# leaf routines (arch/x86/lib/mem*_64.S, arch/arm64/lib/mem*.S), which push a few registers at most; a jump to
# the return thunk is a return.
IMPORT_FRAME_BYTES = 256
RETURNS = frozenset({"__x86_return_thunk"})

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
# Setting up the frame pointer, within the prologue (whose sp decrements stay for the whole function)
FRAME_POINTER = {EM_X86_64: re.compile(r"^mov\w*\s+%rsp,\s*%rbp$"), EM_AARCH64: re.compile(r"^mov\s+x29,\s*sp$")}
# x86-64 pushes a call's stack arguments just before it and drops them with `add $N, %rsp` right after: what
# was pushed since the last branch, after the prologue, that such an add releases is not frame (densenet's
# entry made 557 such pushes: counted as frame, 4.4 KiB). aarch64 stores them in its fixed frame.
RELEASE = {EM_X86_64: re.compile(rf"^add\w*\s+{_IMM},\s*%rsp$")}
COMMENT = {EM_X86_64: "#", EM_AARCH64: "//"}
# Branches that may leave the function (calls, jumps, conditional jumps: a tail call may be any of them), with
# their printed target, and branches through a register or memory, whose target cannot be bounded. A call to
# a place in the calling function is recursion (a jump there is a branch within it).
BRANCH = {EM_X86_64: re.compile(r"^(?:(?:notrack|bnd)\s+)?(?P<kind>call|j[a-z]+)\w*\s+(?P<target>[^*].*)$"),
          EM_AARCH64: re.compile(r"^(?P<kind>bl|b|b\.\w+|cbn?z|tbn?z)\s+(?P<target>.+)$")}
CALLS = frozenset({"call", "bl"})
INDIRECT = {EM_X86_64: re.compile(r"^(?:(?:notrack|bnd)\s+)?(?:call|j[a-z]+)\w*\s+\*"),
            EM_AARCH64: re.compile(r"^(?:blr\w*|br|bra[ab]\w*)\s")}
_ADDRESS = re.compile(r"^(?:0x)?([0-9a-f]+)\s*<")
_NAMED_TARGET = re.compile(r"<([^>+]+)(\+0x[0-9a-f]+)?>$")
_ADDEND = re.compile(r"[+-]0x[0-9a-f]+$")


class StackCheckError(ValueError):
    """Generated code whose stack could overflow a kernel stack."""


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _listing(obj: bytes, machine: int) -> list[Instruction]:
    if machine not in FRAME_RULES:
        raise StackCheckError(f"stack frames are checked for x86-64 and aarch64 code only, not ELF machine {machine}")
    return disassemble(obj, machine, "check stack frames", StackCheckError)


def _code(instruction: Instruction, machine: int) -> str:
    """The instruction's mnemonic and operands, without objdump's comment, single-spaced."""
    return " ".join(instruction.text.split(COMMENT[machine])[0].split())


def frame_sizes(obj: bytes, machine: int) -> dict[str, int | None]:
    """Each function's stack frame in bytes (None: sized at run time), from obj's disassembly."""
    return frame_sizes_in(_listing(obj, machine), machine)


def frame_sizes_in(listing: list[Instruction], machine: int) -> dict[str, int | None]:
    """frame_sizes of an object already disassembled."""
    code: dict[str, dict[int, str]] = {}
    for instruction in listing:
        code.setdefault(instruction.function, {})[int(instruction.offset, 16)] = _code(instruction, machine)
    frames: dict[str, _Frame] = {}
    for instruction in listing:
        frame = frames.setdefault(instruction.function, _Frame(RETURN_ADDRESS[machine]))
        if frame.fixed is not None:
            frame.step(_code(instruction, machine), machine, code[instruction.function])
    return {function: frame.size() for function, frame in frames.items()}


class _Frame:
    """One function's frame read along its listing: every sp decrement is frame, except a call's arguments
    that the `add` right after it (or at the target of the jump right after it: LLVM merges those) releases
    (RELEASE). A call's arguments are pushed in straight-line code (no branch between them and the call), so
    at most one call's are on the stack at any time: the frame is the rest plus the largest of those."""

    def __init__(self, return_address: int) -> None:
        self.fixed: int | None = return_address  # None: sized at run time
        self.arguments = 0  # the most bytes one call's arguments took
        self.prologue = True
        self.pushed = 0  # decrements since the last branch, after the prologue
        self.releasable = 0  # what the call just before took as its arguments

    def size(self) -> int | None:
        return None if self.fixed is None else self.fixed + self.arguments

    def step(self, text: str, machine: int, code: Mapping[int, str]) -> None:
        """Reads one instruction; code: the function's instructions by address."""
        releasable, self.releasable = self.releasable, 0
        if VARIABLE_FRAME[machine].match(text):
            self.fixed = None
            return
        taken = _decrement(text, machine)
        if taken is not None:
            self.fixed += taken
            self.pushed += 0 if self.prologue else taken
            return
        if self.prologue and FRAME_POINTER[machine].match(text):
            return
        self.prologue = False
        branch = BRANCH[machine].match(text)
        if releasable and branch and branch.group("kind") == "jmp" and (at := _ADDRESS.match(branch.group("target"))):
            text = code.get(int(at.group(1), 16), "")
        release = RELEASE[machine].match(text) if machine in RELEASE else None
        if release and releasable:
            released = min(int(release.group(1), 0), releasable)
            self.fixed -= released
            self.arguments = max(self.arguments, released)
        elif branch or text.startswith("ret"):
            self.releasable = self.pushed if branch and branch.group("kind") in CALLS else 0
            self.pushed = 0


def _decrement(text: str, machine: int) -> int | None:
    """The bytes an instruction moves sp down by (FRAME_RULES), or None."""
    for pattern, bytes_of in FRAME_RULES[machine]:
        match = pattern.match(text)
        if match:
            return bytes_of(int(match.group(1), 0) if match.groups() else 0)
    return None


def calls_in(listing: list[Instruction], machine: int, what: str) -> dict[str, set[str]]:
    """The functions (and imports) each function calls or tail-calls; StackCheckError (one line) for a branch
    whose target cannot be bounded."""
    functions = {instruction.function for instruction in listing}
    calls: dict[str, set[str]] = {function: set() for function in functions}
    for instruction in listing:
        text = _code(instruction, machine)
        where = f"{what}: function {instruction.function}"
        if INDIRECT[machine].match(text):
            raise StackCheckError(f"{where} branches through a register or memory ('{text}'), whose stack use "
                                  "cannot be bounded; generated code must not (it runs on 16 KiB kernel stacks)")
        branch = BRANCH[machine].match(text)
        if branch is None:
            continue
        if instruction.relocation is not None:  # the printed target is a placeholder: the relocation names it
            target = _ADDEND.sub("", instruction.relocation)
        elif named := _NAMED_TARGET.search(branch.group("target")):
            target = named.group(1)
            if target == instruction.function and named.group(2) and branch.group("kind") not in CALLS:
                continue  # a branch within the function
        else:
            raise StackCheckError(f"{where} branches to '{branch.group('target')}', which names no function")
        if target in RETURNS:
            continue
        if target not in functions and target not in IMPORTS[machine]:
            raise StackCheckError(f"{where} calls {target}, whose stack use cannot be bounded (neither in the "
                                  "object nor one of the runtime's imports)")
        calls[instruction.function].add(target)
    return calls


def deepest_chain(frames: dict[str, int], calls: dict[str, set[str]], what: str) -> tuple[int, list[str]]:
    """The call chain whose frames (an import's: IMPORT_FRAME_BYTES) add up to the most bytes, and that sum,
    from any function; StackCheckError (one line naming the cycle) where functions recurse."""
    deepest: dict[str, tuple[int, list[str]]] = {}

    def visit(function: str, path: list[str]) -> tuple[int, list[str]]:
        if function in path:
            cycle = " -> ".join(path[path.index(function):] + [function])
            raise StackCheckError(f"{what}: functions recurse ({cycle}): the stack depth cannot be bounded; "
                                  "generated code must not (it runs on 16 KiB kernel stacks in cerebro.ko)")
        if function not in deepest:
            below = [visit(callee, path + [function]) for callee in sorted(calls.get(function, ()))]
            size, chain = max(below, default=(0, []))
            deepest[function] = (frames.get(function, IMPORT_FRAME_BYTES) + size, [function, *chain])
        return deepest[function]

    return max((visit(function, []) for function in sorted(calls)), default=(0, []))


def check_frames(obj: bytes, machine: int, what: str) -> tuple[int, list[str]]:
    """Refuse obj (one line naming the function or the chain) if a function's frame exceeds
    llvm_types.STACK_FRAME_BYTES or is sized at run time, or a call chain's frames exceed STACK_CHAIN_BYTES;
    else its deepest chain: the sum of the frames in bytes and the functions, outermost first."""
    return check_listing(_listing(obj, machine), machine, what)


def check_listing(listing: list[Instruction], machine: int, what: str) -> tuple[int, list[str]]:
    """check_frames of an object already disassembled (fpu_check.disassemble)."""
    limit = llvm_types.STACK_FRAME_BYTES
    frames: dict[str, int] = {}
    for function, size in frame_sizes_in(listing, machine).items():
        if size is None:
            raise StackCheckError(f"{what}: function {function} sizes its stack frame at run time; generated "
                                  "code must not (it runs on 16 KiB kernel stacks in cerebro.ko)")
        if size > limit:
            raise StackCheckError(f"{what}: function {function} has a {size}-byte stack frame, over the "
                                  f"{limit}-byte budget of generated code (it runs on 16 KiB kernel stacks "
                                  "in cerebro.ko)")
        frames[function] = size
    total, chain = deepest_chain(frames, calls_in(listing, machine, what), what)
    if total > STACK_CHAIN_BYTES:
        raise StackCheckError(f"{what}: call chain {' -> '.join(chain)} uses {total} bytes of stack, over the "
                              f"{STACK_CHAIN_BYTES}-byte budget of generated code on one chain (it runs on 16 KiB "
                              "kernel stacks in cerebro.ko)")
    return total, chain
