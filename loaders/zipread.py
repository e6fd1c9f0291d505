"""zip archives (APKs, JARs) read with hard limits: entry count, per-member and total sizes,
compression ratio (zip bombs), overlapping local records (the "overlapping files" bomb)."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

from cerebro.binread import FormatError
from cerebro.loaders import limits
from cerebro.loaders.archive import DIR, FILE, SYMLINK, Member, clean_name

CENTRAL_RECORD = b"PK\x01\x02"


@dataclass
class ZipArchive:
    members: list[Member]
    central_directory_offset: int
    eocd_offset: int
    comment: bytes
    by_name: dict[str, Member] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {m.name: m for m in self.members}  # lookups per manifest entry stay O(1)

    def get(self, name: str) -> Member | None:
        return self.by_name.get(name)

    def read(self, name: str) -> bytes:
        m = self.get(name)
        if m is None or m.kind != FILE:
            raise FormatError(f"zip: no file {name!r} in the archive")
        return m.data or b""


def read_zip(data: bytes, what: str = "zip") -> ZipArchive:
    # zipfile builds an object per central directory record before we can count them: count first
    if data.count(CENTRAL_RECORD) > limits.MAX_ENTRIES:
        raise FormatError(f"{what}: over {limits.MAX_ENTRIES} central directory records; refusing")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error,
            NotImplementedError) as e:
        raise FormatError(f"{what}: not a valid zip archive ({e})") from None
    if len(infos) > limits.MAX_ENTRIES:
        raise FormatError(f"{what}: {len(infos)} entries exceeds the limit of {limits.MAX_ENTRIES}")
    _check_layout(data, infos, zf.start_dir, what)
    total = 0
    members = []
    seen = set()
    for info in infos:
        name = clean_name(info.filename, what)
        if not name:  # "", ".", "./": would be the extraction root itself (and zipfile's is_dir() fails on "")
            raise FormatError(f"{what}: entry {info.filename!r} has an empty name")
        if name in seen:
            raise FormatError(f"{what}: duplicate entry {name!r}")
        seen.add(name)
        if info.file_size > limits.MAX_MEMBER:
            raise FormatError(f"{what}: entry {name!r} declares {info.file_size} bytes (limit {limits.MAX_MEMBER})")
        if info.file_size > (1 << 20) and info.file_size > limits.MAX_RATIO * max(info.compress_size, 1):
            raise FormatError(f"{what}: entry {name!r} expands {info.compress_size} -> {info.file_size} bytes; "
                              f"refusing a likely zip bomb")
        total += info.file_size
        if total > limits.MAX_UNPACKED:
            raise FormatError(f"{what}: entries total over {limits.MAX_UNPACKED} bytes; refusing (zip bomb?)")
        mode = info.external_attr >> 16
        if info.is_dir():
            members.append(Member(name, DIR, mode & 0o777 or 0o755, 0))
            continue
        try:
            body = zf.read(info)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError, EOFError, ValueError,
                RuntimeError) as e:  # RuntimeError: an encrypted entry
            raise FormatError(f"{what}: entry {name!r} is corrupt ({e})") from None
        if len(body) != info.file_size:
            raise FormatError(f"{what}: entry {name!r} has the wrong size")
        if stat.S_ISLNK(mode):
            members.append(Member(name, SYMLINK, 0o777, 0, None, body.decode("utf-8", "replace")))
        else:
            members.append(Member(name, FILE, (mode & 0o777) or 0o644, len(body), body))
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65557))
    if eocd < 0:
        raise FormatError(f"{what}: no end-of-central-directory record")
    return ZipArchive(members, zf.start_dir, eocd, zf.comment)


def _check_layout(data: bytes, infos: list[zipfile.ZipInfo], cd_offset: int, what: str) -> None:
    """Local records must lie before the central directory and must not overlap each other."""
    spans = []
    for info in infos:
        off = info.header_offset
        if off < 0 or off + 30 > len(data) or data[off:off + 4] != b"PK\x03\x04":
            raise FormatError(f"{what}: entry {info.filename!r} has no local header at {off:#x}")
        name_len, extra_len = struct.unpack_from("<HH", data, off + 26)
        end = off + 30 + name_len + extra_len + info.compress_size
        if end > cd_offset:
            raise FormatError(f"{what}: entry {info.filename!r} runs into the central directory")
        spans.append((off, end, info.filename))
    spans.sort()
    for (_a0, a1, an), (b0, _b1, bn) in zip(spans, spans[1:], strict=False):
        if b0 < a1:
            raise FormatError(f"{what}: entries {an!r} and {bn!r} overlap (overlapping-file zip bomb?)")
