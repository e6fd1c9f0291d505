"""How the dex interpreter reaches its library (dexlib_lang, dexlib_util): which native a call means,
Java's type of a library object (instanceof, check-cast), and the callbacks the library needs
(toString, compareTo/Comparator, Iterable, Runnable) into program code. A mixin of DexVM."""

from __future__ import annotations

from collections.abc import Callable

from cerebro.binread import FormatError
from cerebro.loaders import (
    dexlib_io,
    dexlib_lang,
    dexlib_system,
    dexlib_threads,
    dexlib_util,
    jvmlib_logging,
    jvmlib_stream,
    jvmlib_util,
)
from cerebro.loaders.dex import Method, MethodRef
from cerebro.loaders.dexexc import MESSAGE, OBJECT, THROWABLE, JavaThrow, JObject, describe, java_name
from cerebro.loaders.dexlib_lang import JBox, JClass, StringBuilder, throw
from cerebro.loaders.dexvalues import JArray, copy_array, is_null, java_str

LIBRARY = (dexlib_lang, dexlib_util, dexlib_io, dexlib_system, dexlib_threads, jvmlib_logging, jvmlib_stream,
           jvmlib_util)
NATIVES: dict[str, Callable] = {k: v for lib in LIBRARY for k, v in lib.NATIVES.items()}
METHODS: dict[type, dict[str, Callable]] = {k: v for lib in LIBRARY for k, v in lib.METHODS.items()}
NATIVE_CLASSES: dict[str, Callable] = {k: v for lib in LIBRARY for k, v in lib.NATIVE_CLASSES.items()}
STATIC_FIELDS: dict[tuple[str, str], Callable] = {**dexlib_lang.STATIC_FIELDS, **dexlib_io.STATIC_FIELDS,
                                                   **dexlib_system.STATIC_FIELDS, **jvmlib_logging.STATIC_FIELDS}
# Java's supertypes of the library's objects, for instanceof and check-cast
LIBRARY_TYPES: dict[type, tuple[str, ...]] = {
    str: ("Ljava/lang/String;", "Ljava/lang/CharSequence;", "Ljava/lang/Comparable;"),
    StringBuilder: ("Ljava/lang/StringBuilder;", "Ljava/lang/CharSequence;"),
    JClass: ("Ljava/lang/Class;",), dexlib_lang.JMethod: ("Ljava/lang/reflect/Method;",),
    **dexlib_util.INTERFACES}
LIBRARY_SUPERTYPES: dict[str, tuple[str, ...]] = {names[0]: names[1:] for names in LIBRARY_TYPES.values()}
ARRAY_SUPERTYPES = (OBJECT, "Ljava/lang/Cloneable;", "Ljava/io/Serializable;")


OBJECT_METHODS: dict[str, Callable] = {  # java.lang.Object's, for program objects that do not override them
    "hashCode()I": lambda vm, o: id(o) >> 4 & 0x7FFFFFFF,
    "equals(Ljava/lang/Object;)Z": lambda vm, o, other: int(o is other),
    "toString()Ljava/lang/String;": lambda vm, o: java_str(o),
    "getClass()Ljava/lang/Class;": lambda vm, o: JClass(vm.class_name(o)),
    **dexlib_threads.OBJECT_METHODS,
}


def signature(ref: MethodRef) -> str:
    return f"{ref.name}({''.join(ref.params)}){ref.ret}"


