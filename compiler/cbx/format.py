"""The .cerebro.meta section, byte for byte as runtime_kmod/include/cerebro/cbx.h lays it out."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

from cerebro.compiler.ir.dtypes import DType
from cerebro.elf import EM_386, EM_AARCH64, EM_X86_64, MACHINE_NAMES

MACHINES = {machine: MACHINE_NAMES[machine] for machine in (EM_X86_64, EM_AARCH64, EM_386)}  # those a .cbx may target

MAGIC = b"CBXMETA\0"
FORMAT_VERSION = 2  # CBX_FORMAT_VERSION in cbx.h; 2: the arena in regions (regions, region_size)
ABI_VERSION = 3  # CEREBRO_ABI_VERSION in abi.h
MAX_RANK = 8
NAME_LEN = 64
MAX_TENSORS = 256
MAX_STAGES = 65536  # CBX_MAX_STAGES: the stage word's index has 16 bits
MAX_PARTS = 256  # CEREBRO_MAX_PARTS in abi.h: the most threads one call may be split across
LAST_STEP = 2  # CEREBRO_LAST_STEP in abi.h: what the last step of a split call returns
WHOLE_STEP_PART = 0xFF  # CEREBRO_WHOLE_STEP in abi.h: the part of a word naming a step one thread runs whole (of 1)
BARRIER_BYTES = 64  # CEREBRO_BARRIER_BYTES: arena bytes at offset 0 the host keeps to meet a split call's parts
BUFFER_ALIGN = 64  # CEREBRO_BUFFER_ALIGN in abi.h
MAX_ARENA_SIZE = 1 << 40  # CBX_MAX_ARENA_SIZE in core/meta.h: the most bytes any call's arena may need

# struct cbx_meta: magic, format_version, abi_version, machine, num_inputs, num_outputs, num_stages,
# arena_size, weights_size, flops, max_stage_flops, triple, cpu, features, model_name, hash, meta_size, parts, fpu,
# regions, reserved, region_size
_META = struct.Struct("<8s6I4Q64s32s256s64s32sI2H2IQ")
# enum cbx_fpu, by value: whether the code uses FP/SIMD registers ("none": the kernel runs it without an FPU section)
FPU_MODES = ("simd", "none")
# struct cbx_tensor: name, dtype, rank, dims[8], nbytes
_TENSOR = struct.Struct("<64s2I8QQ")
HASH_OFFSET = 8 + 6 * 4 + 4 * 8 + 64 + 32 + 256 + 64  # offsetof(struct cbx_meta, hash)
HASH_LEN = 32

assert _META.size == 536 and _TENSOR.size == 144
assert _META.unpack(bytes(HASH_OFFSET) + b"\1" * 32 + bytes(24))[15] == b"\1" * 32


class CbxError(ValueError):
    """A .cbx file (or the data to build one) is malformed or inconsistent."""


def meta_size(num_tensors: int) -> int:
    """Bytes of .cerebro.meta for this many input + output tensors."""
    return _META.size + _TENSOR.size * num_tensors


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model: its name, static shape and element type. The one signature
    class: the meta, the user-space runtime, the kernel API and kmod all describe tensors with it."""

    name: str
    shape: tuple[int, ...]
    dtype: DType

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def __str__(self) -> str:
        return f"{self.name}: {self.dtype.numpy.name}[{','.join(map(str, self.shape))}]"

    def pack(self) -> bytes:
        name = _fixed(self.name, NAME_LEN, "tensor name")
        if not self.name:
            raise CbxError("tensor name is empty")
        if len(self.shape) > MAX_RANK:
            raise CbxError(f"tensor {self.name!r}: rank {len(self.shape)} > {MAX_RANK}")
        if any(not isinstance(d, int) or d < 0 for d in self.shape):
            raise CbxError(f"tensor {self.name!r}: shape {self.shape} must be non-negative integers")
        dims = list(self.shape) + [0] * (MAX_RANK - len(self.shape))
        return _TENSOR.pack(name, self.dtype.code, len(self.shape), *dims, self.nbytes)

    @classmethod
    def unpack(cls, data: bytes, index: int) -> TensorSpec:
        name_raw, code, rank, *rest = _TENSOR.unpack(data)
        dims, nbytes = rest[:MAX_RANK], rest[MAX_RANK]
        name = _string(name_raw, f"tensor #{index} name")
        if not name:
            raise CbxError(f"bad .cerebro.meta: tensor #{index} has an empty name")
        try:
            dtype = DType(code)
        except ValueError:
            raise CbxError(f"bad .cerebro.meta: tensor {name!r} has unknown dtype code {code}") from None
        if rank > MAX_RANK:
            raise CbxError(f"bad .cerebro.meta: tensor {name!r} has rank {rank} > {MAX_RANK}")
        if any(dims[rank:]):
            raise CbxError(f"bad .cerebro.meta: tensor {name!r} has a nonzero unused dim")
        spec = cls(name, tuple(dims[:rank]), dtype)
        if nbytes != spec.nbytes:
            raise CbxError(f"bad .cerebro.meta: tensor {name!r} claims {nbytes} bytes but its shape and dtype "
                           f"need {spec.nbytes}")
        return spec


