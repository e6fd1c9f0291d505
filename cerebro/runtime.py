"""The user-space runtime: load a .cbx into this process and call it with numpy arrays.

Everything about the signature is computed once at load: LoadedModel is the C Model itself, so a call
whose arrays already fit (dtype, shape, C order; an input short of 64-byte alignment, as numpy's own
16-byte-aligned arrays often are, is copied in C) is one C call that checks the buffers, makes each output
on one aligned block (none with out=) and releases the GIL while the model runs; any other call takes the
Python path below, which copies inputs that need it and names what is wrong.
With threads=N > 1 each call is split across N threads (the caller and a pool of N - 1 workers
owned by the model), for files compiled with parallel support (meta.parts >= N).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cerebro import _runtime
from cerebro.compiler.cbx.format import CbxError, Meta, TensorSpec
from cerebro.compiler.cbx.profile_table import NodeInfo, read_profile
from cerebro.compiler.cbx.tree import CallTree, read_tree
from cerebro.compiler.cbx.writer import Sealed
from cerebro.compiler.ir.dtypes import DType
from cerebro.elf import EM_386
from cerebro.toolchain import RUNTIME_DIR

ALIGN = _runtime.BUFFER_ALIGN
_align_skip = _runtime.align_skip


@dataclass(frozen=True)
class Signature:
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def __str__(self) -> str:
        return f"({', '.join(map(str, self.inputs))}) -> ({', '.join(map(str, self.outputs))})"


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data is ALIGN-byte aligned (as the ABI promises)."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    return np.ndarray(shape, dtype, raw, _align_skip(raw))


def _describe(dtype: np.dtype, shape: tuple[int, ...]) -> str:
    return f"{dtype.name}[{','.join(map(str, shape))}]"


_E_MACHINE = 18  # offset of e_machine, the same in ELF32 and ELF64 headers


def _check_word_size(data: bytes | _runtime.File) -> None:
    """An i686 .cbx runs only in a 32-bit process: say how, rather than the loader's machine mismatch."""
    data = memoryview(data)
    machine = int.from_bytes(data[_E_MACHINE:_E_MACHINE + 2], "little") if data[:4] == b"\x7fELF" else None
    if machine == EM_386 and _runtime.HOST_MACHINE != EM_386:
        raise CbxError(f"this .cbx is for i686 (32-bit x86), which a 64-bit process cannot load: run it with "
                       f"cbxrun32 (build it: make -C {RUNTIME_DIR / 'user'} OUT=DIR DIR/cbxrun32)")


POOL_COUNTS = ("shared", "alone", "probes", "to_alone", "to_shared")  # pool.h enum cbx_pool_count


