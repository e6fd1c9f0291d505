"""Bounds-checked little/big-endian reads over bytes: every parser reads through this, so a
truncated or hostile file raises FormatError instead of IndexError/struct.error.

A base shared by the loaders and the .cbx format (compiler/cbx), which both read ELF (cerebro/elf.py)."""

from __future__ import annotations

import struct


class FormatError(ValueError):
    """Input is not a well-formed file of the expected format (or exceeds a safety limit): the one
    error every parser raises for malformed or unsupported input."""


class Reader:
    """A view of `data` that refuses any read outside it; `what` names the format in errors."""

    def __init__(self, data: bytes, what: str, endian: str = "<"):
        self.data = bytes(data)
        self.what = what
        self.endian = endian

    def __len__(self) -> int:
        return len(self.data)

    def check(self, offset: int, size: int, item: str) -> None:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise FormatError(f"{self.what}: {item} at offset {offset:#x} size {size:#x} "
                              f"lies outside the file ({len(self.data):#x} bytes)")

    def bytes(self, offset: int, size: int, item: str = "data") -> bytes:
        self.check(offset, size, item)
        return bytes(self.data[offset:offset + size])

    def unpack(self, fmt: str, offset: int, item: str = "header") -> tuple:
        s = struct.Struct(self.endian + fmt)
        self.check(offset, s.size, item)
        return s.unpack_from(self.data, offset)

    def u8(self, offset: int, item: str = "byte") -> int:
        return self.unpack("B", offset, item)[0]

    def u16(self, offset: int, item: str = "u16") -> int:
        return self.unpack("H", offset, item)[0]

    def u32(self, offset: int, item: str = "u32") -> int:
        return self.unpack("I", offset, item)[0]

    def u64(self, offset: int, item: str = "u64") -> int:
        return self.unpack("Q", offset, item)[0]

    def cstring(self, offset: int, item: str = "string", limit: int = 4096) -> str:
        """NUL-terminated string starting at offset, at most `limit` bytes long."""
        self.check(offset, 0, item)
        end = self.data.find(b"\0", offset, min(len(self.data), offset + limit))
        if end < 0:
            raise FormatError(f"{self.what}: {item} at offset {offset:#x} is unterminated or over {limit} bytes")
        return bytes(self.data[offset:end]).decode("utf-8", "replace")


def count_limit(count: int, item_size: int, available: int, what: str, item: str) -> None:
    """Refuse a table whose count*size cannot fit in `available` bytes (no huge allocations)."""
    if count < 0 or count * max(item_size, 1) > available:
        raise FormatError(f"{what}: {item} count {count} does not fit in {available} bytes")