@dataclass(frozen=True)
class Meta:
    """What a .cbx says about itself; pack()/unpack() are the exact cbx.h layout."""

    machine: int
    num_stages: int
    arena_size: int
    weights_size: int
    flops: int
    max_stage_flops: int
    triple: str
    cpu: str
    features: str
    model_name: str
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    hash: bytes = b"\0" * HASH_LEN
    parts: int = 1
    fpu: str = "simd"
    regions: int = 1  # arena regions a split call can use (batch chunks in parallel), 1..parts
    region_size: int = 0  # bytes from one region to the next; 0 with one region

    @property
    def size(self) -> int:
        return meta_size(len(self.inputs) + len(self.outputs))

    def arena_bytes(self, parts: int = 1) -> int:
        """Arena bytes a call split into `parts` parts needs (cbx_arena_bytes in cbx.h): one region per
        group of parts, min(parts, regions) of them; plain stage numbers are one part."""
        used = max(1, min(parts, self.regions))
        return (used - 1) * self.region_size + self.arena_size

    def pack(self) -> bytes:
        if self.machine not in MACHINES:
            raise CbxError(f"unsupported machine {self.machine} (supported: {sorted(MACHINES)})")
        if not 1 <= self.num_stages <= MAX_STAGES:
            raise CbxError(f"num_stages must be 1..{MAX_STAGES}, got {self.num_stages}")
        if not 1 <= self.parts <= MAX_PARTS:
            raise CbxError(f"parts must be 1..{MAX_PARTS}, got {self.parts}")
        if self.fpu not in FPU_MODES:
            raise CbxError(f"fpu must be one of {', '.join(FPU_MODES)}, got {self.fpu!r}")
        if self.parts > 1 and self.arena_size < BARRIER_BYTES:
            raise CbxError(f"parts {self.parts} needs arena_size >= {BARRIER_BYTES} (the barrier), "
                           f"got {self.arena_size}")
        _check_regions(self.arena_size, self.parts, self.regions, self.region_size, 0)
        if not self.outputs or len(self.inputs) + len(self.outputs) > MAX_TENSORS:
            raise CbxError(f"{len(self.inputs)} inputs and {len(self.outputs)} outputs "
                           f"(need >= 1 output, <= {MAX_TENSORS} tensors)")
        if len(self.hash) != HASH_LEN:
            raise CbxError(f"hash must be {HASH_LEN} bytes")
        header = _META.pack(MAGIC, FORMAT_VERSION, ABI_VERSION, self.machine, len(self.inputs), len(self.outputs),
                            self.num_stages, self.arena_size, self.weights_size, self.flops, self.max_stage_flops,
                            _fixed(self.triple, 64, "triple"), _fixed(self.cpu, 32, "cpu"),
                            _fixed(self.features, 256, "features"), _fixed(self.model_name, NAME_LEN, "model name"),
                            self.hash, self.size, self.parts, FPU_MODES.index(self.fpu), self.regions, 0,
                            self.region_size)
        return header + b"".join(t.pack() for t in self.inputs + self.outputs)

    @classmethod
    def unpack(cls, data: bytes) -> Meta:
        data = bytes(data)
        if len(data) < _META.size:
            raise CbxError(f"bad .cerebro.meta: {len(data)} bytes, the header alone needs {_META.size}")
        (magic, version, abi, machine, n_in, n_out, stages, arena, weights, flops, max_flops, triple, cpu,
         features, name, digest, size, parts, fpu, regions, reserved, region_size) = _META.unpack_from(data)
        if magic != MAGIC:
            raise CbxError(f"bad magic in .cerebro.meta (expected {MAGIC!r}, got {magic!r})")
        if version != FORMAT_VERSION:
            raise CbxError(f"unsupported .cbx format version {version} (this reader handles {FORMAT_VERSION}; "
                           "rebuild the model with this cerebroc)")
        if abi != ABI_VERSION:
            raise CbxError(f"unsupported entry ABI version {abi} (this reader handles {ABI_VERSION})")
        if n_out == 0 or n_in + n_out > MAX_TENSORS:
            raise CbxError(f"bad .cerebro.meta: {n_in} inputs and {n_out} outputs")
        if stages == 0:
            raise CbxError("bad .cerebro.meta: num_stages is 0")
        if stages > MAX_STAGES:
            raise CbxError(f"bad .cerebro.meta: num_stages {stages} > {MAX_STAGES}")
        expected = meta_size(n_in + n_out)
        if size != expected or len(data) != expected:
            raise CbxError(f"bad .cerebro.meta: meta_size {size}, section {len(data)} bytes, "
                           f"{n_in + n_out} tensors need {expected}")
        if parts > MAX_PARTS:
            raise CbxError(f"bad .cerebro.meta: parts {parts} > {MAX_PARTS}")
        if fpu >= len(FPU_MODES):
            raise CbxError(f"bad .cerebro.meta: fpu {fpu} (0 simd, 1 none)")
        if arena > MAX_ARENA_SIZE:
            raise CbxError(f"bad .cerebro.meta: arena_size {arena} is impossibly large")
        try:
            _check_regions(arena, max(parts, 1), regions, region_size, reserved)
        except CbxError as exc:
            raise CbxError(f"bad .cerebro.meta: {exc}") from None
        if parts > 1 and arena < BARRIER_BYTES:
            raise CbxError(f"bad .cerebro.meta: parts {parts} needs an arena of >= {BARRIER_BYTES} bytes, not {arena}")
        tensors = [TensorSpec.unpack(data[_META.size + i * _TENSOR.size:_META.size + (i + 1) * _TENSOR.size], i)
                   for i in range(n_in + n_out)]
        return cls(machine, stages, arena, weights, flops, max_flops, _string(triple, "triple"), _string(cpu, "cpu"),
                   _string(features, "features"), _string(name, "model name"), tensors[:n_in], tensors[n_in:],
                   digest, max(parts, 1), FPU_MODES[fpu], regions, region_size)


