"""What building and booting a kernel for a .cbx's architecture needs: x86-64 (the host's Debian
kernel) or arm64 (Debian's arm64 kernel, cross-built and run under qemu-system-aarch64).

The arm64 pieces (headers, kernel image, busybox) are Debian arm64 packages fetched on first use with
`apt-get download` through a private apt state under the cache (arch arm64), so the host's dpkg
architectures stay untouched; the packaged headers' scripts/ and tools/ are arm64 binaries, so they
are pointed at the host's linux-kbuild of the same version.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cerebro.cache import cache_root
from cerebro.elf import EM_AARCH64, EM_X86_64

CACHE_DIR = cache_root()


class KmodError(RuntimeError):
    """A build or VM step failed; the message says which and why."""


@dataclass(frozen=True)
class KernelArch:
    name: str  # the compiler's target name
    debian: str  # Debian's architecture and kernel flavour suffix
    make_args: tuple[str, ...]  # Kbuild's command-line variables
    cc: str  # the C compiler for static user-space tools
    qemu: tuple[str, ...]  # qemu-system binary and machine/CPU options
    console: str
    qemu_package: str
    # the LLVM features (.cbx meta) the VM's emulated CPU has
    vm_features: frozenset[str]


ARCHES: dict[int, KernelArch] = {
    # QEMU 7.2's TCG `-cpu max` (Debian 12): SSE up to 4.2, AVX, AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE; no
    # AVX-512 and no AVX-VNNI (a model module needing those refuses to register in the guest).
    EM_X86_64: KernelArch("x86_64", "amd64", (), "gcc", ("qemu-system-x86_64", "-cpu", "max"), "ttyS0",
                          "qemu-system-x86",
                          frozenset({"sse2", "sse3", "ssse3", "sse4.1", "sse4.2", "popcnt", "cx16", "avx", "avx2",
                                     "fma", "f16c", "bmi", "bmi2", "lzcnt", "movbe"})),
    # A Cortex-A72 (ARMv8.0: FP and Advanced SIMD only) boots in ~2.5 s under TCG; `-cpu max` takes ~14 s.
    EM_AARCH64: KernelArch("aarch64", "arm64", ("ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-"),
                           "aarch64-linux-gnu-gcc", ("qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72"),
                           "ttyAMA0", "qemu-system-arm", frozenset({"neon", "fp-armv8"})),
}
HOST = ARCHES[EM_X86_64]


def arch_of(machine: int, path: object) -> KernelArch:
    """The kernel architecture for a .cbx's ELF machine; KmodError for any other."""
    if machine not in ARCHES:
        raise KmodError(f"{path}: compiled for ELF machine {machine}; kernel modules are built for x86-64 and "
                        "aarch64 only")
    return ARCHES[machine]


def _release_key(release: str) -> list:
    return [int(x) if x.isdigit() else x for x in re.split(r"[.-]", release)]


def host_releases() -> list[str]:
    """Kernel releases with headers under /lib/modules (the host's own architecture), oldest first."""
    return sorted((Path(p).parent.parent.name for p in glob.glob("/lib/modules/*/build/Makefile")),
                  key=_release_key)


def find_release(arch: KernelArch, release: str | None = None) -> str:
    """The kernel to build for: @release, else the newest installed headers' release (for arm64: the same
    ABI with the -arm64 flavour, whose scripts come from the host's linux-kbuild of that version)."""
    if arch is HOST:
        if release:
            if not Path(f"/lib/modules/{release}/build/Makefile").exists():
                raise KmodError(f"no kernel headers for {release}: apt-get install linux-headers-{release}")
            return release
        found = host_releases()
        if not found:
            raise KmodError("no kernel headers under /lib/modules/*/build: apt-get install linux-headers-amd64")
        return found[-1]
    if release:
        if not release.endswith("-" + arch.debian):
            raise KmodError(f"--kernel {release}: an {arch.name} model needs a Debian {arch.debian} kernel release "
                            f"(such as 6.1.0-57-{arch.debian})")
        return release
    found = [r for r in host_releases() if r.endswith("-" + HOST.debian)]
    if not found:
        raise KmodError("no amd64 kernel headers under /lib/modules to take the kernel version from: apt-get "
                        "install linux-headers-amd64 (its linux-kbuild runs the arm64 build)")
    return found[-1][: -len(HOST.debian)] + arch.debian


# ---- Debian packages of another architecture, through a private apt state ----


