"""Real files the fuzzers start from, by group: built or fetched with the tools the loader tests use,
written once per run into a folder the batch processes read (`write_seeds`), plus the crafted
hostile files of tests/fuzz/corpus.py. A group whose tool is missing is skipped (pytest.skip)."""

from __future__ import annotations

import gzip
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS, TESTS / "loaders"):  # cbx_fixtures, loader_support
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from loader_support import CACHE, FRAMEWORK_RES, build_apk, download_debs, need  # noqa: E402, F401 - FRAMEWORK_RES for the tests

C_SOURCE = "int counter = 1;\nextern int puts(const char *);\nint bump(int y) { puts(\"x\"); return counter += y; }\n"


def _cc(tmp: Path, *flags: str, compiler: str = "cc", source: str = C_SOURCE, suffix: str = ".o") -> bytes:
    need(compiler)
    src, out = tmp / "a.c", tmp / f"out{suffix}"
    src.write_text(source)
    subprocess.run([compiler, *flags, "-o", str(out), str(src)], check=True, capture_output=True)
    return out.read_bytes()


def cbx_seeds(tmp: Path) -> dict[str, bytes]:
    """Compiled models: one stage, several stages with weights, two inputs and outputs with IR text, and a
    split-call model with 4 arena regions (the fields a host sizes a parallel call's arena from)."""
    import struct

    from cbx_fixtures import AFFINE, STAGED, TWO_IO, build, parallel_model, patch, section
    parallel = build(parallel_model(256, "regions"))
    stride = -(-parallel_model().arena_size // 4096) * 4096
    regions = patch(parallel, section(parallel, ".cerebro.meta").offset + 520, struct.pack("<2IQ", 4, 0, stride))
    return {"affine.cbx": build(AFFINE), "staged.cbx": build(STAGED),
            "two_io.cbx": build(TWO_IO, ir_text="graph two_io { y = x + 1 }"), "regions.cbx": regions}


def elf_seeds(tmp: Path) -> dict[str, bytes]:
    """A relocatable object, a shared library and (when the cross compiler is there) an arm64 object."""
    seeds = {"object.o": _cc(tmp, "-c"), "shared.so": _cc(tmp, "-shared", "-fPIC", suffix=".so")}
    if shutil.which("aarch64-linux-gnu-gcc"):
        seeds["arm64.o"] = _cc(tmp, "-c", compiler="aarch64-linux-gnu-gcc")
    return seeds


def pe_seeds(tmp: Path) -> dict[str, bytes]:
    """pip's launcher stubs (PE32+, PE32, arm64) and a MinGW DLL with exports, TLS and relocations."""
    import pip
    vendor = Path(pip.__file__).parent / "_vendor/distlib"
    seeds = {p.name: p.read_bytes() for p in sorted(vendor.glob("t*.exe"))}
    source = ("__declspec(dllexport) int add(int a, int b) { return a + b; }\n"
              "__thread int slot = 3;\nint get(void) { return slot; }\n")
    # no timestamp, no image base hashed from the output path: the same seed bytes, the same mutant stream
    seeds["lib.dll"] = _cc(tmp, "-O1", "-s", "-shared", "-Wl,--no-insert-timestamp,--disable-auto-image-base",
                           compiler="x86_64-w64-mingw32-gcc", source=source, suffix=".dll")
    return seeds


def _apk(tmp: Path) -> bytes:
    cached = CACHE / "fuzz-seeds" / "app.apk"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(build_apk(tmp).read_bytes())
    return cached.read_bytes()


def apk_seeds(tmp: Path) -> dict[str, bytes]:
    return {"app.apk": _apk(tmp)}


def dex_seeds(tmp: Path) -> dict[str, bytes]:
    return {"classes.dex": zipfile.ZipFile(io.BytesIO(_apk(tmp))).read("classes.dex")}


def axml_seeds(tmp: Path) -> dict[str, bytes]:
    return {"AndroidManifest.xml": zipfile.ZipFile(io.BytesIO(_apk(tmp))).read("AndroidManifest.xml")}


def zip_seeds(tmp: Path) -> dict[str, bytes]:
    """Stored and deflated members, a directory, a comment (the APK group adds a real signed one)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("dir/", b"")
        z.writestr("dir/stored.txt", b"stored " * 20, compress_type=zipfile.ZIP_STORED)
        z.writestr("deflated.bin", bytes(range(256)) * 8, compress_type=zipfile.ZIP_DEFLATED)
        z.comment = b"fuzz seed"
    return {"small.zip": out.getvalue()}


def _tar_of_every_kind() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, extra in (("d", tarfile.DIRTYPE, {}), ("d/file", tarfile.REGTYPE, {}),
                                  ("d/link", tarfile.SYMTYPE, {"linkname": "file"}),
                                  ("d/hard", tarfile.LNKTYPE, {"linkname": "d/file"}),
                                  ("d/" + "long" * 40, tarfile.REGTYPE, {})):
            info = tarfile.TarInfo(name)
            info.type, info.mode = kind, 0o755
            for key, value in extra.items():
                setattr(info, key, value)
            body = b"content\n" * 3 if kind == tarfile.REGTYPE else b""
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return out.getvalue()


def tar_seeds(tmp: Path) -> dict[str, bytes]:
    """Python-made ustar/pax (every member kind), gzip of it, and the hello package's real xz tars."""
    from cerebro.loaders.ar import read_ar
    plain = _tar_of_every_kind()
    seeds = {"kinds.tar": plain, "kinds.tar.gz": gzip.compress(plain, mtime=0)}
    for member in read_ar(download_debs("hello")["hello"].read_bytes()):
        if member.name.startswith(("control.tar", "data.tar")):
            seeds[member.name] = member.data
    return seeds


def deb_seeds(tmp: Path) -> dict[str, bytes]:
    """hello and base-passwd from Debian, and hello rebuilt with uncompressed tars (dpkg-deb -Znone),
    so byte mutations reach the tar headers instead of the xz checksum."""
    debs = download_debs("hello", "base-passwd")
    seeds = {path.name: path.read_bytes() for path in debs.values()}
    need("dpkg-deb")
    tree = tmp / "hello-tree"
    subprocess.run(["dpkg-deb", "-R", str(debs["hello"]), str(tree)], check=True, capture_output=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Znone", "-b", str(tree), str(tmp / "plain.deb")], check=True,
                   capture_output=True)
    seeds["hello-uncompressed.deb"] = (tmp / "plain.deb").read_bytes()
    return seeds


def ar_seeds(tmp: Path) -> dict[str, bytes]:
    """A static library made by `ar` (GNU symbol table member, odd sizes padded)."""
    need("ar")
    for name, body in (("a.o", _cc(tmp, "-c")), ("odd.txt", b"odd\n\n\n")):
        (tmp / name).write_bytes(body)
    subprocess.run(["ar", "rcs", str(tmp / "lib.a"), str(tmp / "a.o"), str(tmp / "odd.txt")], check=True)
    return {"lib.a": (tmp / "lib.a").read_bytes()}


def class_seeds(tmp: Path) -> dict[str, bytes]:
    """The JVM front end's test programs (tests/loaders/java_programs) compiled by javac, cached by their sources'
    hash: records, lambdas, enums, switches, exceptions, nested classes (every kind of constant and attribute)."""
    import hashlib
    sources = sorted((TESTS / "loaders" / "java_programs").glob("*.java"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in sources)).hexdigest()[:16]
    cached = CACHE / "fuzz-seeds" / f"classes-{digest}"
    if not cached.exists():
        need("javac")
        subprocess.run(["javac", "-d", str(tmp / "classes"), *map(str, sources)], check=True, capture_output=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tmp / "classes", cached)
    return {path.name: path.read_bytes() for path in sorted(cached.glob("*.class"))}


GROUPS: dict[str, Callable[[Path], dict[str, bytes]]] = {
    "cbx": cbx_seeds, "elf": elf_seeds, "pe": pe_seeds, "apk": apk_seeds, "dex": dex_seeds, "axml": axml_seeds,
    "zip": zip_seeds, "tar": tar_seeds, "deb": deb_seeds, "ar": ar_seeds, "class": class_seeds}


def write_seeds(folder: Path, groups: list[str] | None = None) -> dict[str, str]:
    """Write every group's seeds to folder/<group>/; returns {group: why it is missing} for skipped groups."""
    import pytest
    missing = {}
    for group in groups or GROUPS:
        (folder / group).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                seeds = GROUPS[group](Path(tmp))
            except pytest.skip.Exception as why:
                missing[group] = str(why)
                continue
        for name, data in seeds.items():
            (folder / group / name).write_bytes(data)
    return missing
