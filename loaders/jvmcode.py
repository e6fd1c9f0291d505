"""JVM bytecode decoded once per method, and checked before it runs: every instruction whole
inside the code, every jump and handler on an instruction start, every pool index of the right
kind, every local inside max_locals, and the operand stack's depth (in words, long/double two)
the same on every path to an instruction, never below zero nor above max_stack (the depth
dataflow d8 does before giving stack slots registers). jsr/ret (never emitted for class files
of version 51+) are refused. Decoded instructions carry their handler (jvmops.OPS)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cerebro.binread import FormatError
from cerebro.loaders.classfile import JvmCode, arg_words, parse_method_descriptor
from cerebro.loaders.jvmops import OPS, RETURNS, SIMPLE_EFFECTS, WIDE_TYPES

ARRAY_TYPES = {4: "[Z", 5: "[C", 6: "[F", 7: "[D", 8: "[B", 9: "[S", 10: "[I", 11: "[J"}
BRANCHES = set(range(0x99, 0xA8)) | {0xC6, 0xC7}
LOADS, STORES = range(0x15, 0x1A), range(0x36, 0x3B)  # iload..aload, istore..astore with an index
INVOKE_KINDS = {0xB6: "virtual", 0xB7: "direct", 0xB8: "static", 0xB9: "interface"}
UNCONDITIONAL = {0xA7, 0xC8, 0xAA, 0xAB, 0xBF} | set(RETURNS)
MAX_SWITCH = 1 << 16  # entries of one tableswitch/lookupswitch (javac emits far fewer)


@dataclass
class Insn:
    op: int
    pc: int
    next: int
    run: object  # the handler: (vm, frame, insn, _) -> None
    pops: int  # operand stack words taken and pushed
    pushes: int
    a: object = None  # operands, per opcode (jvmops documents each)
    b: object = None
    targets: list[int] = field(default_factory=list)  # jumps other than falling through


class _Bytes:
    def __init__(self, code: bytes, where: str):
        self.code, self.where = code, where
        self.pc = 0  # the instruction being read

    def u(self, p: int, n: int) -> int:
        if p + n > len(self.code):
            raise FormatError(f"{self.where}: instruction at {self.pc} is truncated by the end of the code")
        return int.from_bytes(self.code[p:p + n], "big")

    def s(self, p: int, n: int) -> int:
        v = self.u(p, n)
        return v - (1 << (8 * n)) if v >> (8 * n - 1) else v


def decode(code: JvmCode, method_name: str) -> list:
    """code.insns: an Insn at each instruction's offset, None elsewhere; raises FormatError."""
    where = f"{code.pool.what} {method_name}"
    b = _Bytes(code.code, where)
    insns: list = [None] * len(code.code)
    pc = 0
    while pc < len(code.code):
        b.pc = pc
        insns[pc] = ins = _decode_one(b, pc, code)
        pc = ins.next
    _check_targets(insns, code, where)
    _check_depths(insns, code, where)
    return insns


def _local(code: JvmCode, where: str, pc: int, index: int, wide: bool) -> int:
    if index + (2 if wide else 1) > code.max_locals:
        raise FormatError(f"{where}: instruction at {pc} uses local {index}, past max_locals {code.max_locals}")
    return index


