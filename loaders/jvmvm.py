"""Runs `main(String[])` of Java class files: the dex interpreter (DexVM) with JVM bytecode frames.

Everything but the instructions is DexVM's: class and method resolution, the library (dexnative,
dexlib_*), exceptions and their stack traces, the heap limit, the instruction budget, threads on
the deterministic scheduler (dexlib_threads), reflection. What the JVM adds: an operand stack per frame (jvmops), class
initialisation superclass first with ConstantValue statics, interface default methods, line
numbers in stack traces (`at Main.f(Main.java:12)`, as the JVM prints them), and invokedynamic
for what javac 17 emits: string concatenation (StringConcatFactory) and lambdas / method
references (LambdaMetafactory), records (ObjectMethods): jvmindy.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from cerebro.binread import FormatError
from cerebro.loaders.classfile import JvmClass, JvmCode
from cerebro.loaders.dex import Method, MethodRef, class_descriptor
from cerebro.loaders.dexexc import CAUSE, MESSAGE, TRACE, JavaThrow, JObject, java_name
from cerebro.loaders.dexheap import MAX_HEAP, HeapExhausted
from cerebro.loaders.dexlib_lang import JClass, StringPlaceholder
from cerebro.loaders.dexnative import STATIC_FIELDS
from cerebro.loaders.dexvm import MAX_DEPTH, MAX_STEPS, BudgetExhausted, DexVM, run_vm
from cerebro.loaders.jvmcode import decode
from cerebro.loaders.jvmindy import InvokeDynamic, LambdaCode
from cerebro.loaders.jvmnpe import null_message
from cerebro.loaders.jvmops import TOP, pop_value, pop_words, push_value

ACC_SYNCHRONIZED = 0x20
JDK_PACKAGES = ("Ljava/", "Ljavax/", "Ljdk/", "Lsun/", "Lcom/sun/")
ERROR, INIT_ERROR = "Ljava/lang/Error;", "Ljava/lang/ExceptionInInitializerError;"
PYTHON_ERRORS = (IndexError, TypeError, KeyError, AttributeError, ValueError, OverflowError, ZeroDivisionError)


@dataclass(eq=False)
class JFrame:
    method: Method
    locals: list
    stack: list = field(default_factory=list)
    pc: int = 0
    done: bool = False
    result: object = None

    @property
    def ref(self) -> MethodRef:
        return self.method.ref


class JvmVM(InvokeDynamic, DexVM):
    KIND = "jar"

    def __init__(self, classes: list[JvmClass], stdout=None, stderr=None, max_steps: int = MAX_STEPS,
                 max_heap: int = MAX_HEAP, stdin=None):
        super().__init__([], stdout, stderr, max_steps, max_heap, stdin)
        for c in classes:
            self.classes.setdefault(c.name, (None, c))
        self.call_sites: dict[tuple[str, str, int], object] = {}  # invokedynamic site -> lambda class
        self.static_keys: dict[tuple[str, str], tuple[str, str]] = {}
        self.failed_init: set[str] = set()  # classes whose <clinit> threw
        self.npe_messages: dict[tuple[int, int], str | None] = {}

    # ---- classes ----
    def ensure_init(self, cls: str) -> None:
        """Superclass first, then ConstantValue statics and <clinit> (JVM spec 5.5)."""
        if cls in self.failed_init:
            raise JavaThrow("java.lang.NoClassDefFoundError", f"Could not initialize class {java_name(cls)}")
        if cls in self.initialised or cls not in self.classes:
            return
        self.initialised.add(cls)
        c = self.classes[cls][1]
        if c.superclass is not None:
            self.ensure_init(c.superclass)
        for f in c.static_fields:
            self.statics[(cls, f.name)] = c.constants.get(f.name, None if f.type[0] in "L[" else 0)
        clinit = next((m for m in c.direct_methods if m.ref.name == "<clinit>"), None)
        if clinit is not None:
            try:
                self.invoke(clinit, [])
            except JavaThrow as e:  # the class is unusable from now on; an Exception is wrapped
                self.failed_init.add(cls)
                if ERROR in self.ancestors(e.exception.cls):
                    raise
                error = JObject(INIT_ERROR, {MESSAGE: None, CAUSE: e.exception, TRACE: self.trace()})
                raise JavaThrow(INIT_ERROR, exception=error) from None

    def _search_method(self, ref: MethodRef, start: str) -> Method | None:
        """The superclasses' method with code, else an interface's default method."""
        for cls in self.ancestors(start):
            if cls not in self.classes:
                break
            for m in self.classes[cls][1].direct_methods + self.classes[cls][1].virtual_methods:
                if m.ref.name == ref.name and m.ref.params == ref.params and m.ref.ret == ref.ret \
                        and m.code is not None:
                    return m
        for iface in sorted(self.interfaces_of(start) | {start}):
            for m in self.classes[iface][1].virtual_methods if iface in self.classes else ():
                if m.ref.name == ref.name and m.ref.params == ref.params and m.code is not None:
                    return m
        return None

    def static_key(self, ref) -> tuple[str, str]:
        """(declaring class, name) of a static field named through ref's class or a subclass."""
        key = (ref.class_name, ref.name)
        if key not in self.static_keys:
            owners = [c for c in (*self.ancestors(ref.class_name), *sorted(self.interfaces_of(ref.class_name)))
                      if c in self.classes and any(f.name == ref.name for f in self.classes[c][1].static_fields)]
            self.static_keys[key] = (owners[0], ref.name) if owners else key
        return self.static_keys[key]

    # ---- frames ----
    def invoke(self, method: Method, args: list) -> object:
        code = method.code
        if isinstance(code, LambdaCode):
            return self.call_lambda(code, args)
        if not isinstance(code, JvmCode):
            raise FormatError(f"jar: method {method.ref} has no code (abstract or native)")
        if not code.insns:
            code.insns = decode(code, method.ref.name)
        if self.depth >= MAX_DEPTH:
            raise JavaThrow("java.lang.StackOverflowError", None)
        self.allocate(8 * (code.max_locals + code.max_stack) + 64)
        local: list = [None] * code.max_locals
        slot = 0
        for kind, value in zip(([] if method.is_static else ["L"]) + list(method.ref.params), args, strict=True):
            local[slot] = value
            if kind in ("J", "D"):
                local[slot + 1] = TOP
            slot += 2 if kind in ("J", "D") else 1
        frame = JFrame(method, local)
        lock = None
        if method.access & ACC_SYNCHRONIZED:  # the receiver's monitor, or the class's for a static method
            lock = JClass(method.ref.class_name) if method.is_static else args[0]
            self.scheduler.enter(lock)
        self.depth += 1
        self.stack.append(frame)
        try:
            return self.run(frame)
        finally:
            self.depth -= 1
            self.stack.pop()
            if lock is not None:
                self.scheduler.exit(lock)

    def run(self, f: JFrame) -> object:
        insns = f.method.code.insns
        while True:
            ins = insns[f.pc]
            self.steps_left -= 1
            if self.steps_left < 0:
                raise BudgetExhausted("jar: instruction budget exhausted (infinite loop?)")
            try:
                self.execute_one(f, ins)
            except JavaThrow as e:
                if TRACE not in e.exception.fields:  # one the VM or the library raised: made here
                    e.exception.fields[TRACE] = self.trace()
                target = self.handler_for(f, e.exception)
                if target is None:
                    raise
                f.stack[:] = [e.exception]
                f.pc = target
                continue
            if f.done:
                return f.result

    def execute_one(self, f: JFrame, ins) -> None:
        """One instruction; Python's errors from malformed code become FormatError, lack of memory
        Java's OutOfMemoryError."""
        try:
            if not self.steps_left & 0xFFFF:
                self.heap.check()
            ins.run(self, f, ins, None)
        except (HeapExhausted, MemoryError) as e:
            raise JavaThrow("java.lang.OutOfMemoryError", str(e) or "Java heap space") from None
        except FormatError:
            raise
        except PYTHON_ERRORS as e:
            raise FormatError(f"jar: malformed or unsupported code at {f.method.ref}+{f.pc} "
                              f"({type(e).__name__}: {e})") from None

    def null_pointer(self, f: JFrame, ins) -> JavaThrow:
        """The NullPointerException of ins, with the message the JVM gives it (jvmnpe)."""
        return JavaThrow("java.lang.NullPointerException", null_message(f.method, ins.pc, self.npe_messages))

    def handler_for(self, f: JFrame, exc: JObject) -> int | None:
        classes = self.ancestors(exc.cls)
        for start, end, handler, cls in f.method.code.exceptions:
            if start <= f.pc < end and (cls is None or cls in classes):
                return handler
        return None

    def trace(self) -> tuple[tuple[str, str, str], ...]:
        """(class, method, `File.java:line`) of each running method, innermost first."""
        out = []
        for fr in reversed(self.stack):
            ref = fr.method.ref
            source = getattr(self.classes.get(ref.class_name, (None, None))[1], "source_file", None)
            line = fr.method.code.line_at(fr.pc)
            out.append((ref.class_name, ref.name, "Unknown Source" if source is None
                        else source if line is None else f"{source}:{line}"))
        return tuple(out)

    # ---- instructions that reach the VM ----
    def field_access(self, f: JFrame, ins) -> None:
        ref, op, s = ins.a, ins.op, f.stack
        wide = ref.type in ("J", "D")
        if op == 0xB2:
            if (ref.class_name, ref.name) in STATIC_FIELDS:
                push_value(s, STATIC_FIELDS[(ref.class_name, ref.name)](self), wide)
                return
            key = self.static_key(ref)
            self.ensure_init(key[0])
            if key not in self.statics:
                raise FormatError(f"jar: static field {ref.class_name[1:-1]}.{ref.name} is not in the jar and "
                                  "not supported")
            push_value(s, self.statics[key], wide)
        elif op == 0xB3:
            key = self.static_key(ref)
            self.ensure_init(key[0])
            self.statics[key] = pop_value(s, wide)
        else:
            value = pop_value(s, wide) if op == 0xB5 else None
            obj = s.pop()
            if obj is None:
                raise self.null_pointer(f, ins)
            if not isinstance(obj, JObject):
                raise FormatError(f"jar: field {ref.name} of a {type(obj).__name__}, not an object of the jar")
            if op == 0xB4:
                push_value(s, obj.fields.get(ref.name, None if ref.type[0] in "L[" else 0), wide)
            else:
                obj.fields[ref.name] = value

    def invoke_insn(self, f: JFrame, ins) -> None:
        s = f.stack
        values = pop_words(s, ins.pops)
        ref = ins.a
        if ins.b != "static" and values[0] is None:
            raise self.null_pointer(f, ins)
        result = self.call(ref, values, ins.b)
        if values and isinstance(values[0], StringPlaceholder):  # new String(...): the string replaces it
            s[:] = [result if v is values[0] else v for v in s]
            f.locals[:] = [result if v is values[0] else v for v in f.locals]
        if ref.ret != "V":
            push_value(s, result, ref.ret in ("J", "D"))


