"""Dalvik executable (classes.dex) reader: header with checksum and SHA-1 checks, string,
type, proto, field and method tables, class definitions with their methods and code."""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field

from cerebro.binread import FormatError, Reader, count_limit

MAGICS = (b"dex\n035\0", b"dex\n036\0", b"dex\n037\0", b"dex\n038\0", b"dex\n039\0")
ENDIAN_CONSTANT = 0x12345678
NO_INDEX = 0xFFFFFFFF
ACC_STATIC = 0x8
MAX_INSNS = 1 << 20  # code units per method


@dataclass(frozen=True)
class MethodRef:
    class_name: str  # descriptor, e.g. Lorg/x/Hello;
    name: str
    shorty: str
    params: tuple[str, ...]
    ret: str

    def __str__(self) -> str:
        return f"{self.class_name}->{self.name}({''.join(self.params)}){self.ret}"


@dataclass(frozen=True)
class FieldRef:
    class_name: str
    name: str
    type: str


@dataclass(frozen=True)
class TryBlock:
    """Code units [start, end) are covered by handlers: (exception type descriptor or None for
    catch-all, handler address), tried in order."""
    start: int
    end: int
    handlers: tuple[tuple[str | None, int], ...]


@dataclass
class Code:
    registers: int
    ins: int
    outs: int
    insns: list[int]  # 16-bit code units
    tries: list[TryBlock] = field(default_factory=list)

    def handlers_at(self, pc: int) -> tuple[tuple[str | None, int], ...]:
        return next((t.handlers for t in self.tries if t.start <= pc < t.end), ())


@dataclass
class Method:
    ref: MethodRef
    index: int
    access: int
    code: Code | None

    @property
    def is_static(self) -> bool:
        return bool(self.access & ACC_STATIC)


@dataclass
class ClassDef:
    name: str
    access: int
    superclass: str | None
    source_file: str | None
    static_fields: list[FieldRef] = field(default_factory=list)
    instance_fields: list[FieldRef] = field(default_factory=list)
    direct_methods: list[Method] = field(default_factory=list)
    virtual_methods: list[Method] = field(default_factory=list)
    interfaces: tuple[str, ...] = ()

    @property
    def java_name(self) -> str:
        return descriptor_to_java(self.name)


def class_descriptor(name: str) -> str:
    """Lorg/x/Main; for a Java name (org.x.Main, Main) or a descriptor (only `L...;` is one)."""
    return name if name.startswith("L") and name.endswith(";") else "L" + name.replace(".", "/") + ";"


def descriptor_to_java(desc: str) -> str:
    return desc[1:-1].replace("/", ".") if desc.startswith("L") and desc.endswith(";") else desc


