"""java.lang for the dex interpreter: printing, String, StringBuilder, boxes (Integer, Long, Double, ...)
with their parsing and toString, Math, System, Throwable, Class and Method (simple reflection), Thread.

Every native takes (vm, receiver-or-first-argument, ...) with register values: float/double as their
bits, boolean as 0/1. NATIVES is keyed by `Lclass;->name(params)ret`; METHODS by the receiver's Python
type and `name(params)ret`, so interface calls (CharSequence, Comparable) reach the same code."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from cerebro.loaders.dex import class_descriptor
from cerebro.loaders.dexexc import CAUSE, MESSAGE, TRACE, JavaThrow, JObject, describe, java_name, stack_trace
from cerebro.loaders.dexregex import bounded_regex, replace_all
from cerebro.loaders.dexvalues import bits32, bits64, f32, f64, i32, i64, java_str

STRING = "Ljava/lang/String;"


class ExitProgram(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class PrintStream:
    def __init__(self, stream):
        self.stream = stream


@dataclass(frozen=True)
class JBox:
    """A boxed primitive (Integer, Long, Double, ...): kind is the shorty letter; equal and hashed as Java's."""
    kind: str
    value: int

    def java_string(self, vm) -> str:
        return java_str(self.value, self.kind)


BOX_CLASSES = {"I": "Integer", "J": "Long", "D": "Double", "F": "Float", "Z": "Boolean", "C": "Character",
               "B": "Byte", "S": "Short"}


class StringBuilder:
    """A mutable string: appended parts, joined when read."""

    def __init__(self):
        self.parts: list[str] = []

    def text(self) -> str:
        if len(self.parts) != 1:
            self.parts = ["".join(self.parts)]
        return self.parts[0]

    def set(self, text: str) -> StringBuilder:
        self.parts = [text]
        return self

    def java_string(self, vm) -> str:
        return self.text()


@dataclass(eq=False)
class JClass:
    desc: str

    def java_string(self, vm) -> str:
        return ("interface " if self.desc in INTERFACES else "class ") + java_name(self.desc)


@dataclass(eq=False)
class JMethod:
    cls: str
    name: str
    params: tuple[str, ...]
    ret: str

    def java_string(self, vm) -> str:
        params = ",".join(map(java_name, self.params))
        return f"public {java_name(self.ret)} {java_name(self.cls)}.{self.name}({params})"


@dataclass(eq=False)
class Charset:
    name: str

    def java_string(self, vm) -> str:
        return self.name


INTERFACES = {"Ljava/lang/Runnable;", "Ljava/lang/Comparable;", "Ljava/lang/CharSequence;", "Ljava/util/List;",
              "Ljava/util/Map;", "Ljava/util/Set;", "Ljava/util/Collection;", "Ljava/util/Iterator;"}
NATIVES: dict[str, Callable] = {}
METHODS: dict[type, dict[str, Callable]] = {str: {}, StringBuilder: {}, JBox: {}, JClass: {}, JMethod: {},
                                            Charset: {}}


def native(*keys: str):
    def register(fn):
        for key in keys:
            NATIVES[key] = fn
        return fn
    return register


def method(pytype: type, *sigs: str):
    def register(fn):
        for sig in sigs:
            METHODS.setdefault(pytype, {})[sig] = fn
        return fn
    return register


def new_string(vm, *parts: str) -> str:
    """A string the program builds: the heap is asked first."""
    vm.allocate(sum(map(len, parts)) + 64)
    return "".join(parts)


def throw(cls: str, message: str | None = None):
    raise JavaThrow(cls, message)


# ---- printing ----
def _print(newline: bool, kind: str):
    def h(vm, stream, value=None):
        text = "" if kind == "V" else vm.stringify(value, kind)
        stream.stream.write(text + ("\n" if newline else ""))
    return h


for _k in "ZCIJFD":
    NATIVES[f"Ljava/io/PrintStream;->println({_k})V"] = _print(True, _k)
    NATIVES[f"Ljava/io/PrintStream;->print({_k})V"] = _print(False, _k)
for _t in (STRING, "Ljava/lang/Object;", "[C"):
    NATIVES[f"Ljava/io/PrintStream;->println({_t})V"] = _print(True, "[C" if _t == "[C" else "L")
    NATIVES[f"Ljava/io/PrintStream;->print({_t})V"] = _print(False, "[C" if _t == "[C" else "L")
NATIVES["Ljava/io/PrintStream;->println()V"] = _print(True, "V")
NATIVES["Ljava/io/PrintStream;->flush()V"] = lambda vm, stream: stream.stream.flush()


@native("Ljava/io/PrintStream;->printf(Ljava/lang/String;[Ljava/lang/Object;)Ljava/io/PrintStream;",
        "Ljava/io/PrintStream;->format(Ljava/lang/String;[Ljava/lang/Object;)Ljava/io/PrintStream;")
def _printf(vm, stream, fmt, args):
    stream.stream.write(java_format(vm, fmt, args))
    return stream


# ---- String.format ----
FORMAT_SPEC = re.compile(r"%(\d+\$)?([-#+ 0,(]*)(\d+)?(\.\d+)?([a-zA-Z%])")


def _unbox(value):
    return value.value if isinstance(value, JBox) else value


