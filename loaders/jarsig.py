"""v1 APK signatures (JAR signing), checked as apksigner checks them:

1. MANIFEST.MF holds a digest of every entry (except the signature files themselves);
2. each signer's .SF holds digests of MANIFEST.MF's sections (and usually of the whole file);
3. the signer's PKCS#7 block (.RSA/.EC/.DSA) signs the .SF with the key of its certificate;
4. `X-Android-APK-Signed: 2, 3` in a .SF says the signer also made v2/v3 signatures: if they
   are missing, someone stripped them (to tamper with what only they protected).
Digests are compared over the exact bytes of each manifest section, as they were signed.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cerebro.binread import FormatError
from cerebro.loaders.archive import DIR, FILE
from cerebro.loaders.pkcs7 import Certificate, verify_signed_data
from cerebro.loaders.zipread import ZipArchive

MANIFEST = "META-INF/MANIFEST.MF"
DIGESTS = {"SHA-512": "sha512", "SHA-384": "sha384", "SHA-256": "sha256", "SHA1": "sha1", "SHA-1": "sha1"}
BLOCK_SUFFIXES = (".RSA", ".EC", ".DSA")
SIGNATURE_FILE = re.compile(r"META-INF/[^/]+\.(SF|RSA|DSA|EC)|META-INF/SIG-[^/]*|META-INF/MANIFEST\.MF",
                            re.IGNORECASE)
LINE_END = re.compile(rb"\r\n|\r|\n")
STRIPPABLE = {"2": "v2", "3": "v3"}  # X-Android-APK-Signed ids -> APK Signing Block schemes
MAX_SIGNERS = 4  # .SF files: each costs a signature check (a hostile APK must not buy unbounded ones)


@dataclass(frozen=True)
class Section:
    raw: bytes  # the section's bytes including the blank line that ends it: what a digest covers
    attrs: dict[str, str]  # lower-cased attribute names

    @property
    def name(self) -> str | None:
        return self.attrs.get("name")


def parse_sections(data: bytes, what: str) -> list[Section]:
    """Manifest-format sections (the main section first); continuation lines start with a space."""
    sections: list[Section] = []
    start = pos = 0
    attrs: dict[str, str] = {}
    last = None
    while pos < len(data):
        end = LINE_END.search(data, pos)
        line, nxt = (data[pos:end.start()], end.end()) if end else (data[pos:], len(data))
        if not line:
            sections.append(Section(data[start:nxt], attrs))
            start, attrs, last = nxt, {}, None
        elif line[:1] == b" ":
            if last is None:
                raise FormatError(f"{what}: continuation line with nothing to continue")
            attrs[last] += line[1:].decode("utf-8", "replace")
        else:
            key, sep, value = line.decode("utf-8", "replace").partition(": ")
            if not sep:
                raise FormatError(f"{what}: malformed line {line[:60]!r}")
            last = key.lower()
            attrs[last] = value
        pos = nxt
    if start < len(data):
        sections.append(Section(data[start:], attrs))
    return sections


def _digest_matches(attrs: dict[str, str], suffix: str, data: bytes) -> bool | None:
    """Does the strongest `<ALG><suffix>` digest attribute match data? None: no supported one."""
    for prefix, algorithm in DIGESTS.items():
        value = attrs.get((prefix + suffix).lower())
        if value is not None:
            return base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == value.strip()
    return None


def needs_digest(name: str) -> bool:
    """apksigner's rule: every file entry except the signature files directly in META-INF/."""
    return not name.endswith("/") and not SIGNATURE_FILE.fullmatch(name)


