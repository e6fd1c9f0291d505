"""`cerebroc pkg` for .exe files: info from the PE reader, verify (checksum, import support),
extract (sections), run (the native C loader, loaders/native/peload.c)."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from itertools import groupby
from pathlib import Path

from cerebro.binread import FormatError
from cerebro.loaders.image import image_from_pe, write_sections
from cerebro.loaders.native_build import native_program
from cerebro.loaders.pe import DIR_SECURITY, PeFile, check_loadable


@dataclass(frozen=True)
class ShimTable:
    """What the native loader binds: 'dll!name' (DLL lower-case) per shim, and the DLLs it looks up
    as another (the UCRT's api-ms-win-crt-*, ucrtbase, VCRUNTIME140 as msvcrt.dll)."""
    names: frozenset[str]
    aliases: tuple[tuple[str, str], ...]  # (fnmatch pattern, DLL)

    def supports(self, dll: str, name: str) -> bool:
        dll = dll.lower()
        dll = next((target for pattern, target in self.aliases if fnmatch.fnmatchcase(dll, pattern)), dll)
        return f"{dll}!{name}" in self.names


# (machine, PE bits) -> the build of cerebro-peload that runs it: 64 (peload) or 32 (peload32, gcc -m32)
LOADER_BITS = {(0x8664, 64): 64, (0x14C, 32): 32}


def loader_bits(pe: PeFile) -> int:
    """Which loader build runs @pe; FormatError for a machine none runs."""
    bits = LOADER_BITS.get((pe.machine, pe.bits))
    if bits is None:
        raise FormatError(f"PE: only x86-64 (PE32+) and x86 (PE32) programs run here (this is {pe.machine_name}, "
                          f"PE{'32+' if pe.bits == 64 else '32'})")
    return bits


@cache
def shim_table(bits: int = 64) -> ShimTable:
    """The shims of the @bits loader (the two differ where the ABIs do: 32-bit time, _setjmp3)."""
    loader = native_program("peload", bits=bits)
    out = subprocess.run([str(loader), "--list-shims"], capture_output=True, text=True, check=True)
    lines = out.stdout.split()
    aliases = tuple(tuple(line.lower().split("=", 1)) for line in lines if "=" in line)
    return ShimTable(frozenset(line for line in lines if "=" not in line), aliases)


def import_support(pe: PeFile) -> list[tuple[str, bool]]:
    """('DLL!name', whether the native loader has a shim for it) for every import, in file order."""
    table = shim_table(LOADER_BITS.get((pe.machine, pe.bits), 64))
    return [(f"{i.dll}!{i.name}", table.supports(i.dll, i.name)) for i in pe.imports]


def refusal(missing: list[str]) -> str:
    """The loader's wording (peload.c refuse_missing): every 'DLL!name' that has no shim, grouped by DLL."""
    if len(missing) == 1:
        return f"unsupported import {missing[0]}"
    split = [item.split("!", 1) for item in missing]
    groups = [list(run) for _, run in groupby(split, key=lambda pair: pair[0].lower())]  # consecutive, as the loader
    text = "; ".join(f"{run[0][0]}: {', '.join(name for _, name in run)}" for run in groups)
    return f"unsupported imports ({len(missing)}): {text}"


class PePackage:
    run_options = ("timeout",)

    def __init__(self, pe: PeFile):
        self.pe = pe
        self.image = image_from_pe(pe)
        self.source: Path | None = None  # the file it was read from, so the program sees its real argv[0]

    @classmethod
    def parse(cls, data: bytes) -> PePackage:
        return cls(PeFile.parse(data))

    def info(self) -> dict:
        pe = self.pe
        sig_rva, sig_size = pe.directories[DIR_SECURITY]
        return {**self.image.summary(), "format": "pe32+" if pe.bits == 64 else "pe32",
                "subsystem": pe.subsystem_name, "image_base": hex(pe.image_base),
                "tls_callbacks": [hex(v) for v in pe.tls_callbacks], "signed": bool(sig_rva and sig_size),
                "checksum": hex(pe.checksum), "sha256": hashlib.sha256(pe.data).hexdigest()}

    def import_support(self) -> list[dict]:
        """`pkg info --imports`: each import and whether `pkg run` can bind it."""
        return [{"import": name, "supported": ok} for name, ok in import_support(self.pe)]

    def verify(self) -> list[str]:
        """A non-zero header checksum must match; zero means 'not set' (as for most programs)."""
        problems = []
        if self.pe.checksum and self.pe.checksum != self.pe.computed_checksum():
            problems.append(f"PE checksum mismatch: header {self.pe.checksum:#x}, "
                            f"computed {self.pe.computed_checksum():#x}")
        return problems

    def extract(self, dest: str | os.PathLike) -> list[str]:
        data = self.pe.data
        return write_sections(dest, [(s.name, data[s.raw_offset:s.raw_offset + s.raw_size])
                                     for s in self.pe.sections])

    def check_runnable(self) -> None:
        pe = self.pe
        loader_bits(pe)
        if pe.is_dll:
            raise FormatError("PE: this is a DLL, not a program")
        check_loadable(pe)
        missing = [name for name, supported in import_support(pe) if not supported]
        if missing:
            raise FormatError(f"PE: {refusal(missing)}")

    def run(self, args: list[str], relocate: bool = False, timeout: float | None = None,
            **_options) -> subprocess.CompletedProcess:
        """Runs the program natively through cerebro-peload; the image and imports are checked first.

        A fault in the program is reported by the loader (one line, exit 125); @timeout (seconds)
        raises subprocess.TimeoutExpired after killing it."""
        self.check_runnable()
        loader = [str(native_program("peload", bits=loader_bits(self.pe))), *(["--relocate"] if relocate else [])]
        if self.source is not None and self.source.read_bytes() == self.pe.data:
            return subprocess.run([*loader, str(self.source), *args], timeout=timeout)
        with tempfile.TemporaryDirectory(prefix="cerebro-pe-") as tmp:
            exe = Path(tmp) / "program.exe"
            exe.write_bytes(self.pe.data)
            return subprocess.run([*loader, str(exe), *args], timeout=timeout)
