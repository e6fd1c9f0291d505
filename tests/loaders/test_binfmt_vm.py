"""The kernel hand-off for real: a QEMU guest (TCG) registers the binfmt_misc rules that
`cerebro.loaders.binfmt` generates (for the guest's interpreter paths), then `./hello.exe` runs
through the static peload interpreter, and `./hello.deb` and `./app.apk` through the Python
wrapper. One boot; outputs are compared with the same C program built for Linux and with the
host's own run of the wrapper on the same package.
"""

from __future__ import annotations

import lzma
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy
import pytest
from loader_support import CACHE

import cerebro
from cerebro import kmod
from cerebro.loaders import binfmt
from cerebro.loaders.native_build import native_program

HERE = Path(__file__).resolve().parent
GUEST_PELOAD = "/usr/libexec/cerebro/cerebro-peload"
GUEST_RUNNER = "/usr/libexec/cerebro/cerebro-pkg-run"
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static", "cpio": "cpio",
         "x86_64-w64-mingw32-gcc": "gcc-mingw-w64-x86-64", "cc": "build-essential", "apt-get": "apt",
         "dpkg-deb": "dpkg"}

PACKAGE_ARGS = {"hello.deb": ["-g", "via binfmt"], "app.apk": ["ignored-arg"]}

HELLO = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    printf("hello from a PE program, argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("argv[%d] = [%s]\n", i, argv[i]);
    const char *greeting = getenv("CEREBRO_GREETING");
    printf("CEREBRO_GREETING=%s\n", greeting ? greeting : "(unset)");
    return 40 + argc;
}
"""

UNSUPPORTED = r"""
#include <windows.h>
#include <stdio.h>
int main(void) { char b[64]; DWORD n = sizeof b; GetComputerNameA(b, &n); printf("%s\n", b); return 0; }
"""


@dataclass
class GuestRun:
    rc: int
    out: str
    err: str


@dataclass
class BinfmtVm:
    log: str
    rules: list[str]
    checks: dict[str, tuple[bool, str]]
    runs: dict[str, GuestRun]
    status: dict[str, str]
    reference: Path  # hello.c built for Linux: the expected behaviour
    packages: dict[str, Path]  # guest /root name -> host copy


def missing_requirement() -> str | None:
    """What this machine lacks for the VM test (Debian packages named), or None."""
    missing = sorted({pkg for tool, pkg in TOOLS.items() if not shutil.which(tool)})
    if missing:
        return f"missing Debian packages: {' '.join(missing)} (see scripts/apt-packages.txt)"
    try:
        kmod.find_kernel_release()
    except kmod.KmodError as error:
        return str(error)
    return None


def binfmt_module(release: str) -> Path | None:
    """binfmt_misc.ko for @release (installed, or from Debian's image package; cached); None if built in."""
    ko = CACHE / "kernel" / release / "binfmt_misc.ko"
    if ko.exists():
        return ko
    ko.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ko.parent) as tmp:
        image = Path(tmp)
        found = sorted(Path(f"/lib/modules/{release}/kernel/fs").glob("binfmt_misc.ko*"))
        if not found:
            found = module_from_image_package(release, image)
        if not found:
            return None
        data = found[0].read_bytes()
        part = image / "binfmt_misc.ko"
        part.write_bytes(lzma.decompress(data) if found[0].suffix == ".xz" else data)  # busybox insmod: plain .ko
        os.replace(part, ko)
    return ko