def _decode_one(b: _Bytes, pc: int, code: JvmCode) -> Insn:
    op = b.u(pc, 1)
    if op not in OPS:
        raise FormatError(f"{b.where}: opcode {op:#04x} at {pc} is not supported" + (
            " (jsr/ret subroutines)" if op in (0xA8, 0xA9, 0xC9) else ""))
    pool, where = code.pool, b.where
    ins = Insn(op, pc, pc + 1, OPS[op], *SIMPLE_EFFECTS.get(op, (0, 0)))
    if op == 0xC4:  # wide: a load/store/iinc with a 16-bit index
        inner = b.u(pc + 1, 1)
        if inner not in LOADS and inner not in STORES and inner != 0x84:
            raise FormatError(f"{where}: wide {inner:#04x} at {pc} is not a load, store or iinc")
        ins = Insn(inner, pc, pc + 4, OPS[inner], *SIMPLE_EFFECTS.get(inner, (0, 0)))
        ins.a = _local(code, where, pc, b.u(pc + 2, 2), inner in WIDE_TYPES)
        if inner == 0x84:
            ins.b, ins.next = b.s(pc + 4, 2), pc + 6
        return ins
    if op in LOADS or op in STORES:
        ins.a, ins.next = _local(code, where, pc, b.u(pc + 1, 1), op in WIDE_TYPES), pc + 2
    elif 0x1A <= op <= 0x2D or 0x3B <= op <= 0x4E:  # xload_n / xstore_n
        ins.a = _local(code, where, pc, (op - (0x1A if op <= 0x2D else 0x3B)) % 4, op in WIDE_TYPES)
    elif op == 0x84:
        ins.a, ins.b, ins.next = _local(code, where, pc, b.u(pc + 1, 1), False), b.s(pc + 2, 1), pc + 3
    elif op in (0x10, 0x11):
        ins.a, ins.next = b.s(pc + 1, op - 0x0F), pc + op - 0x0E
    elif op in (0x12, 0x13, 0x14):
        size = 1 if op == 0x12 else 2
        ins.a, ins.next = pool.loadable(b.u(pc + 1, size), op == 0x14), pc + 1 + size
    elif op in BRANCHES or op in (0xC8,):
        n = 4 if op == 0xC8 else 2
        ins.a, ins.next = pc + b.s(pc + 1, n), pc + 1 + n
        ins.targets = [ins.a]
    elif op in (0xAA, 0xAB):
        _switch(b, pc, ins)
    elif 0xB2 <= op <= 0xB5:
        ins.a, ins.next = pool.field(b.u(pc + 1, 2)), pc + 3
        words = 2 if ins.a.type in ("J", "D") else 1
        ins.pops, ins.pushes = {0xB2: (0, words), 0xB3: (words, 0), 0xB4: (1, words), 0xB5: (1 + words, 0)}[op]
    elif op in INVOKE_KINDS:
        ins.a = ref = pool.method(b.u(pc + 1, 2))
        ins.b = INVOKE_KINDS[op]
        ins.pops = arg_words(ref.params) + (op != 0xB8)
        ins.pushes = 0 if ref.ret == "V" else 2 if ref.ret in ("J", "D") else 1
        ins.next = pc + (5 if op == 0xB9 else 3)
        if ref.name.startswith("<") and (op != 0xB7 or ref.name != "<init>"):
            raise FormatError(f"{where}: {ref.name} called by opcode {op:#04x} at {pc}")
    elif op == 0xBA:
        ins.a = pool.invoke_dynamic(b.u(pc + 1, 2))
        params, ret = parse_method_descriptor(ins.a[2], where)
        ins.pops, ins.pushes = arg_words(params), 0 if ret == "V" else 2 if ret in ("J", "D") else 1
        ins.b, ins.next = (params, ret), pc + 5
    elif op in (0xBB, 0xBD, 0xC0, 0xC1):
        ins.a, ins.next = pool.class_name(b.u(pc + 1, 2)), pc + 3
        if op == 0xBD:
            ins.a = "[" + ins.a
    elif op == 0xBC:
        kind = b.u(pc + 1, 1)
        if kind not in ARRAY_TYPES:
            raise FormatError(f"{where}: newarray of unknown type {kind} at {pc}")
        ins.a, ins.next = ARRAY_TYPES[kind], pc + 2
    elif op == 0xC5:
        ins.a, ins.b, ins.next = pool.class_name(b.u(pc + 1, 2)), b.u(pc + 3, 1), pc + 4
        if not 1 <= ins.b <= len(ins.a) - len(ins.a.lstrip("[")):
            raise FormatError(f"{where}: multianewarray of {ins.b} dimensions for {ins.a} at {pc}")
        ins.pops = ins.b
    return ins


def _switch(b: _Bytes, pc: int, ins: Insn) -> None:
    p = (pc + 4) & ~3  # 0-3 bytes of padding after the opcode
    default = pc + b.s(p, 4)
    table: dict[int, int] = {}
    if ins.op == 0xAA:
        low, high = b.s(p + 4, 4), b.s(p + 8, 4)
        if not 0 <= high - low < MAX_SWITCH:
            raise FormatError(f"{b.where}: tableswitch at {pc} has range {low}..{high}")
        for k in range(high - low + 1):
            table[low + k] = pc + b.s(p + 12 + 4 * k, 4)
        ins.next = p + 12 + 4 * (high - low + 1)
    else:
        n = b.s(p + 4, 4)
        if not 0 <= n < MAX_SWITCH:
            raise FormatError(f"{b.where}: lookupswitch at {pc} has {n} entries")
        for k in range(n):
            table[b.s(p + 8 + 8 * k, 4)] = pc + b.s(p + 12 + 8 * k, 4)
        ins.next = p + 8 + 8 * n
    b.u(ins.next - 1, 1)  # the whole table lies inside the code
    ins.a, ins.b = table, default
    ins.targets = [default, *table.values()]


def _check_targets(insns: list, code: JvmCode, where: str) -> None:
    def valid(t: int) -> bool:
        return 0 <= t < len(insns) and insns[t] is not None
    for ins in insns:
        if ins is not None:
            for t in ins.targets:
                if not valid(t):
                    raise FormatError(f"{where}: jump from {ins.pc} to {t}, which is not an instruction")
    for start, end, handler, _cls in code.exceptions:
        if not valid(start) or not valid(handler) or (end < len(insns) and not valid(end)):
            raise FormatError(f"{where}: exception handler {start}-{end} -> {handler} is not on instructions")


def _check_depths(insns: list, code: JvmCode, where: str) -> None:
    depth: dict[int, int] = {0: 0}
    for _s, _e, handler, _c in code.exceptions:
        depth[handler] = 1
    pending = list(depth)
    while pending:
        pc = pending.pop()
        ins = insns[pc]
        after = depth[pc] - ins.pops
        if after < 0:
            raise FormatError(f"{where}: operand stack underflow at {pc} (opcode {ins.op:#04x})")
        after += ins.pushes
        if after > code.max_stack:
            raise FormatError(f"{where}: operand stack overflow at {pc}: {after} words, max_stack {code.max_stack}")
        successors = list(ins.targets)
        if ins.op not in UNCONDITIONAL:
            if ins.next >= len(insns):
                raise FormatError(f"{where}: execution falls off the end of the code after {pc}")
            successors.append(ins.next)
        for t in successors:
            if t not in depth:
                depth[t] = after
                pending.append(t)
            elif depth[t] != after:
                raise FormatError(f"{where}: operand stack depth at {t} is {depth[t]} on one path, {after} on another")