def run_classes(classes: list[JvmClass], class_name: str, args: list[str], stdout=None, stderr=None,
                max_steps: int = MAX_STEPS, max_heap: int = MAX_HEAP, stdin=None) -> int:
    """Runs class_name.main(String[]) (org.x.Main or Lorg/x/Main;); the exit status (1: uncaught exception)."""
    vm = JvmVM(classes, stdout, stderr, max_steps, max_heap, stdin)
    missing = unloadable_signature_class(vm, class_descriptor(class_name))
    if missing is not None:  # what the java launcher's look-up of main (Class.getMethod) runs into
        vm.err.stream.write(f"Error: Unable to initialize main class {java_name(class_descriptor(class_name))}\n"
                            f"Caused by: java.lang.NoClassDefFoundError: {missing[1:-1]}\n")
        return 1
    return run_vm(vm, class_name, args)


def unloadable_signature_class(vm: JvmVM, cls: str) -> str | None:
    """A class named in the parameter or return types of cls's public methods that is neither in the
    jar nor the JDK's (java.*, javax.*, jdk.*, sun.*, com.sun.*): the JVM resolves them all when the
    launcher looks main up, and fails with NoClassDefFoundError."""
    c = vm.classes.get(cls, (None, None))[1]
    for m in (c.direct_methods + c.virtual_methods) if c is not None else ():
        for t in (*m.ref.params, m.ref.ret) if m.access & 1 else ():
            name = t.lstrip("[")
            if name.startswith("L") and name not in vm.classes and not name.startswith(JDK_PACKAGES):
                return name
    return None