@dataclass
class DexFile:
    version: str
    checksum: int
    signature: bytes
    strings: list[str]
    types: list[str]
    methods: list[MethodRef]
    fields: list[FieldRef]
    classes: list[ClassDef]
    data: bytes = b""

    def verify(self) -> list[str]:
        problems = []
        adler = zlib.adler32(self.data[12:])
        if adler != self.checksum:
            problems.append(f"dex checksum mismatch: header {self.checksum:#010x}, computed {adler:#010x}")
        sha = hashlib.sha1(self.data[32:]).digest()
        if sha != self.signature:
            problems.append(f"dex SHA-1 signature mismatch: header {self.signature.hex()}, computed {sha.hex()}")
        return problems

    def find_class(self, name: str) -> ClassDef | None:
        desc = class_descriptor(name)
        return next((c for c in self.classes if c.name == desc), None)

    @classmethod
    def parse(cls, data: bytes) -> DexFile:
        data = bytes(data)
        if data[:8] not in MAGICS:
            raise FormatError(f"DEX: bad magic {data[:8]!r}")
        r = Reader(data, "DEX")
        checksum = r.u32(8)
        signature = r.bytes(12, 20, "signature")
        file_size, header_size, endian = r.unpack("III", 32, "header")
        if endian != ENDIAN_CONSTANT:
            raise FormatError(f"DEX: unsupported endian tag {endian:#x}")
        if file_size != len(data) or header_size != 0x70:
            raise FormatError(f"DEX: header says {file_size} bytes / header {header_size}, file is {len(data)}")
        (_link_size, _link_off, _map_off, nstr, str_off, ntype, type_off, nproto, proto_off, nfield, field_off,
         nmethod, method_off, nclass, class_off) = r.unpack("I" * 15, 44, "header tables")
        for count, off, size, what in ((nstr, str_off, 4, "string id"), (ntype, type_off, 4, "type id"),
                                       (nproto, proto_off, 12, "proto id"), (nfield, field_off, 8, "field id"),
                                       (nmethod, method_off, 8, "method id"), (nclass, class_off, 32, "class def")):
            count_limit(count, size, len(data), "DEX", what)
            if count:
                r.check(off, count * size, f"{what} table")
        strings = [_mutf8(r, r.u32(str_off + 4 * i)) for i in range(nstr)]
        if sum(len(x) for x in strings) > 2 * len(data):  # real string data never overlaps
            raise FormatError("DEX: string table decodes to more text than the file holds (overlapping strings)")

        def s(i: int) -> str:
            if i >= len(strings):
                raise FormatError(f"DEX: string index {i} out of range ({len(strings)})")
            return strings[i]

        types = [s(r.u32(type_off + 4 * i)) for i in range(ntype)]
        for desc in types:
            if not _valid_descriptor(desc):
                raise FormatError(f"DEX: malformed type descriptor {desc[:60]!r}")

        def t(i: int) -> str:
            if i >= len(types):
                raise FormatError(f"DEX: type index {i} out of range ({len(types)})")
            return types[i]

        protos = []
        for i in range(nproto):
            shorty, ret, params_off = r.unpack("III", proto_off + 12 * i, "proto id")
            params: tuple[str, ...] = ()
            if params_off:
                n = r.u32(params_off, "type list")
                count_limit(n, 2, len(data), "DEX", "parameter")
                params = tuple(t(r.u16(params_off + 4 + 2 * k)) for k in range(n))
            protos.append((s(shorty), t(ret), params))
        fields = []
        for i in range(nfield):
            cidx, tidx, nidx = r.unpack("HHI", field_off + 8 * i, "field id")
            fields.append(FieldRef(t(cidx), s(nidx), t(tidx)))
        methods = []
        for i in range(nmethod):
            cidx, pidx, nidx = r.unpack("HHI", method_off + 8 * i, "method id")
            if pidx >= len(protos):
                raise FormatError(f"DEX: method {i} names proto {pidx} of {len(protos)}")
            shorty, ret, params = protos[pidx]
            methods.append(MethodRef(t(cidx), s(nidx), shorty, params, ret))
        dex = cls(data[4:7].decode("ascii", "replace"), checksum, signature, strings, types, methods, fields,
                  [], data)
        budget = [len(data)]  # bytes of class members and code left to read: sharing must not multiply the work
        codes: dict[int, Code] = {}  # code items by offset: methods may share one
        for i in range(nclass):
            cidx, access, sup, ifaces, src, _annot, cdata, _static_values = r.unpack("I" * 8, class_off + 32 * i,
                                                                                     "class def")
            c = ClassDef(t(cidx), access, None if sup == NO_INDEX else t(sup), None if src == NO_INDEX else s(src))
            if ifaces:
                n = r.u32(ifaces, "interface list")
                count_limit(n, 2, len(data), "DEX", "interface")
                c.interfaces = tuple(t(r.u16(ifaces + 4 + 2 * k)) for k in range(n))
            if cdata:
                _read_class_data(dex, r, cdata, c, budget, codes)
            dex.classes.append(c)
        return dex


def _valid_descriptor(desc: str) -> bool:
    body = desc.lstrip("[")
    if len(desc) - len(body) > 255 or not body:
        return False
    if body[0] == "L":
        return len(body) > 2 and body.endswith(";")
    return len(body) == 1 and body in "VZBSCIJFD" and (body != "V" or desc == "V")


def _uleb(r: Reader, p: int) -> tuple[int, int]:
    value = shift = 0
    for _ in range(5):
        b = r.u8(p, "uleb128")
        p += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, p
        shift += 7
    raise FormatError(f"DEX: uleb128 at {p:#x} is longer than 5 bytes")


def _mutf8(r: Reader, off: int) -> str:
    n, p = _uleb(r, off)
    end = r.data.find(b"\0", p, min(len(r.data), p + 3 * n + 1))
    if end < 0:
        raise FormatError(f"DEX: unterminated string at {off:#x}")
    raw = r.data[p:end]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.replace(b"\xc0\x80", b"\0").decode("utf-8", "replace")  # modified UTF-8