def module_from_image_package(release: str, image: Path) -> list[Path]:
    """apt-get download linux-image-@release and take binfmt_misc.ko out of it (~8 s, no install)."""
    for package in (f"linux-image-{release}", f"linux-image-{release}-unsigned"):
        subprocess.run(["apt-get", "download", "-q", package], cwd=image, capture_output=True)
        debs = sorted(image.glob("*.deb"))
        if debs:
            break
    else:
        pytest.fail(f"apt-get download linux-image-{release} failed: no binfmt_misc module for the guest")
    dpkg = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(image), "--wildcards", "*/kernel/fs/binfmt_misc.ko*",
                    f"./boot/config-{release}"], stdin=dpkg.stdout, capture_output=True)  # absent names: rc 2
    dpkg.stdout.close()
    dpkg.wait()
    found = sorted(image.glob("lib/modules/*/kernel/fs/binfmt_misc.ko*"))
    config = image / "boot" / f"config-{release}"
    if not found and not (config.exists() and "CONFIG_BINFMT_MISC=y" in config.read_text()):
        pytest.fail(f"{debs[0].name} has no binfmt_misc module and its config does not build it in")
    return found


def python_for_guest(packages: dict[str, list[str]], work: Path) -> dict[str, Path]:
    """The files the wrapper needs to run @packages (path -> args): what host runs of them import,
    plus shared libraries.

    Standard modules keep their host paths (the interpreter finds its prefix from its own path);
    the cerebro package goes to /py with an empty __init__ (cerebro.loaders needs nothing else
    from it but the ELF base it shares with compiler/cbx: elf.py, binread.py), and numpy (the dex
    interpreter's) to /py too.
    """
    stage = work / "py"
    shutil.copytree(Path(binfmt.__file__).parent, stage / "cerebro" / "loaders",
                    ignore=shutil.ignore_patterns("__pycache__", "*.c"))
    (stage / "cerebro" / "__init__.py").write_text("")
    for shared in ("elf.py", "binread.py"):
        shutil.copy(Path(cerebro.__file__).parent / shared, stage / "cerebro" / shared)
    python = Path(os.path.realpath(sys.executable))
    runs = [["pkg", "run", path, "--", *args] for path, args in packages.items()]
    probe = ("import site, sys\nfrom cerebro.loaders.cli import main\n"
             f"assert all(main(argv) == 0 for argv in {runs!r})\n"
             "for m in list(sys.modules.values()):\n"
             "    print(getattr(m, '__file__', None), getattr(m, '__cached__', None), sep='\\n', file=sys.stderr)\n")
    for name in ("numpy", "numpy.libs"):  # numpy alone: other site-packages could shadow the stdlib
        if (Path(numpy.__file__).parent.parent / name).is_dir():
            (stage / name).symlink_to(Path(numpy.__file__).parent.parent / name)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(stage), "PYTHONNOUSERSITE": "1"}
    # -S: no .pth file imports (the probe imports site itself); cwd: not the repo's cerebro/
    got = subprocess.run([str(python), "-S", "-c", probe], capture_output=True, text=True, env=env, cwd=work)
    assert got.returncode == 0, f"host probe run failed: {got.stderr[-2000:]}"
    files = {str(python): python, GUEST_RUNNER: work / "cerebro-pkg-run"}
    (work / "cerebro-pkg-run").write_text(binfmt.wrapper_text(str(python)))
    (work / "cerebro-pkg-run").chmod(0o755)
    binaries = [python]
    for name in got.stderr.splitlines():  # modules and their .pyc files (TCG compiles slowly)
        path = Path(name)
        if name == "None" or not path.is_file():
            continue
        files[guest_path(path, stage)] = path
        if path.suffix == ".so":
            binaries.append(path)
    ldd = subprocess.run(["ldd", *map(str, binaries)], capture_output=True, text=True).stdout
    for lib in set(re.findall(r"(/\S+\.so[.\d]*) \(0x", ldd)):
        files[guest_path(Path(lib), stage)] = Path(lib)
    return files


def guest_path(path: Path, stage: Path) -> str:
    """Where the guest's interpreter finds @path: staged and site-packages files under /py (numpy's
    $ORIGIN-relative libraries keep their layout), everything else at its host path."""
    for root in (stage, *(p for p in path.parents if p.name in ("site-packages", "dist-packages"))):
        if path.is_relative_to(root):
            return "/py/" + str(path.relative_to(root))
    return str(path)