class LoadedModel(_runtime.Model):
    """A .cbx mapped into this process. Call it with one array per input; returns a list of outputs.

    out=(array, ...): one caller-owned array per output, written in place and returned (no allocation);
    each must have the output's dtype and shape, be C-contiguous, writeable, ALIGN-byte aligned (make them
    with aligned_empty) and share no memory with an input or another output.
    threads: how many threads split each call (1: the caller alone); needs meta.parts >= threads."""

    def __init__(self, data: bytes | _runtime.File, threads: int = 1) -> None:
        threads = _check_threads(threads)
        usable = usable_cpus()
        if threads > usable:  # the extra threads only wait, or make the pool run calls alone
            warnings.warn(f"threads={threads} is more than the {usable} CPUs this process may run on: "
                          f"the extra threads cannot make calls faster", RuntimeWarning, stacklevel=3)
        _check_word_size(data)
        try:
            super().__init__(data, threads)
        except ValueError as exc:
            raise CbxError(str(exc)) from None
        self.meta = Meta.unpack(self.raw_meta)
        self.signature = Signature(self.meta.inputs, self.meta.outputs)
        self.tree: CallTree | None = read_tree(data, self.meta)  # the exported function's pytrees, if kept
        # what each stage runs and where it came from, in a build(..., profile=True) file
        self.profile_table: list[list[NodeInfo]] | None = read_profile(data, self.meta)
        self._inputs = [(spec, spec.dtype.numpy) for spec in self.meta.inputs]
        self._outputs = [(spec.shape, spec.dtype.numpy, spec.nbytes) for spec in self.meta.outputs]
        specs = self.meta.inputs + self.meta.outputs
        self.bind(np.ndarray, tuple(_buffer_format(spec.dtype.numpy) for spec in specs),
                  tuple((spec.shape, spec.dtype.numpy) for spec in self.meta.outputs))

    def pool_stats(self) -> dict[str, int] | None:
        """How this model's calls ran since it was loaded (threads >= 2; None for threads=1): `shared` (split
        across the threads) and `alone` (on the caller: the pool found sharing slower, as under a competing
        load), `probes` of them run the other way as a try, and the tries that switched `to_alone` and
        `to_shared`. Calls made while another thread's call held the pool run alone uncounted."""
        counts = _runtime.Model.pool_stats(self)
        return None if counts is None else dict(zip(POOL_COUNTS, counts))

    def _call_slow(self, *arrays: object, out: object = None) -> list[np.ndarray]:
        """A call the C fast path (Model.__call__) did not take: inputs copied as needed, out= checked."""
        buffers, outputs = self._buffers(arrays, out is None)
        if out is not None:
            outputs = self._check_out(out, arrays)
        self.run(_bits(buffers), _bits(outputs))
        return list(outputs)

    def _check_out(self, out: object, arrays: tuple) -> tuple[np.ndarray, ...]:
        """out= as the runtime writes it, or a one-line error naming the output and what is wrong."""
        specs = self.meta.outputs
        if not isinstance(out, (tuple, list)) or len(out) != len(specs):
            names = ", ".join(spec.name for spec in specs)
            raise TypeError(f"out= takes a tuple of {len(specs)} arrays (one per output: {names}), got {out!r:.60}")
        seen = [a for a in arrays if isinstance(a, np.ndarray)]
        for index, (spec, array) in enumerate(zip(specs, out)):
            where = f"out[{index}] ('{spec.name}')"
            for problem in _OUT_RULES:
                message = problem(array, spec, seen)
                if message:
                    raise ValueError(f"{where}: {message}")
            seen.append(array)
        return tuple(out)

    def profile(self, *arrays: object, repeats: int = 100, per_step: bool = False) -> np.ndarray:
        """Run `repeats` times with each stage timed on its own: nanoseconds, shape (repeats, num_stages).

        Profiling runs on the calling thread alone, whatever `threads` is. A file built with
        build(graph, profile=True) has one node per stage and says which (profile_table); the per-node
        report of cerebro.Model.profile and `cerebroc profile` is made from these times.
        per_step (threads >= 2): each call split across the threads as a call is (always shared), each
        step of it (abi.h: a parallel node, or a run of serial ones) timed from the end of the step before
        to when all its parts had returned, hand-offs and waits included: shape (repeats, steps)."""
        buffers, outputs = self._buffers(arrays)
        raw = _runtime.Model.profile(self, _bits(buffers), _bits(outputs), repeats, per_step)
        return np.frombuffer(raw, np.uint64).reshape(repeats, -1 if per_step else self.meta.num_stages)

    def _buffers(self, arrays: tuple, fresh: bool = True) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """Checked, aligned input buffers and (if fresh) fresh aligned output arrays."""
        if len(arrays) != len(self._inputs):
            names = ", ".join(spec.name for spec in self.meta.inputs)
            raise ValueError(f"model '{self.meta.model_name}' takes {len(self._inputs)} inputs ({names}), "
                             f"got {len(arrays)}")
        buffers = []
        for (spec, dtype), array in zip(self._inputs, arrays):
            if (type(array) is not np.ndarray or array.dtype != dtype or array.shape != spec.shape
                    or not array.flags.c_contiguous or _align_skip(_bits((array,))[0])):
                array = self._prepare(spec, dtype, array)
            buffers.append(array)
        outputs = []
        for shape, dtype, nbytes in self._outputs if fresh else ():
            raw = np.empty(nbytes + ALIGN, np.uint8)
            outputs.append(np.ndarray(shape, dtype, raw, _align_skip(raw)))
        return tuple(buffers), tuple(outputs)

    def _prepare(self, spec: TensorSpec, dtype: np.dtype, value: object) -> np.ndarray:
        """The slow path: check an input that is not already an aligned contiguous array, copy it if needed."""
        array = np.asarray(value)
        if array.dtype != dtype or array.shape != spec.shape:
            index = self.meta.inputs.index(spec)
            raise ValueError(f"input '{spec.name}' (#{index}): expected {_describe(dtype, spec.shape)}, "
                             f"got {_describe(array.dtype, array.shape)}")
        aligned = aligned_empty(spec.shape, dtype)
        aligned[...] = array
        return aligned

    def run_raw(self, inputs: tuple, outputs: tuple) -> None:
        """Run on caller-owned buffers (C-contiguous, 64-byte aligned, exact byte sizes): no allocation."""
        self.run(inputs, outputs)

    def __repr__(self) -> str:
        threads = f" threads={self.threads}" if self.threads > 1 else ""
        return f"<LoadedModel '{self.meta.model_name}' {self.signature}{threads}>"


