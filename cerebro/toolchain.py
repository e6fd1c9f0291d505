"""Finds the C runtime sources, and builds cbxrun, the standalone .cbx runner, for the host or aarch64 (qemu)."""

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

# arch -> (C compiler, extra make variables)
_COMPILERS: dict[str, tuple[str, dict[str, str]]] = {
    "x86_64": ("gcc", {}),
    "aarch64": ("aarch64-linux-gnu-gcc", {"LDFLAGS": "-static"}),
}


def build_cbxrun(arch: str, outdir: str | os.PathLike) -> Path:
    """Compile runtime_kmod/user's cbxrun for arch into outdir; returns the program's path."""
    if arch not in _COMPILERS:
        raise ValueError(f"no cbxrun build for arch {arch!r} (supported: {', '.join(_COMPILERS)})")
    cc, extra = _COMPILERS[arch]
    if shutil.which(cc) is None:
        raise FileNotFoundError(f"C compiler {cc!r} for {arch} not found (Debian: gcc / gcc-aarch64-linux-gnu)")
    makefile_dir = RUNTIME_DIR / "user"
    if not (makefile_dir / "Makefile").exists():
        raise FileNotFoundError(f"runtime sources not found at {makefile_dir} (a broken install? reinstall cerebro)")
    outdir = Path(outdir).resolve()
    args = [f"CC={cc}", f"OUT={outdir}"] + [f"{k}={v}" for k, v in extra.items()]
    result = subprocess.run(["make", "-s", "-C", str(makefile_dir), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building cbxrun for {arch} failed:\n{result.stdout}{result.stderr}")
    return outdir / "cbxrun"
