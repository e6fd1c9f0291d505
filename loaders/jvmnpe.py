"""The JVM's helpful NullPointerException messages (JEP 358, on by default since Java 15):
`Cannot invoke "String.length()" because "<local1>.name" is null`. What failed comes from the
instruction; where the null came from, from a dataflow pass over the method like HotSpot's: every
operand stack word is tagged with the instruction that pushed it (dup and swap move tags, paths
that disagree leave none), and a tag is described back through loads, fields, array elements,
calls and constants. No local variable table is read (javac writes none without -g), so locals
are `<localN>`, parameters `<parameterN>` and `this`, as the JVM prints them then."""

from __future__ import annotations

from cerebro.loaders.jvmops import shuffle

PRIMITIVE_NAMES = {"Z": "boolean", "B": "byte", "C": "char", "S": "short", "I": "int", "J": "long", "F": "float",
                   "D": "double", "V": "void"}
ARRAY_KINDS = ["int", "long", "float", "double", "object", "byte/boolean", "char", "short"]  # xaload/xastore order
INVOKES = (0xB6, 0xB7, 0xB9)
LOADS = {0x15: 0, 0x16: 0, 0x17: 0, 0x18: 0, 0x19: 0, **{op: 0 for op in range(0x1A, 0x2E)}}
CHECKCAST = 0xC0
MAX_WORK = 4_000_000  # stack words the dataflow pass may copy for one message (javac's methods: thousands)


def type_name(desc: str) -> str:
    """A type as the messages show it: java.lang.Object and java.lang.String shortened, others in full."""
    dims = len(desc) - len(desc.lstrip("["))
    base = desc[dims:]
    name = PRIMITIVE_NAMES.get(base) or base[1:-1].replace("/", ".")
    return (name[10:] if name in ("java.lang.Object", "java.lang.String") else name) + "[]" * dims


def _method_text(ref) -> str:
    return f"{type_name(ref.class_name)}.{ref.name}({', '.join(map(type_name, ref.params))})"


def _action(ins) -> str | None:
    """What the instruction could not do with null."""
    op = ins.op
    if op in INVOKES:
        return f'Cannot invoke "{_method_text(ins.a)}"'
    if op in (0xB4, 0xB5):
        return f'Cannot {"read" if op == 0xB4 else "assign"} field "{ins.a.name}"'
    if 0x2E <= op <= 0x35:
        return f"Cannot load from {ARRAY_KINDS[op - 0x2E]} array"
    if 0x4F <= op <= 0x56:
        return f"Cannot store to {ARRAY_KINDS[op - 0x4F]} array"
    return {0xBE: "Cannot read the array length", 0xBF: "Cannot throw exception",
            0xC2: "Cannot enter synchronized block", 0xC3: "Cannot exit synchronized block"}.get(op)


def _simulate(code) -> dict[int, tuple] | None:
    """pc -> the producers (pcs, None: unknown) of the words each instruction takes, over all paths; None
    when that takes over MAX_WORK stack words of work (hostile code: a deep stack merged at many joins)."""
    insns = code.insns
    states: dict[int, list] = {0: []}
    for _s, _e, handler, _c in code.exceptions:
        states[handler] = [None]
    inputs: dict[int, tuple] = {}
    pending = list(states)
    work = 0
    while pending:
        pc = pending.pop()
        ins, stack = insns[pc], list(states[pc])
        work += len(stack) + 1
        if work > MAX_WORK:
            return None
        taken = tuple(stack[len(stack) - ins.pops:]) if ins.pops else ()
        old = inputs.get(pc)
        inputs[pc] = taken if old is None else tuple(a if a == b else None for a, b in zip(old, taken, strict=False))
        if 0x57 <= ins.op <= 0x5F:
            shuffle(stack, ins.op)
        else:
            del stack[len(stack) - ins.pops:]
            source = taken[0] if ins.op == CHECKCAST else pc
            stack += [source] * ins.pushes
        successors = list(ins.targets) + ([] if ins.op in (0xA7, 0xC8, 0xAA, 0xAB, 0xBF) or 0xAC <= ins.op <= 0xB1
                                          else [ins.next])
        for t in successors:
            if t not in states:
                states[t] = stack
                pending.append(t)
            else:
                merged = [a if a == b else None for a, b in zip(states[t], stack, strict=False)]
                if merged != states[t]:
                    states[t] = merged
                    pending.append(t)
    return inputs


def _local_name(method, slot: int) -> str:
    if not method.is_static:
        if slot == 0:
            return "this"
        slot -= 1
    at = 0
    for k, p in enumerate(method.ref.params, 1):
        if at == slot:
            return f"<parameter{k}>"
        at += 2 if p in ("J", "D") else 1
    return f"<local{slot + (0 if method.is_static else 1)}>"


def _text(method, inputs: dict, pc: int | None, depth: int = 0) -> str | None:
    """The expression that produced the word pushed at pc (None: not known)."""
    if pc is None or depth > 5:
        return None
    ins = method.code.insns[pc]
    op, args = ins.op, inputs.get(pc, ())
    if op in LOADS:
        return _local_name(method, ins.a)
    if op == 0x01:
        return "null"
    if 0x02 <= op <= 0x08 or op in (0x10, 0x11):
        return str(op - 0x03 if op <= 0x08 else ins.a)
    if op == 0xB2:
        return f"{type_name(ins.a.class_name)}.{ins.a.name}"
    if op == 0xB4:
        owner = _text(method, inputs, args[0] if args else None, depth + 1)
        return None if owner is None else f"{owner}.{ins.a.name}"
    if op == 0x32 or 0x2E <= op <= 0x35:
        array = _text(method, inputs, args[0] if args else None, depth + 1)
        index = _text(method, inputs, args[1] if len(args) > 1 else None, depth + 1)
        return None if array is None else f"{array}[{index if index is not None else '...'}]"
    if op in (*INVOKES, 0xB8):
        return _method_text(ins.a)
    return None


def null_message(method, pc: int, cache: dict) -> str | None:
    """The JVM's message for a NullPointerException at pc, or None for an instruction it has none for."""
    key = (id(method), pc)
    if key not in cache:
        ins = method.code.insns[pc]
        action = _action(ins)
        inputs = (_simulate(method.code) if action is not None else None) or {}
        producer = inputs.get(pc, (None,))[0] if inputs.get(pc) else None
        text = _text(method, inputs, producer)
        because = None
        if text is not None:
            called = method.code.insns[producer].op in (*INVOKES, 0xB8)
            because = f'the return value of "{text}"' if called else f'"{text}"'
        cache[key] = action if because is None or action is None else f"{action} because {because} is null"
    return cache[key]
