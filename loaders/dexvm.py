"""A small Dalvik interpreter: runs `public static void main(String[])` from a dex.

Supported (anything else stops with an error naming the opcode and method):
  constants (const*, const-string, const-class), moves and move-result*, return*,
  int/long/float/double arithmetic (binop, binop/2addr, binop/lit8, lit16), conversions,
  neg/not, cmp*, goto*, if-*, packed/sparse-switch, arrays (new-array, filled-new-array,
  fill-array-data, aget*/aput*, array-length), objects of dex classes (new-instance, iget*/
  iput*, sget*/sput*, <clinit>), check-cast/instance-of, invoke-static/direct/virtual/super/
  interface (and /range) within the dex or into the library (dexnative.py: dexlib_lang.py,
  dexlib_util.py), try/catch (typed handlers matched up the class hierarchy, catch-all,
  move-exception) for exceptions thrown by the program, the library and the VM. An uncaught
  exception ends the program with status 1 and the JVM's stack trace (dexexc.py).
Registers hold 32-bit values as signed ints (float bits reinterpreted on use), wide values
as signed 64-bit ints in the low register, references as Python objects (dexvalues.py).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cerebro.binread import FormatError
from cerebro.loaders.dex import ClassDef, DexFile, FieldRef, Method, MethodRef, class_descriptor
from cerebro.loaders.dexexc import (
    JAVA_PARENTS,
    MESSAGE,
    OBJECT,
    THROWABLE,
    TRACE,
    JavaThrow,
    JObject,
    is_throwable,
    stack_trace,
)
from cerebro.loaders.dexheap import MAX_HEAP, Heap, HeapExhausted
from cerebro.loaders.dexlib_io import InputStream
from cerebro.loaders.dexlib_lang import ExitProgram, JBox, JClass, PrintStream, StringPlaceholder
from cerebro.loaders.dexlib_threads import Scheduler
from cerebro.loaders.dexnative import NATIVE_CLASSES, STATIC_FIELDS, NativeDispatch
from cerebro.loaders.dexvalues import JArray, bits32, bits64, f32, f64, i32, i64, is_null

MAX_STEPS = 20_000_000
MAX_DEPTH = 512
MAX_ARRAY = 1 << 24
OBJECT_BYTES = 256  # what the heap is told an object costs (a Python object and its field dict)
THREAD = "Ljava/lang/Thread;"
MAX_HIERARCHY = 1000  # superclass chain length: a hostile dex may make it a cycle


class BudgetExhausted(FormatError):
    """The program ran out of instructions: ends the run as it is, never wrapped as malformed code."""


def _div(a: int, b: int, wrap: Callable[[int], int]) -> int:
    if b == 0:
        raise JavaThrow("java.lang.ArithmeticException", "/ by zero")
    q = abs(a) // abs(b)
    return wrap(q if (a >= 0) == (b >= 0) else -q)


def _rem(a: int, b: int, wrap: Callable[[int], int]) -> int:
    if b == 0:
        raise JavaThrow("java.lang.ArithmeticException", "/ by zero")
    return wrap(a - _div(a, b, wrap) * b)


INT_OPS: dict[str, Callable[[int, int], int]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: _div(a, b, i32), "rem": lambda a, b: _rem(a, b, i32), "and": lambda a, b: a & b,
    "or": lambda a, b: a | b, "xor": lambda a, b: a ^ b, "shl": lambda a, b: a << (b & 31),
    "shr": lambda a, b: a >> (b & 31), "ushr": lambda a, b: (a & 0xFFFFFFFF) >> (b & 31),
    "rsub": lambda a, b: b - a}
LONG_OPS: dict[str, Callable[[int, int], int]] = {
    **INT_OPS, "div": lambda a, b: _div(a, b, i64), "rem": lambda a, b: _rem(a, b, i64),
    "shl": lambda a, b: a << (b & 63), "shr": lambda a, b: a >> (b & 63),
    "ushr": lambda a, b: (a & 0xFFFFFFFFFFFFFFFF) >> (b & 63)}
FLOAT_OPS: dict[str, Callable[[float, float], float]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: float(np.float64(a) / np.float64(b)), "rem": lambda a, b: float(np.fmod(a, b))}
BINOP_NAMES = ["add", "sub", "mul", "div", "rem", "and", "or", "xor", "shl", "shr", "ushr"]
FLOAT_NAMES = ["add", "sub", "mul", "div", "rem"]
# (kind, op name) per opcode for 0x90-0xcf: int, long, float, double blocks; /2addr repeats them.
BINOPS: dict[int, tuple[str, str]] = {}
for _base, _kind, _names in ((0x90, "I", BINOP_NAMES), (0x9B, "J", BINOP_NAMES), (0xA6, "F", FLOAT_NAMES),
                             (0xAB, "D", FLOAT_NAMES)):
    for _i, _n in enumerate(_names):
        BINOPS[_base + _i] = (_kind, _n)
        BINOPS[_base + _i + 0x20] = (_kind, _n)
LIT_NAMES = ["add", "rsub", "mul", "div", "rem", "and", "or", "xor", "shl", "shr", "ushr"]
CONVERSIONS: dict[int, Callable] = {  # 0x7b-0x8f: unary ops on (wide?) registers
    0x7B: lambda v: i32(-v), 0x7C: lambda v: i32(~v), 0x7D: lambda v: i64(-v), 0x7E: lambda v: i64(~v),
    0x7F: lambda v: bits32(-f32(v)), 0x80: lambda v: bits64(-f64(v)), 0x81: lambda v: v, 0x82: lambda v: bits32(v),
    0x83: lambda v: bits64(float(v)), 0x84: lambda v: i32(v), 0x85: lambda v: bits32(float(v)),
    0x86: lambda v: bits64(float(v)), 0x87: lambda v: _f2i(f32(v), 32), 0x88: lambda v: _f2i(f32(v), 64),
    0x89: lambda v: bits64(f32(v)), 0x8A: lambda v: _f2i(f64(v), 32), 0x8B: lambda v: _f2i(f64(v), 64),
    0x8C: lambda v: bits32(f64(v)), 0x8D: lambda v: i32((v & 0xFF) - ((v & 0x80) << 1)),
    0x8E: lambda v: v & 0xFFFF, 0x8F: lambda v: i32((v & 0xFFFF) - ((v & 0x8000) << 1))}


def _f2i(x: float, bits: int) -> int:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if x != x:
        return 0
    if x >= hi:
        return hi
    if x <= lo:
        return lo
    return int(x)


@dataclass
class Frame:
    method: Method
    regs: list
    pc: int = 0
    result: object = None
    exception: JObject | None = None  # the caught exception, for move-exception


class DexVM(NativeDispatch):
    KIND = "dex"  # what error messages call the code and its container

    def __init__(self, dexes: list[DexFile], stdout=None, stderr=None, max_steps: int = MAX_STEPS,
                 max_heap: int = MAX_HEAP, stdin=None):
        self.classes: dict[str, tuple[DexFile, ClassDef]] = {}
        for d in dexes:
            for c in d.classes:
                self.classes.setdefault(c.name, (d, c))
        self.out = PrintStream(stdout or sys.stdout)
        self.err = PrintStream(stderr or sys.stderr)
        self.stdin = InputStream(stdin or sys.stdin)
        self.statics: dict[tuple[str, str], object] = {}
        self.initialised: set[str] = set()
        self.steps_left = max_steps
        self.depth = 0
        self.heap = Heap(max_heap)
        self.hierarchy: dict[str, tuple[str, ...]] = {}  # class -> ancestors, walked once per class
        self.resolved: dict[tuple, Method | None] = {}  # (class, name, params, ret) -> method found
        self.stack: list[Method] = []  # the Java methods running, outermost first (for stack traces)
        self.scheduler = Scheduler(self, JObject(THREAD, {"<name>": "main"}))

    # ---- class, method and field resolution ----
    def ensure_init(self, cls: str) -> None:
        if cls in self.initialised or cls not in self.classes:
            return
        self.initialised.add(cls)
        _d, c = self.classes[cls]
        for f in c.static_fields:
            self.statics[(cls, f.name)] = None if f.type[:1] in ("L", "[") else 0
        clinit = next((m for m in c.direct_methods if m.ref.name == "<clinit>"), None)
        if clinit is not None:
            self.invoke(clinit, [])

    def find_method(self, ref: MethodRef, virtual_on: str | None = None) -> Method | None:
        key = (virtual_on or ref.class_name, ref.name, ref.params, ref.ret)
        if key not in self.resolved:
            self.resolved[key] = self._search_method(ref, key[0])
        return self.resolved[key]

    def _search_method(self, ref: MethodRef, start: str) -> Method | None:
        for cls in self.ancestors(start):
            if cls not in self.classes:
                return None
            for m in self.classes[cls][1].direct_methods + self.classes[cls][1].virtual_methods:
                if m.ref.name == ref.name and m.ref.params == ref.params and m.ref.ret == ref.ret:
                    return m
        return None

    def ancestors(self, cls: str) -> tuple[str, ...]:
        """cls and its superclasses: the dex's classes, then java.lang's exception hierarchy."""
        if cls not in self.hierarchy:
            self.hierarchy[cls] = self._walk_superclasses(cls)
        return self.hierarchy[cls]

    def _walk_superclasses(self, cls: str | None) -> tuple[str, ...]:
        out: list[str] = []
        while cls is not None:
            out.append(cls)
            if len(out) > MAX_HIERARCHY:
                raise FormatError(f"dex: class {out[0]} has over {MAX_HIERARCHY} superclasses (a cycle?)")
            if cls in self.classes:
                cls = self.classes[cls][1].superclass
            elif cls in JAVA_PARENTS:
                cls = JAVA_PARENTS[cls]
            elif is_throwable(cls):
                cls = "Ljava/lang/Error;" if cls.endswith("Error;") else "Ljava/lang/Exception;"
            else:
                cls = None if cls == OBJECT else OBJECT
        return tuple(out)

    def call(self, ref: MethodRef, args: list, kind: str) -> object:
        target = None
        if kind in ("virtual", "interface") and args and isinstance(args[0], JObject):
            target = self.find_method(ref, args[0].cls)
        elif kind == "super":
            sup = self.classes.get(ref.class_name, (None, None))[1]
            target = self.find_method(ref, sup.superclass if sup else None) if sup else None
        else:
            if kind == "static":
                self.ensure_init(ref.class_name)
            target = self.find_method(ref)
        if target is not None:
            return self.invoke(target, args)
        if kind in ("virtual", "interface", "direct", "super") and args and is_null(args[0]) \
                and not isinstance(args[0], JBox):
            raise JavaThrow("java.lang.NullPointerException", f"calling {ref.name} on null")
        native = self.native_for(ref, args, kind)
        if native is None:
            raise FormatError(f"{self.KIND}: method {ref} is not in the {self.KIND} and not supported by the "
                              "interpreter")
        result = native(self, *args)
        if type(result) is list and ref.ret[0] == "[":  # an array the library made: typed as declared
            return JArray(result, ref.ret)
        return result

    # ---- execution ----
    def invoke(self, method: Method, args: list) -> object:
        if method.code is None:
            raise FormatError(f"dex: method {method.ref} has no code (abstract or native)")
        code = method.code
        if self.depth >= MAX_DEPTH:
            raise JavaThrow("java.lang.StackOverflowError", f"call depth over {MAX_DEPTH}")
        self.allocate(8 * code.registers + 64)
        self.depth += 1
        self.stack.append(method)
        regs: list = [0] * code.registers
        slot = code.registers - code.ins
        kinds = ([] if method.is_static else ["L"]) + [p[0] for p in method.ref.params]
        if sum(2 if k in "JD" else 1 for k in kinds) != code.ins or len(args) != len(kinds):
            raise FormatError(f"dex: {method.ref} declares {code.ins} argument registers, its signature needs "
                              f"{sum(2 if k in 'JD' else 1 for k in kinds)}")
        for kind, value in zip(kinds, args, strict=False):
            regs[slot] = value
            slot += 2 if kind in "JD" else 1
        try:
            return self.execute(Frame(method, regs))
        finally:
            self.depth -= 1
            self.stack.pop()

    def execute(self, f: Frame) -> object:
        insns = f.method.code.insns
        n = len(insns)
        while True:
            if not 0 <= f.pc < n:
                raise FormatError(f"dex: {f.method.ref} ran off its code at {f.pc}")
            self.steps_left -= 1
            if self.steps_left < 0:
                raise FormatError("dex: instruction budget exhausted (infinite loop?)")
            unit = insns[f.pc]
            op = unit & 0xFF
            handler = OPS.get(op)
            if handler is None:
                raise FormatError(f"dex: opcode {op:#04x} at {f.method.ref}+{f.pc} is not supported by the interpreter")
            try:
                done, value = self.step(handler, f, insns, unit >> 8)
            except JavaThrow as e:
                if TRACE not in e.exception.fields:  # one the VM or the library raised: made here
                    e.exception.fields[TRACE] = self.trace()
                target = self.catch(f, e)
                if target is None:
                    raise  # (not `raise e` in catch(): a frame holding e would keep the heap alive in a cycle)
                f.pc = target
                continue
            if done:
                return value

    def step(self, handler: Callable, f: Frame, insns: list[int], aa: int) -> tuple[bool, object]:
        """One instruction; Python's errors from malformed code become FormatError, lack of memory
        becomes Java's OutOfMemoryError."""
        try:
            if not self.steps_left & 0xFFFF:
                self.heap.check()
            return handler(self, f, insns, aa)
        except (HeapExhausted, MemoryError) as e:
            raise JavaThrow("java.lang.OutOfMemoryError", str(e) or "Java heap space") from None
        except BudgetExhausted:
            raise
        except (IndexError, TypeError, KeyError, AttributeError, ValueError, OverflowError, ZeroDivisionError,
                struct.error) as e:
            raise FormatError(f"dex: malformed or unsupported code at {f.method.ref}+{f.pc} "
                              f"({type(e).__name__}: {e})") from None

    def catch(self, f: Frame, e: JavaThrow) -> int | None:
        """The address of the first handler covering f.pc that takes e's class (None: no handler)."""
        classes = self.ancestors(e.exception.cls)
        for cls, address in f.method.code.handlers_at(f.pc):
            if cls is None or cls in classes:
                f.exception = e.exception
                return address
        return None

    def trace(self) -> tuple[tuple[str, str], ...]:
        """(class, method) of each running Java method, innermost first, as a Throwable records them."""
        return tuple((m.ref.class_name, m.ref.name) for m in reversed(self.stack))

    def spend(self, steps: int) -> None:
        """Charges library work done outside the interpreter loop (a regex's worst case) to the budget."""
        self.steps_left -= steps
        if self.steps_left < 0:
            raise BudgetExhausted("dex: instruction budget exhausted (a regex's worst case on its subject)")

    def allocate(self, size: int) -> None:
        try:
            self.heap.allocate(size)
        except HeapExhausted as e:
            raise JavaThrow("java.lang.OutOfMemoryError", str(e)) from None

    def unit(self, insns: list[int], f: Frame, k: int) -> int:
        if f.pc + k >= len(insns):
            raise FormatError(f"dex: truncated instruction in {f.method.ref} at {f.pc}")
        return insns[f.pc + k]

    def dex_of(self, f: Frame) -> DexFile:
        return self.classes[f.method.ref.class_name][0]


