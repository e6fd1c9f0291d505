"""Android packages: a zip with a binary manifest, classes*.dex, native libraries per ABI and
signatures (v1 JAR signing files, the v2/v3 APK Signing Block before the central directory)."""

from __future__ import annotations

import os
import re
import struct
import subprocess
from dataclasses import dataclass

from cerebro.binread import FormatError
from cerebro.elf import ElfFile
from cerebro.loaders.apksig import verify_signing_block
from cerebro.loaders.archive import FILE, extract
from cerebro.loaders.axml import Element, parse_axml
from cerebro.loaders.dex import DexFile
from cerebro.loaders.jarsig import verify_v1
from cerebro.loaders.pkcs7 import Certificate
from cerebro.loaders.zipread import ZipArchive, read_zip

SIGNING_BLOCK_MAGIC = b"APK Sig Block 42"
SIGNING_BLOCK_IDS = {0x7109871A: "v2", 0xF05368C0: "v3", 0x1B93AD61: "v3.1", 0x42726577: "padding",
                     0x6DFF800D: "source-stamp", 0x2146444E: "play-metadata"}
COMPONENTS = ("activity", "activity-alias", "service", "receiver", "provider")
MAX_BLOCK_PAIRS = 1024


@dataclass
class ApkPackage:
    zip: ZipArchive
    manifest: Element
    dex: dict[str, DexFile]
    signing_block_start: int  # -1 when there is none
    signing_pairs: dict[int, bytes]  # APK Signing Block id -> value
    data: bytes

    run_options = ("main",)

    @property
    def package(self) -> str:
        return str(self.manifest.attrs.get("package", ""))

    def qualified(self, name: str) -> str:
        return self.package + name if name.startswith(".") else name

    def components(self) -> dict[str, list[str]]:
        app = self.manifest.find_all("application")
        out: dict[str, list[str]] = {kind: [] for kind in COMPONENTS}
        for a in app:
            for kind in COMPONENTS:
                out[kind] += [self.qualified(str(e.attrs.get("name", ""))) for e in a.find_all(kind)]
        return {k: v for k, v in out.items() if v}

    def main_activity(self) -> str | None:
        for act in self.manifest.find_all("activity") + self.manifest.find_all("activity-alias"):
            actions = [a.attrs.get("name") for a in act.find_all("action")]
            if "android.intent.action.MAIN" in actions:
                return self.qualified(str(act.attrs.get("name", "")))
        return None

    def native_libraries(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for m in self.zip.members:
            parts = m.name.split("/")
            if len(parts) == 3 and parts[0] == "lib" and parts[2].endswith(".so") and m.kind == FILE:
                elf = ElfFile.parse(m.data or b"")
                out.setdefault(parts[1], []).append(
                    {"name": parts[2], "machine": elf.machine_name, "bits": elf.bits, "type": elf.type_name,
                     "soname": elf.soname(), "needed": elf.needed(),
                     "exports": len([s for s in elf.dynamic_symbols if s.shndx and s.bind])})
        return out

    def info(self) -> dict:
        m = self.manifest
        sdk = (m.find_all("uses-sdk") or [None])[0]
        return {
            "format": "apk", "package": self.package, "version_code": m.attrs.get("versionCode"),
            "version_name": m.attrs.get("versionName"),
            "min_sdk": sdk.attrs.get("minSdkVersion") if sdk else None,
            "target_sdk": sdk.attrs.get("targetSdkVersion") if sdk else None,
            "permissions": [str(p.attrs.get("name")) for p in m.find_all("uses-permission")],
            "components": self.components(), "main_activity": self.main_activity(),
            "dex": [{"file": name, "version": d.version, "classes": [c.java_name for c in d.classes],
                     "checksum_ok": not d.verify()} for name, d in self.dex.items()],
            "native_libraries": self.native_libraries(),
            "signatures": {"v1": self.v1_signature_files(), "signing_block": self.signing_block,
                           "signer_certificates_sha256": sorted({c.sha256 for c in self.signatures()[1]})},
        }

    @property
    def signing_block(self) -> dict[str, int]:
        """Scheme name -> bytes, for every pair in the APK Signing Block."""
        return {SIGNING_BLOCK_IDS.get(k, f"{k:#010x}"): len(v) for k, v in self.signing_pairs.items()}

    def v1_signature_files(self) -> list[str]:
        return [m.name for m in self.zip.members
                if m.name.startswith("META-INF/") and re.search(r"\.(SF|RSA|DSA|EC)$", m.name)]

    def verify(self) -> list[str]:
        """Checks dex checksums/SHA-1 and every signature present: v1 (entry digests, .SF digests, the
        signer's signature over the .SF, the v2/v3-stripping marker) and v2/v3 (the signer's signature,
        its content digests over the file). Any modification after signing shows as a problem."""
        problems = []
        for name, d in self.dex.items():
            problems += [f"{name}: {p}" for p in d.verify()]
        problems += self.signatures()[0]
        if not self.v1_signature_files() and not any(k in self.signing_block for k in ("v2", "v3", "v3.1")):
            problems.append("APK is not signed (no META-INF signature files, no APK Signing Block)")
        return problems

    def signatures(self) -> tuple[list[str], list[Certificate]]:
        """(problems, signer certificates) of the v1 signature and the APK Signing Block."""
        problems, certificates = verify_v1(self.zip, set(self.signing_block))
        if self.signing_pairs:
            block_problems, block_certificates = verify_signing_block(
                self.data, self.signing_pairs, self.signing_block_start, self.zip.central_directory_offset,
                self.zip.eocd_offset)
            problems, certificates = problems + block_problems, certificates + block_certificates
        return problems, certificates

    def extract(self, dest: str | os.PathLike) -> list[str]:
        return extract(self.zip.members, dest, f"apk {self.package!r}")

    def run(self, args: list[str], main: str | None = None, **_options) -> subprocess.CompletedProcess:
        """Interprets `public static void main(String[])` of --main or the manifest's MAIN activity."""
        from cerebro.loaders.dexvm import classes_with_main, framework_base, run_main
        dexes = list(self.dex.values())
        cls = main or self.main_activity()
        if not cls:
            raise FormatError("apk: no main class (no MAIN activity in the manifest); " + _runnable(dexes))
        if main is None and cls not in classes_with_main(dexes):
            base = framework_base(dexes, cls)
            raise FormatError(f"apk: the MAIN activity {cls} has no static main(String[]): it is an Android app"
                              + (f" ({cls} extends {base})" if base else "") + ", and running one needs the "
                              "Android framework, which the dex interpreter does not have; " + _runnable(dexes))
        status = run_main(dexes, cls, args)
        return subprocess.CompletedProcess(["dex", cls, *args], status)


def _runnable(dexes: list) -> str:
    """What `pkg run --main` could run instead."""
    from cerebro.loaders.dexvm import classes_with_main
    names = classes_with_main(dexes)
    if not names:
        return "no class in its dex has a static main(String[]) to run with --main CLASS"
    more = f" (and {len(names) - 5} more)" if len(names) > 5 else ""
    return f"classes with main(String[]): {', '.join(names[:5])}{more}; run one with --main CLASS"


def read_signing_block(data: bytes, cd_offset: int) -> tuple[int, dict[int, bytes]]:
    """(start offset, {pair id: value}) of the APK Signing Block before the central directory, or (-1, {})."""
    if cd_offset < 32 or data[cd_offset - 16:cd_offset] != SIGNING_BLOCK_MAGIC:
        return -1, {}
    size = struct.unpack_from("<Q", data, cd_offset - 24)[0]
    start = cd_offset - size - 8
    if size < 24 or start < 0 or struct.unpack_from("<Q", data, start)[0] != size:
        raise FormatError("apk: APK Signing Block sizes are inconsistent")
    pairs: dict[int, bytes] = {}
    pos, end = start + 8, cd_offset - 24
    for _ in range(MAX_BLOCK_PAIRS):
        if pos >= end:
            return start, pairs
        if pos + 12 > end:
            raise FormatError("apk: truncated pair in the APK Signing Block")
        length, pair_id = struct.unpack_from("<QI", data, pos)
        if length < 4 or pos + 8 + length > end:
            raise FormatError(f"apk: APK Signing Block pair {pair_id:#x} has bad length {length}")
        pairs[pair_id] = data[pos + 12:pos + 8 + length]
        pos += 8 + length
    raise FormatError("apk: too many pairs in the APK Signing Block")


def read_apk(data: bytes) -> ApkPackage:
    z = read_zip(data, "apk")
    if z.get("AndroidManifest.xml") is None:
        raise FormatError("apk: no AndroidManifest.xml")
    manifest = parse_axml(z.read("AndroidManifest.xml"))
    if manifest.tag != "manifest":
        raise FormatError(f"apk: manifest root element is <{manifest.tag}>, expected <manifest>")
    dex = {m.name: DexFile.parse(m.data or b"") for m in z.members
           if re.fullmatch(r"classes\d*\.dex", m.name) and m.kind == FILE}
    start, pairs = read_signing_block(data, z.central_directory_offset)
    return ApkPackage(z, manifest, dex, start, pairs, data)
