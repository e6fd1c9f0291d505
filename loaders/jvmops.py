"""What each JVM opcode does, on a frame's operand stack and locals (jvmvm.JFrame). Values are the
dex interpreter's (dexvalues): ints and longs as signed Python ints, float/double as their bits,
references as Python objects (null: None). A long or double takes two words, the second the TOP
marker, on the stack and in locals, so pop2/dup2/dup_x2 work on words as the JVM's do. The
arithmetic, conversions and array creation are dexvm's. Handlers: (vm, frame, insn, _) -> None,
setting frame.pc (frame.done on return); the code was checked by jvmcode first."""

from __future__ import annotations

from cerebro.binread import FormatError
from cerebro.loaders.dexexc import THROWABLE, JavaThrow, JObject
from cerebro.loaders.dexlib_lang import JBox, JClass
from cerebro.loaders.dexvalues import bits32, bits64, f32, f64, i32
from cerebro.loaders.dexvm import CONVERSIONS, _arith, _new_array, new_instance


class _Top:
    def __repr__(self) -> str:
        return "TOP"


TOP = _Top()  # the second word of a long or double
WIDE_TYPES = ({0x16, 0x18, 0x37, 0x39, 0x2F, 0x31, 0x50, 0x52} | set(range(0x1E, 0x22)) | set(range(0x26, 0x2A))
              | set(range(0x3F, 0x43)) | set(range(0x47, 0x4B)))  # long/double locals, arrays
RETURNS = {0xAC: 1, 0xAD: 2, 0xAE: 1, 0xAF: 2, 0xB0: 1, 0xB1: 0}  # opcode -> words returned
CONSTANTS = {0x01: (None, 1), **{0x03 + k: (k, 1) for k in range(-1, 6)}, 0x09: (0, 2), 0x0A: (1, 2),
             **{0x0B + k: (bits32(float(k)), 1) for k in range(3)}, 0x0E: (bits64(0.0), 2), 0x0F: (bits64(1.0), 2)}
ARITH_NAMES = ["add", "sub", "mul", "div", "rem"]
LOGIC = {0x78: ("I", "shl"), 0x79: ("J", "shl"), 0x7A: ("I", "shr"), 0x7B: ("J", "shr"), 0x7C: ("I", "ushr"),
         0x7D: ("J", "ushr"), 0x7E: ("I", "and"), 0x7F: ("J", "and"), 0x80: ("I", "or"), 0x81: ("J", "or"),
         0x82: ("I", "xor"), 0x83: ("J", "xor")}
