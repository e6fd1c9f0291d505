"""Java class file reader (JVM spec chapter 4, versions 45-61: Java 1.1 to 17): the constant pool
(incl. MethodHandle, MethodType, Dynamic, InvokeDynamic, Module, Package), fields with their
ConstantValue, methods with Code (exception table, LineNumberTable), SourceFile and
BootstrapMethods. Every count, length and pool index is checked; a bad file gives one FormatError.

Classes come out as dex.ClassDef (JvmClass) with dex.Method/MethodRef/FieldRef, so the dex
interpreter's class model (resolution, natives, reflection) serves both; methods hold a JvmCode."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from cerebro.binread import FormatError, Reader, count_limit
from cerebro.loaders.dex import ACC_STATIC, ClassDef, FieldRef, Method, MethodRef

MAGIC = 0xCAFEBABE
MAX_VERSION = 61  # Java 17
ACC_PRIVATE, ACC_INTERFACE, ACC_ABSTRACT = 0x2, 0x200, 0x400
MAX_CODE = 65535  # code_length < 65536 (JVM spec 4.7.3)
# constant pool tags: name, and bytes of payload (None: u2 length + bytes)
TAGS: dict[int, tuple[str, int | None]] = {
    1: ("Utf8", None), 3: ("Integer", 4), 4: ("Float", 4), 5: ("Long", 8), 6: ("Double", 8), 7: ("Class", 2),
    8: ("String", 2), 9: ("Fieldref", 4), 10: ("Methodref", 4), 11: ("InterfaceMethodref", 4),
    12: ("NameAndType", 4), 15: ("MethodHandle", 3), 16: ("MethodType", 2), 17: ("Dynamic", 4),
    18: ("InvokeDynamic", 4), 19: ("Module", 2), 20: ("Package", 2)}
FIELD_TYPE = r"\[{0,255}(?:[ZBCSIJFD]|L[^;\[.]+;)"
FIELD_DESCRIPTOR = re.compile(FIELD_TYPE)
METHOD_DESCRIPTOR = re.compile(rf"\(((?:{FIELD_TYPE})*)\)({FIELD_TYPE}|V)")
PARAM = re.compile(FIELD_TYPE)


@dataclass(frozen=True)
class Handle:
    """A CONSTANT_MethodHandle: reference kind (1-9, JVM spec 5.4.3.5) and the member it names."""
    kind: int
    ref: MethodRef | FieldRef


@dataclass(frozen=True)
class Bootstrap:
    """One BootstrapMethods entry: the bootstrap method's handle and its static arguments."""
    handle: Handle
    args: tuple


