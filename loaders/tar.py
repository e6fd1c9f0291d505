"""tar archives, plain or compressed with gzip, xz or zstd, streamed with hard bounds.

Nothing is materialised: a streaming decompressor (at most MAX_UNPACKED bytes, 1 MiB at a time)
feeds a tar header parser that yields each member with an iterator over its contents, so peak
memory is a few MiB whatever the input. Header extensions (GNU long names, pax records) are
bounded; GNU sparse members are refused (dpkg-deb never writes them, and their holes would
expand a tiny archive into hundreds of MiB).
"""

from __future__ import annotations

import hashlib
import lzma
import shutil
import subprocess
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import replace

from cerebro.binread import FormatError
from cerebro.loaders import limits
from cerebro.loaders.archive import DEVICE, DIR, FIFO, FILE, HARDLINK, SYMLINK, Member, clean_name

CHUNK = 1 << 20  # decompressed bytes produced at a time
BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)

Pieces = Iterable[bytes]


def _gunzip(pieces: Pieces) -> Iterator[bytes]:
    d = zlib.decompressobj(wbits=47)  # gzip or zlib header
    for piece in pieces:
        while piece and not d.eof:
            try:
                out = d.decompress(piece, CHUNK)
            except zlib.error as e:
                raise FormatError(f"gzip: corrupt stream ({e})") from None
            piece = d.unconsumed_tail
            yield out
            while len(out) == CHUNK and not piece and not d.eof:  # output still pending inside zlib
                out = d.decompress(b"", CHUNK)
                yield out
    if not d.eof:
        raise FormatError("gzip: truncated or corrupt stream")


def _unxz(pieces: Pieces) -> Iterator[bytes]:
    # memlimit: a hostile header may ask for a 1.5 GiB dictionary, which fills as output is produced
    d = lzma.LZMADecompressor(memlimit=limits.MAX_DECODER_MEMORY)
    try:
        for piece in pieces:
            if d.eof:
                break
            yield d.decompress(piece, CHUNK)
            while not d.needs_input and not d.eof:
                yield d.decompress(b"", CHUNK)
    except lzma.LZMAError as e:
        raise FormatError(f"xz: corrupt stream or over {limits.MAX_DECODER_MEMORY >> 20} MiB to decode ({e})") from None
    if not d.eof:
        raise FormatError("xz: truncated or corrupt stream")


