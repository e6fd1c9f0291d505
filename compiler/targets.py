"""Compilation targets: the triple, CPU and features a .cbx is built for (and needs at run time)."""

from __future__ import annotations

import math
import platform
import re
from dataclasses import dataclass

import llvmlite.binding as llvm

from cerebro.compiler.ir.dtypes import DType
from cerebro.elf import EM_386, EM_AARCH64, EM_X86_64
from cerebro.toolchain import RUNTIME_DIR

CPU_FEATURES_HEADER = RUNTIME_DIR / "include" / "cerebro" / "cpu_features.h"
_FEATURE_TABLES = {EM_X86_64: "CEREBRO_X86_FEATURES", EM_386: "CEREBRO_X86_FEATURES",
                   EM_AARCH64: "CEREBRO_ARM64_FEATURES"}


def read_cpu_features(header: str) -> dict[int, tuple[str, ...]]:
    """The feature names of each table in cpu_features.h's text, per ELF machine, in table order."""
    tables = {}
    for machine, macro in _FEATURE_TABLES.items():
        body = re.search(rf"^#define {macro}\(X\)((?:.*\\\n)*.*)$", header, re.M)
        if body is None:
            raise ValueError(f"{CPU_FEATURES_HEADER.name}: no {macro}(X) table")
        tables[machine] = tuple(re.findall(r'X\(\s*"([^"]+)"', body.group(1)))
    return tables


# The features a .cbx meta may require, per machine: the ones both runtimes check, from the table they are
# built from. A host compile records its subset of them (LLVM's full host list is longer than the meta's
# 256-byte field).
CPU_FEATURES: dict[int, tuple[str, ...]] = read_cpu_features(CPU_FEATURES_HEADER.read_text())


@dataclass(frozen=True)
class Target:
    """What LLVM compiles for. features: the full LLVM feature string used for codegen;
    meta_features: the short list the .cbx meta records for hosts to check; vector_width: f32 lanes;
    reloc: LLVM's relocation model (i686 is static: its PIC needs a GOT, which no host builds);
    fpu: "simd", or "none" for general-purpose registers only (integer models that the kernel runs
    without an FPU section: compiler/fpu_check.py proves the object names no FP/SIMD register)."""

    name: str
    triple: str
    cpu: str
    features: str
    meta_features: str
    machine: int
    vector_width: int
    reloc: str = "pic"
    fpu: str = "simd"

    @property
    def is_x86(self) -> bool:
        return self.machine in (EM_X86_64, EM_386)

    def target_machine(self) -> llvm.TargetMachine:
        """An LLVM TargetMachine for this target (small code model)."""
        _init_llvm()
        llvm_target = llvm.Target.from_triple(self.triple)
        return llvm_target.create_target_machine(cpu=self.cpu, features=self.features, opt=3,
                                                 reloc=self.reloc, codemodel="small")


def f32_lanes(target: object) -> int:
    """The target's vector width in f32 lanes (1 means scalar code)."""
    width = getattr(target, "vector_width", None)
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"target {target!r} has no usable vector_width (f32 lanes)")
    return width