def _apt(arch: KernelArch, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    state = CACHE_DIR / f"apt-{arch.debian}"
    for d in ("lists/partial", "cache/archives/partial"):
        (state / d).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    options = [f"-oAPT::Architecture={arch.debian}", f"-oAPT::Architectures::={arch.debian}",
               f"-oDir::State::Lists={state}/lists", f"-oDir::Cache={state}/cache",
               f"-oDir::State::status={state}/status", "-oAPT::Sandbox::User=root" if os.geteuid() == 0 else ""]
    return subprocess.run(["apt-get", "-q", *filter(None, options), *args], cwd=cwd, capture_output=True, text=True)


def download_debs(arch: KernelArch, packages: list[str], dest: Path) -> list[Path]:
    """`apt-get download` of @packages for @arch into @dest (the package lists are fetched once)."""
    if not shutil.which("apt-get"):
        raise KmodError(f"apt-get not found: cannot fetch Debian {arch.debian} packages {' '.join(packages)}")
    proc = _apt(arch, "download", *packages, cwd=dest)
    if proc.returncode != 0:  # first use, or stale lists after a Debian update
        update = _apt(arch, "update")
        if update.returncode != 0:
            raise KmodError(f"apt-get update for {arch.debian} failed: {update.stderr.strip()[-400:]}")
        proc = _apt(arch, "download", *packages, cwd=dest)
    if proc.returncode != 0:
        raise KmodError(f"cannot download {' '.join(packages)} for {arch.debian}: {proc.stderr.strip()[-400:]}")
    return [Path(p) for p in sorted(glob.glob(f"{dest}/*.deb"))]


def _cached(path: Path, make) -> Path:
    """@path, made once by make(scratch directory) -> file or directory, moved into place atomically."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        made = make(Path(tmp))
        if not path.exists():
            os.replace(made, path)
    return path


def headers_dir(arch: KernelArch, release: str) -> Path:
    """The Kbuild tree (`make -C` target) for @release."""
    if arch is HOST:
        return Path(f"/lib/modules/{release}/build")

    def unpack(tmp: Path) -> Path:
        (deb,) = download_debs(arch, [f"linux-headers-{release}"], tmp)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True)
        tree = tmp / "root" / "usr" / "src" / f"linux-headers-{release}"
        for tool in ("scripts", "tools"):  # ../../lib/linux-kbuild-X.Y/<tool>: arm64 binaries; use the host's
            link = tree / tool
            host = Path("/usr") / os.readlink(link).replace("../", "")
            if not host.exists():
                raise KmodError(f"{host} missing: the {arch.debian} headers need the host's linux-kbuild of the same "
                                f"version (apt-get install linux-headers-{release[: -len(arch.debian)]}{HOST.debian})")
            link.unlink()
            link.symlink_to(host)
        return tree

    tree = _cached(CACHE_DIR / "kernel" / release / "headers", unpack)
    common = re.search(r"^include (\S+)/Makefile", (tree / "Makefile").read_text(), re.M)
    if common and not Path(common.group(1)).is_dir():
        raise KmodError(f"{common.group(1)} missing: apt-get install {Path(common.group(1)).name}")
    return tree


def kernel_image(arch: KernelArch, release: str) -> Path:
    """vmlinuz for @release: /boot if readable, else Debian's image package's vmlinuz, cached."""
    boot = Path(f"/boot/vmlinuz-{release}")
    if arch is HOST and boot.exists() and os.access(boot, os.R_OK):
        return boot

    def extract(tmp: Path) -> Path:
        if arch is HOST:
            debs = _download_host_image(release, tmp)
        else:
            debs = download_debs(arch, [f"linux-image-{release}-unsigned"], tmp)
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(tmp), f"./boot/vmlinuz-{release}"], stdin=tar.stdout, check=True)
        tar.wait()
        return tmp / "boot" / f"vmlinuz-{release}"

    return _cached(CACHE_DIR / "kernel" / release / "vmlinuz", extract)


def _download_host_image(release: str, tmp: Path) -> list[Path]:
    for package in (f"linux-image-{release}", f"linux-image-{release}-unsigned"):
        proc = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        debs = sorted(tmp.glob("*.deb"))
        if proc.returncode == 0 and debs:
            return debs
    raise KmodError(f"cannot download linux-image-{release} with apt-get: {proc.stderr.strip()[-300:]}")


def busybox(arch: KernelArch) -> Path:
    """A static busybox for the guest: the host's, or Debian's busybox-static for @arch, cached."""
    if arch is HOST:
        found = shutil.which("busybox")
        if not found:
            raise KmodError("busybox not found: apt-get install busybox-static")
        return Path(found)

    def extract(tmp: Path) -> Path:
        (deb,) = download_debs(arch, ["busybox-static"], tmp)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], check=True)
        return tmp / "root" / "bin" / "busybox"

    return _cached(CACHE_DIR / arch.debian / "busybox", extract)


def kernel_config(arch: KernelArch, release: str) -> str:
    """The .config @release's headers were built with."""
    return (headers_dir(arch, release) / ".config").read_text()


INSTRUCTION_USING_X18 = re.compile(r"^\s*[0-9a-f]+:\s.*\b[xw]18\b.*$", re.M)


def x18_instructions(code: Path) -> list[str]:
    """The instructions of an aarch64 object that name x18 (or w18)."""
    disassembly = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", str(code)],
                                 capture_output=True, text=True, check=True).stdout
    return [" ".join(m.group(0).split()) for m in INSTRUCTION_USING_X18.finditer(disassembly.replace("//", "\n//"))]


def check_shadow_call_stack(config: str, code: Path) -> None:
    """An arm64 kernel with shadow call stacks (CONFIG_SHADOW_CALL_STACK, as Android's GKI) keeps the stack's
    pointer in x18, which the code must leave alone (the compiler's aarch64 target reserves it; an older
    .cbx may not). Debian's kernel has no shadow call stacks."""
    if not re.search(r"^CONFIG_SHADOW_CALL_STACK=y$", config, re.M):
        return
    used = x18_instructions(code)
    if used:
        raise KmodError(f"{code}: the code uses x18 ('{used[0]}'), which this kernel's shadow call stack keeps its "
                        "pointer in; recompile it with the current cerebroc (--target aarch64 reserves x18)")