def _unzstd(pieces: Pieces) -> Iterator[bytes]:
    """No zstd in the Python 3.11 standard library: stream through the zstd program (killed when we stop)."""
    if shutil.which("zstd") is None:
        raise FormatError("zstd: this member is zstd-compressed and the `zstd` program is not installed")
    proc = subprocess.Popen(["zstd", "-dc", "-q", f"--memory={limits.MAX_DECODER_MEMORY >> 20}MB"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed() -> None:
        try:
            for piece in pieces:
                proc.stdin.write(piece)
            proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        while out := proc.stdout.read(CHUNK):
            yield out
        err = proc.stderr.read(4096)
        if proc.wait() != 0:
            raise FormatError(f"zstd: corrupt stream ({err.decode(errors='replace').strip()[:200]})")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        feeder.join()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


DECOMPRESSORS = {".gz": _gunzip, ".xz": _unxz, ".zst": _unzstd, "": iter}
MAGICS = {b"\x1f\x8b": ".gz", b"\xfd7zXZ\x00": ".xz", b"\x28\xb5\x2f\xfd": ".zst"}
KINDS = {b"0": FILE, b"\0": FILE, b"7": FILE, b"1": HARDLINK, b"2": SYMLINK, b"3": DEVICE, b"4": DEVICE,
         b"5": DIR, b"6": FIFO}
EXTENSIONS = {b"L": "path", b"K": "linkpath", b"x": "pax", b"g": "global pax"}  # apply to the next member
UNSUPPORTED = {b"S": "GNU sparse file", b"M": "multi-volume continuation", b"V": "volume label",
               b"D": "GNU dump directory"}


def compression_of(name: str, data: bytes) -> str:
    for magic, ext in MAGICS.items():
        if data.startswith(magic):
            return ext
    for ext in (".gz", ".xz", ".zst"):
        if name.endswith(ext):
            raise FormatError(f"tar: {name!r} should be {ext}-compressed but its magic bytes do not match")
    return ""


def _pieces_of(data: bytes | Pieces) -> Iterator[bytes]:
    """Compressed input as pieces: bytes are sliced without copying the whole."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        return (bytes(view[i:i + CHUNK]) for i in range(0, len(view), CHUNK))
    return iter(data)


def decompressed(name: str, data: bytes | Pieces, limit: int | None = None) -> Iterator[bytes]:
    """The decompressed bytes of a tar member, in pieces, refusing more than `limit` in all."""
    limit = limit or limits.MAX_UNPACKED
    pieces = _pieces_of(data)
    first = next(pieces, b"")
    kind = compression_of(name, first)

    def rejoined() -> Iterator[bytes]:
        yield first
        yield from pieces

    total = 0
    stream = DECOMPRESSORS[kind](rejoined())
    try:
        for out in stream:
            total += len(out)
            if total > limit:
                raise FormatError(f"{kind.lstrip('.') or 'tar'}: decompresses to more than {limit} bytes "
                                  f"(limit); refusing (bomb?)")
            if out:
                yield out
    finally:
        stream.close()


class _Stream:
    """Exact reads from an iterator of pieces."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces, self.buf, self.pos = pieces, b"", 0

    def pieces_of(self, n: int) -> Iterator[bytes]:
        """The next n bytes in pieces (fewer only at the end of the stream)."""
        while n:
            if self.pos == len(self.buf):
                self.buf, self.pos = next(self.pieces, b""), 0
                if not self.buf:
                    return
            piece = self.buf[self.pos:self.pos + n]
            self.pos += len(piece)
            n -= len(piece)
            yield piece

    def read(self, n: int) -> bytes:
        if self.pos + n <= len(self.buf):  # the common case: a header inside the current piece
            self.pos += n
            return self.buf[self.pos - n:self.pos]
        return b"".join(self.pieces_of(n))


def _number(raw: bytes, what: str, field: str) -> int:
    """An octal text field, or GNU base-256 (high bit set) for large values."""
    if raw[:1] == b"\x80":
        return int.from_bytes(raw[1:], "big")
    if raw[:1] and raw[0] & 0x80:
        raise FormatError(f"{what}: negative or malformed {field} field")
    text = raw.split(b"\0", 1)[0].strip(b" ")
    if text.translate(None, b"01234567"):
        raise FormatError(f"{what}: {field} field {raw!r} is not octal")
    return int(text or b"0", 8)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes, what: str) -> dict[str, str]:
    """`LEN key=value\\n` records."""
    out, pos = {}, 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 20)
        length = data[pos:space]
        if space < 0 or not length.isdigit() or int(length) <= space - pos or pos + int(length) > len(data):
            raise FormatError(f"{what}: malformed pax record at offset {pos}")
        record = data[space + 1:pos + int(length)]
        key, eq, value = record.partition(b"=")
        if not eq or not record.endswith(b"\n"):
            raise FormatError(f"{what}: malformed pax record at offset {pos}")
        out[key.decode("utf-8", "surrogateescape")] = value[:-1].decode("utf-8", "surrogateescape")
        pos += int(length)
    return out


def _check_header(block: bytes, what: str) -> None:
    stored = _number(block[148:156], what, "checksum")
    unsigned = sum(block) - sum(block[148:156]) + 8 * 32  # the checksum field counts as spaces
    if stored != unsigned and stored != unsigned - 256 * sum(b >= 0x80 for b in block[:148] + block[156:]):
        raise FormatError(f"{what}: bad header checksum (not a tar archive, or corrupt)")


