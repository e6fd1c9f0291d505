"""A per-machine cache of optimised kernels: each node function's LLVM bitcode after its pipeline, keyed
by the exact text LLVM optimised (the kernel alone in a module of its own, under a fixed name), the
pipeline, the target machine and the LLVM version. A kernel optimised once, by any model, is not
optimised again: what XLA gets from its precompiled Eigen kernels. Machine code is still made for the
whole module (the .cbx writer takes one object).

It is on where the compile cache is (cerebro/cache.py turns it on around a compile it would store:
cache=False and $CEREBRO_COMPILE_CACHE=0 compile without it), in the compile cache's directory under
kernels/ (entries of a few KB; `cerebro cache clear` removes them with the models). An entry is the
SHA-256 of its bitcode followed by the bitcode; one whose digest does not check out is deleted with one
warning and the kernel is optimised again.
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

ENTRY_SUFFIX = ".bc"
FORMAT = "cerebro-kernel-bitcode-1"
_DIGEST = 32
_ACTIVE: ContextVar[KernelCache | None] = ContextVar("cerebro_kernel_cache", default=None)


class KernelCache:
    """Optimised kernel bitcode by key, in one directory (created on first write)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.warned = False

    def get(self, key: str) -> bytes | None:
        """The bitcode stored under key, or None (absent, or corrupt: then deleted, with one warning)."""
        path = self.directory / (key + ENTRY_SUFFIX)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        bitcode = data[_DIGEST:]
        if len(data) > _DIGEST and hashlib.sha256(bitcode).digest() == data[:_DIGEST]:
            return bitcode
        path.unlink(missing_ok=True)
        if not self.warned:
            self.warned = True
            print(f"cerebro: corrupt kernel cache entry {path.name} deleted; the kernel is compiled again",
                  file=sys.stderr)
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
        except OSError as error:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            if not self.warned:
                self.warned = True
                print(f"cerebro: cannot write the kernel cache in {self.directory}: {error}", file=sys.stderr)

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
def using(directory: Path) -> Iterator[KernelCache]:
    """Within this block, compiles keep optimised kernels in (and take them from) directory."""
    cache = KernelCache(directory)
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)


def active() -> KernelCache | None:
    """The kernel cache of the compile in progress, if it uses one."""
    return _ACTIVE.get()