def _format_one(vm, flags: str, width: str | None, precision: str | None, conv: str, arg) -> str:
    if conv in "dxXo":
        if not isinstance(arg, JBox) or arg.kind not in "IJBS":
            throw("java.util.IllegalFormatConversionException", f"{conv} != {vm.class_name(arg)}")
        v = arg.value
        if conv == "d":
            text = f"{abs(v):,}" if "," in flags else str(abs(v))
            sign = "-" if v < 0 else "+" if "+" in flags else " " if " " in flags else ""
            text = sign + text
        else:
            bits = 64 if arg.kind == "J" else 32
            text = format(v & ((1 << bits) - 1), {"x": "x", "X": "X", "o": "o"}[conv])
    elif conv in "feE":
        if not isinstance(arg, JBox) or arg.kind not in "FD":
            throw("java.util.IllegalFormatConversionException", f"{conv} != {vm.class_name(arg)}")
        x = f64(arg.value) if arg.kind == "D" else f32(arg.value)
        digits = int(precision[1:]) if precision else 6
        if x != x or x in (math.inf, -math.inf):
            text = "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")
        elif conv == "f":  # Java rounds the shortest decimal form half-up
            shortest = repr(x) if arg.kind == "D" else str(np.float32(x))
            q = Decimal(shortest).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
            text = f"{q:,f}" if "," in flags else f"{q:f}"
            if "+" in flags and x >= 0:
                text = "+" + text
        else:
            text = f"{x:.{digits}{conv}}"
    elif conv in "sS":
        text = "null" if arg is None else vm.stringify(arg)
        if precision:
            text = text[:int(precision[1:])]
        text = text.upper() if conv == "S" else text
    elif conv == "c":
        text = "null" if arg is None else chr(_unbox(arg))
    elif conv in "bB":
        text = "false" if arg is None or (isinstance(arg, JBox) and arg.kind == "Z" and not arg.value) else "true"
    elif conv == "n":
        return "\n"
    elif conv == "%":
        text = "%"
    else:
        throw("java.util.UnknownFormatConversionException", f"Conversion = '{conv}'")
    if width:
        w = int(width)
        vm.allocate(w + 64)
        if "-" in flags:
            text = text.ljust(w)
        elif "0" in flags and conv not in "sScbB":
            sign = text[0] if text[:1] in "+- " else ""
            text = sign + text[len(sign):].rjust(w - len(sign), "0")
        else:
            text = text.rjust(w)
    return text


def java_format(vm, fmt: str, args: list | None) -> str:
    args = args or []
    out, at, nxt = [], 0, 0
    for m in FORMAT_SPEC.finditer(fmt):
        out.append(fmt[at:m.start()])
        at = m.end()
        index, flags, width, precision, conv = m.groups()
        if conv in "n%":
            out.append(_format_one(vm, flags, width, precision, conv, None))
            continue
        if index:
            k = int(index[:-1]) - 1
        else:
            k, nxt = nxt, nxt + 1
        if k >= len(args):
            throw("java.util.MissingFormatArgumentException", f"Format specifier '{m.group(0)}'")
        out.append(_format_one(vm, flags, width, precision, conv, args[k]))
    out.append(fmt[at:])
    return new_string(vm, *out)


NATIVES[f"{STRING}->format({STRING}[Ljava/lang/Object;){STRING}"] = lambda vm, fmt, args: java_format(vm, fmt, args)
# a Locale is accepted and ignored: the digits and separators are English ones (Locale.ROOT, US, UK, ...)
NATIVES[f"{STRING}->format(Ljava/util/Locale;{STRING}[Ljava/lang/Object;){STRING}"] = \
    lambda vm, locale, fmt, args: java_format(vm, fmt, args)
NATIVES[f"Ljava/io/PrintStream;->printf(Ljava/util/Locale;{STRING}[Ljava/lang/Object;)Ljava/io/PrintStream;"] = \
    lambda vm, stream, locale, fmt, args: _printf(vm, stream, fmt, args)


# ---- String ----
def _check_index(i: int, n: int, what: str = "index") -> None:
    if not 0 <= i < n:
        throw("java.lang.StringIndexOutOfBoundsException", f"{what} {i}, length {n}")


def _substring(vm, s, begin, end=None):
    end = len(s) if end is None else end
    if not 0 <= begin <= end <= len(s):
        throw("java.lang.StringIndexOutOfBoundsException", f"begin {begin}, end {end}, length {len(s)}")
    return new_string(vm, s[begin:end])


def string_hash(s: str) -> int:
    h = 0
    for unit in s.encode("utf-16-le").hex(" ", 2).split():
        h = (31 * h + int(unit[2:] + unit[:2], 16)) & 0xFFFFFFFF
    return i32(h)


def compare_strings(a: str, b: str) -> int:
    """String.compareTo: the first differing UTF-16 unit's difference, else the length difference."""
    for x, y in zip(a, b, strict=False):
        if x != y:
            return ord(x) - ord(y)
    return len(a) - len(b)


def java_split(vm, s: str, separator: str, limit: int = 0) -> list[str]:
    pattern = bounded_regex(vm, separator, s, searches=2)  # the split and the leading-match check
    parts = pattern.split(s, maxsplit=max(limit - 1, 0))
    first = pattern.match(s)
    if parts and parts[0] == "" and s and first and first.end() > 0:
        parts = parts[1:]  # a match at the start of a non-empty string gives no leading empty string (Java 8+)
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return parts or [""] if s == "" else parts


def get_bytes(vm, s: str, charset: Charset | str | None = None) -> list[int]:
    name = charset.name if isinstance(charset, Charset) else (charset or "UTF-8")
    codec = {"UTF-8": "utf-8", "US-ASCII": "ascii", "ISO-8859-1": "latin-1", "UTF-16BE": "utf-16-be",
             "UTF-16LE": "utf-16-le", "UTF-16": "utf-16-be"}.get(name.upper())
    if codec is None:
        throw("java.io.UnsupportedEncodingException", name)
    data = (b"\xfe\xff" if name.upper() == "UTF-16" else b"") + s.encode(codec, "replace")
    vm.allocate(8 * len(data) + 64)
    return [b - 256 if b > 127 else b for b in data]