def optional_package(request, fixture: str, key: str | None, dest: Path) -> Path | None:
    """A package from the other loader tests' fixtures, as @dest (mode 755); None if they skip."""
    try:
        value = request.getfixturevalue(fixture)
    except pytest.skip.Exception:
        return None
    shutil.copy(value[key] if key else value, dest)
    dest.chmod(0o755)
    return dest


def build_exes(work: Path) -> dict[str, Path]:
    out = {}
    for name, source in (("hello", HELLO), ("unsupported", UNSUPPORTED)):
        (work / f"{name}.c").write_text(source)
        out[f"{name}.exe"] = work / f"{name}.exe"
        subprocess.run(["x86_64-w64-mingw32-gcc", "-O1", "-o", str(out[f"{name}.exe"]), str(work / f"{name}.c")],
                       check=True)
    out["hello.linux"] = work / "hello.linux"
    subprocess.run(["cc", "-O1", "-o", str(out["hello.linux"]), str(work / "hello.c")], check=True)
    return out


def parse(log: str, rules: list[str], reference: Path, packages: dict[str, Path]) -> BinfmtVm:
    sections = kmod.vm_sections(log)
    text = lambda name: kmod.vm_file(log, name).decode(errors="replace")  # noqa: E731
    checks = {m.group(1): (m.group(2) == "PASS", m.group(3).strip())
              for m in re.finditer(r"^@@CHECK (\S+) (PASS|FAIL)(.*)$", log, re.M)}
    runs = {m.group(1): GuestRun(int(m.group(2)), text(f"{m.group(1)}.out"), text(f"{m.group(1)}.err"))
            for m in re.finditer(r"^@@RC (\S+) (\d+)\b", log, re.M)}
    status = {name[len("status_"):]: text(name) for name in sections if name.startswith("status_")}
    return BinfmtVm(log, rules, checks, runs, status, reference, packages)


@pytest.fixture(scope="module")
def vm(tmp_path_factory, request) -> BinfmtVm:
    if platform.machine() not in ("x86_64", "amd64"):
        pytest.skip(f"the binfmt VM test boots an x86-64 kernel; this host is {platform.machine()}")
    reason = missing_requirement()
    if reason:
        if os.geteuid() == 0:  # scripts/setup.sh installs everything as root: a gap there is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("binfmt_vm")
    release = kmod.find_kernel_release()
    exes = build_exes(work)
    rules = [rule.text() for rule in binfmt.rules(GUEST_PELOAD, GUEST_RUNNER)]
    (work / "rules.txt").write_text("\n".join(rules) + "\n")
    files = {GUEST_PELOAD: native_program("peload", static=True), "/root/rules.txt": work / "rules.txt",
             "/root/hello.exe": exes["hello.exe"], "/root/unsupported.exe": exes["unsupported.exe"]}
    packages = {name: path for name, path in (
        ("hello.deb", optional_package(request, "debian_debs", "hello", work / "hello.deb")),
        ("app.apk", optional_package(request, "built_apk", None, work / "app.apk"))) if path}
    if packages:
        files.update(python_for_guest({str(path): PACKAGE_ARGS[name] for name, path in packages.items()}, work))
        files.update({f"/root/{name}": path for name, path in packages.items()})
    module = binfmt_module(release)
    if module:
        files["/root/binfmt_misc.ko"] = module
    script = kmod.INIT_HEADER + (HERE / "binfmt_guest.sh").read_text() + kmod.INIT_FOOTER
    initrd = kmod.build_initramfs(work / "initrd.cpio", files, script)
    log = kmod.run_in_vm(kmod.kernel_image(release), initrd, timeout=120)
    (work / "serial.log").write_text(log)
    if "@@DONE" not in log:
        pytest.fail("the VM did not finish its script; log tail:\n" + log[-4000:])
    return parse(log, rules, exes["hello.linux"], packages)


def host_reference(vm: BinfmtVm, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "CEREBRO_GREETING": "from the guest"}
    return subprocess.run([str(vm.reference), *args], capture_output=True, text=True, env=env)


