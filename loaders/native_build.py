"""Builds the C helpers under loaders/native/ on demand with the system `cc` into a cache dir.

A separate program (not part of the cerebro._runtime extension): keyed by a hash of its
source so an edited loader is rebuilt, and built once per machine otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from cerebro.binread import FormatError
from cerebro.cache import cache_root

NATIVE = Path(__file__).parent / "native"
# C files linked into a program besides <name>.c
MODULES = {"peload": ["fault_report.c", "crt.c", "threads.c", "modules.c", "wide.c", "crt_stdio.c", "crt_math.c",
                      "messages.c", "paths.c", "files.c", "ucrt.c", "multibyte.c", "winrt.c", "winfile.c", "process.c",
                      "launcher.c", "ucrt_startup.c", "splitpath.c"]}
MODULES_BY_BITS = {(32, "peload"): ["crt32.c"]}  # only in that build (msvcrt's i386-only functions)
LIBS = {"peload": ["-lm"]}  # libraries linked after the sources (crt_math.c calls libm)
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra"]  # tests also build with -Werror to keep the C clean
# 32: an i386 build (gcc-multilib), e.g. peload32 for PE32 programs. Debian's multilib has no i386
# <asm/*.h> (errno.h and the syscall numbers need them); the x86-64 ones serve both (they test __i386__).
# A 64-bit time_t and off_t, as the Windows side has (_time64, _stat64; dates past 2038).
ARCH_FLAGS = {64: [], 32: ["-m32", "-idirafter", "/usr/include/x86_64-linux-gnu", "-D_FILE_OFFSET_BITS=64",
                           "-D_TIME_BITS=64"]}


def cache_dir() -> Path:
    return cache_root() / "native"


def native_sources(name: str, bits: int = 64) -> list[Path]:
    """The C files that make up loaders/native/<name> (its @bits build)."""
    modules = [*MODULES.get(name, []), *MODULES_BY_BITS.get((bits, name), [])]
    return [NATIVE / f"{name}.c", *(NATIVE / module for module in modules)]


def _hand_over_flags(name: str, static: bool, bits: int) -> list[str]:
    """The x86-64 peload execs peload32 for a PE32 file (binfmt_misc gives it every MZ file): its path,
    compiled in. Not for -static builds (made to run where the cache is not) nor without gcc-multilib."""
    if name != "peload" or static or bits != 64:
        return []
    try:
        return [f"-DPELOAD32={json.dumps(str(native_program(name, bits=32)))}"]
    except FormatError:
        return []  # PE32 programs are then refused, naming peload32


def native_program(name: str, static: bool = False, bits: int = 64) -> Path:
    """Path of the built program for loaders/native/<name>.c, compiling it if needed.

    @static links it with -static: it then runs where no dynamic loader or libc is installed
    (a busybox initramfs, a container's scratch image). @bits 32 builds it for i386 (`<name>32`).
    """
    sources = native_sources(name, bits)
    flags = [*CFLAGS, *ARCH_FLAGS[bits], *(["-static"] if static else []), *_hand_over_flags(name, static, bits)]
    headers = sorted(NATIVE.glob("*.h"))  # an edited header rebuilds too
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [*sources, *headers])
                            + " ".join(flags).encode()).hexdigest()[:16]
    target = cache_dir() / f"{name}{'32' if bits == 32 else ''}{'-static' if static else ''}-{digest}"
    if target.is_file():
        return target
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        raise FormatError(f"building {name}: no C compiler (`cc`) found; install gcc")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    proc = subprocess.run([cc, *flags, "-o", str(tmp), *map(str, sources), *LIBS.get(name, [])],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or ["no compiler output"]
        hint = " (a 32-bit build needs gcc-multilib)" if bits == 32 else ""
        raise FormatError(f"building {name} with {cc}{' -m32' if bits == 32 else ''} failed{hint}: {last[0]}")
    os.replace(tmp, target)  # atomic: concurrent builders never see a half-written program
    return target