def decode_bytes(vm, data: list[int], charset: Charset | None = None) -> str:
    name = charset.name if charset else "UTF-8"
    codec = {"UTF-8": "utf-8", "US-ASCII": "ascii", "ISO-8859-1": "latin-1", "UTF-16BE": "utf-16-be",
             "UTF-16LE": "utf-16-le"}.get(name.upper(), "utf-8")
    return new_string(vm, bytes(b & 0xFF for b in data).decode(codec, "replace"))


def _repeat(vm, s: str, n: int) -> str:
    if n < 0:
        throw("java.lang.IllegalArgumentException", f"count is negative: {n}")
    vm.allocate(len(s) * n + 64)  # before the string exists: a huge count is an OutOfMemoryError
    return s * n


_S = STRING
_STRING_METHODS = {
    "length()I": len, "isEmpty()Z": lambda s: int(not s), "hashCode()I": string_hash,
    "toString()Ljava/lang/String;": lambda s: s, "intern()Ljava/lang/String;": lambda s: s,
    "equals(Ljava/lang/Object;)Z": lambda s, o: int(isinstance(o, str) and s == o),
    "equalsIgnoreCase(Ljava/lang/String;)Z": lambda s, o: int(isinstance(o, str) and s.lower() == o.lower()),
    f"compareTo({_S})I": compare_strings, "compareTo(Ljava/lang/Object;)I": compare_strings,
    f"compareToIgnoreCase({_S})I": lambda s, o: compare_strings(s.lower(), o.lower()),
    f"indexOf({_S})I": lambda s, o: s.find(o), "indexOf(I)I": lambda s, c: s.find(chr(c)),
    f"indexOf({_S}I)I": lambda s, o, k: s.find(o, max(k, 0)), "indexOf(II)I": lambda s, c, k: s.find(chr(c), max(k, 0)),
    f"lastIndexOf({_S})I": lambda s, o: s.rfind(o), "lastIndexOf(I)I": lambda s, c: s.rfind(chr(c)),
    "contains(Ljava/lang/CharSequence;)Z": lambda s, o: int(_text(o) in s),
    f"startsWith({_S})Z": lambda s, o: int(s.startswith(o)), f"endsWith({_S})Z": lambda s, o: int(s.endswith(o)),
    f"startsWith({_S}I)Z": lambda s, o, k: int(s.startswith(o, k)),
    "isBlank()Z": lambda s: int(not s.strip()),
}
for _sig, _fn in _STRING_METHODS.items():
    METHODS[str][_sig] = (lambda fn: lambda vm, s, *a: fn(s, *a))(_fn)
_STRING_BUILDERS = {  # methods that make a new string
    f"toUpperCase(){_S}": str.upper, f"toLowerCase(){_S}": str.lower,
    f"trim(){_S}": lambda s: s.strip("".join(map(chr, range(33)))), f"strip(){_S}": str.strip,
    f"concat({_S}){_S}": lambda s, o: s + o,
    f"replace(CC){_S}": lambda s, a, b: s.replace(chr(a), chr(b)),
    f"replace(Ljava/lang/CharSequence;Ljava/lang/CharSequence;){_S}": lambda s, a, b: s.replace(_text(a), _text(b)),
}
for _sig, _fn in _STRING_BUILDERS.items():
    METHODS[str][_sig] = (lambda fn: lambda vm, s, *a: new_string(vm, fn(s, *a)))(_fn)
METHODS[str].update({
    "charAt(I)C": lambda vm, s, i: (_check_index(i, len(s)), ord(s[i]))[1],
    f"substring(I){_S}": _substring, f"substring(II){_S}": _substring,
    "subSequence(II)Ljava/lang/CharSequence;": _substring,
    f"split({_S})[{_S}": lambda vm, s, r: java_split(vm, s, r),
    f"split({_S}I)[{_S}": lambda vm, s, r, k: java_split(vm, s, r, k),
    "toCharArray()[C": lambda vm, s: (vm.allocate(8 * len(s) + 64), [ord(c) for c in s])[1],
    "getBytes()[B": get_bytes, "getBytes(Ljava/nio/charset/Charset;)[B": get_bytes,
    f"getBytes({_S})[B": get_bytes,
    "matches(Ljava/lang/String;)Z": lambda vm, s, r: int(bounded_regex(vm, r, s, searches=0).fullmatch(s) is not None),
    f"replaceAll({_S}{_S}){_S}": lambda vm, s, a, b: new_string(vm, replace_all(vm, s, a, b)),
    f"repeat(I){_S}": _repeat,
})


def _text(value) -> str:
    return value.text() if isinstance(value, StringBuilder) else value


def _init_string(vm, _placeholder, data=None, charset=None):
    """new String(...): the interpreter puts the returned string where the placeholder was."""
    if data is None:
        return ""
    if isinstance(data, str):
        return data
    if isinstance(data, StringBuilder):
        return data.text()
    return decode_bytes(vm, data, charset)


for _sig in ("()V", "(Ljava/lang/String;)V", "([B)V", "([BLjava/nio/charset/Charset;)V",
             "(Ljava/lang/StringBuilder;)V"):
    NATIVES[f"{_S}-><init>{_sig}"] = _init_string
NATIVES[f"{_S}-><init>([C)V"] = lambda vm, _placeholder, chars: new_string(vm, "".join(map(chr, chars)))
NATIVES[f"{_S}->valueOf([C){_S}"] = lambda vm, chars: new_string(vm, "".join(map(chr, chars)))
NATIVES[f"{_S}->valueOf(Ljava/lang/Object;){_S}"] = lambda vm, v: vm.stringify(v)


def _chars_slice(vm, chars, offset, count):
    """String.valueOf(char[], offset, count): Java's bounds check and message."""
    if offset < 0 or count < 0 or offset + count > len(chars):
        throw("java.lang.StringIndexOutOfBoundsException", f"offset {offset}, count {count}, length {len(chars)}")
    return new_string(vm, "".join(map(chr, chars[offset:offset + count])))


