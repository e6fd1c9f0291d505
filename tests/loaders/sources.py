"""Third-party C programs the PE tests build from source (issue 18 item 3): the sources come from
PyPI sdists that vendor them (lupa: Lua 5.4; Brotli: the brotli C library and its command-line
tool), downloaded once at a pinned version and checked against a pinned sha256; what is built from
them is cached by a hash of the sources and the build command, so only the first run compiles. Also
the MinGW flags for a Universal CRT build."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from loader_support import CACHE

MINGW = "x86_64-w64-mingw32-gcc"


@dataclass(frozen=True)
class Sdist:
    project: str
    version: str
    sha256: str
    tree: str  # the folder inside the archive that holds the C sources
    path: str  # where files.pythonhosted.org keeps the file (PyPI's simple index links it)

    @property
    def filename(self) -> str:
        return f"{self.project}-{self.version}.tar.gz"

    @property
    def url(self) -> str:
        return f"https://files.pythonhosted.org/packages/{self.path}/{self.filename}"


SDISTS = {
    "lua": Sdist("lupa", "2.2", sha256="665a006bcf8d9aacdfdb953824b929d06a0c55910a662b59be2f157ab4c8924d",
                 tree="third-party/lua54", path="b6/13/3a0d2c231ae39bced22f14ded420915be1b88f030bfd2388900d89a74a4b"),
    "brotli": Sdist("Brotli", "1.1.0", sha256="81de08ac11bcb85841e440c13611c00b67d3bf82698314928d0b676362546724",
                    tree="c", path="2f/c2/f9e977608bdf958650638c3f1e28f85a1b075f075ebbe77db8555463787b"),
}


def _download(sdist: Sdist) -> Path:
    """The archive, fetched once; a wrong sha256 fails the test, an unreachable network skips it."""
    path = CACHE / "sdists" / sdist.filename
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(sdist.url, timeout=60) as response:
                data = response.read()
        except urllib.error.HTTPError:
            raise  # the server answered: the pinned file is gone, a failure to see, not a skip
        except (urllib.error.URLError, OSError) as exc:
            pytest.skip(f"cannot download {sdist.url} (network unreachable?): {exc}")
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == sdist.sha256, f"{path}: sha256 {digest}, pinned {sdist.sha256}"
    return path


def source_tree(name: str) -> Path:
    """The C sources of SDISTS[name], extracted once (only their folder) next to the archive."""
    sdist = SDISTS[name]
    top = f"{sdist.project}-{sdist.version}"
    tree = CACHE / "sdists" / top / sdist.tree
    if not tree.is_dir():
        archive = _download(sdist)
        tmp = CACHE / "sdists" / f"{top}.{os.getpid()}.tmp"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(f"{top}/{sdist.tree}/")]
            tar.extractall(tmp, members=members, filter="data")
        tree.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp / top / sdist.tree, tree)
        except OSError:
            assert tree.is_dir(), f"extracting {archive} failed"  # else another run put it there first
        shutil.rmtree(tmp, ignore_errors=True)
    return tree


def cached_build(name: str, command: list[str], cwd: Path, output: str) -> Path:
    """Runs `command` in cwd, "{out}" in it standing for the file it writes, once per distinct
    sources + command + compiler; the result is kept as CACHE/programs/<name>-<hash>-<output>."""
    sdist = SDISTS[name]
    compiler = subprocess.run([command[0], "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    key = hashlib.sha256("\0".join([sdist.sha256, compiler, *command]).encode()).hexdigest()[:16]
    target = CACHE / "programs" / f"{name}-{key}-{output}"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        proc = subprocess.run([str(tmp) if arg == "{out}" else arg for arg in command], cwd=cwd,
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}"
        os.replace(tmp, target)  # atomic: a concurrent run never sees half a program
    return target


def ucrt_flags(compiler: str = MINGW) -> list[str] | None:
    """MinGW flags for a UCRT build: its headers' UCRT mode and a specs file linking -lucrt where
    the default links -lmsvcrt (GCC 12 has no -mcrtdll); None when the toolchain has no libucrt.a."""
    if not os.path.isabs(subprocess.run([compiler, "-print-file-name=libucrt.a"], capture_output=True,
                                        text=True).stdout.strip()):
        return None
    specs = subprocess.run([compiler, "-dumpspecs"], capture_output=True, text=True, check=True).stdout
    assert "-lmsvcrt" in specs
    path = CACHE / "programs" / f"ucrt-{hashlib.sha256(specs.encode()).hexdigest()[:16]}.specs"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(specs.replace("-lmsvcrt", "-lucrt"))
        os.replace(tmp, path)
    return [f"-specs={path}", "-D_UCRT", "-D__MSVCRT_VERSION__=0xE00"]