class ConstantPool:
    """Entries as (tag, raw payload); readers check the tag of every index they follow."""

    def __init__(self, entries: list[tuple[int, object]], what: str):
        self.entries = entries
        self.what = what

    def _entry(self, index: int, tags: tuple[int, ...], item: str):
        if not 0 < index < len(self.entries) or self.entries[index][0] not in tags:
            got = self.entries[index][0] if 0 < index < len(self.entries) else None
            raise FormatError(f"{self.what}: constant pool index {index} for {item} is "
                              + ("out of range" if got is None else f"a {TAGS.get(got, ('unusable',))[0]} entry")
                              + f" (pool has {len(self.entries)} entries)")
        return self.entries[index][1]

    def utf8(self, index: int, item: str = "a name") -> str:
        return self._entry(index, (1,), item)

    def integer(self, index: int, item: str) -> int:
        return self._entry(index, (3,), item)

    def class_name(self, index: int) -> str:
        """A class as a descriptor: Lorg/x/Main; (arrays keep their [ form)."""
        name = self.utf8(self._entry(index, (7,), "a class"), "a class name")
        desc = name if name.startswith("[") else f"L{name};"
        if not FIELD_DESCRIPTOR.fullmatch(desc):
            raise FormatError(f"{self.what}: bad class name {name!r}")
        return desc

    def name_and_type(self, index: int) -> tuple[str, str]:
        name, desc = self._entry(index, (12,), "a name and type")
        return self.utf8(name), self.utf8(desc, "a descriptor")

    def member(self, index: int, tags: tuple[int, ...] = (9, 10, 11)) -> MethodRef | FieldRef:
        owner, nat = self._entry(index, tags, "a field or method")
        cls = self.class_name(owner)
        name, desc = self.name_and_type(nat)
        return field_ref(cls, name, desc, self.what) if desc[:1] != "(" else method_ref(cls, name, desc, self.what)

    def method(self, index: int) -> MethodRef:
        ref = self.member(index, (10, 11))
        if not isinstance(ref, MethodRef):
            raise FormatError(f"{self.what}: constant {index} names a method with a field type")
        return ref

    def field(self, index: int) -> FieldRef:
        ref = self.member(index, (9,))
        if not isinstance(ref, FieldRef):
            raise FormatError(f"{self.what}: constant {index} names a field with a method type")
        return ref

    def handle(self, index: int) -> Handle:
        kind, ref = self._entry(index, (15,), "a method handle")
        if not 1 <= kind <= 9:
            raise FormatError(f"{self.what}: method handle {index} has reference kind {kind}")
        return Handle(kind, self.member(ref, (9,) if kind <= 4 else (10, 11)))

    def method_type(self, index: int) -> tuple[tuple[str, ...], str]:
        return parse_method_descriptor(self.utf8(self._entry(index, (16,), "a method type"), "a descriptor"),
                                       self.what)

    def invoke_dynamic(self, index: int) -> tuple[int, str, str]:
        """(bootstrap index, name, descriptor) of an InvokeDynamic entry."""
        boot, nat = self._entry(index, (18,), "invokedynamic")
        return (boot, *self.name_and_type(nat))

    def loadable(self, index: int, wide: bool) -> tuple[str, object]:
        """(type letter, value) that ldc (wide: ldc2_w) pushes: I/F bits/J/D bits, a String, a Class,
        a MethodType or MethodHandle (as their parsed forms)."""
        tags = (5, 6) if wide else (3, 4, 7, 8, 15, 16)
        tag, value = self.entries[index] if 0 < index < len(self.entries) else (None, None)
        self._entry(index, tags, "ldc" + ("2_w" if wide else ""))
        if tag in (3, 4, 5, 6):
            return "IFJD"[tag - 3], value
        if tag == 8:
            return "String", sys.intern(self.utf8(value, "a string"))
        if tag == 7:
            return "Class", self.class_name(index)
        if tag == 15:
            return "MethodHandle", self.handle(index)
        return "MethodType", self.method_type(index)


def parse_method_descriptor(desc: str, what: str) -> tuple[tuple[str, ...], str]:
    m = METHOD_DESCRIPTOR.fullmatch(desc)
    if m is None:
        raise FormatError(f"{what}: bad method descriptor {desc[:200]!r}")
    return tuple(PARAM.findall(m.group(1))), m.group(2)


def method_ref(cls: str, name: str, desc: str, what: str) -> MethodRef:
    params, ret = parse_method_descriptor(desc, what)
    return MethodRef(cls, name, ret[0] + "".join(p[0] if p[0] not in "[" else "L" for p in params), params, ret)


def field_ref(cls: str, name: str, desc: str, what: str) -> FieldRef:
    if not FIELD_DESCRIPTOR.fullmatch(desc):
        raise FormatError(f"{what}: bad field descriptor {desc[:200]!r}")
    return FieldRef(cls, name, desc)


def arg_words(params: tuple[str, ...]) -> int:
    return sum(2 if p in ("J", "D") else 1 for p in params)


@dataclass
class JvmCode:
    """A method's Code attribute; `insns` is filled by jvmcode.decode (instructions by offset)."""
    max_stack: int
    max_locals: int
    code: bytes
    exceptions: list[tuple[int, int, int, str | None]]  # start, end, handler, class (None: any)
    lines: list[tuple[int, int]]  # (start pc, line), as LineNumberTable lists them
    pool: ConstantPool
    insns: list = field(default_factory=list)

    def line_at(self, pc: int) -> int | None:
        best = None
        for start, line in self.lines:
            if start <= pc and (best is None or start >= best[0]):
                best = (start, line)
        return None if best is None else best[1]


@dataclass
class JvmClass(ClassDef):
    version: tuple[int, int] = (0, 0)
    pool: ConstantPool | None = None
    constants: dict[str, object] = field(default_factory=dict)  # static field -> ConstantValue
    bootstraps: list[Bootstrap] = field(default_factory=list)