def _s16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


def _s8(v: int) -> int:
    return v - 0x100 if v & 0x80 else v


def _u32(vm: DexVM, insns, f: Frame, k: int) -> int:
    return vm.unit(insns, f, k) | vm.unit(insns, f, k + 1) << 16


def _s32(vm, insns, f, k) -> int:
    return i32(_u32(vm, insns, f, k))


# Each handler: (vm, frame, insns, AA byte) -> (returned?, value). They advance f.pc themselves.
def op_nop(vm, f, insns, aa):
    if aa:  # payload pseudo-instructions are data, never executed in order
        raise FormatError(f"dex: executed a data payload in {f.method.ref} at {f.pc}")
    f.pc += 1
    return False, None


def op_move(width):
    def h(vm, f, insns, aa):
        if width == 1:
            f.regs[aa & 0xF] = f.regs[aa >> 4]
        elif width == 2:
            f.regs[aa] = f.regs[vm.unit(insns, f, 1)]
        else:
            f.regs[vm.unit(insns, f, 1)] = f.regs[vm.unit(insns, f, 2)]
        f.pc += width
        return False, None
    return h


def op_move_result(vm, f, insns, aa):
    f.regs[aa] = f.result
    f.pc += 1
    return False, None


def op_return_void(vm, f, insns, aa):
    return True, None


