"""The dex interpreter's heap limit, measured rather than modelled: the growth of this process's
resident memory since the program started, checked before every allocation of HEAP_CHECK
bytes or more, after every HEAP_CHECK bytes of smaller ones, and every 65536 instructions.

Over the limit, cyclic garbage is collected first (only if enough was allocated since the last
collection to be worth it); still over, the allocation fails as Java's does, with an
OutOfMemoryError the program may catch. Memory the program drops is reclaimed as it drops it.
"""

from __future__ import annotations

import gc
import os
import resource

MAX_HEAP = 256 << 20
HEAP_CHECK = 4 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    """Current resident memory of this process (the peak where /proc is missing: never less safe)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class HeapExhausted(Exception):
    """Raised by Heap when an allocation would pass the limit (the VM turns it into OutOfMemoryError)."""


class Heap:
    def __init__(self, limit: int = MAX_HEAP):
        self.limit = limit
        self.base = resident_bytes()
        self.pending = 0  # bytes allocated since the last measurement
        self.since_collect = 0  # bytes allocated since the last garbage collection

    def allocate(self, size: int) -> None:
        """Called before making something of about `size` bytes."""
        self.pending += size
        self.since_collect += size
        if self.pending >= HEAP_CHECK:
            self.check(size)

    def check(self, size: int = 0) -> None:
        self.pending = 0
        if self.used() + size <= self.limit:
            return
        if self.since_collect >= self.limit // 16:
            self.since_collect = 0
            gc.collect()
            if self.used() + size <= self.limit:
                return
        raise HeapExhausted(f"Java heap space ({size} bytes requested, {self.used() >> 20} MiB in use; "
                            f"the interpreter's heap limit is {self.limit >> 20} MiB)")

    def used(self) -> int:
        return resident_bytes() - self.base