def verify_v1(z: ZipArchive, schemes: set[str]) -> tuple[list[str], list[Certificate]]:
    """(problems, signer certificates) of the v1 signature; `schemes`: those in the APK Signing Block."""
    manifest = z.get(MANIFEST)
    signature_files = sorted(m.name for m in z.members if re.fullmatch(r"META-INF/[^/]+\.SF", m.name))
    if manifest is None or manifest.kind != FILE:
        return ([f"{signature_files[0]}: signature file without {MANIFEST}"] if signature_files else []), []
    try:
        sections = parse_sections(manifest.data or b"", MANIFEST)
    except FormatError as e:  # a problem to report (and `info` still works), not a failure to read the APK
        return [str(e)], []
    entries: dict[str, Section] = {}
    problems = []
    for s in sections[1:]:
        if s.name is None:
            problems.append(f"{MANIFEST}: a section without a Name")
        elif s.name in entries:
            problems.append(f"{MANIFEST}: duplicate section for {s.name!r}")
        entries.setdefault(s.name or "", s)
    problems += _check_entries(z, entries, signed=bool(signature_files))
    if len(signature_files) > MAX_SIGNERS:
        return problems + [f"{len(signature_files)} v1 signers (at most {MAX_SIGNERS} are checked)"], []
    certificates = []
    for sf_name in signature_files:
        sf_problems, cert = _check_signer(z, sf_name, manifest.data or b"", sections, entries, schemes)
        problems += sf_problems
        certificates += [cert] if cert else []
    return problems, certificates


def _check_entries(z: ZipArchive, entries: dict[str, Section], signed: bool) -> list[str]:
    problems = []
    for name, section in entries.items():
        member = z.get(name)
        if member is None:
            problems.append(f"{name}: listed in {MANIFEST} but missing")
            continue
        body = (member.data or b"") if member.kind == FILE else member.linkname.encode()
        ok = _digest_matches(section.attrs, "-Digest", body)
        if ok is None:
            problems.append(f"{name}: no supported digest in {MANIFEST}")
        elif not ok:
            problems.append(f"{name}: {MANIFEST} digest mismatch (entry modified after signing)")
    if signed:
        problems += [f"{m.name}: not listed in {MANIFEST} (an unprotected entry)" for m in z.members
                     if m.kind != DIR and needs_digest(m.name) and m.name not in entries]
    return problems


def _check_signer(z: ZipArchive, sf_name: str, manifest: bytes, sections: list[Section],
                  entries: dict[str, Section], schemes: set[str]) -> tuple[list[str], Certificate | None]:
    base = sf_name[:-3]
    block = next((z.get(base + s) for s in BLOCK_SUFFIXES if z.get(base + s)), None)
    if block is None:
        return [f"{sf_name}: no signature block ({', '.join(base + s for s in BLOCK_SUFFIXES)})"], None
    sf = z.read(sf_name)
    problems, cert = [], None
    try:
        cert = verify_signed_data(block.data or b"", sf)
    except FormatError as e:
        problems.append(f"{block.name}: {e}")
    try:
        sf_sections = parse_sections(sf, sf_name)
    except FormatError as e:
        return [*problems, str(e)], None
    main = sf_sections[0].attrs if sf_sections else {}
    for scheme_id in re.split(r"\s*,\s*", main.get("x-android-apk-signed", "").strip()):
        if scheme_id in STRIPPABLE and STRIPPABLE[scheme_id] not in schemes:
            problems.append(f"{sf_name}: the signer also made an APK Signature Scheme {STRIPPABLE[scheme_id]} "
                            f"signature, which is missing (signature stripped)")
    whole = _digest_matches(main, "-Digest-Manifest", manifest)
    if not whole:  # as the JAR spec allows: fall back to the main section and each entry's section
        if _digest_matches(main, "-Digest-Manifest-Main-Attributes", sections[0].raw) is False:
            problems.append(f"{sf_name}: digest of {MANIFEST}'s main section does not match")
    signed = set()
    for s in sf_sections[1:]:
        if s.name is None:
            continue
        signed.add(s.name)
        section = entries.get(s.name)
        if section is None:
            problems.append(f"{sf_name}: signs {s.name!r}, which has no section in {MANIFEST}")
        elif not whole and not _digest_matches(s.attrs, "-Digest", section.raw):
            problems.append(f"{sf_name}: digest of {MANIFEST}'s section for {s.name!r} does not match "
                            f"(manifest modified after signing)")
    problems += [f"{name}: not signed by {sf_name}" for name in entries if name not in signed]
    return problems, cert
