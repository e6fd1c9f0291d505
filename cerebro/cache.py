"""Cerebro's cache directory, and the persistent compile cache kept in it.

A compiled model is stored as its .cbx bytes under a key that is the SHA-256 of everything the bytes
depend on: the model as the frontend hands it over (an IR graph: ops, attributes, shapes, dtypes, names,
source locations and the constants' bytes; or, from JAX, the jaxpr with the same facts, hashed before
lowering so a hit skips the lowering), the resolved target (triple, CPU, features), the build options
and the compiler itself (version plus a hash of its and the frontends' source files, so an edited
compiler never serves old code). An entry is trusted only after its .cbx content hash checks out;
anything else is deleted and rebuilt. Entries are written atomically (temporary file, then rename) and
the directory is kept under a size bound by dropping the least recently used entries. A compile stored
here also keeps its optimised kernels in kernels/ for any later model (compiler/kernel_cache.py).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cerebro.compiler.cbx.writer import Sealed

ENTRY_SUFFIX = ".cbx"
DEFAULT_MAX_BYTES = 2 << 30
_OFF = frozenset({"0", "false", "no", "off"})


def cache_root() -> Path:
    """Where Cerebro caches things (kernel images, native helpers, compiled models):
    $CEREBRO_CACHE, else $XDG_CACHE_HOME/cerebro, else ~/.cache/cerebro."""
    explicit = os.environ.get("CEREBRO_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cerebro"


def compile_cache_dir() -> Path:
    """$CEREBRO_CACHE_DIR, else <cache root>/compile."""
    return Path(os.environ.get("CEREBRO_CACHE_DIR") or cache_root() / "compile")


def compile_cache_enabled() -> bool:
    """Off when $CEREBRO_COMPILE_CACHE is 0, false, no or off."""
    return os.environ.get("CEREBRO_COMPILE_CACHE", "1").strip().lower() not in _OFF


def compile_cache_max_bytes() -> int:
    """$CEREBRO_CACHE_MAX_BYTES, else 2 GiB."""
    text = os.environ.get("CEREBRO_CACHE_MAX_BYTES")
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"CEREBRO_CACHE_MAX_BYTES={text!r}: expected a number of bytes") from None
    if value < 0:
        raise ValueError(f"CEREBRO_CACHE_MAX_BYTES={text!r}: must not be negative")
    return value


@functools.cache
def compiler_fingerprint() -> str:
    """Cerebro's version, LLVM's, and a hash of every compiler and frontend source file (a key made
    before lowering, from a frontend's own form of the model, depends on the frontend's rules too)."""
    import llvmlite
    import llvmlite.binding as llvm

    import cerebro
    import cerebro.compiler
    import cerebro.frontends

    digest = hashlib.sha256(f"{cerebro.__version__}|{llvmlite.__version__}|{llvm.llvm_version_info}".encode())
    for package in (cerebro.compiler, cerebro.frontends):
        root = Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{package.__name__}/{path.relative_to(root).as_posix()}".encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def build_key(source: str, target: Any, options: dict[str, Any]) -> str:
    """The cache key of compiling source (a digest of the model, tagged with its form: "ir:...",
    "jaxpr:...") for target (a resolved Target) with options."""
    digest = hashlib.sha256()
    for part in (compiler_fingerprint(), repr(dataclasses.astuple(target)), repr(sorted(options.items())), source):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def graph_source(graph: Any) -> str:
    """The source digest of an IR graph (compiler.ir.Graph): its text, then the constants' bytes."""
    import numpy as np

    from cerebro.compiler.ir import format_graph

    digest = hashlib.sha256(format_graph(graph).encode() + b"\0")
    for constant in _constants(graph):  # the text has their types; the bytes come straight from the buffers
        digest.update(np.ascontiguousarray(constant.data).reshape(-1).view(np.uint8))
    return "ir:" + digest.hexdigest()


def _constants(graph: Any) -> Iterator[Any]:
    """graph's constants, then those of the graphs its nodes hold (a loop's body and condition)."""
    yield from graph.constants()
    for node in graph.nodes:
        for attr in node.attrs.values():
            if isinstance(attr, type(graph)):
                yield from _constants(attr)


def graph_key(graph: Any, target: Any, options: dict[str, Any]) -> str:
    """The cache key of building graph (a compiler.ir.Graph) for target (a resolved Target) with options."""
    return build_key(graph_source(graph), target, options)


def mark_used(path: Path) -> None:
    """A cache entry just served: its mtime says so, and evict_least_recent drops it last."""
    try:
        os.utime(path)
    except OSError:  # a read-only cache still serves
        pass


def lru_entries(directory: Path, suffix: str) -> list[tuple[float, int, Path]]:
    """(mtime, size, path) of each entry (a file ending in suffix; '.' files are temporary) of a cache
    directory, least recently used first."""
    found = []
    for path in directory.glob("*" + suffix):
        if path.name.startswith("."):
            continue
        try:
            stat = path.stat()
        except OSError:  # removed meanwhile by another process
            continue
        found.append((stat.st_mtime, stat.st_size, path))
    return sorted(found)