NATIVES[f"{_S}->valueOf([CII){_S}"] = _chars_slice
NATIVES[f"{_S}->copyValueOf([CII){_S}"] = _chars_slice
NATIVES[f"{_S}->join(Ljava/lang/CharSequence;[Ljava/lang/CharSequence;){_S}"] = \
    lambda vm, sep, items: new_string(vm, _text(sep).join(map(vm.stringify, items)))
NATIVES[f"{_S}->join(Ljava/lang/CharSequence;Ljava/lang/Iterable;){_S}"] = \
    lambda vm, sep, items: new_string(vm, _text(sep).join(map(vm.stringify, vm.iterate(items))))
for _k in "ZCIJFD":
    NATIVES[f"{_S}->valueOf({_k}){_S}"] = (lambda k: lambda vm, v: java_str(v, k))(_k)
NATIVES["Ljava/nio/charset/Charset;->forName(Ljava/lang/String;)Ljava/nio/charset/Charset;"] = \
    lambda vm, name: Charset(name.upper())
METHODS[Charset]["name()Ljava/lang/String;"] = lambda vm, cs: cs.name
STATIC_FIELDS: dict[tuple[str, str], Callable] = {
    ("Ljava/lang/System;", "out"): lambda vm: vm.out, ("Ljava/lang/System;", "err"): lambda vm: vm.err}
for _k, _name in BOX_CLASSES.items():  # int.class is Integer.TYPE
    STATIC_FIELDS[(f"Ljava/lang/{_name};", "TYPE")] = (lambda k: lambda vm: JClass(k))(_k)
for _name in ("ROOT", "US", "UK", "ENGLISH"):
    STATIC_FIELDS[("Ljava/util/Locale;", _name)] = (lambda n: lambda vm: Charset(n))(_name)
for _name in ("UTF_8", "US_ASCII", "ISO_8859_1", "UTF_16", "UTF_16BE", "UTF_16LE"):
    STATIC_FIELDS[("Ljava/nio/charset/StandardCharsets;", _name)] = \
        (lambda n: lambda vm: Charset(n.replace("_", "-", 1) if n.startswith(("UTF", "US")) else "ISO-8859-1"))(_name)


# ---- StringBuilder / StringBuffer ----
def _append(kind: str):
    def h(vm, sb, value):
        text = "".join(map(chr, value)) if kind == "[C" else vm.stringify(value, kind)
        vm.allocate(len(text) + 64)
        sb.parts.append(text)
        return sb
    return h


def _sb_insert(kind: str):
    def h(vm, sb, at, value):
        text = sb.text()
        if not 0 <= at <= len(text):
            throw("java.lang.StringIndexOutOfBoundsException", f"offset {at}, length {len(text)}")
        return sb.set(text[:at] + vm.stringify(value, kind) + text[at:])
    return h


def _sb_delete(vm, sb, start, end):
    text = sb.text()
    if not 0 <= start <= len(text) or start > end:
        throw("java.lang.StringIndexOutOfBoundsException", f"start {start}, end {end}, length {len(text)}")
    return sb.set(text[:start] + text[min(end, len(text)):])


def _sb_set_char(vm, sb, i, c):
    text = sb.text()
    _check_index(i, len(text))
    sb.set(text[:i] + chr(c) + text[i + 1:])


SB_METHODS: dict[str, Callable] = {
    "toString()Ljava/lang/String;": lambda vm, sb: new_string(vm, sb.text()),
    "length()I": lambda vm, sb: len(sb.text()),
    "charAt(I)C": lambda vm, sb, i: (_check_index(i, len(sb.text())), ord(sb.text()[i]))[1],
    "reverse()": lambda vm, sb: sb.set(sb.text()[::-1]),
    "deleteCharAt(I)": lambda vm, sb, i: (_check_index(i, len(sb.text())), _sb_delete(vm, sb, i, i + 1))[1],
    "delete(II)": _sb_delete,
    "setCharAt(IC)V": _sb_set_char,
    "setLength(I)V": lambda vm, sb, n: (vm.allocate(max(n, 0) + 64), sb.set(sb.text()[:n].ljust(n, "\0")))[0],
    "indexOf(Ljava/lang/String;)I": lambda vm, sb, s: sb.text().find(s),
    "isEmpty()Z": lambda vm, sb: int(not sb.text()),
    "substring(I)Ljava/lang/String;": lambda vm, sb, b: _substring(vm, sb.text(), b),
    "substring(II)Ljava/lang/String;": lambda vm, sb, b, e: _substring(vm, sb.text(), b, e),
}
for _owner in ("Ljava/lang/StringBuilder;", "Ljava/lang/StringBuffer;"):
    for _k in ("Z", "C", "I", "J", "F", "D", "Ljava/lang/String;", "Ljava/lang/Object;", "Ljava/lang/CharSequence;",
               "[C"):
        METHODS[StringBuilder][f"append({_k}){_owner}"] = _append(_k if len(_k) == 1 or _k == "[C" else "L")
        METHODS[StringBuilder][f"insert(I{_k}){_owner}"] = _sb_insert(_k if len(_k) == 1 else "L")
    for _sig, _fn in SB_METHODS.items():
        METHODS[StringBuilder][_sig + _owner if _sig.endswith(")") else _sig] = _fn
    NATIVES[f"{_owner}-><init>()V"] = lambda vm, sb: None
    NATIVES[f"{_owner}-><init>(I)V"] = lambda vm, sb, n: None
    NATIVES[f"{_owner}-><init>(Ljava/lang/String;)V"] = lambda vm, sb, s: sb.parts.append(new_string(vm, s))
    NATIVES[f"{_owner}-><init>(Ljava/lang/CharSequence;)V"] = lambda vm, sb, s: sb.parts.append(vm.stringify(s))