def lanes(target: object, dtype: DType) -> int:
    """Vector lanes for dtype: as many as fit in the target's vector register."""
    return max(1, f32_lanes(target) * 4 // dtype.itemsize)


def widens_f16(target: object) -> bool:
    """Whether the target converts f16 to f32 in hardware (aarch64; x86-64 with F16C): LLVM's fpext on
    half, which elsewhere is a library call (codegen/halfconv.py spells it out in integer ops instead)."""
    return not getattr(target, "is_x86", True) or "+f16c" in getattr(target, "features", "").split(",")


def _features(target: object) -> set[str]:
    return set(getattr(target, "features", "").split(","))


def int8_dot(target: object, i32_lanes: int) -> str | None:
    """The target's exact u8/s8 dot-product instruction on registers of i32_lanes lanes ("vpdpbusd": AVX-VNNI
    or AVX-512 VNNI; "sdot": aarch64 dotprod), or None where only the widening multiply-add (vpmaddwd) is
    there: codegen/int_dot.py builds on it, passes/prepack.py packs weights for it."""
    features, x86 = _features(target), getattr(target, "is_x86", None)
    if x86:
        if i32_lanes == 16:
            return "vpdpbusd" if "+avx512vnni" in features else None
        vnni = "+avxvnni" in features or {"+avx512vnni", "+avx512vl"} <= features
        return "vpdpbusd" if i32_lanes in (4, 8) and vnni else None
    return "sdot" if x86 is False and i32_lanes == 4 and "+dotprod" in features else None


def micro_tile(target: object) -> tuple[int, int]:
    """(rows, vectors) of the matmul/conv register tile (codegen/matmul.py), which passes/prepack.py packs
    weights for: MR*NV accumulators + NV b vectors + 1 broadcast fit the register file."""
    width = f32_lanes(target)
    if width >= 16:
        return 6, 4  # AVX-512: 32 zmm, 24 accumulators
    if width >= 8:
        return 6, 2  # AVX2: 16 ymm, 12 accumulators
    if not getattr(target, "is_x86", True):
        return 8, 3  # NEON: 32 q registers, 24 accumulators
    return 4, 3  # SSE: 16 xmm, 12 accumulators


SHORT_MATMUL_ROWS = 64  # matmul_tile's taller tile: for matmuls of at most this many rows (all batches)


def matmul_tile(target: object, rows: int) -> tuple[int, int]:
    """(rows, vectors) of the register tile of a matmul of `rows` rows in all (codegen/matmul.py; passes/
    prepack.py packs its b for it): micro_tile, but 12 x 2 zmm for up to SHORT_MATMUL_ROWS rows on a host
    with AVX-512 that is not AMD's. Intel's cores issue two zmm FMAs a cycle where Zen 4 issues one, and
    a short matmul reads each b panel once per row block, from memory or L2: half the row blocks, half
    the reads (one Xeon core: 32 x 768 x 3072 122 -> 140 GFLOP/s, gpt2 b1 1.06x; taller matmuls gained
    nothing, t5_encoder and whisper_encoder b8 ran 0.97x, resnet18's convs 0.92x). On Zen 4, 12 x 2 did
    not pay (docs/benchmarks.md, "Matmul on Zen 4")."""
    if (rows <= SHORT_MATMUL_ROWS and f32_lanes(target) >= 16 and getattr(target, "name", "") == "host"
            and getattr(target, "is_x86", False) and not getattr(target, "cpu", "").startswith("znver")):
        return 12, 2
    return micro_tile(target)


def streams_conv_weights(target: object) -> bool:
    """Whether a conv's weights too big for L2 stream (codegen/conv.py streams_weights, winograd.py
    kernel_streams: prefetched ahead of the tiles, a Winograd conv's units column group by column group),
    each a kernel of its own. They pay where a core reads L3 slowly (a Xeon core, 29 GB/s: ResNet18 at
    batch 1 39.5 -> 35 ms); on Zen 4 (80 GB/s) the host's own ResNet18's 14 x 14 Winograd convs ran 5%
    slower in group order, its streamed 3x3/2 conv gained nothing, and the two variants were 0.2 of its
    1.41 CPU s cold compile. Matmuls stream on every target (their weights come from memory)."""
    return not (getattr(target, "name", "") == "host" and getattr(target, "cpu", "").startswith("znver"))


def conv_tile(target: object, node: object) -> tuple[int, int]:
    """(rows, vectors) of a dense conv node's register tile (codegen/conv.py; passes/prepack.py packs its
    kernel for it): micro_tile, but matmul_tile's for its outputs (all images) where it has one group, its
    weights outweigh an image (the channel blocks go outside the pixels, each pixel tile reading its block's
    weights once) and its kernel has several positions: at most SHORT_MATMUL_ROWS outputs, twice the rows a
    tile, half the reads. One Xeon core: 6 3x3x512x512 convs at 7 x 7 15.7 -> 14.3 ms, resnet18 b1 1.037x;
    1x1 kernels gained nothing (2048 <-> 512 at 7 x 7) and regnet_y_400mf b1 ran 0.977x with them."""
    x, w = node.inputs[:2]
    if (node.attrs.get("groups", 1) == 1 and math.prod(w.shape[:-2]) > 1
            and w.nbytes > x.nbytes // max(1, x.shape[0])):
        return matmul_tile(target, math.prod(node.outputs[0].shape[:-1]))
    return micro_tile(target)


_X86_V2 = "+sse2,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16"
_X86_V3 = _X86_V2 + ",+avx,+avx2,+fma,+f16c,+bmi,+bmi2,+lzcnt,+movbe"
_X86_V4 = _X86_V3 + ",+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl"
_X86_TRIPLE = "x86_64-unknown-linux-gnu"
_ARM_TRIPLE = "aarch64-unknown-linux-gnu"
_I686_TRIPLE = "i686-unknown-linux-gnu"
_I686 = "+sse,+sse2,+cx8,+x87"
_I686_V3 = _X86_V3 + ",+cx8,+x87"
# General-purpose registers only, as the kernel's own C is built (-mno-sse -mno-mmx -mno-80387 -msoft-float;
# arm64: -mgeneral-regs-only): no vector or FP register exists for LLVM to pick, and soft-float keeps any float
# in the calling convention out of SSE registers (the entry's signature has none)
_X86_GPR = "-mmx,-x87,-sse,-sse2,-sse3,-ssse3,-sse4.1,-sse4.2,-avx,-avx2,-avx512f,-f16c,-fma,+soft-float,+popcnt,+cx16"
_ARM_GPR = "-fp-armv8,-neon,-crypto,-sve,+reserve-x18"

TARGETS: dict[str, Target] = {
    "x86_64": Target("x86_64", _X86_TRIPLE, "x86-64-v2", _X86_V2, _X86_V2, EM_X86_64, 4),
    "x86_64-v3": Target("x86_64-v3", _X86_TRIPLE, "x86-64-v3", _X86_V3, _X86_V3, EM_X86_64, 8),
    # x86-64-v4 tunes for 256-bit vectors by default; AVX-512 is what this target is for
    "x86_64-v4": Target("x86_64-v4", _X86_TRIPLE, "x86-64-v4", _X86_V4 + ",-prefer-256-bit", _X86_V4, EM_X86_64, 16),
    # x18 stays untouched: arm64 kernels built with shadow call stacks (Android's) keep its pointer there
    "aarch64": Target("aarch64", _ARM_TRIPLE, "generic", "+neon,+fp-armv8,+reserve-x18", "+neon,+fp-armv8", EM_AARCH64,
                      4),
    # integer-only models for kernels without an FPU section (fpu "none"): scalar code in general registers
    "x86_64-gpr": Target("x86_64-gpr", _X86_TRIPLE, "x86-64", _X86_GPR, "+popcnt,+cx16", EM_X86_64, 1, fpu="none"),
    "aarch64-gpr": Target("aarch64-gpr", _ARM_TRIPLE, "generic", _ARM_GPR, "", EM_AARCH64, 1, fpu="none"),
    # 32-bit x86 runs in 32-bit processes only (cbxrun32); static code: R_386_32 and R_386_PC32, no GOT
    "i686": Target("i686", _I686_TRIPLE, "pentium4", _I686, "+sse2", EM_386, 4, "static"),
    "i686-v3": Target("i686-v3", _I686_TRIPLE, "haswell", _I686_V3, _X86_V3, EM_386, 8, "static"),
}

_initialised = False


def _init_llvm() -> None:
    global _initialised
    if not _initialised:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        _initialised = True


def _host() -> Target:
    _init_llvm()
    arch = platform.machine().lower()
    if arch in ("x86_64", "amd64"):
        triple, machine = _X86_TRIPLE, EM_X86_64
    elif arch in ("aarch64", "arm64"):
        triple, machine = _ARM_TRIPLE, EM_AARCH64
    else:
        raise ValueError(f"target 'host': Cerebro generates code only for x86-64 and aarch64, this host is {arch}")
    flags = llvm.get_host_cpu_features()
    enabled = {name for name, on in flags.items() if on}
    meta = ",".join(f"+{name}" for name in CPU_FEATURES[machine] if name in enabled)
    if "avx512f" in enabled:
        width = 16
    elif "avx2" in enabled:
        width = 8
    else:
        width = 4
    return Target("host", triple, llvm.get_host_cpu_name(), flags.flatten(), meta, machine, width)


def resolve_target(spec: str | Target = "host") -> Target:
    """The Target named by spec: 'host' or one of TARGETS; ValueError listing the choices otherwise."""
    if isinstance(spec, Target):
        return spec
    if spec == "host":
        return _host()
    if spec not in TARGETS:
        raise ValueError(f"unknown target {spec!r}; choose one of: host, " + ", ".join(TARGETS))
    _init_llvm()
    return TARGETS[spec]
