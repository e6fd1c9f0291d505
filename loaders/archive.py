"""One member model for tar and zip contents, and the one safe extractor both use.

Extraction is all or nothing and never leaves the target: members are written into a private
directory next to it (mode 0700 until the end), every path opened component by component relative
to its parent with O_NOFOLLOW, so nothing is ever written, linked or chmod-ed through a symlink;
links are judged by what they resolve to on disk once everything is written; then the directory
modes are applied and the directory is renamed into place. A refusal removes everything.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cerebro.binread import FormatError

FILE, DIR, SYMLINK, HARDLINK, DEVICE, FIFO = "file", "dir", "symlink", "hardlink", "device", "fifo"

FILE_MODE_BITS = 0o777  # setuid, setgid and sticky are never set on files
DIR_MODE_BITS = 0o1777  # directories keep the sticky bit (as /tmp-like dirs need), never setuid/setgid
IMPLICIT_DIR_MODE = 0o755  # a parent the archive does not list
MAX_FOLLOWS = 40  # the kernel's symlink limit (ELOOP): a longer chain resolves nowhere
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CREATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # normalised relative path, no leading ./ or /
    kind: str
    mode: int
    size: int
    data: bytes | None = None  # contents, where held in memory (zip members, control files)
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
    """The in-archive path a link points at, read as text; refuses links that leave the root that way.
    (Links that leave it through other links are caught on disk, by Extraction.)"""
    if member.kind == HARDLINK:
        return clean_name(member.linkname, what)
    target = member.linkname
    if "\0" in target:
        raise FormatError(f"{what}: symlink {member.name!r} has a NUL in its target")
    if target.startswith("/"):
        joined = posixpath.normpath(target.lstrip("/"))  # absolute links resolve inside the private root
    else:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), target))
    if joined == ".." or joined.startswith("../"):
        raise FormatError(f"{what}: symlink {member.name!r} -> {target!r} points outside the target directory")
    return joined


class Extraction:
    """Members written under dest, all or nothing: `with Extraction(dest, what) as x: x.add(member, body)`.

    dest must not exist or be an empty directory. Contents come as an iterable of byte pieces, so an
    archive is streamed to disk, never held in memory. Ownership is never applied (everything belongs
    to the user extracting, root included), nor setuid/setgid bits.
    """

    def __init__(self, dest: str | os.PathLike, what: str) -> None:
        self.what = what
        self.dest = Path(dest).resolve()  # links in the caller's own path are the caller's business
        self.final_root_mode = _free_target(self.dest, what)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=f".{self.dest.name}.", suffix=".part", dir=self.dest.parent)
        self.root_fd = os.open(self.tmp, OPEN_DIR)
        self.dir_modes: dict[str, int] = {}  # every directory made, by name: its final mode
        self.links: list[str] = []
        self.written: list[str] = []
        self.last_parent: tuple[str, int] | None = None  # members come grouped by directory: reuse its fd

    def __enter__(self) -> Extraction:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()

    def add(self, member: Member, body: Iterable[bytes] = ()) -> None:
        """Write one member (body: its contents, for files)."""
        write = self.WRITERS.get(member.kind)
        if write is None:
            raise FormatError(f"{self.what}: member {member.name!r} is a {member.kind} node; refusing to create it")
        if not member.name:
            return  # the root itself ("./")
        *parents, leaf = member.name.split("/")
        try:
            write(self, self._parent(parents, member), leaf, member, body)
        except OSError as e:  # e.g. a name too long for the file system, or the disk full
            raise FormatError(f"{self.what}: member {member.name!r}: cannot create it ({e.strerror})") from None
        self.written.append(member.name)

    def commit(self) -> None:
        """Check every link on disk, rename into place, then apply directory modes (deepest first)."""
        self._forget_parent()
        for name in self.links:
            if not self._link_stays_inside(name):
                raise FormatError(f"{self.what}: symlink {name!r} -> {self._readlink(name)!r} points outside "
                                  f"the target directory (through other links)")
        os.rename(self.tmp, self.dest)
        self.tmp = None
        for name, mode in sorted(self.dir_modes.items(), key=lambda item: -item[0].count("/")):
            fd = self._open_dir(name.split("/"), None, create=False)
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
        os.fchmod(self.root_fd, self.final_root_mode)
        os.close(self.root_fd)

    def abort(self) -> None:
        self._forget_parent()
        os.close(self.root_fd)
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- one writer per member kind; `parent` is an fd of the (real, no-link) parent directory --

    def _dir(self, parent: int, leaf: str, m: Member, body: Iterable[bytes]) -> None:
        if not self._clear(parent, leaf, m, keep_dir=True):
            os.mkdir(leaf, 0o700, dir_fd=parent)
        self.dir_modes[m.name] = m.mode & DIR_MODE_BITS

    def _file(self, parent: int, leaf: str, m: Member, body: Iterable[bytes]) -> None:
        self._clear(parent, leaf, m)
        with open(os.open(leaf, CREATE_FILE, 0o600, dir_fd=parent), "wb") as out:
            for piece in body:
                out.write(piece)
            os.fchmod(out.fileno(), m.mode & FILE_MODE_BITS)

    def _symlink(self, parent: int, leaf: str, m: Member, body: Iterable[bytes]) -> None:
        link_target(m, self.what)
        target = m.linkname
        if target.startswith("/"):  # rewrite absolute links relative to the private root
            target = posixpath.relpath("/" + target.lstrip("/"), "/" + posixpath.dirname(m.name))
        self._clear(parent, leaf, m)
        os.symlink(target, leaf, dir_fd=parent)
        self.links.append(m.name)

    def _hardlink(self, parent: int, leaf: str, m: Member, body: Iterable[bytes]) -> None:
        source = link_target(m, self.what)
        *source_dirs, source_leaf = source.split("/")
        missing = FormatError(f"{self.what}: hard link {m.name!r} -> {m.linkname!r} names no extracted file")
        if source == m.name:
            raise missing
        try:
            source_parent = self._open_dir(source_dirs, m, create=False)
        except FileNotFoundError:
            raise missing from None
        try:
            st = _lstat(source_leaf, source_parent)
            if st is None or not stat.S_ISREG(st.st_mode):
                raise missing
            self._clear(parent, leaf, m)
            os.link(source_leaf, leaf, src_dir_fd=source_parent, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(source_parent)

    WRITERS = {DIR: _dir, FILE: _file, SYMLINK: _symlink, HARDLINK: _hardlink}

    # -- paths, resolved against what is on disk --

    def _parent(self, parts: list[str], m: Member) -> int:
        """The fd of a member's parent directory, kept for the next member. Safe to reuse: a directory,
        once made, is never removed or replaced during the extraction."""
        name = "/".join(parts)
        if self.last_parent is None or self.last_parent[0] != name:
            fd = self._open_dir(parts, m, create=True)
            self._forget_parent()
            self.last_parent = (name, fd)
        return self.last_parent[1]

    def _forget_parent(self) -> None:
        if self.last_parent is not None:
            os.close(self.last_parent[1])
            self.last_parent = None

    def _open_dir(self, parts: list[str], m: Member | None, create: bool) -> int:
        """An fd of root/parts, each component opened relative to the last with O_NOFOLLOW (made if asked)."""
        fd = os.open(".", OPEN_DIR, dir_fd=self.root_fd)
        try:
            for depth, part in enumerate(parts, 1):
                try:
                    child = os.open(part, OPEN_DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o700, dir_fd=fd)
                    self.dir_modes.setdefault("/".join(parts[:depth]), IMPLICIT_DIR_MODE)
                    child = os.open(part, OPEN_DIR, dir_fd=fd)
                except OSError:  # ELOOP/ENOTDIR: a symlink or a file where a directory should be
                    st = _lstat(part, fd)
                    what = "a symlink" if st is not None and stat.S_ISLNK(st.st_mode) else "not a directory"
                    name = m.name if m is not None else "/".join(parts)
                    raise FormatError(f"{self.what}: member {name!r}: {'/'.join(parts[:depth])!r} is {what}; "
                                      f"refusing to write through it") from None
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _clear(self, parent: int, leaf: str, m: Member, keep_dir: bool = False) -> bool:
        """Unlink what is at leaf (never following it), as a later tar member replaces an earlier one.
        True when a directory is there and keep_dir asks to keep it; a directory is never replaced."""
        st = _lstat(leaf, parent)
        if st is None:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            raise FormatError(f"{self.what}: member {m.name!r} would replace a directory")
        os.unlink(leaf, dir_fd=parent)
        return False

    def _readlink(self, name: str) -> str:
        return os.readlink(name, dir_fd=self.root_fd)

    def _link_stays_inside(self, name: str) -> bool:
        """Resolve the link at name as the kernel would, following the links it meets, with the root
        as the top: False as soon as `..` would leave it. Missing components are taken as text."""
        st = _lstat(name, self.root_fd)
        if st is None or not stat.S_ISLNK(st.st_mode):
            return True  # replaced by a later member
        where = name.split("/")[:-1]  # real directories: every component was opened with O_NOFOLLOW
        todo = list(reversed(self._readlink(name).split("/")))
        follows = 1
        while todo:
            part = todo.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not where:
                    return False
                where.pop()
                continue
            path = "/".join([*where, part])
            st = _lstat(path, self.root_fd)
            if st is None or not stat.S_ISLNK(st.st_mode):
                where.append(part)
                continue
            follows += 1
            if follows > MAX_FOLLOWS:
                return True  # resolves nowhere (ELOOP), so nowhere outside either
            target = self._readlink(path)
            if target.startswith("/"):
                return False
            todo.extend(reversed(target.split("/")))
        return True


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _free_target(dest: Path, what: str) -> int:
    """The mode the extracted root gets; refuses a dest that exists and is not an empty directory."""
    if dest.is_dir():
        if any(dest.iterdir()):
            raise FormatError(f"{what}: {dest} exists and is not empty; extract into a new or empty directory")
        return stat.S_IMODE(dest.stat().st_mode)
    if dest.exists() or dest.is_symlink():
        raise FormatError(f"{what}: {dest} exists and is not a directory")
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def extract(members: Iterable[Member], dest: str | os.PathLike, what: str) -> list[str]:
    """Write in-memory members (zip) under dest, all or nothing. Returns the names written."""
    with Extraction(dest, what) as out:
        for m in members:
            out.add(m, (m.data or b"",) if m.kind == FILE else ())
    return out.written
