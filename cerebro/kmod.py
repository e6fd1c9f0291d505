"""Kernel modules for .cbx models, and a QEMU harness that runs them.

`build_modules` stages runtime_kmod/ sources and runs Kbuild against Debian
headers of the .cbx's architecture (x86-64: the installed ones; arm64: fetched
and cross-built, see kmod_arch.py): cerebro.ko (the core), one model module per
.cbx (the unchanged .cbx object linked next to a small glue file) and the
static cerebro-ctl tool. `run_in_vm` boots that kernel under QEMU (TCG) with a
busybox initramfs whose /init runs a shell script; `kmod_run` uses both to
run one model through /dev/cerebro. `register` adds `cerebroc kmod build`
and `cerebroc kmod run` to the CLI.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cerebro.cache import cache_root
from cerebro.elf import EM_X86_64
from cerebro.kmod_arch import (
    ARCHES,
    HOST,
    KernelArch,
    KmodError,
    arch_of,
    busybox,
    check_shadow_call_stack,
    find_release,
    headers_dir,
    kernel_config,
)
from cerebro.kmod_arch import kernel_image as arch_kernel_image
from cerebro.toolchain import runtime_source_dir

if TYPE_CHECKING:
    from cerebro.compiler.cbx.format import TensorSpec

REPO_ROOT = Path(__file__).resolve().parent.parent  # the source checkout, when running from one (tests)
KMOD_SRC = runtime_source_dir()
CACHE_DIR = cache_root()

# The features a .cbx meta can record (compiler/targets.py) that the x86-64 VM's CPU has (kmod_arch.ARCHES).
VM_CPU_FEATURES = ARCHES[EM_X86_64].vm_features


# ---- reading a .cbx (just what naming and the VM need) ----


@dataclass(frozen=True)
class CbxInfo:
    hash: str
    machine: int  # ELF e_machine: 62 x86-64, 183 aarch64
    model_name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    features: str = ""  # the LLVM features the code needs, as "+avx2,+fma"
    fpu: str = "simd"  # "none": integer code in general registers, run without an FPU section

    @property
    def module_name(self) -> str:
        """Kernel module name of this model: derived from the content hash."""
        return "cbx_" + self.hash[:16]


def read_cbx(path: str | Path) -> CbxInfo:
    """Hash, name and signature of a .cbx, checked by the shared reader (and again by the kernel)."""
    from cerebro.compiler.cbx.format import CbxError
    from cerebro.compiler.cbx.reader import read_cbx as read_file

    path = Path(path)
    try:
        meta = read_file(path.read_bytes()).meta
    except (CbxError, ValueError) as error:
        raise KmodError(f"{path}: {error}") from None

    return CbxInfo(meta.hash.hex(), meta.machine, meta.model_name, meta.inputs, meta.outputs, meta.features,
                   meta.fpu)


def check_code(path: str | Path, info: CbxInfo) -> None:
    """Refuses a model whose machine code cerebro.ko cannot run safely, from one disassembly: an fpu "none"
    model's code touching an FP/SIMD register (cerebro.ko runs its stages outside any FPU section, where one
    such instruction corrupts the interrupted task's FP state: compiler/fpu_check.py), and a stack frame or
    call chain that could overflow the calling task's 16 KiB kernel stack (compiler/stack_check.py)."""
    from cerebro.compiler import fpu_check, stack_check

    arch_of(info.machine, path)  # x86-64 or aarch64: the machines both checks read
    listing = fpu_check.disassemble(Path(path).read_bytes(), info.machine, f"check the code of {path}",
                                    KmodError)
    try:
        if info.fpu == "none":
            fpu_check.check_listing(listing, info.machine, str(path))
        stack_check.check_listing(listing, info.machine, str(path))
    except (fpu_check.FpuCheckError, stack_check.StackCheckError) as error:
        raise KmodError(str(error)) from None


def check_vm_cpu(path: str | Path, info: CbxInfo) -> None:
    """Refuses, before any build or boot, a model the VM's emulated CPU cannot run."""
    arch = arch_of(info.machine, path)
    needed = [name.lstrip("+") for name in info.features.split(",") if name.startswith("+")]
    missing = [name for name in needed if name not in arch.vm_features]
    if missing:
        fix = "--target x86_64 (or x86_64-v3)" if arch is HOST else "--target aarch64"
        raise KmodError(f"{path}: the model needs CPU features {', '.join(missing)}, which the VM's CPU "
                        f"(QEMU TCG {' '.join(arch.qemu[1:])}) lacks; compile it with {fix} to run it here")


# ---- building ----