def test_rules_registered_as_generated(vm):
    names = [rule.split(":")[1] for rule in vm.rules]
    assert names == list(binfmt.NAMES)
    failed = {k: why for k, (ok, why) in vm.checks.items() if not ok}
    assert not failed, failed
    assert {"mount", "removed", *(f"register_{n}" for n in names)} <= vm.checks.keys()
    assert vm.status["cerebro-exe"] == f"enabled\ninterpreter {GUEST_PELOAD}\nflags: \noffset 0\nmagic 4d5a\n"
    for ext in ("apk", "deb"):
        assert vm.status[f"cerebro-{ext}"] == f"enabled\ninterpreter {GUEST_RUNNER}\nflags: \nextension .{ext}\n"


@pytest.mark.parametrize("run, args", [("hello", ["a", "b c"]), ("via_path", ["one arg"])])
def test_exe_runs_through_the_kernel(vm, run, args):
    ref = host_reference(vm, *args)
    got = vm.runs[run]
    assert ref.stdout.startswith("hello from a PE program") and "CEREBRO_GREETING=from the guest" in ref.stdout
    assert (got.out, got.err, got.rc) == (ref.stdout, ref.stderr, ref.returncode) == (ref.stdout, "", 41 + len(args))


def test_unknown_import_refused_in_guest(vm):
    got = vm.runs["unsupported"]
    assert got.rc == 127 and got.out == ""
    assert got.err == "cerebro-peload: unsupported import KERNEL32.dll!GetComputerNameA\n"


@pytest.mark.parametrize("name, expected", [("hello.deb", "via binfmt\n"), ("app.apk", "Hello from dex\n3628800\n")])
def test_package_runs_through_the_kernel(vm, name, expected):
    """The guest's output equals the host's run of the same wrapper (the reference for both loaders)."""
    if name not in vm.packages:
        pytest.skip(f"{name} was not built here (its loader tests say why)")
    host = subprocess.run([str(binfmt.wrapper_script()), str(vm.packages[name]), *PACKAGE_ARGS[name]],
                          capture_output=True, text=True)
    got = vm.runs[name.split(".")[1]]
    assert (got.out, got.rc) == (host.stdout, host.returncode) == (expected, 0), got.err


def test_static_interpreter_needs_no_dynamic_loader(tmp_path):
    """The guest has no libc: the static peload has no PT_INTERP/DT_NEEDED and runs like the dynamic one."""
    from cerebro.elf import PT_INTERP, ElfFile

    if platform.machine() not in ("x86_64", "amd64") or not shutil.which("x86_64-w64-mingw32-gcc"):
        pytest.skip("needs an x86-64 host and x86_64-w64-mingw32-gcc (gcc-mingw-w64-x86-64)")
    static = native_program("peload", static=True)
    assert static != native_program("peload")
    elf = ElfFile.parse(static.read_bytes())
    assert not any(seg.type == PT_INTERP for seg in elf.segments) and elf.needed() == []
    exe = build_exes(tmp_path)["hello.exe"]
    env = {"PATH": "/usr/bin:/bin", "CEREBRO_GREETING": "static"}
    runs = [subprocess.run([str(loader), str(exe), "x"], capture_output=True, text=True, env=env)
            for loader in (static, native_program("peload"))]
    assert runs[0].stdout == runs[1].stdout and "CEREBRO_GREETING=static" in runs[0].stdout
    assert runs[0].returncode == runs[1].returncode == 42


def test_rules_for_another_root():
    """Interpreter paths for another root change only the interpreter field; the wrapper text is the host's."""
    here, there = binfmt.rules(), binfmt.rules("/opt/peload", "/opt/run")
    for a, b, interpreter in zip(here, there, ["/opt/peload", "/opt/run", "/opt/run"]):
        assert b.text() == a.text().replace(f"::{a.interpreter}:", f"::{interpreter}:")
    assert binfmt.wrapper_script().read_text() == binfmt.wrapper_text()