def op_return(vm, f, insns, aa):
    value = f.regs[aa]
    return True, reference(value) if (insns[f.pc] & 0xFF) == 0x11 else value


def reference(value: object) -> object:
    """A register stored where a reference belongs: dex's null is the integer 0, the library's is None."""
    return None if type(value) is int and value == 0 else value


def op_const(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    if op == 0x12:
        v, a, size = _s8((aa >> 4) << 4) >> 4, aa & 0xF, 1
    elif op == 0x13:
        v, a, size = _s16(vm.unit(insns, f, 1)), aa, 2
    elif op == 0x14:
        v, a, size = _s32(vm, insns, f, 1), aa, 3
    elif op == 0x15:
        v, a, size = i32(vm.unit(insns, f, 1) << 16), aa, 2
    elif op == 0x16:
        v, a, size = _s16(vm.unit(insns, f, 1)), aa, 2
    elif op == 0x17:
        v, a, size = _s32(vm, insns, f, 1), aa, 3
    elif op == 0x18:
        v = i64(sum(vm.unit(insns, f, 1 + k) << (16 * k) for k in range(4)))
        a, size = aa, 5
    else:  # 0x19 const-wide/high16
        v, a, size = i64(vm.unit(insns, f, 1) << 48), aa, 2
    f.regs[a] = v
    f.pc += size
    return False, None


def op_const_string(vm, f, insns, aa):
    jumbo = (insns[f.pc] & 0xFF) == 0x1B
    idx = _u32(vm, insns, f, 1) if jumbo else vm.unit(insns, f, 1)
    strings = vm.dex_of(f).strings
    if idx >= len(strings):
        raise FormatError(f"dex: string index {idx} out of range")
    f.regs[aa] = strings[idx]
    f.pc += 3 if jumbo else 2
    return False, None


def op_const_class(vm, f, insns, aa):
    f.regs[aa] = JClass(_type(vm, f, vm.unit(insns, f, 1)))
    f.pc += 2
    return False, None


def _type(vm, f, idx) -> str:
    types = vm.dex_of(f).types
    if idx >= len(types):
        raise FormatError(f"dex: type index {idx} out of range")
    return types[idx]


def _field(vm, f, idx) -> FieldRef:
    fields = vm.dex_of(f).fields
    if idx >= len(fields):
        raise FormatError(f"dex: field index {idx} out of range")
    return fields[idx]


def _method(vm, f, idx) -> MethodRef:
    methods = vm.dex_of(f).methods
    if idx >= len(methods):
        raise FormatError(f"dex: method index {idx} out of range")
    return methods[idx]


def op_check_cast(vm, f, insns, aa):
    vm.check_cast(f.regs[aa], _type(vm, f, vm.unit(insns, f, 1)))
    f.pc += 2
    return False, None


def op_instance_of(vm, f, insns, aa):
    obj, t = f.regs[aa >> 4], _type(vm, f, vm.unit(insns, f, 1))
    f.regs[aa & 0xF] = int(vm.is_instance(obj, t))
    f.pc += 2
    return False, None


def op_array_length(vm, f, insns, aa):
    arr = f.regs[aa >> 4]
    if is_null(arr):
        raise JavaThrow("java.lang.NullPointerException", "array length of null")
    f.regs[aa & 0xF] = len(arr)
    f.pc += 1
    return False, None


def new_instance(vm: DexVM, t: str) -> object:
    """A new object of class t (its constructor not yet run): the program's, the library's or a Throwable."""
    if t not in vm.classes and t not in NATIVE_CLASSES and not is_throwable(t) and t not in (THREAD, OBJECT):
        raise FormatError(f"{vm.KIND}: new-instance of {t}, which is not in the {vm.KIND} and not supported")
    vm.ensure_init(t)
    vm.allocate(OBJECT_BYTES)
    if t in NATIVE_CLASSES:
        return NATIVE_CLASSES[t]()
    return JObject(t, {MESSAGE: None, TRACE: vm.trace()} if THROWABLE in vm.ancestors(t) else {})


def op_new_instance(vm, f, insns, aa):
    f.regs[aa] = new_instance(vm, _type(vm, f, vm.unit(insns, f, 1)))
    f.pc += 2
    return False, None


def _new_array(vm: DexVM, t: str, size: int) -> list:
    if not t.startswith("["):
        raise FormatError(f"dex: new-array of non-array type {t}")
    if size < 0:
        raise JavaThrow("java.lang.NegativeArraySizeException", str(size))
    if size > MAX_ARRAY:
        raise JavaThrow("java.lang.OutOfMemoryError", f"array of {size} elements is over the interpreter's "
                                                      f"limit of {MAX_ARRAY}")
    vm.allocate(8 * size + 64)
    return JArray([None if t[1] in "L[" else 0] * size, t)


def op_new_array(vm, f, insns, aa):
    f.regs[aa & 0xF] = _new_array(vm, _type(vm, f, vm.unit(insns, f, 1)), f.regs[aa >> 4])
    f.pc += 2
    return False, None


def _invoke_args(vm, f, insns, aa, ranged) -> tuple[int, list[int]]:
    idx = vm.unit(insns, f, 1)
    if ranged:
        first = vm.unit(insns, f, 2)
        return idx, list(range(first, first + aa))
    count, g = aa >> 4, aa & 0xF
    w = vm.unit(insns, f, 2)
    regs = [w & 0xF, (w >> 4) & 0xF, (w >> 8) & 0xF, (w >> 12) & 0xF, g]
    if count > 5:
        raise FormatError(f"dex: invoke with {count} arguments at {f.method.ref}+{f.pc}")
    return idx, regs[:count]


def op_filled_new_array(vm, f, insns, aa):
    ranged = (insns[f.pc] & 0xFF) == 0x25
    idx, regs = _invoke_args(vm, f, insns, aa, ranged)
    t = _type(vm, f, idx)
    vm.allocate(8 * len(regs) + 64)
    f.result = JArray([f.regs[r] for r in regs], t)
    f.pc += 3
    return False, None


def op_fill_array_data(vm, f, insns, aa):
    arr = f.regs[aa]
    at = f.pc + _s32(vm, insns, f, 1)
    if not 0 <= at < len(insns) - 3 or insns[at] != 0x0300:
        raise FormatError(f"dex: bad fill-array-data payload in {f.method.ref}")
    width, size = insns[at + 1], insns[at + 2] | insns[at + 3] << 16
    raw = b"".join(struct.pack("<H", u) for u in insns[at + 4:at + 4 + (width * size + 1) // 2])
    if arr is None or width not in (1, 2, 4, 8) or size > len(arr) or len(raw) < width * size:
        raise FormatError(f"dex: fill-array-data does not fit its array in {f.method.ref}")
    fmt = {1: "b", 2: "h", 4: "i", 8: "q"}[width]
    arr[:size] = struct.unpack(f"<{size}{fmt}", raw[:width * size])
    f.pc += 3
    return False, None


def op_throw(vm, f, insns, aa):
    exc = f.regs[aa]
    if is_null(exc):
        raise JavaThrow("java.lang.NullPointerException", "throw with null exception")
    if not isinstance(exc, JObject) or THROWABLE not in vm.ancestors(exc.cls):
        raise FormatError(f"dex: throw of a non-Throwable in {f.method.ref} at {f.pc}")
    raise JavaThrow(exc.cls, exception=exc)


def op_monitor(vm, f, insns, aa):
    """monitor-enter/exit (synchronized): the scheduler's monitor of the object (dexlib_threads)."""
    if is_null(f.regs[aa]) and not isinstance(f.regs[aa], JBox):
        raise JavaThrow("java.lang.NullPointerException", "synchronized on null")
    (vm.scheduler.enter if insns[f.pc] & 0xFF == 0x1D else vm.scheduler.exit)(f.regs[aa])
    f.pc += 1
    return False, None


def op_move_exception(vm, f, insns, aa):
    f.regs[aa] = f.exception
    f.pc += 1
    return False, None


def op_goto(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    off = _s8(aa) if op == 0x28 else _s16(vm.unit(insns, f, 1)) if op == 0x29 else _s32(vm, insns, f, 1)
    f.pc += off
    return False, None


def op_switch(vm, f, insns, aa):
    at = f.pc + _s32(vm, insns, f, 1)
    value = f.regs[aa]
    if not 0 <= at < len(insns) - 1:
        raise FormatError(f"dex: bad switch payload in {f.method.ref}")
    ident, size = insns[at], insns[at + 1]
    if ident == 0x0100:
        first = i32(insns[at + 2] | insns[at + 3] << 16) if at + 3 < len(insns) else 0
        targets = [i32(insns[at + 4 + 2 * k] | insns[at + 5 + 2 * k] << 16) for k in range(size)
                   if at + 5 + 2 * k < len(insns)]
        table = {first + k: t for k, t in enumerate(targets)}
    elif ident == 0x0200:
        words = [i32(insns[at + 2 + 2 * k] | insns[at + 3 + 2 * k] << 16) for k in range(2 * size)
                 if at + 3 + 2 * k < len(insns)]
        table = dict(zip(words[:size], words[size:], strict=False))
    else:
        raise FormatError(f"dex: bad switch payload in {f.method.ref}")
    f.pc += table.get(value, 3)
    return False, None


CMP = {0x32: lambda a, b: a == b, 0x33: lambda a, b: a != b, 0x34: lambda a, b: a < b,
       0x35: lambda a, b: a >= b, 0x36: lambda a, b: a > b, 0x37: lambda a, b: a <= b}


def op_if(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    if op <= 0x37:
        a, b = f.regs[aa & 0xF], f.regs[aa >> 4]
        test = CMP[op]
    else:
        a, b = f.regs[aa], 0
        test = CMP[op - 6]
        if not isinstance(a, int):  # if-eqz/if-nez on references
            a = 0 if a is None else 1
    if isinstance(a, int) and isinstance(b, int):
        taken = test(a, b)
    elif op in (0x32, 0x33):
        taken = test(a is b, True)
    else:
        raise FormatError(f"dex: ordered comparison of references in {f.method.ref}")
    f.pc += _s16(vm.unit(insns, f, 1)) if taken else 2
    return False, None


def op_cmp(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    w = vm.unit(insns, f, 1)
    a, b = f.regs[w & 0xFF], f.regs[w >> 8]
    if op in (0x2D, 0x2E):
        a, b = f32(a), f32(b)
    elif op in (0x2F, 0x30):
        a, b = f64(a), f64(b)
    if a != a or b != b:
        result = -1 if op in (0x2D, 0x2F) else 1
    else:
        result = (a > b) - (a < b)
    f.regs[aa] = result
    f.pc += 2
    return False, None


def _array_access(vm, f, insns, aa, put):
    w = vm.unit(insns, f, 1)
    arr, idx = f.regs[w & 0xFF], f.regs[w >> 8]
    if is_null(arr):
        raise JavaThrow("java.lang.NullPointerException", "array access on null")
    if not 0 <= idx < len(arr):
        raise JavaThrow("java.lang.ArrayIndexOutOfBoundsException", f"Index {idx} out of bounds for length {len(arr)}")
    if put:
        arr[idx] = reference(f.regs[aa]) if (insns[f.pc] & 0xFF) == 0x4D else f.regs[aa]
    else:
        f.regs[aa] = arr[idx]
    f.pc += 2
    return False, None


def op_aget(vm, f, insns, aa):
    return _array_access(vm, f, insns, aa, False)


def op_aput(vm, f, insns, aa):
    return _array_access(vm, f, insns, aa, True)


def op_iget_iput(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    fld = _field(vm, f, vm.unit(insns, f, 1))
    obj = f.regs[aa >> 4]
    if not isinstance(obj, JObject):
        raise JavaThrow("java.lang.NullPointerException", f"field {fld.name} of null")
    if op <= 0x58:
        f.regs[aa & 0xF] = obj.fields.get(fld.name, None if fld.type[0] in "L[" else 0)
    else:
        obj.fields[fld.name] = reference(f.regs[aa & 0xF]) if op == 0x5B else f.regs[aa & 0xF]
    f.pc += 2
    return False, None


def op_sget_sput(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    fld = _field(vm, f, vm.unit(insns, f, 1))
    key = (fld.class_name, fld.name)
    if op <= 0x66:
        if key in STATIC_FIELDS:
            f.regs[aa] = STATIC_FIELDS[key](vm)
        else:
            vm.ensure_init(fld.class_name)
            if key not in vm.statics and fld.class_name not in vm.classes:
                raise FormatError(f"dex: static field {fld.class_name}->{fld.name} is not supported")
            f.regs[aa] = vm.statics.get(key, None if fld.type[0] in "L[" else 0)
    else:
        vm.ensure_init(fld.class_name)
        vm.statics[key] = reference(f.regs[aa]) if op == 0x69 else f.regs[aa]
    f.pc += 2
    return False, None


INVOKE_KINDS = {0x6E: "virtual", 0x6F: "super", 0x70: "direct", 0x71: "static", 0x72: "interface"}


def op_invoke(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    ranged = op >= 0x74
    kind = INVOKE_KINDS[op - 6 if ranged else op]
    idx, regs = _invoke_args(vm, f, insns, aa, ranged)
    ref = _method(vm, f, idx)
    # wide arguments occupy two registers: pass the low one's value once
    values, k = [], 0
    kinds = ([] if kind == "static" else ["L"]) + [p[0] for p in ref.params]
    for kd in kinds:
        if k >= len(regs):
            raise FormatError(f"dex: too few argument registers for {ref}")
        values.append(reference(f.regs[regs[k]]) if kd in "L[" else f.regs[regs[k]])
        k += 2 if kd in "JD" else 1
    f.result = vm.call(ref, values, kind)
    if isinstance(values[0] if values else None, StringPlaceholder):  # new String(...): the string replaces it
        f.regs = [f.result if r is values[0] else r for r in f.regs]
    f.pc += 3
    return False, None


def op_unary(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    f.regs[aa & 0xF] = CONVERSIONS[op](f.regs[aa >> 4])
    f.pc += 1
    return False, None


def _arith(kind: str, name: str, a, b):
    if not isinstance(a, int) or not isinstance(b, int):  # an array times n would be a list n times as long
        raise TypeError(f"arithmetic on a {type(a).__name__} and a {type(b).__name__}")
    if kind == "I":
        return i32(INT_OPS[name](a, b))
    if kind == "J":
        return i64(LONG_OPS[name](a, b))
    if kind == "F":
        return bits32(FLOAT_OPS[name](f32(a), f32(b)))
    return bits64(FLOAT_OPS[name](f64(a), f64(b)))


def op_binop(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    kind, name = BINOPS[op]
    if op >= 0xB0:  # /2addr
        dst, a, b = aa & 0xF, f.regs[aa & 0xF], f.regs[aa >> 4]
        size = 1
    else:
        w = vm.unit(insns, f, 1)
        dst, a, b = aa, f.regs[w & 0xFF], f.regs[w >> 8]
        size = 2
    f.regs[dst] = _arith(kind, name, a, b)
    f.pc += size
    return False, None


def op_binop_lit(vm, f, insns, aa):
    op = insns[f.pc] & 0xFF
    w = vm.unit(insns, f, 1)
    if op <= 0xD7:
        name = LIT_NAMES[op - 0xD0]
        dst, a, lit = aa & 0xF, f.regs[aa >> 4], _s16(w)
    else:
        name = LIT_NAMES[op - 0xD8]
        dst, a, lit = aa, f.regs[w & 0xFF], _s8(w >> 8)
    f.regs[dst] = _arith("I", name, a, lit)
    f.pc += 2
    return False, None


OPS: dict[int, Callable] = {0x00: op_nop, 0x01: op_move(1), 0x02: op_move(2), 0x03: op_move(3), 0x04: op_move(1),
                            0x05: op_move(2), 0x06: op_move(3), 0x07: op_move(1), 0x08: op_move(2),
                            0x09: op_move(3), 0x0A: op_move_result, 0x0B: op_move_result, 0x0C: op_move_result,
                            0x0D: op_move_exception, 0x1D: op_monitor, 0x1E: op_monitor,
                            0x0E: op_return_void, 0x0F: op_return, 0x10: op_return, 0x11: op_return,
                            0x1A: op_const_string, 0x1B: op_const_string, 0x1C: op_const_class,
                            0x1F: op_check_cast, 0x20: op_instance_of, 0x21: op_array_length,
                            0x22: op_new_instance, 0x23: op_new_array, 0x24: op_filled_new_array,
                            0x25: op_filled_new_array, 0x26: op_fill_array_data, 0x27: op_throw,
                            0x2B: op_switch, 0x2C: op_switch}
OPS.update({op: op_const for op in range(0x12, 0x1A)})
OPS.update({op: op_goto for op in (0x28, 0x29, 0x2A)})
OPS.update({op: op_cmp for op in range(0x2D, 0x32)})
OPS.update({op: op_if for op in range(0x32, 0x3E)})
OPS.update({op: op_aget for op in range(0x44, 0x4B)})
OPS.update({op: op_aput for op in range(0x4B, 0x52)})
OPS.update({op: op_iget_iput for op in range(0x52, 0x60)})
OPS.update({op: op_sget_sput for op in range(0x60, 0x6E)})
OPS.update({op: op_invoke for op in (0x6E, 0x6F, 0x70, 0x71, 0x72, 0x74, 0x75, 0x76, 0x77, 0x78)})
OPS.update({op: op_unary for op in CONVERSIONS})
OPS.update({op: op_binop for op in BINOPS})
OPS.update({op: op_binop_lit for op in range(0xD0, 0xE3)})


def main_method(c: ClassDef) -> Method | None:
    """The class's `static void main(String[])`, if it has one."""
    return next((m for m in c.direct_methods if m.ref.name == "main" and m.ref.params == ("[Ljava/lang/String;",)
                 and m.ref.ret == "V" and m.is_static), None)


def classes_with_main(dexes: list[DexFile]) -> list[str]:
    """Java names of the classes that `--main` can run."""
    return [c.java_name for d in dexes for c in d.classes if main_method(c) is not None]


def framework_base(dexes: list[DexFile], class_name: str) -> str | None:
    """The first superclass of class_name that is not in the dex (android.app.Activity for an app)."""
    by_name = {c.name: c for d in dexes for c in d.classes}
    cls: str | None = class_descriptor(class_name)
    for _ in range(MAX_HIERARCHY):
        if cls not in by_name:
            return None if cls in (None, OBJECT) else cls[1:-1].replace("/", ".")
        cls = by_name[cls].superclass
    return None


def run_main(dexes: list[DexFile], class_name: str, args: list[str], stdout=None, stderr=None,
             max_steps: int = MAX_STEPS, max_heap: int = MAX_HEAP, stdin=None) -> int:
    """Runs class_name.main(String[]) (a Java name, org.x.Main, or a descriptor, Lorg/x/Main;);
    returns the exit status (1 for an uncaught exception)."""
    return run_vm(DexVM(dexes, stdout, stderr, max_steps, max_heap, stdin), class_name, args)


def run_vm(vm: DexVM, class_name: str, args: list[str]) -> int:
    """Runs class_name.main(String[]) on vm (DexVM, or jvmvm's JvmVM); the exit status."""
    desc = class_descriptor(class_name)
    if desc not in vm.classes:
        raise FormatError(f"{vm.KIND}: class {class_name} is not in the {vm.KIND}")
    main = main_method(vm.classes[desc][1])
    if main is None:
        raise FormatError(f"{vm.KIND}: class {class_name} has no public static void main(String[])")
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 8 * MAX_DEPTH + 500))  # ~5 Python frames per Java call
    try:
        with np.errstate(all="ignore"):  # IEEE float semantics, as Java has them
            status = 0
            try:
                vm.ensure_init(desc)
                vm.invoke(main, [JArray(args, "[Ljava/lang/String;")])
            except JavaThrow as e:
                vm.out.stream.flush()
                vm.err.stream.write('Exception in thread "main" ' + stack_trace(e.exception))
                status = 1
            vm.scheduler.main_ends()
    except ExitProgram as e:
        vm.out.stream.flush()
        return e.status
    except RecursionError:
        raise FormatError(f"{vm.KIND}: Python recursion limit reached (call depth)") from None
    finally:
        vm.scheduler.shutdown()
        sys.setrecursionlimit(old_limit)
    vm.out.stream.flush()
    return status
