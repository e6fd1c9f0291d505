"""Values in dex registers: 32-bit values as signed ints (float bits reinterpreted on use), wide
values as signed 64-bit ints, references as Python objects; and Java's string conversion of each."""

from __future__ import annotations

import math
import struct
from decimal import Decimal

import numpy as np

from cerebro.loaders.dexexc import MESSAGE, JObject, describe, java_name


class JArray(list):
    """A Java array: a list that knows its type descriptor ([I, [Ljava/lang/String;), for getClass(),
    instanceof/check-cast and Arrays.deepToString. Arrays the library builds without one are plain lists."""

    __slots__ = ("type",)

    def __init__(self, items, array_type: str):
        super().__init__(items)
        self.type = array_type


def copy_array(items: list, source: list) -> list:
    """A copy with source's array type (clone, Arrays.copyOf keep the runtime type, as on the JVM)."""
    return JArray(items, source.type) if isinstance(source, JArray) else list(items)


def is_null(value: object) -> bool:
    """A null reference: None, or the 0 that `const/4 vX, 0` puts in a register (how dex writes null)."""
    return value is None or (type(value) is int and value == 0)


def i32(v: int) -> int:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def i64(v: int) -> int:
    return ((v + (1 << 63)) & 0xFFFFFFFFFFFFFFFF) - (1 << 63)


def f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<i", i32(bits)))[0]


def bits32(x: float) -> int:
    return struct.unpack("<i", struct.pack("<f", np.float32(x)))[0]


def f64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<q", i64(bits)))[0]


def bits64(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def java_str(value: object, kind: str = "L") -> str:
    """Java's string conversion for println/append of a value of the given shorty kind."""
    if kind == "Z":
        return "true" if value else "false"
    if kind == "C":
        return chr(value & 0xFFFF)
    if kind == "F":
        return java_float(f32(value), str(np.float32(f32(value))))
    if kind == "D":
        return java_float(f64(value), repr(f64(value)))
    if kind in "IJBS":
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, JObject) and MESSAGE in value.fields:
        return describe(value)
    if isinstance(value, JObject):
        return f"{java_name(value.cls)}@{id(value) & 0xFFFFFFF:x}"
    if hasattr(value, "java_string"):  # the library's objects (boxes, collections, ...)
        return value.java_string()
    if isinstance(value, list):  # an array: [I@hash as Java prints it
        return f"[Ljava.lang.Object;@{id(value) & 0xFFFFFFF:x}"
    return str(value)


def java_float(x: float, shortest: str) -> str:
    """Java's Float/Double.toString: plain between 1e-3 and 1e7, else d.dddE<exp>; shortest digits."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    d = Decimal(shortest)
    if 1e-3 <= abs(x) < 1e7:
        text = format(d, "f")
        return text if "." in text else text + ".0"
    sign, digits, exp = d.normalize().as_tuple()
    text = "".join(map(str, digits))
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{len(text) + exp - 1}"


