"""Crafted hostile zip/APK inputs, generated from a real signed APK (never checked in).

Each generator returns the file's bytes; its docstring says which check must refuse it.
`python tests/loaders/crafted_apk.py OUTDIR [SIGNED.apk]` writes them all (building the test
APK with Debian's Android tools when none is given), e.g. to seed a fuzzer.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

from cerebro.loaders.apk import read_apk
from cerebro.loaders.apksig import content_digest
from cerebro.loaders.pkcs7 import verify_signed_data
from cerebro.loaders.pubkey import CURVES, parse_public_key

ORIGINAL, PAYLOAD = b"Hello from dex", b"Owned from dex"  # Hello.smali's greeting and the attacker's


def empty_name_zip() -> bytes:
    """A zip whose only entry has an empty name (zipfile's is_dir() raised IndexError on it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo(""), b"x")
    return buf.getvalue()


def _b64(algorithm: str, data: bytes) -> bytes:
    return base64.b64encode(hashlib.new(algorithm, data).digest())


def _patched_dex(dex: bytes) -> bytes:
    """The program's greeting replaced, with the dex's own SHA-1 and adler32 fixed as an attacker would."""
    out = bytearray(dex.replace(ORIGINAL, PAYLOAD))
    out[12:32] = hashlib.sha1(out[32:]).digest()
    out[8:12] = struct.pack("<I", zlib.adler32(out[12:]))
    return bytes(out)


def _rezip(apk: bytes, bodies: dict[str, bytes]) -> bytes:
    """The APK's entries (same order and compression) with some bodies replaced; zipfile writes no
    APK Signing Block, so v2/v3 signatures are dropped."""
    src = zipfile.ZipFile(io.BytesIO(apk))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, bodies.get(info.filename, src.read(info)))
    return buf.getvalue()


def _signer_files(apk: bytes) -> tuple[str, str]:
    names = zipfile.ZipFile(io.BytesIO(apk)).namelist()
    sf = next(n for n in names if n.endswith(".SF"))
    return sf, next(n for n in names if n.rsplit(".", 1)[0] == sf[:-3] and n.endswith((".RSA", ".EC", ".DSA")))


def stripped_apk(apk: bytes) -> bytes:
    """Code changed, its MANIFEST.MF digest updated, v2/v3 dropped (apksigner: "signature stripped").
    Caught by the .SF digest of the manifest section and the .SF's X-Android-APK-Signed marker."""
    z = zipfile.ZipFile(io.BytesIO(apk))
    dex, manifest = z.read("classes.dex"), z.read("META-INF/MANIFEST.MF")
    new_dex = _patched_dex(dex)
    return _rezip(apk, {"classes.dex": new_dex,
                        "META-INF/MANIFEST.MF": manifest.replace(_b64("sha256", dex), _b64("sha256", new_dex))})


def added_entry_apk(apk: bytes) -> bytes:
    """A second dex (the attacker's code) added to the zip and listed nowhere: for a v1-only APK, only
    the rule that every entry be in MANIFEST.MF catches it."""
    dex = zipfile.ZipFile(io.BytesIO(apk)).read("classes.dex")
    buf = io.BytesIO(_rezip(apk, {}))
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("classes2.dex", _patched_dex(dex))
    return buf.getvalue()


def resigned_sf_apk(apk: bytes) -> bytes:
    """As stripped_apk, and the .SF's digests updated and its v2/v3 marker removed: every digest
    matches, so only the signer's signature over the .SF catches it."""
    stripped = stripped_apk(apk)
    old, new = zipfile.ZipFile(io.BytesIO(apk)), zipfile.ZipFile(io.BytesIO(stripped))
    sf_name, _ = _signer_files(apk)
    sf = old.read(sf_name)
    old_mf, new_mf = old.read("META-INF/MANIFEST.MF"), new.read("META-INF/MANIFEST.MF")
    for old_section, new_section in zip(re.findall(rb"Name: .*?\r\n\r\n", old_mf, re.S),
                                        re.findall(rb"Name: .*?\r\n\r\n", new_mf, re.S), strict=True):
        sf = sf.replace(_b64("sha256", old_section), _b64("sha256", new_section))
    sf = sf.replace(_b64("sha256", old_mf), _b64("sha256", new_mf))
    sf = re.sub(rb"X-Android-APK-Signed: [^\r\n]*\r\n", b"", sf)
    return _rezip(stripped, {sf_name: sf})


def _generator_point(key: bytes) -> bytes:
    """A different valid key of the same size as an EC SubjectPublicKeyInfo's: the curve's generator."""
    curve = CURVES[parse_public_key(key).numbers[0]]
    size = (curve.p.bit_length() + 7) // 8
    return b"\x04" + curve.gx.to_bytes(size, "big") + curve.gy.to_bytes(size, "big")


def _signer_key(apk: bytes) -> bytes:
    """The signer's SubjectPublicKeyInfo, from its v1 certificate (the same key signs v2/v3)."""
    z = zipfile.ZipFile(io.BytesIO(apk))
    sf_name, block_name = _signer_files(apk)
    return verify_signed_data(z.read(block_name), z.read(sf_name)).spki


def swapped_key_v1_apk(apk: bytes) -> bytes:
    """The v1 signer certificate's EC public key replaced by another valid key (v2/v3 dropped too).
    Caught by the signature check: the .SF's signature is not by the certificate's key."""
    key = _signer_key(apk)
    point = key[-(len(_generator_point(key))):]
    _, block_name = _signer_files(apk)
    block = zipfile.ZipFile(io.BytesIO(apk)).read(block_name)
    assert point in block
    return _rezip(apk, {block_name: block.replace(point, _generator_point(key))})