def _modified_utf8(raw: bytes, what: str) -> str:
    """Java's modified UTF-8: NUL as C0 80, characters past U+FFFF as two encoded surrogates (joined
    into one here; a lone surrogate, which Java allows, stays)."""
    try:
        text = raw.replace(b"\xc0\x80", b"\0").decode("utf-8", "surrogatepass")
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass") if any(
            0xD800 <= ord(c) <= 0xDFFF for c in text) else text
    except UnicodeError:
        raise FormatError(f"{what}: a Utf8 constant is not valid modified UTF-8") from None


def _read_pool(r: Reader, p: int, what: str) -> tuple[ConstantPool, int]:
    count = r.u16(p, "constant pool count")
    count_limit(count - 1, 3, len(r) - p, what, "constant pool entry")
    p += 2
    entries: list[tuple[int, object]] = [(0, None)]
    while len(entries) < count:
        tag = r.u8(p, "constant tag")
        if tag not in TAGS:
            raise FormatError(f"{what}: constant {len(entries)} has unknown tag {tag}")
        size = TAGS[tag][1]
        if size is None:
            n = r.u16(p + 1, "Utf8 length")
            entries.append((tag, _modified_utf8(r.bytes(p + 3, n, "Utf8 constant"), what)))
            p += 3 + n
            continue
        raw = r.bytes(p + 1, size, f"{TAGS[tag][0]} constant")
        value: object = (int.from_bytes(raw, "big", signed=True) if tag in (3, 4, 5, 6)
                         else (raw[0], int.from_bytes(raw[1:], "big")) if tag == 15
                         else (int.from_bytes(raw[:2], "big"), int.from_bytes(raw[2:], "big")) if size == 4
                         else int.from_bytes(raw, "big"))
        entries.append((tag, value))
        p += 1 + size
        if tag in (5, 6):  # 8-byte constants take two slots; the second is unusable
            if len(entries) >= count:
                raise FormatError(f"{what}: a {TAGS[tag][0]} constant takes the pool's last slot")
            entries.append((0, None))
    return ConstantPool(entries, what), p


def _attributes(r: Reader, p: int, pool: ConstantPool, what: str) -> tuple[dict[str, bytes], int]:
    """name -> bytes of each attribute (the first of a name); the offset after them."""
    n = r.u16(p, "attribute count")
    count_limit(n, 6, len(r) - p, what, "attribute")
    p += 2
    out: dict[str, bytes] = {}
    for _ in range(n):
        name = pool.utf8(r.u16(p, "attribute name"), "an attribute name")
        size = r.u32(p + 2, "attribute length")
        out.setdefault(name, r.bytes(p + 6, size, f"attribute {name}"))
        p += 6 + size
    return out, p


def _code(raw: bytes, pool: ConstantPool, what: str) -> JvmCode:
    r = Reader(raw, what + " Code attribute", ">")
    max_stack, max_locals, length = r.unpack("HHI", 0, "Code header")
    if not 0 < length <= MAX_CODE:
        raise FormatError(f"{what}: code length {length} is outside 1..{MAX_CODE}")
    code = r.bytes(8, length, "code")
    p = 8 + length
    n = r.u16(p, "exception table length")
    count_limit(n, 8, len(raw) - p, what, "exception table entry")
    exceptions = []
    for k in range(n):
        start, end, handler, ctype = r.unpack("HHHH", p + 2 + 8 * k, "exception table entry")
        if not (start < end <= length and handler < length):
            raise FormatError(f"{what}: exception table entry {k} ({start}-{end} -> {handler}) lies outside "
                              f"the code ({length} bytes)")
        exceptions.append((start, end, handler, pool.class_name(ctype) if ctype else None))
    attrs, _ = _attributes(r, p + 2 + 8 * n, pool, what)
    lines = []
    if "LineNumberTable" in attrs:
        t = Reader(attrs["LineNumberTable"], what + " LineNumberTable", ">")
        m = t.u16(0, "line count")
        count_limit(m, 4, len(t) - 2, what, "line number")
        lines = [t.unpack("HH", 2 + 4 * k, "line number") for k in range(m)]
    return JvmCode(max_stack, max_locals, code, exceptions, lines, pool)