# ---- boxes, parsing, toString ----
def parse_integer(s, bits: int, radix: int = 10) -> int:
    text = s if isinstance(s, str) else None
    ok = text is not None and re.fullmatch(r"[+-]?[0-9a-zA-Z]+", text) is not None
    try:
        value = int(text, radix) if ok else None
    except ValueError:
        value = None
    if value is None or not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        reason = "Cannot parse null string: null" if s is None else f'For input string: "{s}"' + (
            f" under radix {radix}" if radix != 10 and value is None else "")
        throw("java.lang.NumberFormatException", reason)
    return value


def parse_double(s) -> float:
    if s is None:
        throw("java.lang.NullPointerException")
    text = s.strip(" \t\n\r\f\v\0")
    body = text[:-1] if text[-1:] in "dDfF" and not text.endswith(("Infinity", "NaN")) else text
    if re.fullmatch(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|0[xX][0-9a-fA-F.]+[pP][+-]?\d+)", body):
        return float.fromhex(body) if "x" in body.lower() else float(body)
    throw("java.lang.NumberFormatException", "empty String" if not text else f'For input string: "{s}"')


def _box_hash(box: JBox) -> int:
    if box.kind == "J":
        return i32(box.value ^ ((box.value & 0xFFFFFFFFFFFFFFFF) >> 32))
    if box.kind == "D":
        return i32(box.value ^ ((box.value & 0xFFFFFFFFFFFFFFFF) >> 32))
    if box.kind == "Z":
        return 1231 if box.value else 1237
    return box.value


def box_compare(a: JBox, b: JBox) -> int:
    x = f64(a.value) if a.kind == "D" else f32(a.value) if a.kind == "F" else a.value
    y = f64(b.value) if b.kind == "D" else f32(b.value) if b.kind == "F" else b.value
    return (x > y) - (x < y)


INT_RADIX = {"toHexString": 16, "toOctalString": 8, "toBinaryString": 2}
for _k, _name in BOX_CLASSES.items():
    _c = f"Ljava/lang/{_name};"
    NATIVES[f"{_c}->valueOf({_k}){_c}"] = (lambda k: lambda vm, v: JBox(k, v))(_k)
    NATIVES[f"{_c}->toString({_k})Ljava/lang/String;"] = (lambda k: lambda vm, v: java_str(v, k))(_k)
    NATIVES[f"{_c}->hashCode({_k})I"] = (lambda k: lambda vm, v: _box_hash(JBox(k, v)))(_k)
    for _prim, _pname in (("I", "int"), ("J", "long"), ("D", "double"), ("F", "float"), ("Z", "boolean"),
                          ("C", "char"), ("B", "byte"), ("S", "short")):
        METHODS[JBox][f"{_pname}Value(){_prim}"] = (lambda p: lambda vm, b: convert(b, p))(_prim)
    METHODS[JBox][f"compareTo({_c})I"] = lambda vm, a, b: box_compare(a, b)
    NATIVES[f"{_c}->compare({_k}{_k})I"] = (lambda k: lambda vm, a, b: box_compare(JBox(k, a), JBox(k, b)))(_k)
for _k, _wrap in (("I", i32), ("J", i64)):  # Integer.sum/max/min, Long's: what Integer::sum method references name
    _c = f"Ljava/lang/{BOX_CLASSES[_k]};"
    NATIVES[f"{_c}->sum({_k}{_k}){_k}"] = (lambda w: lambda vm, a, b: w(a + b))(_wrap)
    NATIVES[f"{_c}->max({_k}{_k}){_k}"] = lambda vm, a, b: max(a, b)
    NATIVES[f"{_c}->min({_k}{_k}){_k}"] = lambda vm, a, b: min(a, b)
METHODS[JBox].update({
    "compareTo(Ljava/lang/Object;)I": lambda vm, a, b: box_compare(a, b),
    "equals(Ljava/lang/Object;)Z": lambda vm, a, b: int(a == b),
    "hashCode()I": lambda vm, b: _box_hash(b),
    "toString()Ljava/lang/String;": lambda vm, b: java_str(b.value, b.kind)})


def convert(box: JBox, to: str) -> int:
    """Number.xxxValue(): a primitive conversion between shorty kinds."""
    if box.kind == to:
        return box.value
    x = f64(box.value) if box.kind == "D" else f32(box.value) if box.kind == "F" else box.value
    if to == "D":
        return bits64(float(x))
    if to == "F":
        return bits32(float(x))
    if isinstance(x, float):
        lo = -(1 << 63) if to == "J" else -(1 << 31)
        x = 0 if x != x else max(lo, min(-lo - 1, int(x)))
    return {"J": i64, "I": i32, "S": lambda v: ((v + 0x8000) & 0xFFFF) - 0x8000,
            "B": lambda v: ((v + 0x80) & 0xFF) - 0x80, "C": lambda v: v & 0xFFFF, "Z": bool}[to](x)


