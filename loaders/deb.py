"""Debian binary packages: an ar archive of debian-binary, control.tar.* and data.tar.*.

Reads control fields, conffiles, maintainer scripts, md5sums and the file list (never the files'
contents); verifies contents against md5sums and extracts safely, each streaming data.tar again;
runs the package's program from a private root.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path

from cerebro.binread import FormatError
from cerebro.loaders import limits
from cerebro.loaders.ar import ArMember, Source, read_ar
from cerebro.loaders.archive import FILE, HARDLINK, SYMLINK, Extraction, Member
from cerebro.loaders.tar import compression_of, file_digests, iter_tar, read_tar

SCRIPTS = ("preinst", "postinst", "prerm", "postrm", "config")
PROGRAM_DIRS = ("usr/bin", "bin", "usr/sbin", "sbin", "usr/games")
LIBRARY_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib", "lib")


@dataclass
class DebPackage:
    format_version: str
    control: dict[str, str]
    control_members: list[Member]
    data_members: list[Member]  # without contents
    data_compression: str
    data_tar: ArMember  # streamed again by extract/run
    conffiles: list[str] = field(default_factory=list)
    scripts: dict[str, str] = field(default_factory=dict)
    md5sums: dict[str, str] = field(default_factory=dict)

    run_options = ("program", "scripts", "timeout")

    @property
    def name(self) -> str:
        return self.control.get("Package", "")

    def files(self) -> list[str]:
        return [m.name for m in self.data_members if m.name]

    def info(self) -> dict:
        return {"format": "deb", "package": self.name, "version": self.control.get("Version", ""),
                "architecture": self.control.get("Architecture", ""), "control": self.control,
                "conffiles": self.conffiles, "maintainer_scripts": sorted(self.scripts),
                "data_compression": self.data_compression or "none", "files": self.files()}

    def verify(self) -> list[str]:
        """Problems found checking data against md5sums (empty list: verified)."""
        digests = file_digests(self.data_tar.name, self.data_tar.pieces())  # files and hard links to them
        problems = []
        if not self.md5sums:
            problems.append("package has no md5sums file")
        for path, digest in self.md5sums.items():
            found = digests.get(path)
            if found is None:
                problems.append(f"{path}: listed in md5sums but missing from data")
            elif found != digest.lower():
                problems.append(f"{path}: md5sum mismatch")
        return problems

    def extract(self, dest: str | os.PathLike, with_control: bool = True) -> list[str]:
        """Data under dest; control files under dest/DEBIAN (as dpkg-deb -R lays them out). All or
        nothing (docs/loaders.md, "Extraction"). Returns the data names written."""
        what = f"deb {self.name!r}"
        with Extraction(dest, what) as out, closing(iter_tar(self.data_tar.name, self.data_tar.pieces())) as data:
            for member, contents in data:  # closing: a refusal stops the decompressor (and zstd) at once
                out.add(member, contents)
            names = list(out.written)
            if with_control:
                for member in self.control_members:
                    out.add(_under("DEBIAN", member), (member.data or b"",))
        return names

    def programs(self) -> list[str]:
        return [m.name for m in self.data_members
                if m.kind in (FILE, SYMLINK) and m.name.rsplit("/", 1)[0] in PROGRAM_DIRS]

    def default_program(self) -> str:
        progs = self.programs()
        by_name = [p for p in progs if p.rsplit("/", 1)[-1] == self.name]
        if by_name:
            return by_name[0]
        if len(progs) == 1:
            return progs[0]
        raise FormatError(f"deb {self.name!r}: cannot choose a program among {progs or 'none'}; pass --program")

    def run(self, args: list[str], program: str | None = None, scripts: bool = False,
            timeout: float | None = None) -> subprocess.CompletedProcess:
        """Extract into a private root and run a program from it (maintainer scripts only if asked)."""
        with tempfile.TemporaryDirectory(prefix="cerebro-deb-") as tmp:
            root = Path(tmp) / "root"
            self.extract(root)
            env = dict(os.environ, DPKG_ROOT=str(root), DPKG_MAINTSCRIPT_PACKAGE=self.name)
            env["PATH"] = os.pathsep.join([str(root / d) for d in PROGRAM_DIRS] + [env.get("PATH", "")])
            libs = [str(root / d) for d in LIBRARY_DIRS if (root / d).is_dir()]
            if libs:
                env["LD_LIBRARY_PATH"] = os.pathsep.join(libs + [env.get("LD_LIBRARY_PATH", "")])
            if scripts:
                for name, argv in (("preinst", ["install"]), ("postinst", ["configure"])):
                    script = root / "DEBIAN" / name
                    if script.is_file():
                        script.chmod(0o755)
                        subprocess.run([str(script), *argv], cwd=root, env=env, check=True, timeout=timeout)
            chosen = program or self.default_program()
            path = root / chosen.lstrip("/")
            if not path.is_file():
                path = next((root / d / chosen for d in PROGRAM_DIRS if (root / d / chosen).is_file()), path)
            if not path.is_file():
                raise FormatError(f"deb {self.name!r}: program {chosen!r} is not in the package")
            return subprocess.run([str(path), *args], cwd=root, env=env, timeout=timeout)


def _lines(data: bytes, what: str) -> Iterator[tuple[int, str]]:
    """(number, text) of each line, decoded one at a time (no list of them all); at most MAX_ENTRIES."""
    for lineno, raw in enumerate(io.BytesIO(data), 1):
        if lineno > limits.MAX_ENTRIES:
            raise FormatError(f"{what}: more than {limits.MAX_ENTRIES} lines")
        yield lineno, raw.rstrip(b"\r\n").decode("utf-8", "replace")


def parse_control(data: bytes) -> dict[str, str]:
    """deb822 fields of one paragraph; continuation lines are joined with newlines."""
    fields: dict[str, list[str]] = {}  # lines joined once at the end: += per line would be quadratic
    key = None
    for lineno, line in _lines(data, "deb control"):
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t":
            if key is None:
                raise FormatError(f"deb control: line {lineno} continues no field")
            fields[key].append(line.strip())
            continue
        if ":" not in line:
            raise FormatError(f"deb control: line {lineno} is not 'Field: value': {line[:60]!r}")
        key, value = line.split(":", 1)
        key = key.strip()
        fields[key] = [value.strip()]
    if "Package" not in fields:
        raise FormatError("deb control: no Package field")
    return {name: "\n".join(lines) for name, lines in fields.items()}


def parse_md5sums(data: bytes) -> dict[str, str]:
    out = {}
    for lineno, line in _lines(data, "deb md5sums"):
        if not line.strip():
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 32:
            raise FormatError(f"deb md5sums: line {lineno} is malformed: {line[:60]!r}")
        out[parts[1].strip().removeprefix("./").lstrip("/")] = parts[0]
    return out


def _under(folder: str, m: Member) -> Member:
    """A control member moved under DEBIAN/ (hard links inside the control archive too)."""
    linkname = f"{folder}/{m.linkname}" if m.kind == HARDLINK else m.linkname
    return replace(m, name=f"{folder}/{m.name}".rstrip("/"), linkname=linkname)


def read_deb(data: bytes | str | os.PathLike | Source) -> DebPackage:
    """A .deb from bytes, or from a file (read in pieces: never held whole)."""
    members = read_ar(data)
    if not members or members[0].name != "debian-binary":
        raise FormatError("deb: first member is not debian-binary")
    head = members[0]
    version = head.source.read(head.offset, min(head.size, 64)).decode("ascii", "replace").strip()
    if not version.startswith("2."):
        raise FormatError(f"deb: unsupported format version {version!r}")
    control = next((m for m in members if m.name.startswith("control.tar")), None)
    data_ = next((m for m in members if m.name.startswith("data.tar")), None)
    if control is None or data_ is None:
        raise FormatError("deb: missing control.tar.* or data.tar.* member")
    control_members = read_tar(control.name, control.pieces(), limits.MAX_CONTROL, keep_data=True)
    data_members = read_tar(data_.name, data_.pieces())
    files = {m.name: m for m in control_members if m.kind == FILE}
    if "control" not in files:
        raise FormatError("deb: control archive has no control file")

    def raw(name: str) -> bytes:
        return (files[name].data or b"") if name in files else b""

    return DebPackage(
        format_version=version,
        control=parse_control(raw("control")),
        control_members=control_members,
        data_members=data_members,
        data_compression=compression_of(data_.name, data_.source.read(data_.offset, 8)).lstrip("."),
        data_tar=data_,
        conffiles=[line.strip() for _, line in _lines(raw("conffiles"), "deb conffiles") if line.strip()],
        scripts={name: raw(name).decode("utf-8", "replace") for name in SCRIPTS if name in files},
        md5sums=parse_md5sums(raw("md5sums")),
    )