def _block_span(apk: bytes) -> tuple[int, int]:
    pkg = read_apk(apk)
    return pkg.signing_block_start, pkg.zip.central_directory_offset


def forged_v2_digest_apk(apk: bytes) -> bytes:
    """A byte changed under the v2/v3 content digest (a local header timestamp) and the digest in the
    signed data updated to match: only the signer's signature over its signed data catches it."""
    data = bytearray(apk)
    start, cd = _block_span(apk)
    old = content_digest(bytes(data), start, cd, read_apk(apk).zip.eocd_offset, "sha256")
    data[10] ^= 1
    new = content_digest(bytes(data), start, cd, read_apk(apk).zip.eocd_offset, "sha256")
    block = bytes(data[start:cd])
    assert old in block
    data[start:cd] = block.replace(old, new)
    return bytes(data)


def swapped_key_v2_apk(apk: bytes) -> bytes:
    """The v2/v3 signers' public key (record and certificate) replaced by another valid key."""
    key = _signer_key(apk)
    point = key[-(len(_generator_point(key))):]
    data = bytearray(apk)
    start, cd = _block_span(apk)
    data[start:cd] = bytes(data[start:cd]).replace(point, _generator_point(key))
    return bytes(data)


def v3_sdk_range_apk(apk: bytes) -> bytes:
    """The v3 signer record's minSdkVersion (outside its signed data, which holds the signed copy) lowered
    to 1, as if to claim the signature for older platforms."""
    pkg = read_apk(apk)
    value = pkg.signing_pairs[0xF05368C0]
    at = apk.index(value, pkg.signing_block_start)
    signed_data_length = struct.unpack_from("<I", value, 8)[0]  # signers length, signer length, signed data
    data = bytearray(apk)
    struct.pack_into("<I", data, at + 12 + signed_data_length, 1)
    return bytes(data)


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append(value & 0x7F | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def shared_code_dex(methods: int = 2000, units: int = 50_000) -> bytes:
    """One class whose `methods` methods all point at one code item of `units` code units: read once per
    method, a 100 KiB code item became 2000 reads (the class-member budget did not see code)."""
    strings = [b"LA;", b"V", b"m"]
    string_data = b"".join(_uleb(len(s)) + s + b"\0" for s in strings)
    tables_end = 0x70 + 4 * 3 + 4 * 2 + 12 + 8 + 32
    string_offsets, at = [], tables_end
    for s in strings:
        string_offsets.append(at)
        at += len(_uleb(len(s))) + len(s) + 1
    code_off = (tables_end + len(string_data) + 3) & ~3
    code = struct.pack("<HHHHII", 1, 0, 0, 0, 0, units) + b"\0" * (2 * units)
    class_data_off = code_off + len(code)
    class_data = _uleb(0) + _uleb(0) + _uleb(methods) + _uleb(0) + (_uleb(0) + _uleb(9) + _uleb(code_off)) * methods
    size = class_data_off + len(class_data)
    header = bytearray(b"dex\n035\0" + bytes(24))
    header += struct.pack("<III", size, 0x70, 0x12345678)
    header += struct.pack("<" + "I" * 15, 0, 0, 0, 3, 0x70, 2, 0x7C, 1, 0x84, 0, 0, 1, 0x90, 1, 0x98)
    header += struct.pack("<II", 0, 0)
    tables = b"".join(struct.pack("<I", o) for o in string_offsets) + struct.pack("<II", 0, 1)
    tables += struct.pack("<III", 1, 1, 0) + struct.pack("<HHI", 0, 0, 2)
    tables += struct.pack("<8I", 0, 1, 0xFFFFFFFF, 0, 0xFFFFFFFF, 0, class_data_off, 0)
    data = bytes(header) + tables + string_data
    return data + bytes(code_off - len(data)) + code + class_data


APK_CRAFTS = {"stripped.apk": stripped_apk, "added-entry.apk": added_entry_apk, "resigned-sf.apk": resigned_sf_apk,
              "swapped-key-v1.apk": swapped_key_v1_apk, "forged-v2-digest.apk": forged_v2_digest_apk,
              "swapped-key-v2.apk": swapped_key_v2_apk, "v3-sdk-range.apk": v3_sdk_range_apk}


def write_all(out: Path, apk: bytes | None) -> list[Path]:
    """Every crafted file into out; the APK attacks only when there is a signed APK to start from."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"empty-name.zip": empty_name_zip(), "shared-code.dex": shared_code_dex()}
    files.update({name: make(apk) for name, make in APK_CRAFTS.items()} if apk else {})
    for name, body in files.items():
        (out / name).write_bytes(body)
    return [out / name for name in files]


def build_signed_apk() -> bytes | None:
    """The loader tests' APK, built with Debian's Android tools (None, said on stderr, without them)."""
    import pytest
    sys.path.insert(0, str(Path(__file__).parent))
    from loader_support import build_apk
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return build_apk(Path(tmp)).read_bytes()
    except pytest.skip.Exception as e:
        print(f"crafted_apk: no signed APK, APK attacks left out: {e}", file=sys.stderr)
        return None


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: crafted_apk.py OUTDIR [SIGNED.apk]")
    source = Path(sys.argv[2]).read_bytes() if len(sys.argv) == 3 else build_signed_apk()
    for path in write_all(Path(sys.argv[1]), source):
        print(path)