NATIVES.update({
    "Ljava/lang/Integer;->parseInt(Ljava/lang/String;)I": lambda vm, s: parse_integer(s, 32),
    "Ljava/lang/Integer;->parseInt(Ljava/lang/String;I)I": lambda vm, s, r: parse_integer(s, 32, r),
    "Ljava/lang/Integer;->valueOf(Ljava/lang/String;)Ljava/lang/Integer;":
        lambda vm, s: JBox("I", parse_integer(s, 32)),
    "Ljava/lang/Long;->parseLong(Ljava/lang/String;)J": lambda vm, s: parse_integer(s, 64),
    "Ljava/lang/Long;->valueOf(Ljava/lang/String;)Ljava/lang/Long;": lambda vm, s: JBox("J", parse_integer(s, 64)),
    "Ljava/lang/Double;->parseDouble(Ljava/lang/String;)D": lambda vm, s: bits64(parse_double(s)),
    "Ljava/lang/Double;->valueOf(Ljava/lang/String;)Ljava/lang/Double;":
        lambda vm, s: JBox("D", bits64(parse_double(s))),
    "Ljava/lang/Float;->parseFloat(Ljava/lang/String;)F": lambda vm, s: bits32(parse_double(s)),
    "Ljava/lang/Boolean;->parseBoolean(Ljava/lang/String;)Z":
        lambda vm, s: int(isinstance(s, str) and s.lower() == "true"),
    "Ljava/lang/Integer;->toString(II)Ljava/lang/String;": lambda vm, v, r: _radix(v, r),
    "Ljava/lang/Long;->toString(JI)Ljava/lang/String;": lambda vm, v, r: _radix(v, r),
    "Ljava/lang/Integer;->bitCount(I)I": lambda vm, v: bin(v & 0xFFFFFFFF).count("1"),
    "Ljava/lang/Long;->bitCount(J)I": lambda vm, v: bin(v & 0xFFFFFFFFFFFFFFFF).count("1"),
    "Ljava/lang/Double;->isNaN(D)Z": lambda vm, v: int(f64(v) != f64(v)),
    "Ljava/lang/Double;->doubleToLongBits(D)J": lambda vm, v: v,
    "Ljava/lang/Double;->longBitsToDouble(J)D": lambda vm, v: v,
    "Ljava/lang/Float;->floatToIntBits(F)I": lambda vm, v: v,
    "Ljava/lang/Character;->isDigit(C)Z": lambda vm, c: int(chr(c).isdigit()),
    "Ljava/lang/Character;->isLetter(C)Z": lambda vm, c: int(chr(c).isalpha()),
    "Ljava/lang/Character;->isLetterOrDigit(C)Z": lambda vm, c: int(chr(c).isalnum()),
    "Ljava/lang/Character;->isWhitespace(C)Z": lambda vm, c: int(chr(c) in " \t\n\x0b\f\r\x1c\x1d\x1e\x1f"),
    "Ljava/lang/Character;->isUpperCase(C)Z": lambda vm, c: int(chr(c).isupper()),
    "Ljava/lang/Character;->isLowerCase(C)Z": lambda vm, c: int(chr(c).islower()),
    "Ljava/lang/Character;->toUpperCase(C)C": lambda vm, c: ord(chr(c).upper()[0]),
    "Ljava/lang/Character;->toLowerCase(C)C": lambda vm, c: ord(chr(c).lower()[0]),
    "Ljava/lang/Character;->getNumericValue(C)I": lambda vm, c: int(chr(c), 36) if chr(c).isalnum() else -1,
})
for _name, _radix_value in INT_RADIX.items():
    NATIVES[f"Ljava/lang/Integer;->{_name}(I)Ljava/lang/String;"] = \
        (lambda r: lambda vm, v: _radix(v & 0xFFFFFFFF, r))(_radix_value)
    NATIVES[f"Ljava/lang/Long;->{_name}(J)Ljava/lang/String;"] = \
        (lambda r: lambda vm, v: _radix(v & 0xFFFFFFFFFFFFFFFF, r))(_radix_value)


def _radix(v: int, radix: int) -> str:
    """Integer.toString(v, radix): radixes outside 2..36 mean 10, as in Java."""
    radix = radix if 2 <= radix <= 36 else 10
    digits, n, out = "0123456789abcdefghijklmnopqrstuvwxyz", abs(v), ""
    while True:
        n, d = divmod(n, radix)
        out = digits[d] + out
        if not n:
            return ("-" if v < 0 else "") + out


# ---- Math ----
def _d(fn):
    return lambda vm, *a: bits64(float(fn(*map(f64, a))))


def _round(x: float, bits: int) -> int:
    if x != x:
        return 0
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return hi if x >= hi else lo if x <= lo else math.floor(x + 0.5)