def _bits(arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """The arrays as the C side takes them: bfloat16 ones (numpy gives them no buffer format) as their uint16 bits."""
    return tuple(a.view(np.uint16) if a.dtype == DType.bf16.numpy else a for a in arrays)


def _buffer_format(dtype: np.dtype) -> bytes:
    """The buffer-protocol format numpy gives arrays of dtype (b"" if it gives none: those take the slow path)."""
    try:
        return memoryview(np.empty(0, dtype)).format.encode()
    except (ValueError, TypeError):
        return b""


def _out_kind(array: object, spec: TensorSpec, seen: list) -> str | None:
    return None if type(array) is np.ndarray else f"expected a numpy array, got {type(array).__name__}"


def _out_signature(array: np.ndarray, spec: TensorSpec, seen: list) -> str | None:
    dtype = spec.dtype.numpy
    if array.dtype == dtype and array.shape == spec.shape:
        return None
    return f"expected {_describe(dtype, spec.shape)}, got {_describe(array.dtype, array.shape)}"


def _out_layout(array: np.ndarray, spec: TensorSpec, seen: list) -> str | None:
    return None if array.flags.c_contiguous else "must be C-contiguous"


def _out_writeable(array: np.ndarray, spec: TensorSpec, seen: list) -> str | None:
    return None if array.flags.writeable else "is read-only"


def _out_aligned(array: np.ndarray, spec: TensorSpec, seen: list) -> str | None:
    if array.nbytes == 0 or not _align_skip(array):
        return None
    return f"data is not {ALIGN}-byte aligned (make it with cerebro.runtime.aligned_empty)"


def _out_alone(array: np.ndarray, spec: TensorSpec, seen: list) -> str | None:
    if any(np.may_share_memory(array, other) for other in seen):
        return "shares memory with an input or another output (the model may read what it already wrote)"
    return None


# What out= must be, checked in this order (each rule's message is the error after "out[i] ('name'): ").
_OUT_RULES = (_out_kind, _out_signature, _out_layout, _out_writeable, _out_aligned, _out_alone)


def usable_cpus(cgroup_root: str = "/sys/fs/cgroup", cgroup_file: str = "/proc/self/cgroup") -> int:
    """How many threads this process can keep running at once: the CPUs of its affinity mask
    (sched_getaffinity: taskset, cpusets), capped by its cgroup's CPU quota rounded up (cgroup v2
    cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us: docker --cpus, Kubernetes limits). At least 1.
    Give a model at most this many threads (benchmarks' default-thread rows use it)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_quota(Path(cgroup_root), Path(cgroup_file))
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


# Where a cgroup keeps its CPU quota: (file, how to read it) per hierarchy; each reader gives CPUs or None.
_QUOTA_FILES = {
    "v2": (("cpu.max",), lambda quota, period: None if quota == "max" else int(quota) / int(period)),
    "v1": (("cpu.cfs_quota_us", "cpu.cfs_period_us"), lambda quota, period: None if int(quota) < 0
           else int(quota) / int(period)),
}


def _cgroup_quota(root: Path, membership: Path) -> float | None:
    """The CPU quota of the cgroup this process is in, in CPUs; None if unlimited or unreadable."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # the v2 hierarchy
            dirs, (names, read) = [root / path.lstrip("/")], _QUOTA_FILES["v2"]
        elif "cpu" in controllers.split(","):
            dirs = [root / controllers / path.lstrip("/"), root / "cpu" / path.lstrip("/")]
            names, read = _QUOTA_FILES["v1"]
        else:
            continue
        for folder in dirs:
            try:
                words = " ".join((folder / name).read_text() for name in names).split()
                quota = read(*words[:2])
            except (OSError, ValueError, TypeError):
                continue
            if quota:
                return quota
    return None


def _check_threads(threads: object) -> int:
    """threads as an int >= 1, or ValueError."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return int(threads)


def load(source: str | os.PathLike | bytes | Sealed, threads: int = 1) -> LoadedModel:
    """Load a .cbx from a path, from its bytes or from a build's pieces (compiler.driver.build_sealed);
    CbxError (a ValueError) says what is wrong with it.

    threads > 1 splits every call across that many threads (the file must allow it: meta.parts).
    A path is read into private memory by the C runtime (_runtime.read_file), pieces are joined into such
    memory (_runtime.join_file), and checked as bytes are; the weights' pages of that copy then move into
    the model rather than being copied a second time."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return LoadedModel(bytes(source), threads)
    if isinstance(source, Sealed):
        return LoadedModel(_runtime.join_file(source.pieces), threads)
    with open(source, "rb") as file:
        data = _runtime.read_file(file.fileno())
    return LoadedModel(data, threads)