def _read_class_data(dex: DexFile, r: Reader, p: int, c: ClassDef, budget: list[int],
                     codes: dict[int, Code]) -> None:
    counts = []
    for _ in range(4):
        n, p = _uleb(r, p)
        count_limit(n, 2, len(r), "DEX", "class member")
        counts.append(n)
    budget[0] -= 2 * sum(counts)
    if budget[0] < 0:
        raise FormatError(f"DEX: class {c.name}: more class members in total than the file can hold")
    for target, n in ((c.static_fields, counts[0]), (c.instance_fields, counts[1])):
        idx = 0
        for _ in range(n):
            diff, p = _uleb(r, p)
            _access, p = _uleb(r, p)
            idx += diff
            if idx >= len(dex.fields):
                raise FormatError(f"DEX: class {c.name} names field {idx} of {len(dex.fields)}")
            target.append(dex.fields[idx])
    for target, n in ((c.direct_methods, counts[2]), (c.virtual_methods, counts[3])):
        idx = 0
        for _ in range(n):
            diff, p = _uleb(r, p)
            access, p = _uleb(r, p)
            code_off, p = _uleb(r, p)
            idx += diff
            if idx >= len(dex.methods):
                raise FormatError(f"DEX: class {c.name} names method {idx} of {len(dex.methods)}")
            if code_off and code_off not in codes:
                codes[code_off] = _read_code(dex, r, code_off, budget)
            code = codes[code_off] if code_off else None
            target.append(Method(dex.methods[idx], idx, access, code))


def _read_code(dex: DexFile, r: Reader, off: int, budget: list[int]) -> Code:
    registers, ins, outs, tries, _debug, n = r.unpack("HHHHII", off, "code item")
    if n > MAX_INSNS:
        raise FormatError(f"DEX: method with {n} code units (limit {MAX_INSNS})")
    if ins > registers:
        raise FormatError(f"DEX: code item at {off:#x} has {ins} ins but {registers} registers")
    budget[0] -= 2 * n + 8 * tries
    if budget[0] < 0:
        raise FormatError("DEX: more code in total than the file can hold (overlapping code items)")
    body = r.bytes(off + 16, 2 * n, "instructions")
    code = Code(registers, ins, outs, list(struct.unpack(f"<{n}H", body)))
    tries_off = off + 16 + 2 * n + 2 * (n % 2 and tries > 0)  # try items are 4-byte aligned
    r.check(tries_off, 8 * tries, "try items")
    lists: dict[int, tuple[tuple[str | None, int], ...]] = {}  # try items share handler lists
    for i in range(tries):
        start, count, handler_off = r.unpack("IHH", tries_off + 8 * i, "try item")
        if handler_off not in lists:
            lists[handler_off] = _read_handlers(dex, r, tries_off + 8 * tries + handler_off, n, budget)
        code.tries.append(TryBlock(start, start + count, lists[handler_off]))
    return code


def _sleb(r: Reader, p: int) -> tuple[int, int]:
    value, end = _uleb(r, p)
    bits = 7 * (end - p)
    return (value - (1 << bits) if value >> (bits - 1) & 1 else value), end


def _read_handlers(dex: DexFile, r: Reader, p: int, n_insns: int,
                   budget: list[int]) -> tuple[tuple[str | None, int], ...]:
    """An encoded_catch_handler: typed (type, address) pairs, then an optional catch-all address."""
    size, p = _sleb(r, p)
    budget[0] -= 2 * abs(size) + 1
    if budget[0] < 0:
        raise FormatError("DEX: more catch handlers in total than the file can hold (overlapping lists)")
    handlers: list[tuple[str | None, int]] = []
    for _ in range(abs(size)):
        type_idx, p = _uleb(r, p)
        addr, p = _uleb(r, p)
        if type_idx >= len(dex.types):
            raise FormatError(f"DEX: catch handler names type {type_idx} of {len(dex.types)}")
        handlers.append((dex.types[type_idx], addr))
    if size <= 0:
        addr, p = _uleb(r, p)
        handlers.append((None, addr))
    if any(addr >= n_insns for _, addr in handlers):
        raise FormatError("DEX: catch handler address outside its method")
    return tuple(handlers)
