"""APK Signing Block (v2/v3): each signer's signature over its signed data, made with the public
key in the signer record (which must be its first certificate's key), and the content digests
that signed data holds, re-computed over the file.

The digest covers the zip entries, the central directory and the end-of-central-directory
record (with its directory offset pointing at the signing block) in 1 MiB chunks. A v2 signer
may carry a stripping-protection attribute naming v3: then a missing v3 block is an attack.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cerebro.binread import FormatError
from cerebro.loaders.pkcs7 import Certificate, parse_certificate
from cerebro.loaders.pubkey import parse_public_key, verify

SCHEMES = {0x7109871A: "v2", 0xF05368C0: "v3", 0x1B93AD61: "v3.1"}
# signature algorithm id -> (signature scheme, digest); only the first seven have chunked content digests
ALGORITHMS = {0x0101: ("pss", "sha256"), 0x0102: ("pss", "sha512"), 0x0103: ("pkcs1", "sha256"),
              0x0104: ("pkcs1", "sha512"), 0x0201: ("ecdsa", "sha256"), 0x0202: ("ecdsa", "sha512"),
              0x0301: ("dsa", "sha256"), 0x0421: ("pkcs1", "sha256"), 0x0423: ("ecdsa", "sha256"),
              0x0425: ("dsa", "sha256")}
CHUNKED_DIGESTS = {k: v[1] for k, v in ALGORITHMS.items() if k < 0x0400}  # the rest: verity-tree digests
STRIPPING_PROTECTION = 0xBEEFF00D  # v2 signer attribute: "this signer also signed with scheme <u32>"
STRIPPING_IDS = {3: "v3"}
CHUNK = 1 << 20
MAX_ITEMS = 256
MAX_SIGNERS, MAX_SIGNATURES = 4, 4  # per scheme, per signer: a hostile block must not buy unbounded checks


@dataclass(frozen=True)
class Signer:
    signed_data: bytes  # what the signatures cover
    digests: list[tuple[int, bytes]]
    certificates: list[bytes]
    attributes: list[tuple[int, bytes]]
    signatures: list[tuple[int, bytes]]
    public_key: bytes  # SubjectPublicKeyInfo
    sdk_ranges: tuple[bytes, bytes] = (b"", b"")  # v3: (min, max SDK) in the record and in the signed data


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


def _id_values(buf: bytes, what: str, prefixed: bool) -> list[tuple[int, bytes]]:
    """A sequence of (u32 id, value) records; the value is itself length-prefixed when `prefixed`."""
    out = []
    for item in _sequence(buf, what):
        if len(item) < 4:
            raise FormatError(f"apk signing block: truncated {what} record")
        value = _lp(item, 4, len(item), what)[0] if prefixed else item[4:]
        out.append((struct.unpack_from("<I", item, 0)[0], value))
    return out


def parse_signers(value: bytes, scheme: str) -> list[Signer]:
    """The signers of a v2 or v3 (v3.1) scheme block value; v3 adds min/max SDK fields."""
    signers, _ = _lp(value, 0, len(value), "signer sequence")
    sdk = 0 if scheme == "v2" else 8
    records = _sequence(signers, "signer")
    if len(records) > MAX_SIGNERS:
        raise FormatError(f"apk signing block: {len(records)} signers (at most {MAX_SIGNERS} are checked)")
    out = []
    for record in records:
        signed_data, pos = _lp(record, 0, len(record), "signed data")
        record_sdk = record[pos:pos + sdk]
        signatures, pos = _lp(record, pos + sdk, len(record), "signatures")
        public_key, _ = _lp(record, pos, len(record), "public key")
        digests, pos = _lp(signed_data, 0, len(signed_data), "digest sequence")
        certificates, pos = _lp(signed_data, pos, len(signed_data), "certificate sequence")
        signed_sdk = signed_data[pos:pos + sdk]
        attributes, _ = _lp(signed_data, pos + sdk, len(signed_data), "attribute sequence")
        out.append(Signer(signed_data, _id_values(digests, "digest", True), _sequence(certificates, "certificate"),
                          _id_values(attributes, "attribute", False), _id_values(signatures, "signature", True),
                          public_key, (record_sdk, signed_sdk)))
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


def _check_signer(signer: Signer, scheme: str, present: set[str]) -> tuple[list[str], Certificate | None]:
    """Problems with one signer's signatures, key, certificate and stripping protection."""
    problems = []
    supported = [(algorithm, sig) for algorithm, sig in signer.signatures if algorithm in ALGORITHMS]
    if len(signer.signatures) > MAX_SIGNATURES:
        return [f"{len(signer.signatures)} signatures (at most {MAX_SIGNATURES} are checked)"], None
    if not supported:
        problems.append("no signature with a supported algorithm")
    if [a for a, _ in signer.signatures] != [a for a, _ in signer.digests]:
        problems.append("the signature and digest algorithm lists differ")
    if signer.sdk_ranges[0] != signer.sdk_ranges[1]:  # v3: the record's copy is not signed, so must match
        problems.append("min/max SDK versions differ between the signer record and its signed data")
    key = parse_public_key(signer.public_key)
    for algorithm, sig in supported:
        kind, digest = ALGORITHMS[algorithm]
        if not verify(key, kind, digest, signer.signed_data, sig):
            problems.append(f"signature {algorithm:#06x} ({kind}/{digest}) does not verify with the signer's key")
    cert = parse_certificate(signer.certificates[0]) if signer.certificates else None
    if cert is None:
        problems.append("the signer has no certificate")
    elif cert.spki != signer.public_key:
        problems.append("the signer's public key is not its certificate's key")
    for attribute, value in signer.attributes:
        claimed = STRIPPING_IDS.get(struct.unpack("<I", value)[0]) if len(value) == 4 else None
        if scheme == "v2" and attribute == STRIPPING_PROTECTION and claimed and claimed not in present:
            problems.append(f"the signer also made an APK Signature Scheme {claimed} signature, which is missing "
                            f"(signature stripped)")
    return problems, cert if not problems else None  # a certificate counts once its signature verifies


def verify_signing_block(data: bytes, pairs: dict[int, bytes], block_start: int, cd_offset: int,
                         eocd_offset: int) -> tuple[list[str], list[Certificate]]:
    """(problems, signer certificates) of every v2/v3 scheme in the block (no problems: all verify)."""
    problems: list[str] = []
    certificates: list[Certificate] = []
    cache: dict[str, bytes] = {}
    present = {SCHEMES[k] for k in pairs if k in SCHEMES}
    for pair_id, value in pairs.items():
        scheme = SCHEMES.get(pair_id)
        if scheme is None:
            continue
        prefix = f"APK Signature Scheme {scheme}"
        try:
            signers = parse_signers(value, scheme)
            if not signers:
                problems.append(f"{prefix}: no signers")
            for signer in signers:
                signer_problems, cert = _check_signer(signer, scheme, present)
                problems += [f"{prefix}: {p}" for p in signer_problems]
                certificates += [cert] if cert else []
                for algorithm, digest in signer.digests:
                    name = CHUNKED_DIGESTS.get(algorithm)
                    if name is None:
                        continue  # verity-tree digests: not a whole-file chunked digest
                    if name not in cache:
                        cache[name] = content_digest(data, block_start, cd_offset, eocd_offset, name)
                    if cache[name] != digest:
                        problems.append(f"{prefix}: content digest ({name}) does not match: "
                                        f"the APK was modified after signing")
        except FormatError as e:
            problems.append(f"{prefix}: {e}")
    return problems, certificates