MATH: dict[str, Callable] = {
    "sqrt(D)D": _d(np.sqrt), "cbrt(D)D": _d(np.cbrt), "pow(DD)D": _d(np.power),
    "floor(D)D": _d(np.floor), "ceil(D)D": _d(np.ceil), "rint(D)D": _d(np.rint), "exp(D)D": _d(np.exp),
    "log(D)D": _d(np.log), "log10(D)D": _d(np.log10), "sin(D)D": _d(np.sin), "cos(D)D": _d(np.cos),
    "tan(D)D": _d(np.tan), "atan(D)D": _d(np.arctan), "atan2(DD)D": _d(np.arctan2), "hypot(DD)D": _d(np.hypot),
    "abs(D)D": _d(abs), "max(DD)D": _d(lambda a, b: float(np.maximum(a, b))),
    "min(DD)D": _d(lambda a, b: float(np.minimum(a, b))),
    "abs(I)I": lambda vm, a: i32(abs(a)), "abs(J)J": lambda vm, a: i64(abs(a)),
    "abs(F)F": lambda vm, a: bits32(abs(f32(a))),
    "max(II)I": lambda vm, a, b: max(a, b), "min(II)I": lambda vm, a, b: min(a, b),
    "max(JJ)J": lambda vm, a, b: max(a, b), "min(JJ)J": lambda vm, a, b: min(a, b),
    "round(D)J": lambda vm, a: _round(f64(a), 64),
    "random()D": lambda vm: bits64(random.random()), "round(F)I": lambda vm, a: _round(f32(a), 32),
    "floorDiv(II)I": lambda vm, a, b: i32(a // b) if b else throw("java.lang.ArithmeticException", "/ by zero"),
    "floorMod(II)I": lambda vm, a, b: a % b if b else throw("java.lang.ArithmeticException", "/ by zero"),
    "addExact(II)I": lambda vm, a, b: _exact(a + b, 32, "integer"),
    "multiplyExact(II)I": lambda vm, a, b: _exact(a * b, 32, "integer"),
    "addExact(JJ)J": lambda vm, a, b: _exact(a + b, 64, "long"),
    "multiplyExact(JJ)J": lambda vm, a, b: _exact(a * b, 64, "long"),
}


def _exact(v: int, bits: int, what: str) -> int:
    if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
        throw("java.lang.ArithmeticException", f"{what} overflow")
    return v


for _sig, _fn in MATH.items():
    NATIVES[f"Ljava/lang/Math;->{_sig}"] = _fn
    NATIVES[f"Ljava/lang/StrictMath;->{_sig}"] = _fn


# ---- System ----
def _arraycopy(vm, src, src_pos, dst, dst_pos, length):
    if src is None or dst is None:
        throw("java.lang.NullPointerException")
    if not isinstance(src, list) or not isinstance(dst, list):
        throw("java.lang.ArrayStoreException", "arraycopy: source type is not an array")
    if src_pos < 0 or dst_pos < 0 or length < 0 or src_pos + length > len(src) or dst_pos + length > len(dst):
        bad = (f"source index {src_pos} out of bounds for length {len(src)}" if src_pos < 0 else
               f"destination index {dst_pos} out of bounds for length {len(dst)}" if dst_pos < 0 else
               f"length {length} is negative" if length < 0 else
               f"last source index {src_pos + length} out of bounds for length {len(src)}"
               if src_pos + length > len(src) else
               f"last destination index {dst_pos + length} out of bounds for length {len(dst)}")
        throw("java.lang.ArrayIndexOutOfBoundsException", "arraycopy: " + bad)
    dst[dst_pos:dst_pos + length] = src[src_pos:src_pos + length]


NATIVES.update({
    "Ljava/lang/System;->exit(I)V": lambda vm, status: (_ for _ in ()).throw(ExitProgram(status)),
    "Ljava/lang/System;->arraycopy(Ljava/lang/Object;ILjava/lang/Object;II)V": _arraycopy,
    "Ljava/lang/System;->identityHashCode(Ljava/lang/Object;)I": lambda vm, o: 0 if o is None else id(o) & 0x7FFFFFFF,
    "Ljava/lang/System;->lineSeparator()Ljava/lang/String;": lambda vm: "\n",
    "Ljava/lang/Object;-><init>()V": lambda vm, o: None,
})


# ---- Throwable ----
THROWABLE_METHODS: dict[str, Callable] = {  # any Throwable's, by name and signature
    "getMessage()Ljava/lang/String;": lambda vm, e: e.fields.get(MESSAGE),
    "getLocalizedMessage()Ljava/lang/String;": lambda vm, e: e.fields.get(MESSAGE),
    "toString()Ljava/lang/String;": lambda vm, e: describe(e),
    "getCause()Ljava/lang/Throwable;": lambda vm, e: e.fields.get(CAUSE),
    "printStackTrace()V": lambda vm, e: vm.err.stream.write(stack_trace(e)),
    "initCause(Ljava/lang/Throwable;)Ljava/lang/Throwable;":
        lambda vm, e, c: (e.fields.__setitem__(CAUSE, c), e)[1],
    "getStackTrace()[Ljava/lang/StackTraceElement;": lambda vm, e: [JObject("Ljava/lang/StackTraceElement;", {})
                                                                      for _ in e.fields.get(TRACE) or ()],
}


def init_throwable(vm, exc: JObject, *args) -> None:
    """Throwable(), (String), (String, Throwable), (Throwable): the message and cause."""
    message = args[0] if args and (args[0] is None or isinstance(args[0], str)) else None
    cause = args[-1] if args and isinstance(args[-1], JObject) else None
    if len(args) == 1 and cause is not None:
        message = describe(cause)
    exc.fields[MESSAGE] = message
    if cause is not None:
        exc.fields[CAUSE] = cause


THROWABLE_CONSTRUCTORS = ("()V", "(Ljava/lang/String;)V", "(Ljava/lang/String;Ljava/lang/Throwable;)V",
                          "(Ljava/lang/Throwable;)V")


# ---- Class, Method: simple reflection ----
def _for_name(vm, name):
    desc = class_descriptor(name) if isinstance(name, str) and "/" not in name else None
    if desc is None or not vm.class_exists(desc):
        throw("java.lang.ClassNotFoundException", name)
    vm.ensure_init(desc)
    return JClass(desc)


def _get_method(vm, cls: JClass, name, param_classes):
    params = tuple(c.desc for c in param_classes or [])
    found = vm.find_declared(cls.desc, name, params, public_only=True)
    if found is None:
        throw("java.lang.NoSuchMethodException", f"{java_name(cls.desc)}.{name}({', '.join(map(java_name, params))})")
    return JMethod(found.ref.class_name, name, params, found.ref.ret)


def _invoke_method(vm, m: JMethod, receiver, args):
    values = [unbox_for(kind, a) for kind, a in zip(m.params, args or [], strict=False)]
    if len(values) != len(m.params):
        throw("java.lang.IllegalArgumentException", f"wrong number of arguments: {len(args or [])} expected: "
                                                    f"{len(m.params)}")
    target = vm.find_declared(m.cls, m.name, m.params)
    if not target.is_static:
        if receiver is None:
            throw("java.lang.NullPointerException")
        values.insert(0, receiver)
    try:
        result = vm.call_method(target, values, virtual=not target.is_static)
    except JavaThrow as e:
        wrapped = JObject("Ljava/lang/reflect/InvocationTargetException;", {MESSAGE: None, CAUSE: e.exception})
        raise JavaThrow(wrapped.cls, exception=wrapped) from None
    return box_for(m.ret, result)


def unbox_for(kind: str, value):
    return value.value if len(kind) == 1 and isinstance(value, JBox) else value


def box_for(kind: str, value):
    return None if kind == "V" else JBox(kind, value) if len(kind) == 1 else value


def _new_instance(vm, cls: JClass):
    obj = vm.new_object(cls.desc)
    ctor = vm.find_declared(cls.desc, "<init>", ())
    if ctor is None:
        throw("java.lang.NoSuchMethodException", f"{java_name(cls.desc)}.<init>()")
    vm.call_method(ctor, [obj], virtual=False)
    return obj


NATIVES.update({
    "Ljava/lang/Class;->forName(Ljava/lang/String;)Ljava/lang/Class;": _for_name,
    "Ljava/lang/Object;->getClass()Ljava/lang/Class;": lambda vm, o: JClass(vm.class_name(o)),
})
PRIMITIVE_NAMES = {"Z": "boolean", "B": "byte", "C": "char", "S": "short", "I": "int", "J": "long", "F": "float",
                   "D": "double", "V": "void"}


def simple_name(desc: str) -> str:
    """Class.getSimpleName: the name after the package and the enclosing class; int[], String[][] for arrays."""
    if desc.startswith("["):
        return simple_name(desc[1:]) + "[]"
    return PRIMITIVE_NAMES.get(desc) or java_name(desc).rsplit(".", 1)[-1].rsplit("$", 1)[-1]


METHODS[JClass].update({
    "getName()Ljava/lang/String;": lambda vm, c: PRIMITIVE_NAMES.get(c.desc) or java_name(c.desc),
    "getSimpleName()Ljava/lang/String;": lambda vm, c: simple_name(c.desc),
    "isArray()Z": lambda vm, c: int(c.desc.startswith("[")),
    "toString()Ljava/lang/String;": lambda vm, c: c.java_string(vm),
    "getMethod(Ljava/lang/String;[Ljava/lang/Class;)Ljava/lang/reflect/Method;": _get_method,
    "getDeclaredMethod(Ljava/lang/String;[Ljava/lang/Class;)Ljava/lang/reflect/Method;": _get_method,
    "newInstance()Ljava/lang/Object;": _new_instance,
    "getDeclaredConstructor([Ljava/lang/Class;)Ljava/lang/reflect/Constructor;": lambda vm, c, params: c,
    "getConstructor([Ljava/lang/Class;)Ljava/lang/reflect/Constructor;": lambda vm, c, params: c,
    "newInstance([Ljava/lang/Object;)Ljava/lang/Object;": lambda vm, c, args: _new_instance(vm, c),
    "equals(Ljava/lang/Object;)Z": lambda vm, c, o: int(isinstance(o, JClass) and o.desc == c.desc),
    "hashCode()I": lambda vm, c: string_hash(c.desc),
    "desiredAssertionStatus()Z": lambda vm, c: 0,  # `assert` is off, as on a JVM run without -ea
})
METHODS[JMethod].update({
    "getName()Ljava/lang/String;": lambda vm, m: m.name,
    "invoke(Ljava/lang/Object;[Ljava/lang/Object;)Ljava/lang/Object;": _invoke_method,
    "toString()Ljava/lang/String;": lambda vm, m: m.java_string(vm),
    "getParameterCount()I": lambda vm, m: len(m.params),
})


# ---- Enum: the name and ordinal its constructor is given ----
ENUM = "Ljava/lang/Enum;"
ENUM_NAME, ENUM_ORDINAL = "<enum-name>", "<enum-ordinal>"


def _enum_init(vm, constant: JObject, name: str, ordinal: int) -> None:
    constant.fields[ENUM_NAME], constant.fields[ENUM_ORDINAL] = name, ordinal


def _enum_value_of(vm, cls: JClass, name):
    vm.ensure_init(cls.desc)
    value = vm.statics.get((cls.desc, name)) if isinstance(name, str) else None
    if not isinstance(value, JObject) or value.cls != cls.desc:
        if name is None:
            throw("java.lang.NullPointerException", "Name is null")
        throw("java.lang.IllegalArgumentException", f"No enum constant {java_name(cls.desc).replace('$', '.')}.{name}")
    return value


NATIVES.update({
    f"{ENUM}-><init>(Ljava/lang/String;I)V": _enum_init,
    f"{ENUM}->name()Ljava/lang/String;": lambda vm, e: e.fields[ENUM_NAME],
    f"{ENUM}->toString()Ljava/lang/String;": lambda vm, e: e.fields[ENUM_NAME],
    f"{ENUM}->ordinal()I": lambda vm, e: e.fields[ENUM_ORDINAL],
    f"{ENUM}->compareTo(Ljava/lang/Enum;)I": lambda vm, e, o: e.fields[ENUM_ORDINAL] - o.fields[ENUM_ORDINAL],
    f"{ENUM}->compareTo(Ljava/lang/Object;)I": lambda vm, e, o: e.fields[ENUM_ORDINAL] - o.fields[ENUM_ORDINAL],
    f"{ENUM}->valueOf(Ljava/lang/Class;Ljava/lang/String;)Ljava/lang/Enum;": _enum_value_of,
    f"{ENUM}->getDeclaringClass()Ljava/lang/Class;": lambda vm, e: JClass(e.cls),
})
NATIVE_CLASSES: dict[str, Callable] = {
    "Ljava/lang/StringBuilder;": StringBuilder, "Ljava/lang/StringBuffer;": StringBuilder,
    "Ljava/lang/String;": lambda: StringPlaceholder()}


class StringPlaceholder:
    """What new-instance of String holds until its constructor returns the string."""
