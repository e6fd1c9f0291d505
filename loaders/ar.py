"""Unix ar archives (the outer layer of a .deb): `!<arch>` then 60-byte member headers.

Members are spans of a Source (bytes in memory, or a file read with pread), read in pieces
when needed, so a large .deb is never copied into memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from cerebro.binread import FormatError
from cerebro.loaders.limits import MAX_ENTRIES

MAGIC = b"!<arch>\n"
PIECE = 1 << 20


class BytesSource:
    """Random access to bytes held in memory."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.size = len(self.view)

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self.view[offset:offset + size])


class FileSource:
    """Random access to a file, read with pread (the file stays open while the source lives)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.size = os.fstat(self.fd).st_size

    def read(self, offset: int, size: int) -> bytes:
        parts = []
        while size > 0:
            part = os.pread(self.fd, min(size, PIECE), offset)
            if not part:
                break  # the file shrank: the caller sees a short read
            parts.append(part)
            offset, size = offset + len(part), size - len(part)
        return b"".join(parts)

    def __del__(self) -> None:
        if hasattr(self, "fd"):
            os.close(self.fd)


Source = BytesSource | FileSource


def open_source(data: bytes | str | os.PathLike | Source) -> Source:
    if isinstance(data, (BytesSource, FileSource)):
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        return BytesSource(data)
    return FileSource(data)


@dataclass(frozen=True)
class ArMember:
    name: str
    offset: int  # of the data in the archive
    size: int
    source: Source

    @property
    def data(self) -> bytes:
        """The whole member (for small members: use pieces() for large ones)."""
        return self.source.read(self.offset, self.size)

    def pieces(self) -> Iterator[bytes]:
        for start in range(self.offset, self.offset + self.size, PIECE):
            yield self.source.read(start, min(PIECE, self.offset + self.size - start))


def read_ar(data: bytes | str | os.PathLike | Source) -> list[ArMember]:
    source = open_source(data)
    if source.read(0, len(MAGIC)) != MAGIC:
        raise FormatError("ar: not an ar archive (missing !<arch> magic)")
    members, pos = [], len(MAGIC)
    while pos < source.size:
        if pos + 1 == source.size and source.read(pos, 1) == b"\n":
            break  # trailing pad byte
        if pos + 60 > source.size:
            raise FormatError(f"ar: truncated member header at offset {pos:#x}")
        head = source.read(pos, 60)
        if head[58:60] != b"`\n":
            raise FormatError(f"ar: bad member header terminator at offset {pos:#x}")
        name = head[:16].decode("ascii", "replace").rstrip()
        if name.endswith("/") and name not in ("/", "//"):
            name = name[:-1]  # GNU style name terminator
        size_text = head[48:58].decode("ascii", "replace").strip()
        if not size_text.isdigit():
            raise FormatError(f"ar: member {name!r} has a non-numeric size {size_text!r}")
        size = int(size_text)
        start = pos + 60
        if start + size > source.size:
            raise FormatError(f"ar: member {name!r} ({size} bytes) runs past the end of the archive")
        members.append(ArMember(name, start, size, source))
        if len(members) > MAX_ENTRIES:
            raise FormatError(f"ar: more than {MAX_ENTRIES} members")
        pos = start + size + (size & 1)
    return members
