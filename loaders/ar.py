"""Unix ar archives (the outer layer of a .deb): `!<arch>` then 60-byte member headers."""

from __future__ import annotations

from dataclasses import dataclass

from cerebro.loaders.errors import FormatError
from cerebro.loaders.limits import MAX_ENTRIES

MAGIC = b"!<arch>\n"


@dataclass(frozen=True)
class ArMember:
    name: str
    offset: int  # of the data in the archive
    size: int
    data: bytes


def read_ar(data: bytes) -> list[ArMember]:
    if not data.startswith(MAGIC):
        raise FormatError("ar: not an ar archive (missing !<arch> magic)")
    members, pos = [], len(MAGIC)
    while pos < len(data):
        if data[pos:pos + 1] == b"\n" and pos + 1 == len(data):
            break  # trailing pad byte
        if pos + 60 > len(data):
            raise FormatError(f"ar: truncated member header at offset {pos:#x}")
        head = data[pos:pos + 60]
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
        if start + size > len(data):
            raise FormatError(f"ar: member {name!r} ({size} bytes) runs past the end of the archive")
        members.append(ArMember(name, start, size, data[start:start + size]))
        if len(members) > MAX_ENTRIES:
            raise FormatError(f"ar: more than {MAX_ENTRIES} members")
        pos = start + size + (size & 1)
    return members