def _check_regions(arena: int, parts: int, regions: int, region_size: int, reserved: int) -> None:
    """The rules of core/meta.c check_regions, with its words: a region per part at most, each aligned and at
    least the one-part arena apart, all within MAX_ARENA_SIZE."""
    if reserved:
        raise CbxError(f"reserved field is {reserved}, not 0")
    if not 1 <= regions <= parts:
        raise CbxError(f"regions {regions} (need 1..parts = {parts})")
    if regions == 1:
        if region_size:
            raise CbxError(f"region_size {region_size} with one region (need 0)")
        return
    if region_size < arena or region_size % BUFFER_ALIGN:
        raise CbxError(f"region_size {region_size} (need a multiple of {BUFFER_ALIGN}, >= arena_size {arena})")
    if (regions - 1) * region_size + arena > MAX_ARENA_SIZE:
        raise CbxError(f"{regions} regions of {region_size} bytes are impossibly large")


def _fixed(text: str, size: int, what: str) -> bytes:
    """text as a NUL-terminated field of size bytes."""
    raw = text.encode()
    if len(raw) >= size or b"\0" in raw:
        raise CbxError(f"{what} {text!r} must be under {size} bytes of UTF-8 without NUL")
    return raw


def _string(raw: bytes, what: str) -> str:
    end = raw.find(b"\0")
    if end < 0:
        raise CbxError(f"bad .cerebro.meta: {what} is not NUL-terminated")
    try:
        return raw[:end].decode()
    except UnicodeDecodeError:
        raise CbxError(f"bad .cerebro.meta: {what} is not UTF-8") from None
