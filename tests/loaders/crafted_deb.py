"""Hostile and edge-case .deb files, generated (no checked-in binaries), for the loader tests
and as a fuzz seed corpus: `python tests/loaders/crafted_deb.py OUTDIR` writes every one.

Link attacks take `ups`: how many directories above the extraction root the victim lies
(`pkg extract F DIR` with the victim next to DIR: ups=1; `pkg run`: root is $TMP/cerebro-deb-X/root,
so a victim in $TMP is ups=2). Bombs decompress to more than the 512 MiB limit but are built
in well under a second: each distinct piece is compressed once and its compressed form repeated.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import shutil
import struct
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

MiB = 1 << 20
CONTROL = b"Package: crafted\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@example.org>\nDescription: crafted\n"

# -- containers ---------------------------------------------------------------------------------


def ar_archive(members: list[tuple[str, bytes]]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, body in members:
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n".encode() + body
        if len(body) & 1:
            out += b"\n"
    return bytes(out)


def deb(data_tar: bytes, control_tar: bytes | None = None, data_name: str = "data.tar.gz",
        control_name: str = "control.tar.gz") -> bytes:
    """A .deb around the given (already compressed) tars; the default control tar holds only `control`."""
    if control_tar is None:
        control_tar = gzip_tar([file_entry("./control", CONTROL)])
    return ar_archive([("debian-binary", b"2.0\n"), (control_name, control_tar), (data_name, data_tar)])


Entry = tuple[tarfile.TarInfo, bytes]


def file_entry(name: str, body: bytes, mode: int = 0o644) -> Entry:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(body), mode
    return info, body


def dir_entry(name: str, mode: int = 0o755) -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, b""


def link_entry(name: str, target: str, hard: bool = False) -> Entry:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), target, 0o777
    return info, b""


def fifo_entry(name: str) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.FIFOTYPE
    return info, b""


def gzip_tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tf:
        for info, body in entries:
            tf.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def md5sums(files: dict[str, bytes]) -> bytes:
    return "".join(f"{hashlib.md5(body).hexdigest()}  {name}\n" for name, body in files.items()).encode()


# -- link attacks (issue #10 item 8) ------------------------------------------------------------


def up_chain(ups: int) -> tuple[list[Entry], str]:
    """Links s/u0 -> .., s/uK -> u(K-1)/..: each lexically inside, s/u<ups> really `ups` levels above root."""
    entries = [dir_entry("./s/"), link_entry("./s/u0", "..")]
    entries += [link_entry(f"./s/u{k}", f"u{k - 1}/..") for k in range(1, ups + 1)]
    return entries, f"s/u{ups}"


def hardlink_through_chain(ups: int = 1, victim: str = "victim", payload: bytes = b"pwned\n") -> bytes:
    """s/x -> <chain>/victim, then a hard link named s/x: the old extractor wrote the payload through it."""
    chain, top = up_chain(ups)
    entries = [*chain, link_entry("./s/x", f"u{ups}/{victim}"), file_entry("./payload", payload),
               link_entry("./s/x", "payload", hard=True)]
    return deb(gzip_tar(entries))


def debian_dir_link(ups: int = 1, outside: str = "outside") -> bytes:
    """Data member DEBIAN is a link up the chain: control files (named by the attacker) went there."""
    chain, top = up_chain(ups)
    data = gzip_tar([*chain, link_entry("./DEBIAN", f"{top}/{outside}")])
    control = gzip_tar([file_entry("./control", CONTROL), file_entry("./attacker-chosen", b"pwned\n")])
    return deb(data, control)


def chmod_through_link(ups: int = 1, outside: str = "outside") -> bytes:
    """A directory member named like a link up the chain: the old extractor chmod-ed the outside directory."""
    chain, top = up_chain(ups)
    return deb(gzip_tar([*chain, link_entry("./s/d", f"u{ups}/{outside}"), dir_entry("./s/d", 0o777)]))


def refused_after_links(ups: int = 1) -> bytes:
    """Escaping links, then a FIFO that is refused: the old extractor left the links behind."""
    chain, top = up_chain(ups)
    return deb(gzip_tar([*chain, link_entry("./s/out", f"u{ups}/etc"), fifo_entry("./fifo")]))


# -- fidelity (item 9) ----------------------------------------------------------------------------


def hardlinks_and_modes() -> bytes:
    """bzip2-style hard-link group listed in md5sums, a 0700 directory (libc-bin's var/cache/ldconfig),
    a read-only directory with a file in it, and a setuid program."""
    prog = b"#!/bin/sh\necho hi\n"
    data = gzip_tar([dir_entry("./bin/"), file_entry("./bin/bunzip2", prog, 0o755),
                     link_entry("./bin/bzcat", "./bin/bunzip2", hard=True),
                     link_entry("./bin/bzip2", "./bin/bunzip2", hard=True),
                     dir_entry("./var/"), dir_entry("./var/cache/"), dir_entry("./var/cache/ldconfig/", 0o700),
                     dir_entry("./ro/", 0o555), file_entry("./ro/f", b"x\n", 0o444),
                     file_entry("./bin/suid", prog, 0o4755)])
    sums = md5sums({"bin/bunzip2": prog, "bin/bzcat": prog, "bin/bzip2": prog, "ro/f": b"x\n", "bin/suid": prog})
    return deb(data, gzip_tar([file_entry("./control", CONTROL), file_entry("./md5sums", sums)]))


# -- memory (item 10) ----------------------------------------------------------------------------


def tar_header(name: str, size: int, kind: bytes = b"0", extra: dict[int, bytes] | None = None) -> bytes:
    """One GNU tar header block; `extra` writes raw fields at their offsets (e.g. the sparse map)."""
    block = bytearray(512)
    block[0:len(name)] = name.encode()
    for offset, text in ((100, b"0000644\0"), (108, b"0000000\0"), (116, b"0000000\0"),
                         (124, b"%011o\0" % size), (136, b"00000000000\0")):
        block[offset:offset + len(text)] = text
    block[156:157] = kind
    block[257:265] = b"ustar  \0"
    for offset, raw in (extra or {}).items():
        block[offset:offset + len(raw)] = raw
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def pax_record(key: str, value: str) -> bytes:
    """One "LEN key=value\n" pax record (LEN counts itself)."""
    body = f" {key}={value}\n".encode()
    size = len(body) + 1
    while len(str(size).encode()) + len(body) != size:
        size += 1
    return str(size).encode() + body


def sparse_tar(files: int = 2, real_size: int = 250 * MiB) -> bytes:
    """GNU tar --sparse --format=pax members (sparse format 1.0): 512 stored bytes each, `real_size`
    bytes once the holes are filled in."""
    out = bytearray()
    for k in range(files):
        pax = b"".join(pax_record(key, value) for key, value in (
            ("GNU.sparse.major", "1"), ("GNU.sparse.minor", "0"), ("GNU.sparse.name", f"sparse{k}"),
            ("GNU.sparse.realsize", str(real_size))))
        out += tar_header(f"PaxHeaders/sparse{k}", len(pax), b"x") + pax + bytes(-len(pax) % 512)
        sparse_map = b"1\n%d\n512\n" % (real_size - 512)
        out += tar_header(f"GNUSparseFile.0/sparse{k}", 1024) + sparse_map + bytes(512 - len(sparse_map))
        out += b"\1" * 512
    return bytes(out + bytes(1024))


def sparse_bomb() -> bytes:
    """Two 250 MiB sparse files in each tar of a 1-2 KB .deb (the old `info` peaked at 1.5 GB)."""
    control = io.BytesIO()
    with tarfile.open(fileobj=control, mode="w") as tf:
        info, body = file_entry("./control", CONTROL)
        tf.addfile(info, io.BytesIO(body))
    control_tar = control.getvalue()[:-1024] + sparse_tar()
    return deb(zlib_gzip([(sparse_tar(), 1)]), zlib_gzip([(control_tar, 1)]))


def bomb_pieces() -> list[tuple[bytes, int]]:
    """A tar of two 256 MiB members of zeros: 512 MiB + 1 KiB, just over the unpacked limit."""
    zeros = bytes(16 * MiB)  # compressed once: the smaller, the faster to build
    return [(tar_header("a", 256 * MiB), 1), (zeros, 16), (tar_header("b", 256 * MiB), 1), (zeros, 16),
            (bytes(1024), 1)]


def long_name_bomb(size: int = 384 * MiB) -> bytes:
    """A GNU long-name header (`L`) of `size` bytes: the old reader held the name (and the tar) whole."""
    name = bytes(b"a" * (64 * MiB))
    assert size % len(name) == 0
    pieces = [(tar_header("././@LongLink", size, b"L"), 1), (name, size // len(name)), (tar_header("x", 0), 1),
              (bytes(1024), 1)]
    return deb(zlib_gzip(pieces))


def control_bomb(lines: int = 190_000) -> bytes:
    """One control field continued over `lines` lines (15 MiB): the old parser grew the value by `+=`,
    quadratic (hours), and held every line of it at once."""
    control = CONTROL + b"".join(b" %078d\n" % k for k in range(lines))
    return deb(gzip_tar([file_entry("./f", b"")]), gzip_tar([file_entry("./control", control)]))


def md5sums_bomb(size: int = 96 * MiB) -> bytes:
    """An md5sums file of `size` bytes (1.2M lines; 100 KB packed): the old reader held it as bytes, as
    text and as a list of lines at once (about 0.5 GB)."""
    line = b"%032x  usr/share/doc/crafted/%029d\n" % (0, 0)  # 80 bytes
    lines = line * (64 * 1024 // len(line) * 16)  # 1,310,720 bytes
    count = size // len(lines)
    control = tar_header("./control", len(CONTROL)) + CONTROL + bytes(-len(CONTROL) % 512)
    return deb(gzip_tar([file_entry("./f", b"")]),
               zlib_gzip([(control + tar_header("./md5sums", len(lines) * count), 1), (lines, count),
                          (bytes(-len(lines) * count % 512 + 1024), 1)]))


def large_file(size: int = 160 * MiB) -> bytes:
    """A valid .deb with one file of `size` zero bytes (the old extractor held it twice in memory)."""
    zeros = bytes(32 * MiB)
    assert size % len(zeros) == 0
    return deb(zlib_gzip([(tar_header("big", size), 1), (zeros, size // len(zeros)), (bytes(1024), 1)]))


def zlib_gzip(pieces: list[tuple[bytes, int]]) -> bytes:
    """One gzip member whose deflate stream repeats each piece's full-flushed compressed form."""
    body, crc, total = bytearray(), 0, 0
    for raw, times in pieces:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = c.compress(raw) + c.flush(zlib.Z_FULL_FLUSH)
        body += packed * times
        for _ in range(times):
            crc = zlib.crc32(raw, crc)
        total += len(raw) * times
    body += zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    return b"\x1f\x8b\x08\0\0\0\0\0\0\xff" + bytes(body) + struct.pack("<II", crc, total & 0xFFFFFFFF)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def xz_blocks(pieces: list[tuple[bytes, int]], dict_prop: int | None = None) -> bytes:
    """One xz stream whose blocks repeat each piece's single compressed block (index rebuilt to match);
    dict_prop rewrites the LZMA2 dictionary size the block headers claim (36: 1 GiB)."""
    header = footer_flags = None
    blocks, records = bytearray(), []
    for raw, times in pieces:
        one = lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, preset=0)
        header, footer_flags = one[:12], one[-4:-2]
        index_size = (struct.unpack("<I", one[-8:-4])[0] + 1) * 4
        block = one[12:len(one) - 12 - index_size]
        if dict_prop is not None:
            block = _claim_dictionary(block, dict_prop)
        unpadded, _ = _read_varint(one, len(one) - 12 - index_size + 2)  # after the indicator and count (1)
        blocks += block * times
        records += [(unpadded, len(raw))] * times
    index = bytearray(b"\0" + _varint(len(records)))
    for unpadded, size in records:
        index += _varint(unpadded) + _varint(size)
    index += bytes(-len(index) % 4)
    index += struct.pack("<I", zlib.crc32(index))
    tail = struct.pack("<I", len(index) // 4 - 1) + footer_flags
    return header + bytes(blocks) + bytes(index) + struct.pack("<I", zlib.crc32(tail)) + tail + b"YZ"


def _claim_dictionary(block: bytes, dict_prop: int) -> bytes:
    """The block with its header's LZMA2 dictionary-size byte replaced (header CRC32 recomputed)."""
    header_size = (block[0] + 1) * 4
    header = bytearray(block[:header_size])
    pos = 2
    for flag in (0x40, 0x80):  # optional compressed / uncompressed sizes
        if header[1] & flag:
            pos = _read_varint(header, pos)[1]
    filter_id, pos = _read_varint(header, pos)
    props_size, pos = _read_varint(header, pos)
    assert filter_id == 0x21 and props_size == 1, "one LZMA2 filter expected"
    header[pos] = dict_prop
    header[-4:] = struct.pack("<I", zlib.crc32(header[:-4]))
    return bytes(header) + block[header_size:]


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def zstd_frames(pieces: list[tuple[bytes, int]]) -> bytes:
    """Concatenated zstd frames (one stream to `zstd -d`), each piece compressed once by the zstd program."""
    out = bytearray()
    for raw, times in pieces:
        out += subprocess.run(["zstd", "-q", "-c", "-1"], input=raw, capture_output=True, check=True).stdout * times
    return bytes(out)


BOMB_COMPRESSORS: dict[str, tuple[str, Callable[[list[tuple[bytes, int]]], bytes]]] = {
    "gz": ("data.tar.gz", zlib_gzip), "xz": ("data.tar.xz", lambda pieces: xz_blocks(pieces, dict_prop=36)),
    "zst": ("data.tar.zst", zstd_frames)}


def decompression_bomb(kind: str) -> bytes:
    """A .deb whose data.tar.<kind> holds 512 MiB + 1 KiB (a few hundred KB compressed); the xz one
    also claims a 1 GiB dictionary, which a decoder without a memory limit fills as it goes."""
    name, compress = BOMB_COMPRESSORS[kind]
    return deb(compress(bomb_pieces()), data_name=name)


def all_crafted() -> dict[str, Callable[[], bytes]]:
    """Every crafted .deb by file name (the zstd bomb only where the zstd program is installed)."""
    out = {"hardlink-through-chain.deb": hardlink_through_chain, "debian-dir-link.deb": debian_dir_link,
           "chmod-through-link.deb": chmod_through_link, "refused-after-links.deb": refused_after_links,
           "hardlinks-and-modes.deb": hardlinks_and_modes, "sparse-bomb.deb": sparse_bomb,
           "large-file.deb": large_file, "long-name-bomb.deb": long_name_bomb,
           "control-bomb.deb": control_bomb, "md5sums-bomb.deb": md5sums_bomb}
    for kind in BOMB_COMPRESSORS:
        if kind != "zst" or shutil.which("zstd"):
            out[f"bomb-{kind}.deb"] = lambda kind=kind: decompression_bomb(kind)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/loaders/crafted_deb.py OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, make in all_crafted().items():
        (out / name).write_bytes(make())
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