def iter_tar(name: str, data: bytes | Pieces, limit: int | None = None) -> Iterator[tuple[Member, Iterator[bytes]]]:
    """(member, its contents in pieces) for each member; contents not consumed are skipped.
    Members' digests are not set here (see read_tar)."""
    what = f"tar {name!r}"
    stream = _Stream(decompressed(name, data, limit))
    count = name_bytes = 0
    pending: dict[str, str] = {}
    while True:
        block = stream.read(BLOCK)
        if not block or block == ZERO_BLOCK:
            break  # end of archive (a missing end marker is accepted, as GNU tar and tarfile do)
        if len(block) < BLOCK:
            raise FormatError(f"{what}: truncated header")
        _check_header(block, what)
        kind_flag, size = block[156:157], _number(block[124:136], what, "size")
        if kind_flag in EXTENSIONS:
            if size > limits.MAX_HEADER_EXTENSION:
                raise FormatError(f"{what}: {EXTENSIONS[kind_flag]} header of {size} bytes "
                                  f"(limit {limits.MAX_HEADER_EXTENSION})")
            body = stream.read(size + -size % BLOCK)
            if len(body) < size:
                raise FormatError(f"{what}: truncated {EXTENSIONS[kind_flag]} header")
            _extend(pending, kind_flag, body[:size], what)
            continue
        raw_name = pending.pop("path", None) or _header_name(block)
        linkname = pending.pop("linkpath", None) or _text(block[157:257])
        size = int(pending.pop("size", size))
        pending.clear()
        kind = KINDS.get(kind_flag)
        if kind_flag == b"\0" and raw_name.endswith("/"):
            kind = DIR  # old (v7) directories
        if kind is None:
            reason = UNSUPPORTED.get(kind_flag, "unknown")
            raise FormatError(f"{what}: member {raw_name!r} has unsupported type {kind_flag!r} ({reason})")
        count += 1
        name_bytes += len(raw_name) + len(linkname)
        if count > limits.MAX_ENTRIES:
            raise FormatError(f"{what}: more than {limits.MAX_ENTRIES} members")
        if name_bytes > limits.MAX_NAME_BYTES:
            raise FormatError(f"{what}: member names total over {limits.MAX_NAME_BYTES} bytes")
        if size > limits.MAX_MEMBER:
            raise FormatError(f"{what}: member {raw_name!r} is {size} bytes (limit {limits.MAX_MEMBER})")
        stored = size if kind == FILE else 0  # only regular files have data blocks (as tarfile reads them)
        mode = _number(block[100:108], what, "mode") & 0o7777
        contents = _counted(stream.pieces_of(stored), stored, f"{what}: member {raw_name!r} is truncated")
        yield Member(clean_name(raw_name, what), kind, mode, stored, None, linkname), contents
        for _ in contents:
            pass
        if len(stream.read(-stored % BLOCK)) < -stored % BLOCK:
            raise FormatError(f"{what}: member {raw_name!r} is truncated")
    for _ in stream.pieces_of(limits.MAX_UNPACKED + 1):
        pass  # the rest (padding): decompressing it to the end checks the stream's integrity


def _counted(pieces: Iterator[bytes], size: int, message: str) -> Iterator[bytes]:
    got = 0
    for piece in pieces:
        got += len(piece)
        yield piece
    if got != size:
        raise FormatError(message)


def _header_name(block: bytes) -> str:
    name = _text(block[0:100])
    if block[257:263] == b"ustar\0":  # POSIX ustar: a prefix field holds the leading directories
        prefix = _text(block[345:500])
        if prefix:
            return f"{prefix}/{name}"
    return name


def _extend(pending: dict[str, str], kind_flag: bytes, body: bytes, what: str) -> None:
    """Record what a GNU long-name or pax header says about the next member."""
    if kind_flag in (b"L", b"K"):
        pending["path" if kind_flag == b"L" else "linkpath"] = _text(body)
        return
    records = _pax_records(body, what)
    if any(key.startswith("GNU.sparse.") for key in records):
        raise FormatError(f"{what}: GNU sparse members are not supported (dpkg-deb never writes them)")
    if kind_flag == b"g":
        return  # global defaults: nothing we use
    for key in ("path", "linkpath", "size"):
        if key in records:
            pending[key] = records[key]
    if "size" in pending and not pending["size"].isdigit():
        raise FormatError(f"{what}: pax size {pending['size']!r} is not a number")


def read_tar(name: str, data: bytes | Pieces, limit: int | None = None, keep_data: bool = False) -> list[Member]:
    """Members of a (possibly compressed) tar; file contents are held only with keep_data (small
    archives: a .deb's control.tar), else skipped as they stream past."""
    members = []
    for member, contents in iter_tar(name, data, limit):
        if keep_data and member.kind == FILE:
            member = replace(member, data=b"".join(contents))
        members.append(member)
    return members


def file_digests(name: str, data: bytes | Pieces, limit: int | None = None) -> dict[str, str]:
    """md5 (hex) of each regular file by name, streamed; a hard link has its source's, as on disk."""
    digests: dict[str, str] = {}
    for member, contents in iter_tar(name, data, limit):
        if member.kind == FILE:
            md5 = hashlib.md5()
            for piece in contents:
                md5.update(piece)
            digests[member.name] = md5.hexdigest()
        elif member.kind == HARDLINK and _link_name(member.linkname, name) in digests:
            digests[member.name] = digests[_link_name(member.linkname, name)]
        else:
            digests.pop(member.name, None)  # replaced by a later member: no longer that file
    return digests


def _link_name(linkname: str, what: str) -> str:
    try:
        return clean_name(linkname, what)
    except FormatError:
        return ""  # refused at extraction; here it just names no file