def find_kernel_release(release: str | None = None, arch: KernelArch = HOST) -> str:
    """The kernel to build for: @release, else the newest with headers under /lib/modules (for arm64 its
    -arm64 flavour)."""
    return find_release(arch, release)


def _make(stage: Path, release: str, extra: list[str], arch: KernelArch = HOST) -> str:
    cmd = ["make", "-C", str(headers_dir(arch, release)), f"M={stage}", "-j2", *arch.make_args, *extra, "modules"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    (stage / "build.log").write_text(log)
    if proc.returncode != 0:
        raise KmodError(f"Kbuild failed in {stage} (see build.log):\n" + "\n".join(log.splitlines()[-25:]))
    return log


def _stage_core(stage: Path) -> None:
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(KMOD_SRC / "kernel", stage, ignore=shutil.ignore_patterns("model_glue.c", "Kbuild.model"))
    shutil.copytree(KMOD_SRC / "include", stage / "include")
    for part in ("core", "arch"):
        shutil.copytree(KMOD_SRC / part, stage / part, ignore=shutil.ignore_patterns("*.o", ".*"))


def build_core(outdir: Path, release: str, arch: KernelArch = HOST) -> Path:
    """cerebro.ko (and its Module.symvers, which model modules link against)."""
    stage = outdir / "build" / "cerebro"
    _stage_core(stage)
    _make(stage, release, [], arch)
    shutil.copy2(stage / "cerebro.ko", outdir / "cerebro.ko")
    return outdir / "cerebro.ko"


def build_model_module(cbx_path: Path, outdir: Path, release: str) -> Path:
    """One model module: the .cbx object unchanged plus model_glue.c (objtool runs on both on x86-64),
    built for the .cbx's architecture against @release's headers."""
    info = read_cbx(cbx_path)
    arch = arch_of(info.machine, cbx_path)
    if arch is not HOST:
        check_shadow_call_stack(kernel_config(arch, release), cbx_path)
    stage = outdir / "build" / info.module_name
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    shutil.copy2(cbx_path, stage / "model.cbx")
    shutil.copy2(KMOD_SRC / "kernel" / "model_glue.c", stage)
    shutil.copy2(KMOD_SRC / "kernel" / "cerebro_model.h", stage)
    shutil.copytree(KMOD_SRC / "include", stage / "include")
    kbuild = (KMOD_SRC / "kernel" / "Kbuild.model").read_text()
    (stage / "Kbuild").write_text(kbuild.replace("@MODNAME@", info.module_name).replace("@HASH@", info.hash)
                                 .replace("@ALIAS@", info.hash[:32]))
    symvers = outdir / "build" / "cerebro" / "Module.symvers"
    log = _make(stage, release, [f"KBUILD_EXTRA_SYMBOLS={symvers}"], arch)
    warnings = [line for line in log.splitlines() if "warning" in line.lower()]
    if warnings:
        raise KmodError(f"{cbx_path}: the model module builds with warnings:\n" + "\n".join(warnings[:10]))
    shutil.copy2(stage / f"{info.module_name}.ko", outdir / f"{info.module_name}.ko")
    return outdir / f"{info.module_name}.ko"


def build_ctl(outdir: Path, source: Path | None = None, name: str = "cerebro-ctl", arch: KernelArch = HOST) -> Path:
    """A static C tool (cerebro-ctl by default) that runs in a bare initramfs of @arch."""
    source = source or KMOD_SRC / "tools" / "cerebro_ctl.c"
    out = outdir / name
    if not shutil.which(arch.cc):
        raise KmodError(f"{arch.cc} not found: apt-get install {'gcc' if arch is HOST else 'gcc-aarch64-linux-gnu'}")
    cmd = [arch.cc, "-static", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
           f"-I{KMOD_SRC / 'include'}", "-o", str(out), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KmodError(f"building {name} failed:\n{proc.stderr[-3000:]}")
    return out


def build_modules(cbx_paths: list[str | Path], outdir: str | Path, kernel_release: str | None = None) -> list[Path]:
    """Builds cerebro.ko, one model module per .cbx and cerebro-ctl into @outdir for the models'
    architecture (all the same: x86-64 or aarch64); returns their paths."""
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    arch = model_arch(cbx_paths)  # refuses bad inputs before the slow core build
    for path in cbx_paths:
        check_code(path, read_cbx(path))
    release = find_kernel_release(kernel_release, arch)
    paths = [build_core(outdir, release, arch)]
    paths += [build_model_module(Path(p).resolve(), outdir, release) for p in cbx_paths]
    paths.append(build_ctl(outdir, arch=arch))
    return paths


def model_arch(cbx_paths: list[str | Path]) -> KernelArch:
    """The one architecture all @cbx_paths were compiled for."""
    found = [arch_of(read_cbx(p).machine, p) for p in cbx_paths]
    arches = {arch.name: arch for arch in found}
    if len(arches) != 1:
        raise KmodError(f"one build takes models of one architecture; got {', '.join(sorted(arches)) or 'none'}")
    return next(iter(arches.values()))


# ---- the VM ----


def kernel_image(release: str, arch: KernelArch = HOST) -> Path:
    """vmlinuz for @release: /boot if readable, else Debian's image package unpacked into the cache."""
    return arch_kernel_image(arch, release)


# Directory trees copied into an initramfs leave these out (test suites, caches).
SKIP_IN_INITRAMFS = ("__pycache__", "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                     "site-packages", "dist-packages", "config-3*")


def build_initramfs(out: Path, files: dict[str, Path], init_script: str, arch: KernelArch = HOST) -> Path:
    """A busybox initramfs (newc cpio) of @arch holding @files (guest path -> host file or directory) and /init."""
    host_busybox = busybox(HOST)  # Debian builds busybox-static alike for every architecture: same applets
    root = out.parent / (out.name + ".root")
    if root.exists():
        shutil.rmtree(root)
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "root", "etc"):
        (root / d).mkdir(parents=True)
    shutil.copy2(busybox(arch), root / "bin" / "busybox")
    applets = subprocess.run([host_busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":  # linking it over itself breaks init (ELOOP)
            (root / "bin" / applet).symlink_to("busybox")
    (root / "sbin" / "modprobe").symlink_to("../bin/busybox")
    for guest, host in files.items():
        dest = root / guest.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if Path(host).is_dir():
            shutil.copytree(host, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*SKIP_IN_INITRAMFS))
        else:
            shutil.copy2(host, dest)
    (root / "init").write_text(init_script)
    (root / "init").chmod(0o755)
    listing = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
    with open(out, "wb") as f:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=listing, stdout=f, check=True)
    shutil.rmtree(root)
    return out


def qemu_command(kernel: Path, initrd: Path, log: Path, memory: str = "1G", cpus: int = 2,
                 arch: KernelArch = HOST) -> list[str]:
    """TCG (no KVM: the hosts' nested KVM cannot boot a stock kernel); panic on any WARN or oops.

    slub_debug=FZPU poisons freed slab objects, so a use-after-free faults or is reported instead of passing.
    """
    append = f"console={arch.console} loglevel=3 panic=-1 panic_on_warn=1 oops=panic slub_debug=FZPU"
    return [*arch.qemu, "-smp", str(cpus), "-m", memory, "-nodefaults", "-net", "none",
            "-display", "none", "-serial", f"file:{log}", "-no-reboot", "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", append]


def run_in_vm(kernel: Path, initrd: Path, timeout: float = 240, arch: KernelArch = HOST) -> str:
    """Boots @arch's VM, waits for power-off (or @timeout), returns the serial log."""
    if not shutil.which(arch.qemu[0]):
        raise KmodError(f"{arch.qemu[0]} not found: apt-get install {arch.qemu_package}")
    log = initrd.with_suffix(".log")
    log.unlink(missing_ok=True)
    cmd = qemu_command(kernel, initrd, log, arch=arch)
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        text = log.read_text(errors="replace") if log.exists() else ""
        raise KmodError(f"the VM did not power off within {timeout:.0f}s; log tail:\n{text[-3000:]}") from error
    return log.read_text(errors="replace").replace("\r", "")


def vm_sections(log: str) -> dict[str, str]:
    """Blocks the guest printed between '@@BEGIN name' and '@@END name' lines."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^@@BEGIN (\S+)\n(.*?)^@@END \1$", log, re.M | re.S)}


def vm_file(log: str, name: str) -> bytes:
    """A file the guest printed base64-encoded in section @name."""
    sections = vm_sections(log)
    if name not in sections:
        raise KmodError(f"the VM printed no section {name!r}; log tail:\n{log[-3000:]}")
    return base64.b64decode("".join(sections[name].split()))


INIT_HEADER = """#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /lib/modules/$(uname -r)
cd /root
"""

INIT_FOOTER = """
echo @@BEGIN dmesg
dmesg
echo @@END dmesg
echo @@DONE
poweroff -f
"""


def vm_failure_reason(log: str) -> str:
    """The guest's first complaint (insmod's or cerebro-ctl's), so a failed run never reads as empty."""
    for line in log.splitlines():
        if line.startswith(("insmod:", "cerebro-ctl:")):
            return line.strip()
    return "no error line from insmod or cerebro-ctl"


def kmod_run(cbx_path: str | Path, inputs: list[np.ndarray], kernel_release: str | None = None,
             workdir: str | Path | None = None) -> list[np.ndarray]:
    """Runs one model through /dev/cerebro inside a VM; returns its outputs."""
    info = read_cbx(cbx_path)
    check_vm_cpu(cbx_path, info)
    arch = arch_of(info.machine, cbx_path)
    if len(inputs) != len(info.inputs):
        raise KmodError(f"{cbx_path}: the model takes {len(info.inputs)} inputs, got {len(inputs)}")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        release = find_kernel_release(kernel_release, arch)
        paths = build_modules([cbx_path], tmp / "out", release)
        files = {"/root/cerebro.ko": paths[0], "/root/model.ko": paths[1], "/bin/cerebro-ctl": paths[2],
                 "/root/model.cbx": Path(cbx_path)}
        args = []
        for i, (spec, array) in enumerate(zip(info.inputs, inputs)):
            array = np.asarray(array)
            if array.dtype != spec.dtype.numpy or array.shape != spec.shape:
                raise KmodError(f"input {i} ({spec.name}): got {array.dtype}{list(array.shape)}, "
                                f"the model takes {spec.dtype.numpy}{list(spec.shape)}")
            (tmp / f"in{i}.bin").write_bytes(np.ascontiguousarray(array).tobytes())
            files[f"/root/in{i}.bin"] = tmp / f"in{i}.bin"
            args.append(f"in{i}.bin")
        script = INIT_HEADER + "insmod cerebro.ko && insmod model.ko\n"
        script += f"cerebro-ctl run model.cbx {' '.join(args)} -o out.bin; echo @@RC $?\n"
        script += "echo @@BEGIN out; base64 out.bin; echo @@END out\n" + INIT_FOOTER
        initrd = build_initramfs(tmp / "initrd.cpio", files, script, arch)
        log = run_in_vm(kernel_image(release, arch), initrd, arch=arch)
    rc = re.search(r"^@@RC (\d+)$", log, re.M)
    if not rc or rc.group(1) != "0":
        raise KmodError(f"cerebro-ctl run failed in the VM: {vm_failure_reason(log)}; log tail:\n{log[-3000:]}")
    data = vm_file(log, "out")
    outputs, at = [], 0
    for spec in info.outputs:
        outputs.append(np.frombuffer(data[at : at + spec.nbytes], dtype=spec.dtype.numpy).reshape(spec.shape).copy())
        at += spec.nbytes
    if at != len(data):
        raise KmodError(f"the VM returned {len(data)} output bytes, the signature has {at}")
    return outputs


# ---- CLI: cerebroc kmod build | run ----


def register(sub: argparse._SubParsersAction) -> None:
    """Adds `cerebroc kmod build` and `cerebroc kmod run`."""
    kmod = sub.add_parser("kmod", help="kernel modules for .cbx models", description=__doc__.split("\n\n")[0])
    kmod_sub = kmod.add_subparsers(dest="kmod_command", metavar="SUBCOMMAND", required=True)
    build = kmod_sub.add_parser("build", help="build cerebro.ko, model modules and cerebro-ctl")
    build.add_argument("models", nargs="+", metavar="MODEL.cbx")
    build.add_argument("-o", "--outdir", required=True)
    build.add_argument("--kernel", default=None, metavar="VER",
                       help="kernel release (default: newest headers; aarch64 models: their -arm64 flavour)")
    build.set_defaults(run=cli_build)
    run = kmod_sub.add_parser("run", help="run a model through /dev/cerebro in a QEMU VM")
    run.add_argument("model", metavar="MODEL.cbx")
    run.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE.npy|FILE.npz")
    run.add_argument("--output", "-o", default=None, metavar="OUT.npz")
    run.add_argument("--kernel", default=None, metavar="VER")
    run.set_defaults(run=cli_run)


def cli_build(args: argparse.Namespace) -> int:
    for path in build_modules(args.models, args.outdir, args.kernel):
        print(path)
    return 0


def cli_run(args: argparse.Namespace) -> int:
    from cerebro.commands.inputs import load_inputs

    info = read_cbx(args.model)
    check_vm_cpu(args.model, info)
    inputs = load_inputs(args.input, info.inputs)
    outputs = kmod_run(args.model, inputs, args.kernel)
    named = {spec.name: out for spec, out in zip(info.outputs, outputs)}
    if args.output:
        np.savez(args.output, **named)
    for name, out in named.items():
        print(f"{name}: {out.dtype}{list(out.shape)} {np.array2string(out.ravel()[:8], precision=5)}")
    return 0
