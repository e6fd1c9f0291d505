"""One member model for tar and zip contents, and the one safe extractor both use.

Extraction refuses what could escape or subvert the target directory: absolute names,
`..` components, symlinks or hard links pointing outside, device nodes and FIFOs.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from cerebro.loaders.errors import FormatError

FILE, DIR, SYMLINK, HARDLINK, DEVICE, FIFO = "file", "dir", "symlink", "hardlink", "device", "fifo"


@dataclass(frozen=True)
class Member:
    name: str  # normalised relative path, no leading ./ or /
    kind: str
    mode: int
    size: int
    data: bytes | None = None  # contents for FILE members
    linkname: str = ""


def clean_name(raw: str, what: str) -> str:
    """Relative, normalised member name; refuses absolute paths and `..` (path traversal)."""
    name = raw.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    if name.startswith("/"):
        raise FormatError(f"{what}: member {raw!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FormatError(f"{what}: member {raw!r} escapes the target directory (path traversal)")
    if "\0" in name:
        raise FormatError(f"{what}: member name {raw!r} contains NUL")
    return "/".join(parts)


def link_target(member: Member, what: str) -> str:
    """The in-archive path a link points at, refusing links that escape the root."""
    if member.kind == HARDLINK:
        return clean_name(member.linkname, what)
    target = member.linkname
    if target.startswith("/"):
        joined = posixpath.normpath(target.lstrip("/"))  # absolute links resolve inside the private root
    else:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), target))
    if joined == ".." or joined.startswith("../"):
        raise FormatError(f"{what}: symlink {member.name!r} -> {target!r} points outside the target directory")
    return joined


def extract(members: list[Member], dest: str | os.PathLike, what: str) -> list[str]:
    """Write members under dest (created if needed). Returns the names written."""
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for m in members:
        if m.kind in (DEVICE, FIFO):
            raise FormatError(f"{what}: member {m.name!r} is a {m.kind} node; refusing to create it")
        if m.name == "":
            continue
        target = root / m.name
        _check_inside(root, target.parent, m, what)
        if m.kind == DIR:
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, 0o755 | (m.mode & 0o777))
        elif m.kind == FILE:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink():
                target.unlink()
            target.write_bytes(m.data or b"")
            os.chmod(target, m.mode & 0o777)  # never setuid/setgid/sticky
        elif m.kind == SYMLINK:
            link_target(m, what)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            link = m.linkname
            if link.startswith("/"):  # rewrite absolute links relative to the private root
                link = os.path.relpath(root / link.lstrip("/"), target.parent)
            os.symlink(link, target)
        elif m.kind == HARDLINK:
            source = root / link_target(m, what)
            _check_inside(root, source, m, what)
            if not source.is_file():
                raise FormatError(f"{what}: hard link {m.name!r} -> {m.linkname!r} names no extracted file")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            os.chmod(target, source.stat().st_mode & 0o777)
        else:
            raise FormatError(f"{what}: member {m.name!r} has unsupported kind {m.kind!r}")
        written.append(m.name)
    return written


def _check_inside(root: Path, path: Path, m: Member, what: str) -> None:
    """Refuse writing through a symlinked directory that resolves outside root."""
    real = path.resolve()
    if real != root and root not in real.parents:
        raise FormatError(f"{what}: member {m.name!r} would be written outside the target directory")