def evict_least_recent(directory: Path, suffix: str, max_bytes: int) -> None:
    """Delete a cache directory's least recently used entries until the rest fit in max_bytes."""
    entries = lru_entries(directory, suffix)
    total = sum(size for _, size, _ in entries)
    for _, size, path in entries:
        if total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size


@dataclasses.dataclass(frozen=True)
class CacheInfo:
    directory: Path
    entries: int
    bytes: int
    max_bytes: int


class CompileCache:
    """A directory of <key>.cbx files, bounded to max_bytes by least recent use (file mtime)."""

    def __init__(self, directory: str | os.PathLike | None = None, max_bytes: int | None = None) -> None:
        self.directory = Path(directory) if directory is not None else compile_cache_dir()
        self.max_bytes = compile_cache_max_bytes() if max_bytes is None else max_bytes

    def path(self, key: str) -> Path:
        return self.directory / (key + ENTRY_SUFFIX)

    def get(self, key: str) -> bytes | None:
        """The entry's bytes if present and intact; a damaged entry is deleted (with a warning)."""
        from cerebro.compiler.cbx.reader import read_cbx

        path = self.path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        try:
            read_cbx(data)
        except Exception as error:  # whatever is wrong with it, it must not be loaded
            print(f"cerebro: compile cache entry {path.name} is damaged ({error}); rebuilding it", file=sys.stderr)
            path.unlink(missing_ok=True)
            return None
        mark_used(path)
        return data

    def put(self, key: str, data: bytes | Sealed) -> None:
        """Store data (a .cbx's bytes or pieces) under key atomically, then drop old entries beyond the size
        bound."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=ENTRY_SUFFIX, dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as file:
                if isinstance(data, bytes):
                    file.write(data)
                else:
                    data.write_to(file)
            os.replace(temp, self.path(key))
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self.evict()

    def evict(self) -> None:
        evict_least_recent(self.directory, ENTRY_SUFFIX, self.max_bytes)

    def info(self) -> CacheInfo:
        entries = lru_entries(self.directory, ENTRY_SUFFIX) if self.directory.is_dir() else []
        return CacheInfo(self.directory, len(entries), sum(size for _, size, _ in entries), self.max_bytes)

    def clear(self) -> int:
        """Delete every entry (and leftover temporary files); returns how many entries went."""
        if not self.directory.is_dir():
            return 0
        removed = 0
        for path in self.directory.glob("*" + ENTRY_SUFFIX):
            removed += not path.name.startswith(".")
            path.unlink(missing_ok=True)
        shutil.rmtree(self.directory / "kernels", ignore_errors=True)  # compiler/kernel_cache.py
        return removed


def cached_build(graph: Any, target: Any = "host", *, name: str | None = None, stage_flops: int | None = None,
                 cache: bool | None = None, quantize: str | None = None) -> bytes:
    """compiler.build(graph, target, name, stage_flops, quantize=...), from the compile cache when it can be.

    cache: None follows $CEREBRO_COMPILE_CACHE; False always compiles.
    """
    return bytes(cached_lower(lambda: graph_source(graph), lambda: graph, target, name=name,
                              stage_flops=stage_flops, cache=cache, quantize=quantize))


def cached_lower(source: Callable[[], str], lower: Callable[[], Any], target: Any = "host", *,
                 name: str | None = None, stage_flops: int | None = None, cache: bool | None = None,
                 quantize: str | None = None) -> Sealed:
    """build_sealed(lower(), ...) keyed by source(), a digest of everything lower() makes its graph from (see
    build_key): a frontend keys its own form of the model (a jaxpr) and a hit never lowers it.
    Each is called at most once; with the cache off, source() is not called. The .cbx comes as the file's
    pieces (Sealed.write_to; bytes(sealed) joins them).
    """
    from cerebro.compiler import kernel_cache
    from cerebro.compiler.cbx.writer import Sealed
    from cerebro.compiler.driver import STAGE_FLOPS, build_sealed
    from cerebro.compiler.targets import resolve_target

    stage_flops = STAGE_FLOPS if stage_flops is None else stage_flops
    if not (compile_cache_enabled() if cache is None else cache):
        return build_sealed(lower(), target, name, stage_flops, quantize=quantize)
    resolved = resolve_target(target)
    key = build_key(source(), resolved, {"name": name, "stage_flops": stage_flops, "quantize": quantize})
    store = CompileCache()
    data = store.get(key)
    if data is not None:
        return Sealed((data,))
    with kernel_cache.using(store.directory / "kernels"):  # kernels optimised once, by any model
        sealed = build_sealed(lower(), resolved, name, stage_flops, quantize=quantize)
    try:
        store.put(key, sealed)
    except OSError as error:  # a cache that cannot be written must not fail the compile
        print(f"cerebro: cannot write the compile cache in {store.directory}: {error}", file=sys.stderr)
    return sealed