class NativeDispatch:
    """Library calls and the library's calls back into the program (needs DexVM's classes/ancestors/call)."""

    def native_for(self, ref: MethodRef, args: list, kind: str) -> Callable | None:
        sig = signature(ref)
        receiver = args[0] if args and kind != "static" else None
        if type(receiver) in (list, JArray) and sig == "clone()Ljava/lang/Object;":  # an array's clone()
            return lambda vm, array: (vm.allocate(8 * len(array) + 64), copy_array(array, array))[1]
        if receiver is not None and not isinstance(receiver, JObject):
            for pytype in type(receiver).__mro__:
                found = METHODS.get(pytype, {}).get(sig)
                if found is not None:
                    return found
            return NATIVES.get(f"{ref.class_name}->{sig}") or OBJECT_METHODS.get(sig)
        owners = self.ancestors(receiver.cls) if isinstance(receiver, JObject) else ()
        for owner in (ref.class_name, *owners):
            found = NATIVES.get(f"{owner}->{sig}")
            if found is not None:
                return found
        if isinstance(receiver, JObject) and THROWABLE in self.ancestors(receiver.cls):
            if ref.name == "<init>" and ref.ret == "V" and sig[6:] in dexlib_lang.THROWABLE_CONSTRUCTORS:
                return dexlib_lang.init_throwable
            found = dexlib_lang.THROWABLE_METHODS.get(sig)
            if found is not None:
                return found
        return OBJECT_METHODS.get(sig) if isinstance(receiver, JObject) else None

    def call_native_method(self, receiver, sig: str):
        for pytype in type(receiver).__mro__:
            if sig in METHODS.get(pytype, {}):
                return METHODS[pytype][sig](self, receiver)
        raise FormatError(f"dex: no library method {sig} for {type(receiver).__name__}")

    # ---- types ----
    def class_name(self, value) -> str:
        if isinstance(value, JObject):
            return value.cls
        if isinstance(value, JBox):
            return f"Ljava/lang/{dexlib_lang.BOX_CLASSES[value.kind]};"
        if isinstance(value, str):
            return "Ljava/lang/String;"
        if isinstance(value, JArray):
            return value.type
        for pytype in type(value).__mro__:
            if hasattr(pytype, "java_class"):
                return pytype.java_class
        return LIBRARY_TYPES.get(type(value), (OBJECT,))[0]

    def is_instance(self, value, desc: str) -> bool:
        if is_null(value) and not isinstance(value, JBox):
            return False
        if desc == OBJECT:
            return True
        if isinstance(value, JObject):
            return desc in self.ancestors(value.cls) or desc in self.interfaces_of(value.cls)
        if isinstance(value, JArray):
            return self.array_is(value.type, desc)
        if isinstance(value, list) and not hasattr(value, "java_class"):
            return desc.startswith("[")  # an array the library made untyped: any array type is accepted
        if isinstance(value, JBox):
            return desc in (self.class_name(value), "Ljava/lang/Number;", "Ljava/lang/Comparable;")
        names = {self.class_name(value)}
        for pytype in type(value).__mro__:
            names.update(LIBRARY_TYPES.get(pytype, ()))
            if hasattr(pytype, "java_class"):
                names.add(pytype.java_class)
        return desc in names

    def array_is(self, array_type: str, desc: str) -> bool:
        """Java's array assignability: every array is an Object, Cloneable and Serializable; primitive
        arrays only their own type; reference arrays are covariant ([String is an [Object, [[I an [Object)."""
        if desc in ARRAY_SUPERTYPES:
            return True
        element, wanted = array_type[1:], desc[1:]
        if not desc.startswith("[") or element[0] not in "L[" or wanted[0] not in "L[":
            return element == wanted and desc.startswith("[")
        if element.startswith("["):
            return self.array_is(element, wanted) if wanted.startswith("[") else wanted in ARRAY_SUPERTYPES
        return (not wanted.startswith("[") and wanted in self.ancestors(element) or wanted in
                self.interfaces_of(element) or wanted in LIBRARY_SUPERTYPES.get(element, ()))

    def interfaces_of(self, cls: str) -> set[str]:
        out: set[str] = set()
        for c in self.ancestors(cls):
            if c in self.classes:
                out.update(self.classes[c][1].interfaces)
        pending = list(out)
        while pending:  # interfaces' own superinterfaces, within the dex
            i = pending.pop()
            if i in self.classes:
                for j in self.classes[i][1].interfaces:
                    if j not in out:
                        out.add(j)
                        pending.append(j)
        return out

    def check_cast(self, value, desc: str) -> None:
        if is_null(value) and not isinstance(value, JBox) or self.is_instance(value, desc):
            return
        src = self.class_name(value)
        raise JavaThrow("java.lang.ClassCastException", f"class {java_name(src)} cannot be cast to class "
                                                        f"{java_name(desc)} ({self._modules(src, desc)})")

    def _modules(self, a: str, b: str) -> str:
        """The JVM's note on where each class lives (the program's: the unnamed module of loader 'app')."""
        def where(c):
            return ("unnamed module of loader 'app'" if c.lstrip("[") in self.classes
                    else "module java.base of loader 'bootstrap'")
        if where(a) == where(b):
            return f"{java_name(a)} and {java_name(b)} are in {where(a)}"
        return f"{java_name(a)} is in {where(a)}; {java_name(b)} is in {where(b)}"

    # ---- callbacks into the program ----
    def virtual(self, receiver: JObject, name: str, params: tuple[str, ...], ret: str) -> Method | None:
        return self.find_method(MethodRef(receiver.cls, name, "", params, ret), receiver.cls)

    def stringify(self, value, kind: str = "L") -> str:
        """String.valueOf / string concatenation of a value: a program object's own toString()."""
        if kind != "L" or value is None or isinstance(value, str):
            return java_str(value, kind)
        if isinstance(value, JObject):
            m = self.virtual(value, "toString", (), "Ljava/lang/String;")
            if m is not None:
                text = self.invoke(m, [value])
                return "null" if text is None else text
            if MESSAGE in value.fields:
                return describe(value)
            if dexlib_lang.ENUM_NAME in value.fields:
                return value.fields[dexlib_lang.ENUM_NAME]
            return f"{java_name(value.cls)}@{id(value) >> 4 & 0xFFFFFFF:x}"
        if hasattr(value, "java_string"):
            return value.java_string(self)
        if isinstance(value, list):
            name = java_name(value.type) if isinstance(value, JArray) else "[Ljava.lang.Object;"
            return f"{name}@{id(value) >> 4 & 0xFFFFFFF:x}"
        return java_str(value, kind)

    def equals(self, a, b) -> bool:
        """a.equals(b): a program object's own equals(), else the library's equality."""
        if isinstance(a, JObject):
            m = self.virtual(a, "equals", (OBJECT,), "Z")
            return bool(self.invoke(m, [a, b])) if m is not None else a is b
        return a == b

    def hash_code(self, obj) -> int:
        if isinstance(obj, JObject):
            m = self.virtual(obj, "hashCode", (), "I")
            return self.invoke(m, [obj]) if m is not None else id(obj) >> 4 & 0x7FFFFFFF
        return dexlib_util.java_hash(self, obj)

    def key(self, value):
        """How a collection holds value as a key: wrapped when the program defines its equality."""
        if isinstance(value, JObject) and self.virtual(value, "equals", (OBJECT,), "Z") is not None:
            return dexlib_util.JavaKey(self, value)
        return value

    def call_interface(self, target, name: str, *args):
        """A functional interface's one method (Runnable.run, Comparator.compare, Consumer.accept, ...)."""
        if hasattr(target, "java_call"):  # one the library made (Comparator.comparing, Function.identity)
            return target.java_call(self, *args)
        if not isinstance(target, JObject):
            throw("java.lang.NullPointerException")
        for m in self._methods_named(target.cls, name, len(args)):
            return self.invoke(m, [target, *args])
        raise FormatError(f"dex: {java_name(target.cls)} has no method {name} with {len(args)} arguments")

    def _methods_named(self, cls: str, name: str, arity: int):
        for c in self.ancestors(cls):
            if c in self.classes:
                for m in self.classes[c][1].virtual_methods:
                    if m.ref.name == name and len(m.ref.params) == arity and m.code is not None:
                        yield m

    def call_compare_to(self, a, b) -> int:
        if isinstance(a, JObject):
            for m in self._methods_named(a.cls, "compareTo", 1):
                return self.invoke(m, [a, b])
            if dexlib_lang.ENUM_ORDINAL in a.fields and isinstance(b, JObject):
                return a.fields[dexlib_lang.ENUM_ORDINAL] - b.fields[dexlib_lang.ENUM_ORDINAL]
        throw("java.lang.ClassCastException", f"class {java_name(self.class_name(a))} cannot be cast to class "
                                              "java.lang.Comparable")

    def compare(self, a, b, comparator=None) -> int:
        if comparator is not None:
            return self.call_interface(comparator, "compare", a, b)
        return dexlib_util.natural_compare(self, a, b)

    def iterate(self, iterable):
        """Python iteration over a Java Iterable (library collections, arrays, a program's Iterable)."""
        if isinstance(iterable, JObject):
            it = self.call_interface(iterable, "iterator")
            while self.call_interface(it, "hasNext") if isinstance(it, JObject) else \
                    self.call_native_method(it, "hasNext()Z"):
                yield self.call_interface(it, "next") if isinstance(it, JObject) else \
                    self.call_native_method(it, "next()Ljava/lang/Object;")
            return
        yield from dexlib_util.iterator(self, iterable).items

    # ---- reflection and threads ----
    def class_exists(self, desc: str) -> bool:
        return desc in self.classes or desc in NATIVE_CLASSES

    def find_declared(self, cls: str, name: str, params: tuple[str, ...], public_only: bool = False) -> Method | None:
        for c in self.ancestors(cls):
            if c not in self.classes:
                break
            for m in self.classes[c][1].direct_methods + self.classes[c][1].virtual_methods:
                if m.ref.name == name and m.ref.params == params and (m.access & 1 or not public_only):
                    return m
        return None

    def call_method(self, method: Method, args: list, virtual: bool) -> object:
        if virtual and isinstance(args[0], JObject):
            method = self.find_method(method.ref, args[0].cls) or method
        return self.invoke(method, args)

    def new_object(self, desc: str) -> JObject:
        self.ensure_init(desc)
        self.allocate(256)
        return JObject(desc, {MESSAGE: None} if THROWABLE in self.ancestors(desc) else {})

    def next_thread_number(self) -> int:
        self.threads_made = getattr(self, "threads_made", -1) + 1
        return self.threads_made

    def current_thread(self) -> JObject:
        return self.scheduler.current.obj

    def run_runnable(self, target) -> None:
        if target is not None:
            self.call_interface(target, "run")

    def run_java_thread(self, thread: JObject) -> None:
        """A started thread's body (on its own scheduler thread, with its own stack): run(), and an
        exception it does not catch printed as the JVM prints it."""
        run = self.virtual(thread, "run", (), "V")
        try:
            if run is not None:
                self.invoke(run, [thread])
            else:
                self.run_runnable(thread.fields.get("<target>"))
        except JavaThrow as e:
            self.out.stream.flush()
            self.err.stream.write(f'Exception in thread "{thread.fields.get("<name>")}" '
                                  + dexlib_lang.stack_trace(e.exception))


