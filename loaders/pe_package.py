"""`cerebroc pkg` for .exe files: info from the PE reader, verify (checksum, import support),
extract (sections), run (the native C loader, loaders/native/peload.c)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from cerebro.binread import FormatError
from cerebro.loaders.image import image_from_pe, write_sections
from cerebro.loaders.native_build import native_program
from cerebro.loaders.pe import DIR_SECURITY, PeFile, check_loadable


@cache
def supported_imports() -> frozenset[str]:
    """'dll!name' (DLL lower-case) for every import the native loader has a shim for."""
    out = subprocess.run([str(native_program("peload")), "--list-shims"], capture_output=True, text=True, check=True)
    return frozenset(out.stdout.split())


def unsupported_imports(pe: PeFile) -> list[str]:
    known = supported_imports()
    return [f"{i.dll}!{i.name}" for i in pe.imports if f"{i.dll.lower()}!{i.name}" not in known]


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
        if pe.machine != 0x8664 or pe.bits != 64:
            raise FormatError(f"PE: only PE32+ x86-64 programs run here (this is {pe.machine_name}, PE{pe.bits})")
        if pe.is_dll:
            raise FormatError("PE: this is a DLL, not a program")
        check_loadable(pe)
        missing = unsupported_imports(pe)
        if missing:
            raise FormatError(f"PE: unsupported import {missing[0]}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))

    def run(self, args: list[str], relocate: bool = False, timeout: float | None = None,
            **_options) -> subprocess.CompletedProcess:
        """Runs the program natively through cerebro-peload; the image and imports are checked first.

        A fault in the program is reported by the loader (one line, exit 125); @timeout (seconds)
        raises subprocess.TimeoutExpired after killing it."""
        self.check_runnable()
        loader = [str(native_program("peload")), *(["--relocate"] if relocate else [])]
        if self.source is not None and self.source.read_bytes() == self.pe.data:
            return subprocess.run([*loader, str(self.source), *args], timeout=timeout)
        with tempfile.TemporaryDirectory(prefix="cerebro-pe-") as tmp:
            exe = Path(tmp) / "program.exe"
            exe.write_bytes(self.pe.data)
            return subprocess.run([*loader, str(exe), *args], timeout=timeout)