def _bootstraps(raw: bytes, pool: ConstantPool, what: str) -> list[Bootstrap]:
    r = Reader(raw, what + " BootstrapMethods", ">")
    n, p, out = r.u16(0, "bootstrap count"), 2, []
    count_limit(n, 4, len(r) - 2, what, "bootstrap method")
    for _ in range(n):
        handle, nargs = r.unpack("HH", p, "bootstrap method")
        args = tuple(r.u16(p + 4 + 2 * k, "bootstrap argument") for k in range(nargs))
        out.append(Bootstrap(pool.handle(handle), args))
        p += 4 + 2 * nargs
    return out


def parse_class(data: bytes, what: str = "class file") -> JvmClass:
    r = Reader(data, what, ">")
    if len(data) < 10 or r.u32(0) != MAGIC:
        raise FormatError(f"{what}: not a Java class file (no CAFEBABE magic)")
    minor, major = r.unpack("HH", 4)
    if not 45 <= major <= MAX_VERSION:
        raise FormatError(f"{what}: class file version {major}.{minor} is not one of Java 1.1-17 (45-{MAX_VERSION})")
    pool, p = _read_pool(r, 8, what)
    access, this, sup, nif = r.unpack("HHHH", p, "class header")
    name = pool.class_name(this)
    what = f"{what} ({name[1:-1]})"
    pool.what = what
    count_limit(nif, 2, len(data) - p, what, "interface")
    interfaces = tuple(pool.class_name(r.u16(p + 8 + 2 * k)) for k in range(nif))
    c = JvmClass(name, access, pool.class_name(sup) if sup else None, None, interfaces=interfaces,
                 version=(major, minor), pool=pool)
    p += 8 + 2 * nif
    p = _fields(r, p, c, what)
    p = _methods(r, p, c, what)
    attrs, p = _attributes(r, p, pool, what)
    if p != len(data):
        raise FormatError(f"{what}: {len(data) - p} bytes after the class's last attribute")
    if "SourceFile" in attrs and len(attrs["SourceFile"]) == 2:
        c.source_file = pool.utf8(int.from_bytes(attrs["SourceFile"], "big"), "the source file")
    if "BootstrapMethods" in attrs:
        c.bootstraps = _bootstraps(attrs["BootstrapMethods"], pool, what)
    return c


def _members(r: Reader, p: int, c: JvmClass, what: str, kind: str,
             make_ref: Callable[[str, str, str, str], MethodRef | FieldRef], take: Callable[..., None]) -> int:
    """Reads a field or method table (count, then access, name, descriptor and attributes of each),
    handing each member to `take`; returns the offset after the table."""
    n = r.u16(p, f"{kind} count")
    count_limit(n, 8, len(r) - p, what, kind)
    p += 2
    for index in range(n):
        access, name, desc = r.unpack("HHH", p, kind)
        ref = make_ref(c.name, c.pool.utf8(name), c.pool.utf8(desc, "a descriptor"), what)
        attrs, p = _attributes(r, p + 6, c.pool, what)
        take(index, access, ref, attrs)
    return p


def _fields(r: Reader, p: int, c: JvmClass, what: str) -> int:
    def take(_index: int, access: int, f: FieldRef, attrs: dict[str, bytes]) -> None:
        if access & ACC_STATIC:
            c.static_fields.append(f)
            if len(attrs.get("ConstantValue", b"")) == 2:
                _kind, value = c.pool.loadable(int.from_bytes(attrs["ConstantValue"], "big"), f.type in "JD")
                c.constants[f.name] = value
        else:
            c.instance_fields.append(f)
    return _members(r, p, c, what, "field", field_ref, take)


def _methods(r: Reader, p: int, c: JvmClass, what: str) -> int:
    def take(index: int, access: int, ref: MethodRef, attrs: dict[str, bytes]) -> None:
        code = _code(attrs["Code"], c.pool, f"{what} {ref.name}") if "Code" in attrs else None
        if code is not None and code.max_locals < arg_words(ref.params) + (not access & ACC_STATIC):
            raise FormatError(f"{what}: {ref.name} has {code.max_locals} locals, fewer than its arguments")
        m = Method(ref, index, access, code)
        direct = access & (ACC_STATIC | ACC_PRIVATE) or ref.name in ("<init>", "<clinit>")
        (c.direct_methods if direct else c.virtual_methods).append(m)
    return _members(r, p, c, what, "method", method_ref, take)