BINARY = {**{0x60 + k: ("IJFD"[k % 4], ARITH_NAMES[k // 4]) for k in range(20)}, **LOGIC}
# JVM unary opcode -> (dex opcode whose conversion it is, words taken, words pushed)
UNARY = {0x74: (0x7B, 1, 1), 0x75: (0x7D, 2, 2), 0x76: (0x7F, 1, 1), 0x77: (0x80, 2, 2),
         0x85: (0x81, 1, 2), 0x86: (0x82, 1, 1), 0x87: (0x83, 1, 2), 0x88: (0x84, 2, 1), 0x89: (0x85, 2, 1),
         0x8A: (0x86, 2, 2), 0x8B: (0x87, 1, 1), 0x8C: (0x88, 1, 2), 0x8D: (0x89, 1, 2), 0x8E: (0x8A, 2, 1),
         0x8F: (0x8B, 2, 2), 0x90: (0x8C, 2, 1), 0x91: (0x8D, 1, 1), 0x92: (0x8E, 1, 1), 0x93: (0x8F, 1, 1)}
ARRAY_STORE_WRAP = {0x54: lambda v: ((v & 0xFF) ^ 0x80) - 0x80,
                    0x55: lambda v: v & 0xFFFF, 0x56: lambda v: ((v & 0xFFFF) ^ 0x8000) - 0x8000}
COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
           "ge": lambda a, b: a >= b, "gt": lambda a, b: a > b, "le": lambda a, b: a <= b}
CONDITIONS = ["eq", "ne", "lt", "ge", "gt", "le"]


def pop_value(stack: list, wide: bool) -> object:
    if wide and stack.pop() is not TOP:
        raise FormatError("jvm: a long or double was expected on the operand stack")
    return stack.pop()


def pop_words(stack: list, words: int) -> list:
    """The values of the top `words` words (a call's arguments), bottom first, each long/double once."""
    values = [v for v in stack[len(stack) - words:] if v is not TOP]
    del stack[len(stack) - words:]
    return values


def push_value(stack: list, value: object, wide: bool) -> None:
    stack.append(value)
    if wide:
        stack.append(TOP)


def _int(value: object) -> int:
    if not isinstance(value, int) or value is TOP:
        raise FormatError(f"jvm: a number was expected on the operand stack, not {type(value).__name__}")
    return value


def same_reference(a: object, b: object) -> bool:
    """`a == b` on references. The library makes a new Class object per getClass()/ldc, Java has one per
    class; Integer.valueOf (boxing) gives the same object for -128..127, as Java's cache does."""
    if a is b:
        return True
    if type(a) is JClass and type(b) is JClass:
        return a.desc == b.desc
    return type(a) is JBox and a == b and (a.kind == "Z" or a.kind in "BSCIJ" and -128 <= a.value <= 127)


def op_nop(vm, f, ins, _):
    f.pc = ins.next


def op_const(vm, f, ins, _):
    value, words = CONSTANTS[ins.op]
    push_value(f.stack, value, words == 2)
    f.pc = ins.next


def op_push(vm, f, ins, _):
    f.stack.append(ins.a)
    f.pc = ins.next


def op_ldc(vm, f, ins, _):
    kind, value = ins.a
    if kind in ("MethodType", "MethodHandle"):
        raise FormatError(f"jvm: ldc of a {kind} is not supported")
    push_value(f.stack, JClass(value) if kind == "Class" else value, kind in ("J", "D"))
    f.pc = ins.next


def op_load(vm, f, ins, _):
    push_value(f.stack, f.locals[ins.a], ins.op in WIDE_TYPES)
    f.pc = ins.next


def op_store(vm, f, ins, _):
    wide = ins.op in WIDE_TYPES
    f.locals[ins.a] = pop_value(f.stack, wide)
    if wide:
        f.locals[ins.a + 1] = TOP
    f.pc = ins.next


def _array_index(vm, f, ins) -> tuple[list, int]:
    stack = f.stack
    index, array = _int(stack.pop()), stack.pop()
    if array is None:
        raise vm.null_pointer(f, ins)
    if not isinstance(array, list):
        raise FormatError("jvm: array access on a value that is not an array")
    if not 0 <= index < len(array):
        raise JavaThrow("java.lang.ArrayIndexOutOfBoundsException",
                        f"Index {index} out of bounds for length {len(array)}")
    return array, index


def op_array_load(vm, f, ins, _):
    array, index = _array_index(vm, f, ins)
    push_value(f.stack, array[index], ins.op in WIDE_TYPES)
    f.pc = ins.next


def op_array_store(vm, f, ins, _):
    value = pop_value(f.stack, ins.op in WIDE_TYPES)
    array, index = _array_index(vm, f, ins)
    array[index] = ARRAY_STORE_WRAP[ins.op](_int(value)) if ins.op in ARRAY_STORE_WRAP else value
    f.pc = ins.next


def shuffle(s: list, op: int) -> None:
    """pop, pop2, dup, dup_x1, dup_x2, dup2, dup2_x1, dup2_x2, swap: on words (values, or jvmnpe's sources)."""
    if op == 0x57:
        s.pop()
    elif op == 0x58:
        del s[-2:]
    elif op == 0x5F:
        s[-1], s[-2] = s[-2], s[-1]
    else:
        count, depth = (1, op - 0x59) if op <= 0x5B else (2, op - 0x5C)  # words copied, words skipped below
        at = len(s) - count - depth
        s[at:at] = s[-count:]


def op_stack(vm, f, ins, _):
    shuffle(f.stack, ins.op)
    f.pc = ins.next


def op_binary(vm, f, ins, _):
    kind, name = BINARY[ins.op]
    wide = kind in ("J", "D")
    b = _int(pop_value(f.stack, wide and name not in ("shl", "shr", "ushr")))
    a = _int(pop_value(f.stack, wide))
    push_value(f.stack, _arith(kind, name, a, b), wide)
    f.pc = ins.next


def op_unary(vm, f, ins, _):
    dex_op, taken, pushed = UNARY[ins.op]
    push_value(f.stack, CONVERSIONS[dex_op](_int(pop_value(f.stack, taken == 2))), pushed == 2)
    f.pc = ins.next


def op_iinc(vm, f, ins, _):
    f.locals[ins.a] = i32(_int(f.locals[ins.a]) + ins.b)
    f.pc = ins.next


def op_compare(vm, f, ins, _):
    """lcmp, fcmpl/fcmpg, dcmpl/dcmpg: NaN gives -1 for the l forms, 1 for the g forms."""
    wide = ins.op in (0x94, 0x97, 0x98)
    b, a = _int(pop_value(f.stack, wide)), _int(pop_value(f.stack, wide))
    if ins.op in (0x95, 0x96):
        a, b = f32(a), f32(b)
    elif ins.op in (0x97, 0x98):
        a, b = f64(a), f64(b)
    if a != a or b != b:
        f.stack.append(-1 if ins.op in (0x95, 0x97) else 1)
    else:
        f.stack.append((a > b) - (a < b))
    f.pc = ins.next


def op_if(vm, f, ins, _):
    op, s = ins.op, f.stack
    if op <= 0x9E:
        taken = COMPARE[CONDITIONS[op - 0x99]](_int(s.pop()), 0)
    elif op <= 0xA4:
        b = _int(s.pop())
        taken = COMPARE[CONDITIONS[op - 0x9F]](_int(s.pop()), b)
    elif op <= 0xA6:
        taken = same_reference(s.pop(), s.pop()) == (op == 0xA5)
    else:
        taken = (s.pop() is None) == (op == 0xC6)
    f.pc = ins.a if taken else ins.next


def op_goto(vm, f, ins, _):
    f.pc = ins.a


def op_switch(vm, f, ins, _):
    f.pc = ins.a.get(_int(f.stack.pop()), ins.b)


def op_return(vm, f, ins, _):
    words = RETURNS[ins.op]
    f.result = pop_value(f.stack, words == 2) if words else None
    f.done = True


def op_field(vm, f, ins, _):
    vm.field_access(f, ins)
    f.pc = ins.next


def op_invoke(vm, f, ins, _):
    vm.invoke_insn(f, ins)
    f.pc = ins.next


def op_invokedynamic(vm, f, ins, _):
    vm.invoke_dynamic(f, ins)
    f.pc = ins.next


def op_new(vm, f, ins, _):
    f.stack.append(new_instance(vm, ins.a))
    f.pc = ins.next


def op_new_array(vm, f, ins, _):
    f.stack.append(_new_array(vm, ins.a, _int(f.stack.pop())))
    f.pc = ins.next


def op_multi_new_array(vm, f, ins, _):
    counts = [_int(c) for c in f.stack[-ins.b:]]
    del f.stack[-ins.b:]

    def make(desc: str, level: int) -> list:
        array = _new_array(vm, desc, counts[level])
        if level + 1 < len(counts):
            array[:] = [make(desc[1:], level + 1) for _ in array]
        return array
    f.stack.append(make(ins.a, 0))
    f.pc = ins.next


def op_array_length(vm, f, ins, _):
    array = f.stack.pop()
    if array is None:
        raise vm.null_pointer(f, ins)
    if not isinstance(array, list):
        raise FormatError("jvm: arraylength of a value that is not an array")
    f.stack.append(len(array))
    f.pc = ins.next


def op_athrow(vm, f, ins, _):
    exc = f.stack.pop()
    if exc is None:
        raise vm.null_pointer(f, ins)
    if not isinstance(exc, JObject) or THROWABLE not in vm.ancestors(exc.cls):
        raise FormatError(f"jvm: athrow of a non-Throwable in {f.method.ref} at {f.pc}")
    raise JavaThrow(exc.cls, exception=exc)


def op_check_cast(vm, f, ins, _):
    vm.check_cast(f.stack[-1], ins.a)
    f.pc = ins.next


def op_instance_of(vm, f, ins, _):
    f.stack.append(int(vm.is_instance(f.stack.pop(), ins.a)))
    f.pc = ins.next


def op_monitor(vm, f, ins, _):
    """monitorenter/exit: the scheduler's monitor of the object (dexlib_threads)."""
    lock = f.stack.pop()
    if lock is None:
        raise vm.null_pointer(f, ins)
    (vm.scheduler.enter if ins.op == 0xC2 else vm.scheduler.exit)(lock)
    f.pc = ins.next


OPS = {0x00: op_nop, 0x10: op_push, 0x11: op_push, 0x12: op_ldc, 0x13: op_ldc, 0x14: op_ldc, 0x84: op_iinc,
       0xA7: op_goto, 0xC8: op_goto, 0xAA: op_switch, 0xAB: op_switch, 0xBA: op_invokedynamic, 0xBB: op_new,
       0xBC: op_new_array, 0xBD: op_new_array, 0xBE: op_array_length, 0xBF: op_athrow, 0xC0: op_check_cast,
       0xC1: op_instance_of, 0xC2: op_monitor, 0xC3: op_monitor, 0xC5: op_multi_new_array, 0xC4: op_nop,
       **{op: op_const for op in CONSTANTS}, **{op: op_load for op in range(0x15, 0x2E)},
       **{op: op_array_load for op in range(0x2E, 0x36)}, **{op: op_store for op in range(0x36, 0x4F)},
       **{op: op_array_store for op in range(0x4F, 0x57)}, **{op: op_stack for op in range(0x57, 0x60)},
       **{op: op_binary for op in BINARY}, **{op: op_unary for op in UNARY},
       **{op: op_compare for op in range(0x94, 0x99)}, **{op: op_if for op in (*range(0x99, 0xA7), 0xC6, 0xC7)},
       **{op: op_return for op in RETURNS}, **{op: op_field for op in range(0xB2, 0xB6)},
       **{op: op_invoke for op in range(0xB6, 0xBA)}}


def _effects() -> dict[int, tuple[int, int]]:
    """Operand stack words (taken, pushed) of the opcodes whose effect does not depend on operands."""
    out = {op: (0, words) for op, (_v, words) in CONSTANTS.items()}
    out.update({0x10: (0, 1), 0x11: (0, 1), 0x12: (0, 1), 0x13: (0, 1), 0x14: (0, 2)})
    out.update({op: (0, 2 if op in WIDE_TYPES else 1) for op in range(0x15, 0x2E)})
    out.update({op: (2, 2 if op in WIDE_TYPES else 1) for op in range(0x2E, 0x36)})
    out.update({op: (2 if op in WIDE_TYPES else 1, 0) for op in range(0x36, 0x4F)})
    out.update({op: (4 if op in WIDE_TYPES else 3, 0) for op in range(0x4F, 0x57)})
    out.update({0x57: (1, 0), 0x58: (2, 0), 0x59: (1, 2), 0x5A: (2, 3), 0x5B: (3, 4), 0x5C: (2, 4), 0x5D: (3, 5),
                0x5E: (4, 6), 0x5F: (2, 2)})
    for op, (kind, name) in BINARY.items():
        w = 2 if kind in ("J", "D") else 1
        out[op] = (w + (1 if name in ("shl", "shr", "ushr") else w), w)
    out.update({op: (taken, pushed) for op, (_d, taken, pushed) in UNARY.items()})
    out.update({0x94: (4, 1), 0x95: (2, 1), 0x96: (2, 1), 0x97: (4, 1), 0x98: (4, 1)})
    out.update({op: (1, 0) for op in range(0x99, 0x9F)})
    out.update({op: (2, 0) for op in range(0x9F, 0xA7)})
    out.update({0xAA: (1, 0), 0xAB: (1, 0), 0xC6: (1, 0), 0xC7: (1, 0), 0xBB: (0, 1), 0xBC: (1, 1), 0xBD: (1, 1),
                0xBE: (1, 1), 0xBF: (1, 0), 0xC0: (1, 1), 0xC1: (1, 1), 0xC2: (1, 0), 0xC3: (1, 0), 0xC5: (0, 1)})
    out.update({op: (words, 0) for op, words in RETURNS.items()})
    return out


SIMPLE_EFFECTS = _effects()
