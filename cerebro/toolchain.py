"""Finds the C runtime sources, and builds cbxrun, the standalone .cbx runner, and libcerebro_runtime.a, the
runtime as a C library, for the host or aarch64 (qemu)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def runtime_source_dir() -> Path:
    """runtime_kmod/: shipped inside an installed package (wheel, sdist), else the source checkout's."""
    package = Path(__file__).resolve().parent
    installed = package / "runtime_kmod"
    return installed if installed.is_dir() else package.parent / "runtime_kmod"


RUNTIME_DIR = runtime_source_dir()

# arch -> (C compiler, archiver, extra make variables)
_COMPILERS: dict[str, tuple[str, str, dict[str, str]]] = {
    "x86_64": ("gcc", "ar", {}),
    "aarch64": ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ar", {"LDFLAGS": "-static"}),
}


def build_cbxrun(arch: str, outdir: str | os.PathLike) -> Path:
    """Compile runtime_kmod/user's cbxrun for arch into outdir; returns the program's path."""
    return _make("cbxrun", arch, outdir)


def build_runtime_lib(arch: str, outdir: str | os.PathLike) -> Path:
    """Compile libcerebro_runtime.a (include/cerebro/cerebro_runtime.h's library) for arch into outdir."""
    return _make("libcerebro_runtime.a", arch, outdir)


def _make(product: str, arch: str, outdir: str | os.PathLike) -> Path:
    """Run runtime_kmod/user/Makefile for product with arch's compiler; returns outdir/product."""
    if arch not in _COMPILERS:
        raise ValueError(f"no {product} build for arch {arch!r} (supported: {', '.join(_COMPILERS)})")
    cc, ar, extra = _COMPILERS[arch]
    if shutil.which(cc) is None:
        raise FileNotFoundError(f"C compiler {cc!r} for {arch} not found (Debian: gcc / gcc-aarch64-linux-gnu)")
    makefile_dir = RUNTIME_DIR / "user"
    if not (makefile_dir / "Makefile").exists():
        raise FileNotFoundError(f"runtime sources not found at {makefile_dir} (a broken install? reinstall cerebro)")
    outdir = Path(outdir).resolve()
    args = [f"CC={cc}", f"AR={ar}", f"OUT={outdir}"] + [f"{k}={v}" for k, v in extra.items()]
    result = subprocess.run(["make", "-s", "-C", str(makefile_dir), *args, str(outdir / product)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building {product} for {arch} failed:\n{result.stdout}{result.stderr}")
    return outdir / product
