"""Every parser the project exposes to hostile bytes: name -> seed groups, entry, the one exception
it may raise, and an optional fix-up applied after mutation (the .cbx content hash is re-sealed so
mutations reach the parser behind the hash check instead of all stopping at it).

Entries import lazily: the batch process for the C runtime imports only the C extension."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass


def _format_error() -> type[Exception]:
    from cerebro.binread import FormatError
    return FormatError


def _cbx_error() -> type[Exception]:
    from cerebro.compiler.cbx.format import CbxError
    return CbxError


def _value_error() -> type[Exception]:
    return ValueError


def _reseal(data: bytes) -> bytes:
    """data with a correct content hash when it still holds the meta magic, else unchanged. Found by
    magic, not by parsing the ELF (3x faster): a mutant whose headers no longer lead there fails anyway."""
    import hashlib

    from cerebro.compiler.cbx.format import HASH_LEN, HASH_OFFSET, MAGIC
    at = data.find(MAGIC) + HASH_OFFSET
    if at < HASH_OFFSET or at + HASH_LEN > len(data):
        return data
    out = bytearray(data)
    out[at:at + HASH_LEN] = bytes(HASH_LEN)
    out[at:at + HASH_LEN] = hashlib.sha256(out).digest()
    return bytes(out)


def _dex_checksums(data: bytes) -> bytes:
    """data with the dex header's file_size, SHA-1 and adler32 made to agree with it (when it has a header)."""
    import hashlib
    import struct
    import zlib
    if len(data) < 0x70:
        return data
    out = bytearray(data)
    struct.pack_into("<I", out, 32, len(out))
    out[12:32] = hashlib.sha1(out[32:]).digest()
    struct.pack_into("<I", out, 8, zlib.adler32(out[12:]))
    return bytes(out)


def _read_cbx(data: bytes) -> None:
    from cerebro.compiler.cbx import read_cbx
    read_cbx(data)


def _load_cbx_in_c(data: bytes) -> None:
    """The C runtime's parser, layout and relocation (cbx_model_load): maps the model, runs none of it."""
    from cerebro import _runtime
    _runtime.Model(data, 1)


def _inspect(loader: Callable[[], Callable]) -> Callable[[bytes], None]:
    """Parse, then everything `pkg info` and `pkg verify` do after parsing (nested ELF, digests)."""
    def run(data: bytes) -> None:
        pkg = loader()(data)
        pkg.info()
        pkg.verify()
    return run


def _elf_package():
    from cerebro.loaders.image import ElfPackage
    return ElfPackage.parse


def _pe_package():
    from cerebro.loaders.pe_package import PePackage
    return PePackage.parse


def _deb():
    from cerebro.loaders.deb import read_deb
    return read_deb


def _apk():
    from cerebro.loaders.apk import read_apk
    return read_apk


def _pe(data: bytes) -> None:
    from cerebro.loaders.pe import PeFile
    PeFile.parse(data)


def _dex(data: bytes) -> None:
    from cerebro.loaders.dex import DexFile
    DexFile.parse(data).verify()


def _dex_run(data: bytes) -> None:
    """Mutated code must run, throw a Java exception (status 1) or stop with FormatError."""
    from cerebro.loaders.dex import DexFile
    from cerebro.loaders.dexvm import run_main
    status = run_main([DexFile.parse(data)], "org.cerebro.demo.Demo", ["x"], io.StringIO(), io.StringIO(),
                      max_steps=20_000)
    assert isinstance(status, int), status


def _class(data: bytes) -> None:
    """What `pkg info` and a run do before the first instruction: read the class, decode and check every method."""
    from cerebro.loaders.classfile import parse_class
    from cerebro.loaders.jvmcode import decode
    c = parse_class(data)
    for m in c.direct_methods + c.virtual_methods:
        if m.code is not None:
            decode(m.code, m.ref.name)


def _class_run(data: bytes) -> None:
    """A mutated class's own main (or its refusal): runs, throws a Java exception or stops with FormatError."""
    from cerebro.loaders.classfile import parse_class
    from cerebro.loaders.jvmvm import run_classes
    c = parse_class(data)
    status = run_classes([c], c.name, ["x"], io.StringIO(), io.StringIO(), stdin=io.StringIO("1 2\nx\n"),
                         max_steps=20_000)
    assert isinstance(status, int), status


def _axml(data: bytes) -> None:
    from cerebro.loaders.axml import parse_axml
    parse_axml(data)


def _zip(data: bytes) -> None:
    from cerebro.loaders.zipread import read_zip
    read_zip(data)  # reads and inflates every member


def _tar(data: bytes) -> None:
    from cerebro.loaders.tar import read_tar
    read_tar("fuzz.tar", data)  # no suffix: the compression is chosen by magic bytes


def _ar(data: bytes) -> None:
    from cerebro.loaders.ar import read_ar
    read_ar(data)


@dataclass(frozen=True)
class Target:
    seeds: tuple[str, ...]  # seed groups (fuzz_seeds.GROUPS) it starts from
    entry: Callable[[bytes], object]
    allowed: Callable[[], type[Exception]]  # the only exception hostile input may raise
    fixup: Callable[[bytes], bytes] | None = None
    ci_inputs: int = 400  # per CI run: sized so every target takes a few seconds on one core


TARGETS: dict[str, Target] = {
    "cbx": Target(("cbx",), _read_cbx, _cbx_error, _reseal, 1500),
    "cbx-runtime": Target(("cbx",), _load_cbx_in_c, _value_error, _reseal, 1500),
    "elf": Target(("elf", "cbx"), _inspect(_elf_package), _format_error, None, 1500),
    "pe": Target(("pe",), _pe, _format_error, None, 1000),
    "pe-package": Target(("pe",), _inspect(_pe_package), _format_error, None, 600),
    "dex": Target(("dex",), _dex, _format_error, _dex_checksums, 1000),
    "dex-run": Target(("dex",), _dex_run, _format_error, _dex_checksums, 300),
    "class": Target(("class",), _class, _format_error, None, 250),
    "class-run": Target(("class",), _class_run, _format_error, None, 300),
    "axml": Target(("axml",), _axml, _format_error, None, 1500),
    "zip": Target(("zip", "apk"), _zip, _format_error, None, 600),
    "tar": Target(("tar",), _tar, _format_error, None, 600),
    "ar": Target(("ar", "deb"), _ar, _format_error, None, 3000),
    "deb": Target(("deb",), _inspect(_deb), _format_error, None, 300),
    "apk": Target(("apk",), _inspect(_apk), _format_error, None, 200),
}


def _allocate(data: bytes) -> None:
    bytearray(2 << 30)


def _sleep(data: bytes) -> None:
    import time
    time.sleep(30)


def _block(data: bytes) -> None:
    """Stuck where no Python signal handler runs (as a parser stuck in C would be)."""
    import signal
    import time
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGPROF})
    time.sleep(60)


def _segfault(data: bytes) -> None:
    import ctypes
    ctypes.string_at(0)


def _raise(data: bytes) -> None:
    raise KeyError("a parser bug")


# Parsers that misbehave on purpose, so the tests show the harness catches each kind of finding.
MISBEHAVING: dict[str, Target] = {name: Target((), entry, _format_error) for name, entry in (
    ("allocates-2-GiB", _allocate), ("sleeps", _sleep), ("blocks", _block), ("segfaults", _segfault),
    ("raises-KeyError", _raise))}
