"""A per-machine cache of optimised kernels: each node function's LLVM bitcode after its pipeline, keyed
by the exact text LLVM optimised (the kernel alone in a module of its own, under a fixed name), the
pipeline, the target machine and the LLVM version. A kernel optimised once, by any model, is not
optimised again: what XLA gets from its precompiled Eigen kernels. Machine code is still made for the
whole module (the .cbx writer takes one object).

It is on where the compile cache is (cerebro/cache.py turns it on around a compile it would store:
cache=False and $CEREBRO_COMPILE_CACHE=0 compile without it), in the compile cache's directory under
kernels/ (entries of a few KB; `cerebro cache clear` removes them with the models). It is bounded on its
own: after a compile that stored kernels, the least recently used entries go until the rest fit in
1/KERNEL_SHARE of the compile cache's bound ($CEREBRO_CACHE_MAX_BYTES; 128 MiB of the default 2 GiB), by
the compile cache's eviction (cerebro/cache.py). An entry is the SHA-256 of its bitcode followed by the
bitcode; one whose digest does not check out is deleted with one warning and the kernel is optimised again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm

from cerebro.cache import compile_cache_max_bytes, evict_least_recent, mark_used

ENTRY_SUFFIX = ".bc"
KERNEL_SHARE = 16
FORMAT = "cerebro-kernel-bitcode-1"
_DIGEST = 32
_ACTIVE: ContextVar[KernelCache | None] = ContextVar("cerebro_kernel_cache", default=None)


class KernelCache:
    """Optimised kernel bitcode by key, in one directory (created on first write), bounded to max_bytes by
    least recent use (file mtime)."""

    def __init__(self, directory: Path, max_bytes: int | None = None) -> None:
        self.directory = directory
        self.max_bytes = compile_cache_max_bytes() // KERNEL_SHARE if max_bytes is None else max_bytes
        self.warned = False
        self.stored = False  # evict() has work to do

    def get(self, key: str) -> bytes | None:
        """The bitcode stored under key, or None (absent, or corrupt: then deleted, with one warning)."""
        path = self.directory / (key + ENTRY_SUFFIX)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        bitcode = data[_DIGEST:]
        if len(data) > _DIGEST and hashlib.sha256(bitcode).digest() == data[:_DIGEST]:
            mark_used(path)
            return bitcode
        path.unlink(missing_ok=True)
        self._warn(f"corrupt kernel cache entry {path.name} deleted; the kernel is compiled again")
        return None

    def put(self, key: str, bitcode: bytes) -> None:
        """Stores bitcode under key atomically (temporary file, then rename); a cache that cannot be
        written is reported once and does not fail the compile."""
        temporary = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=ENTRY_SUFFIX)
            with os.fdopen(handle, "wb") as file:
                file.write(hashlib.sha256(bitcode).digest() + bitcode)
            os.replace(temporary, self.directory / (key + ENTRY_SUFFIX))
            self.stored = True
        except OSError as error:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            self._warn(f"cannot write the kernel cache in {self.directory}: {error}")

    def evict(self) -> None:
        """Drops the least recently used entries beyond max_bytes (once per compile: a scan of the directory
        per kernel stored would cost a big cache milliseconds each)."""
        if not self.stored:
            return
        self.stored = False
        try:
            evict_least_recent(self.directory, ENTRY_SUFFIX, self.max_bytes)
        except OSError as error:
            self._warn(f"cannot trim the kernel cache in {self.directory}: {error}")

    def _warn(self, message: str) -> None:
        """One warning per compile: a cache in trouble must not flood the output."""
        if not self.warned:
            self.warned = True
            print(f"cerebro: {message}", file=sys.stderr)

    @staticmethod
    def key(text: str, machine: str, pipeline: tuple) -> str:
        """SHA-256 of everything the optimised bitcode depends on: the text LLVM optimises, the pipeline,
        the target machine (triple, CPU, features, relocation model), the LLVM and llvmlite versions and
        this cache's format."""
        digest = hashlib.sha256(f"{FORMAT}|{llvmlite.__version__}|{llvm.llvm_version_info}|{machine}|{pipeline}\0"
                                .encode())
        digest.update(text.encode())
        return digest.hexdigest()


@contextlib.contextmanager
def using(directory: Path, max_bytes: int | None = None) -> Iterator[KernelCache]:
    """Within this block, compiles keep optimised kernels in (and take them from) directory, which is
    trimmed to max_bytes (default: see the module's docstring) at the end."""
    cache = KernelCache(directory, max_bytes)
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)
        cache.evict()


def active() -> KernelCache | None:
    """The kernel cache of the compile in progress, if it uses one."""
    return _ACTIVE.get()
