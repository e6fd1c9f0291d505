"""Java class files built byte by byte for the hostile-input tests: one class with one static
`main(String[])` whose code (and constant pool) the test chooses."""

from __future__ import annotations

import struct


class Pool:
    """A constant pool being built: each helper returns the new entry's index."""

    def __init__(self):
        self.entries: list[bytes] = []
        self.count = 1  # index 0 is unused

    def add(self, raw: bytes, slots: int = 1) -> int:
        self.entries.append(raw)
        self.count += slots
        return self.count - slots

    def utf8(self, text: str) -> int:
        data = text.encode()
        return self.add(b"\x01" + struct.pack(">H", len(data)) + data)

    def cls(self, name: str) -> int:
        return self.add(b"\x07" + struct.pack(">H", self.utf8(name)))

    def member(self, tag: int, owner: str, name: str, desc: str) -> int:
        nat = self.add(b"\x0c" + struct.pack(">HH", self.utf8(name), self.utf8(desc)))
        return self.add(bytes([tag]) + struct.pack(">HH", self.cls(owner), nat))

    def bytes(self, count: int | None = None) -> bytes:
        return struct.pack(">H", self.count if count is None else count) + b"".join(self.entries)


def build_class(code: bytes, max_stack: int = 2, max_locals: int = 1, pool: Pool | None = None,
                exceptions: list[tuple[int, int, int, int]] = (), version: int = 61,
                pool_count: int | None = None) -> bytes:
    """class T { public static void main(String[]) { <code> } }."""
    pool = pool or Pool()
    this, sup = pool.cls("T"), pool.cls("java/lang/Object")
    name, desc, code_name = pool.utf8("main"), pool.utf8("([Ljava/lang/String;)V"), pool.utf8("Code")
    table = struct.pack(">H", len(exceptions)) + b"".join(struct.pack(">HHHH", *e) for e in exceptions)
    body = struct.pack(">HHI", max_stack, max_locals, len(code)) + code + table + struct.pack(">H", 0)
    method = struct.pack(">HHHH", 0x9, name, desc, 1) + struct.pack(">HI", code_name, len(body)) + body
    return (struct.pack(">IHH", 0xCAFEBABE, 0, version) + pool.bytes(pool_count)
            + struct.pack(">HHHH", 0x21, this, sup, 0) + struct.pack(">H", 0) + struct.pack(">H", 1) + method
            + struct.pack(">H", 0))
