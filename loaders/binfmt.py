"""Kernel hand-off: binfmt_misc rules so `./hello.exe`, `./app.apk` and `./pkg.deb` run directly.

.exe is matched by its MZ magic and handed to the native PE loader (cerebro-peload: with no
Python pre-check on this path, it checks every header, section and directory rule itself, refuses
in one line and reports a fault in the program in one line); .apk and .deb are matched by
extension (their magic, zip and ar, is far too general) and handed to a small wrapper script
that runs `cerebroc pkg run FILE -- ARGS`. The kernel calls an interpreter as
`interpreter FILE ARGS...`, which is exactly both programs' command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cerebro.binread import FormatError
from cerebro.loaders.native_build import cache_dir, native_program

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
NAMES = ("cerebro-exe", "cerebro-apk", "cerebro-deb")


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str  # "M" (magic) or "E" (extension)
    offset: str
    match: bytes
    interpreter: str
    flags: str = ""

    def text(self) -> str:
        """The line written to /proc/sys/fs/binfmt_misc/register."""
        match = "".join(f"\\x{b:02x}" for b in self.match) if self.kind == "M" else self.match.decode()
        for part in (self.name, self.interpreter, match):
            if ":" in part or "\n" in part:
                raise FormatError(f"binfmt: ':' or newline in rule field {part!r}")
        return f":{self.name}:{self.kind}:{self.offset}:{match}::{self.interpreter}:{self.flags}"


def wrapper_text(python: str = sys.executable) -> str:
    """The wrapper's source for the interpreter @python (another path when installing elsewhere)."""
    return (f"#!{python}\n"
            "import sys\n"
            "from cerebro.loaders.cli import main\n"
            "sys.exit(main(['pkg', 'run', sys.argv[1], '--', *sys.argv[2:]]))\n")


def wrapper_script() -> Path:
    """A tiny interpreter for extension-matched packages: runs `cerebroc pkg run FILE -- ARGS`."""
    path = cache_dir() / "cerebro-pkg-run"
    text = wrapper_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, path)
    return path


def rules(exe_interpreter: str | None = None, package_interpreter: str | None = None) -> list[Rule]:
    """The three rules; the interpreter paths default to this machine's (built on demand).

    Other paths give the same rules for another root, e.g. a VM's initramfs with a static peload.
    """
    exe, apk, deb = NAMES
    exe_interpreter = exe_interpreter or str(native_program("peload"))
    runner = package_interpreter or str(wrapper_script())
    return [Rule(exe, "M", "0", b"MZ", exe_interpreter), Rule(apk, "E", "", b"apk", runner),
            Rule(deb, "E", "", b"deb", runner)]


def ensure_mounted() -> None:
    if (BINFMT_DIR / "register").exists():
        return
    subprocess.run(["modprobe", "binfmt_misc"], capture_output=True)
    proc = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], capture_output=True,
                          text=True)
    if proc.returncode != 0 or not (BINFMT_DIR / "register").exists():
        raise FormatError(f"binfmt: cannot mount binfmt_misc at {BINFMT_DIR} "
                          f"({proc.stderr.strip() or 'not permitted'}); run as root on a kernel with binfmt_misc")


def install(dry_run: bool = False) -> list[str]:
    """Registers every rule (replacing older cerebro rules); returns the rule lines."""
    lines = [r.text() for r in rules()]
    if dry_run:
        return lines
    ensure_mounted()
    uninstall()
    for line in lines:
        try:
            (BINFMT_DIR / "register").write_text(line)
        except OSError as e:
            raise FormatError(f"binfmt: registering {line.split(':')[1]} failed: {e.strerror}") from None
    return lines


def uninstall(dry_run: bool = False) -> list[str]:
    """Removes the cerebro rules that are registered; returns what was (or would be) removed."""
    removed = []
    for name in NAMES:
        entry = BINFMT_DIR / name
        if entry.exists():
            if not dry_run:
                entry.write_text("-1")
            removed.append(f"{'would remove' if dry_run else 'removed'} {entry}")
    return removed


def show(dry_run: bool = False) -> list[str]:
    """The registered cerebro rules as the kernel reports them."""
    out = []
    for name in NAMES:
        entry = BINFMT_DIR / name
        status = entry.read_text().split("\n")[0] if entry.exists() else "not registered"
        out.append(f"{name}: {status}")
    return out
