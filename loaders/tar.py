"""tar archives, plain or compressed with gzip, xz or zstd, decompressed with a hard size bound.

Decompression is incremental with a cap (MAX_UNPACKED) so a tar bomb stops with an error
instead of exhausting memory; members are read by the standard library's tarfile.
"""

from __future__ import annotations

import io
import lzma
import shutil
import subprocess
import tarfile
import threading
import zlib

from cerebro.loaders import limits
from cerebro.loaders.archive import DEVICE, DIR, FIFO, FILE, HARDLINK, SYMLINK, Member, clean_name
from cerebro.loaders.errors import FormatError


def _gunzip(data: bytes, limit: int) -> bytes:
    d = zlib.decompressobj(wbits=47)  # gzip or zlib header
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise FormatError(f"gzip: corrupt stream ({e})") from None
    if len(out) > limit:
        raise FormatError(f"gzip: decompresses to more than {limit} bytes (limit); refusing (bomb?)")
    if not d.eof:
        raise FormatError("gzip: truncated or corrupt stream")
    return out


def _unxz(data: bytes, limit: int) -> bytes:
    d = lzma.LZMADecompressor()
    try:
        out = d.decompress(data, max_length=limit + 1)
    except lzma.LZMAError as e:
        raise FormatError(f"xz: corrupt stream ({e})") from None
    if len(out) > limit:
        raise FormatError(f"xz: decompresses to more than {limit} bytes (limit); refusing (bomb?)")
    if not d.eof:
        raise FormatError("xz: truncated or corrupt stream")
    return out


def _unzstd(data: bytes, limit: int) -> bytes:
    """No zstd in the Python 3.11 standard library: stream through the zstd program, reading at most limit+1."""
    if shutil.which("zstd") is None:
        raise FormatError("zstd: this member is zstd-compressed and the `zstd` program is not installed")
    proc = subprocess.Popen(["zstd", "-dc", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    def feed():
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    out = proc.stdout.read(limit + 1)
    if len(out) > limit:
        proc.kill()
        proc.wait()
        raise FormatError(f"zstd: decompresses to more than {limit} bytes (limit); refusing (bomb?)")
    err = proc.stderr.read()
    rc = proc.wait()
    t.join()
    if rc != 0:
        raise FormatError(f"zstd: corrupt stream ({err.decode(errors='replace').strip()[:200]})")
    return out


DECOMPRESSORS = {".gz": _gunzip, ".xz": _unxz, ".zst": _unzstd, "": lambda data, limit: data}
MAGICS = {b"\x1f\x8b": ".gz", b"\xfd7zXZ\x00": ".xz", b"\x28\xb5\x2f\xfd": ".zst"}
KINDS = {tarfile.REGTYPE: FILE, tarfile.AREGTYPE: FILE, tarfile.CONTTYPE: FILE, tarfile.DIRTYPE: DIR,
         tarfile.SYMTYPE: SYMLINK, tarfile.LNKTYPE: HARDLINK, tarfile.CHRTYPE: DEVICE, tarfile.BLKTYPE: DEVICE,
         tarfile.FIFOTYPE: FIFO}


def compression_of(name: str, data: bytes) -> str:
    for magic, ext in MAGICS.items():
        if data.startswith(magic):
            return ext
    for ext in (".gz", ".xz", ".zst"):
        if name.endswith(ext):
            raise FormatError(f"tar: {name!r} should be {ext}-compressed but its magic bytes do not match")
    return ""


def decompress(name: str, data: bytes, limit: int | None = None) -> bytes:
    return DECOMPRESSORS[compression_of(name, data)](data, limit or limits.MAX_UNPACKED)


def read_tar(name: str, data: bytes, limit: int | None = None) -> list[Member]:
    """Members of a (possibly compressed) tar; `name` is used for errors and the compression suffix."""
    raw = decompress(name, data, limit)
    what = f"tar {name!r}"
    members: list[Member] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
            for info in tf:
                if len(members) >= limits.MAX_ENTRIES:
                    raise FormatError(f"{what}: more than {limits.MAX_ENTRIES} members")
                kind = KINDS.get(info.type)
                if kind is None:
                    raise FormatError(f"{what}: member {info.name!r} has unsupported type {info.type!r}")
                if info.size > limits.MAX_MEMBER:
                    raise FormatError(f"{what}: member {info.name!r} is {info.size} bytes (limit {limits.MAX_MEMBER})")
                body = None
                if kind == FILE:
                    f = tf.extractfile(info)
                    body = f.read() if f is not None else b""
                    if len(body) != info.size:
                        raise FormatError(f"{what}: member {info.name!r} is truncated")
                members.append(Member(clean_name(info.name, what), kind,
                                      info.mode, info.size, body, info.linkname))
    except (tarfile.TarError, EOFError, OSError, UnicodeError) as e:
        raise FormatError(f"{what}: corrupt archive ({e})") from None
    return members
