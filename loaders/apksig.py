"""APK Signing Block (v2/v3): parse the signers and re-compute the content digests they sign.

The digest covers the zip entries, the central directory and the end-of-central-directory
record (with its directory offset pointing at the signing block) in 1 MiB chunks. A match
proves the file is what was signed; checking the signature over the digests themselves needs
public-key crypto, which is left to apksigner (reported as such, never claimed).
"""

from __future__ import annotations

import hashlib
import struct

from cerebro.loaders.errors import FormatError

SCHEMES = {0x7109871A: "v2", 0xF05368C0: "v3", 0x1B93AD61: "v3.1"}
CHUNKED_DIGESTS = {0x0101: "sha256", 0x0102: "sha512", 0x0103: "sha256", 0x0104: "sha512", 0x0201: "sha256",
                   0x0202: "sha512", 0x0301: "sha256"}
CHUNK = 1 << 20
MAX_ITEMS = 256


def _lp(buf: bytes, pos: int, end: int, what: str) -> tuple[bytes, int]:
    """A u32-length-prefixed field at pos, bounded by end; returns (field, next position)."""
    if pos + 4 > end:
        raise FormatError(f"apk signing block: truncated {what}")
    n = struct.unpack_from("<I", buf, pos)[0]
    if pos + 4 + n > end:
        raise FormatError(f"apk signing block: {what} of {n} bytes overruns its container")
    return buf[pos + 4:pos + 4 + n], pos + 4 + n


def _sequence(buf: bytes, what: str) -> list[bytes]:
    out, pos = [], 0
    while pos < len(buf):
        item, pos = _lp(buf, pos, len(buf), what)
        out.append(item)
        if len(out) > MAX_ITEMS:
            raise FormatError(f"apk signing block: more than {MAX_ITEMS} {what}s")
    return out


def signed_digests(value: bytes) -> list[tuple[int, bytes]]:
    """(algorithm id, digest) of every signer in a v2/v3 scheme block value."""
    signers, _ = _lp(value, 0, len(value), "signer sequence")
    out = []
    for signer in _sequence(signers, "signer"):
        signed_data, _ = _lp(signer, 0, len(signer), "signed data")
        digests, _ = _lp(signed_data, 0, len(signed_data), "digest sequence")
        for item in _sequence(digests, "digest"):
            if len(item) < 8:
                raise FormatError("apk signing block: truncated digest record")
            algorithm = struct.unpack_from("<I", item, 0)[0]
            digest, _ = _lp(item, 4, len(item), "digest")
            out.append((algorithm, digest))
    return out


def content_digest(data: bytes, block_start: int, cd_offset: int, eocd_offset: int, algorithm: str) -> bytes:
    eocd = bytearray(data[eocd_offset:])
    struct.pack_into("<I", eocd, 16, block_start)  # as if the signing block were absent
    chunks = []
    for section in (memoryview(data)[:block_start], memoryview(data)[cd_offset:eocd_offset], memoryview(eocd)):
        for i in range(0, len(section), CHUNK):
            part = section[i:i + CHUNK]
            chunks.append(hashlib.new(algorithm, b"\xa5" + struct.pack("<I", len(part)) + part).digest())
    return hashlib.new(algorithm, b"\x5a" + struct.pack("<I", len(chunks)) + b"".join(chunks)).digest()


def verify_signing_block(data: bytes, pairs: dict[int, bytes], block_start: int, cd_offset: int,
                         eocd_offset: int) -> list[str]:
    """Problems with the v2/v3 content digests (empty: every digest matches the file)."""
    problems = []
    cache: dict[str, bytes] = {}
    for pair_id, value in pairs.items():
        scheme = SCHEMES.get(pair_id)
        if scheme is None:
            continue
        for algorithm, digest in signed_digests(value):
            name = CHUNKED_DIGESTS.get(algorithm)
            if name is None:
                continue  # verity-tree digests: not a whole-file chunked digest
            if name not in cache:
                cache[name] = content_digest(data, block_start, cd_offset, eocd_offset, name)
            if cache[name] != digest:
                problems.append(f"APK Signature Scheme {scheme}: content digest ({name}) does not match: "
                                f"the APK was modified after signing")
    return problems
