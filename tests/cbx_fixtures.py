"""Small .cbx models written as LLVM IR by hand, compiled with llvmlite, finished by the .cbx writer.

Each model is the body of @cerebro_entry plus its signature; build() adds the placeholder
globals the code generator's contract prescribes and returns the finished .cbx bytes.
"""

from __future__ import annotations

import platform
import struct
from dataclasses import dataclass, field

import llvmlite.binding as llvm
import numpy as np

from cerebro.compiler.cbx import Meta, TensorSpec, finish_object, meta_size, seal
from cerebro.compiler.cbx.format import EM_AARCH64, EM_X86_64
from cerebro.compiler.ir.dtypes import DType
from cerebro.elf import ElfFile

TRIPLES = {"x86_64": "x86_64-unknown-linux-gnu", "aarch64": "aarch64-unknown-linux-gnu"}
MACHINES = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
    platform.machine().lower(), "unsupported")
OTHER_ARCH = "aarch64" if HOST_ARCH == "x86_64" else "x86_64"

_llvm_ready = False


@dataclass(frozen=True)
class Model:
    """An entry body in LLVM IR, its signature, its weights and a numpy reference."""

    name: str
    body: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    weights: bytes = b""
    num_stages: int = 1
    arena_size: int = 0
    declarations: str = ""
    reference: object = field(default=None, compare=False)
    parts: int = 1


def _init_llvm() -> None:
    global _llvm_ready
    if not _llvm_ready:
        llvm.initialize_all_targets()
        llvm.initialize_all_asmprinters()
        _llvm_ready = True


def module_text(model: Model, arch: str, ir_text: str | None = None) -> str:
    """The full LLVM module: placeholders for meta and weights, then the entry."""
    weights_len = max(64, len(model.weights))
    meta_len = meta_size(len(model.inputs) + len(model.outputs))
    attrs = "noredzone fn_ret_thunk_extern" if arch == "x86_64" else "noredzone"
    lines = [
        f'@cerebro_weights = hidden global [{weights_len} x i8] zeroinitializer, section ".cerebro.weights", align 64',
        f'@cerebro_meta = hidden global [{meta_len} x i8] zeroinitializer, section ".cerebro.meta", align 8',
    ]
    if ir_text is not None:
        raw = ir_text.encode() + b"\0"
        escaped = "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else f"\\{b:02X}" for b in raw)
        lines.append(f'@cerebro_ir = hidden global [{len(raw)} x i8] c"{escaped}", section ".cerebro.ir", align 1')
    lines += [
        "define i32 @cerebro_entry(ptr %inputs, ptr %outputs, ptr %arena, i32 %stage) #0 {",
        model.body.strip("\n"),
        "}",
        model.declarations,
        f"attributes #0 = {{ {attrs} }}",
    ]
    return "\n".join(lines) + "\n"


def compile_object(text: str, arch: str, reloc: str = "pic", codemodel: str = "small") -> bytes:
    _init_llvm()
    module = llvm.parse_assembly(text)
    module.triple = TRIPLES[arch]
    module.verify()
    machine = llvm.Target.from_triple(TRIPLES[arch]).create_target_machine(
        cpu="generic", opt=2, reloc=reloc, codemodel=codemodel)
    return machine.emit_object(module)


def meta_for(model: Model, arch: str, features: str = "") -> Meta:
    return Meta(machine=MACHINES[arch], num_stages=model.num_stages, arena_size=model.arena_size,
                weights_size=len(model.weights), flops=0, max_stage_flops=0, triple=TRIPLES[arch], cpu="generic",
                features=features, model_name=model.name, inputs=model.inputs, outputs=model.outputs,
                parts=model.parts)


def build(model: Model, arch: str = HOST_ARCH, ir_text: str | None = None, features: str = "",
          **compile_args: str) -> bytes:
    """The finished .cbx bytes of model for arch; features is what the meta says the code needs."""
    obj = compile_object(module_text(model, arch, ir_text), arch, **compile_args)
    return finish_object(obj, meta_for(model, arch, features), model.weights)


def elementwise_loop(count: int, prologue: str, body: str) -> str:
    """prologue, then a loop over %i in [0, count) running body (which may use %i), then return 0."""
    return f"""
entry:
{prologue}
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
{body}
  %next = add i64 %i, 1
  %more = icmp ult i64 %next, {count}
  br i1 %more, label %loop, label %done
done:
  ret i32 0
"""


def _f32(name: str, *shape: int) -> TensorSpec:
    return TensorSpec(name, shape, DType.f32)


WEIGHTS = np.linspace(-2.0, 3.0, 8, dtype=np.float32)

# y = x * w + 1 for x: f32[2,4], w: 8 floats in .cerebro.weights
AFFINE = Model(
    name="affine",
    inputs=[_f32("x", 2, 4)],
    outputs=[_f32("y", 2, 4)],
    weights=WEIGHTS.tobytes(),
    body=elementwise_loop(8, """
  %x = load ptr, ptr %inputs
  %y = load ptr, ptr %outputs
""", """
  %px = getelementptr float, ptr %x, i64 %i
  %pw = getelementptr float, ptr @cerebro_weights, i64 %i
  %py = getelementptr float, ptr %y, i64 %i
  %vx = load float, ptr %px
  %vw = load float, ptr %pw
  %m = fmul float %vx, %vw
  %a = fadd float %m, 1.0
  store float %a, ptr %py
"""),
    reference=lambda x: [x * WEIGHTS.reshape(2, 4) + np.float32(1.0)],
)

# s = a + float(b), d = b * 2 for a: f32[3], b: i32[3]
TWO_IO = Model(
    name="two_io",
    inputs=[_f32("a", 3), TensorSpec("b", (3,), DType.i32)],
    outputs=[_f32("s", 3), TensorSpec("d", (3,), DType.i32)],
    body=elementwise_loop(3, """
  %a = load ptr, ptr %inputs
  %pb = getelementptr ptr, ptr %inputs, i64 1
  %b = load ptr, ptr %pb
  %s = load ptr, ptr %outputs
  %pd = getelementptr ptr, ptr %outputs, i64 1
  %d = load ptr, ptr %pd
""", """
  %pa = getelementptr float, ptr %a, i64 %i
  %pbi = getelementptr i32, ptr %b, i64 %i
  %va = load float, ptr %pa
  %vb = load i32, ptr %pbi
  %fb = sitofp i32 %vb to float
  %vs = fadd float %va, %fb
  %vd = mul i32 %vb, 2
  %ps = getelementptr float, ptr %s, i64 %i
  %pdi = getelementptr i32, ptr %d, i64 %i
  store float %vs, ptr %ps
  store i32 %vd, ptr %pdi
"""),
    reference=lambda a, b: [a + b.astype(np.float32), b * np.int32(2)],
)

# Two stages through the arena: stage 0 t = x * 2 (into the arena), stage 1 y = t + 3.
STAGED = Model(
    name="staged",
    inputs=[_f32("x", 256)],
    outputs=[_f32("y", 256)],
    num_stages=2,
    arena_size=1024,
    body="""
  %x = load ptr, ptr %inputs
  %y = load ptr, ptr %outputs
  switch i32 %stage, label %bad [ i32 0, label %s0 i32 1, label %s1 ]
bad:
  ret i32 1
s0:
  br label %l0
l0:
  %i = phi i64 [0, %s0], [%n0, %l0]
  %px = getelementptr float, ptr %x, i64 %i
  %pt = getelementptr float, ptr %arena, i64 %i
  %vx = load float, ptr %px
  %v2 = fmul float %vx, 2.0
  store float %v2, ptr %pt
  %n0 = add i64 %i, 1
  %c0 = icmp ult i64 %n0, 256
  br i1 %c0, label %l0, label %e0
e0:
  ret i32 0
s1:
  br label %l1
l1:
  %j = phi i64 [0, %s1], [%n1, %l1]
  %pt1 = getelementptr float, ptr %arena, i64 %j
  %py = getelementptr float, ptr %y, i64 %j
  %vt = load float, ptr %pt1
  %v3 = fadd float %vt, 3.0
  store float %v3, ptr %py
  %n1 = add i64 %j, 1
  %c1 = icmp ult i64 %n1, 256
  br i1 %c1, label %l1, label %e1
e1:
  ret i32 0
""",
    reference=lambda x: [x * np.float32(2.0) + np.float32(3.0)],
)

# y = x copied by a real call to memcpy (16 KiB: too big to inline); z = 0 by memset.
COPY_N = 4096
COPY = Model(
    name="copy",
    inputs=[_f32("x", COPY_N)],
    outputs=[_f32("y", COPY_N), _f32("z", COPY_N)],
    body=f"""
  %x = load ptr, ptr %inputs
  %y = load ptr, ptr %outputs
  %pz = getelementptr ptr, ptr %outputs, i64 1
  %z = load ptr, ptr %pz
  call void @llvm.memcpy.p0.p0.i64(ptr align 64 %y, ptr align 64 %x, i64 {COPY_N * 4}, i1 false)
  call void @llvm.memset.p0.i64(ptr align 64 %z, i8 0, i64 {COPY_N * 4}, i1 false)
  ret i32 0
""",
    declarations="declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)\n"
                 "declare void @llvm.memset.p0.i64(ptr, i8, i64, i1)",
    reference=lambda x: [x.copy(), np.zeros_like(x)],
)

# Calls sinf, which no Cerebro host provides.
SINF = Model(
    name="sinf",
    inputs=[_f32("x", 1)],
    outputs=[_f32("y", 1)],
    body="""
  %x = load ptr, ptr %inputs
  %y = load ptr, ptr %outputs
  %v = load volatile float, ptr %x
  %r = call float @sinf(float %v)
  store float %r, ptr %y
  ret i32 0
""",
    declarations="declare float @sinf(float) nounwind",
)

# The entry returns an error code at every stage (CEREBRO_EBADSTAGE).
FAILING = Model(
    name="failing",
    inputs=[_f32("x", 1)],
    outputs=[_f32("y", 1)],
    body="  ret i32 1",
)


# A model written the way parallel code must be (abi.h): the entry decodes the stage word; one part runs
# stages, more (or a whole step, CEREBRO_WHOLE_STEP: part 255 of 1, as part 0 of 1) run steps, each part
# its share of every parallel node and part 0 alone the serial node, and the host runs every part of a step
# before the next (the arena's first 64 bytes stay reserved: abi.h).
# N is odd and prime so no part count divides it. Step 1 fails (returns 3) on the last part when x[0] is a
# NaN, to show a failing part stops the call without leaving the others waiting.
#   stage 0 = step 0: t = x * 2 + 1 (in the arena after the 64 reserved bytes)
#   stage 1: step 1:  y[i] = t[N-1-i] * x[i] (reads other parts' t)
#            step 2:  s = t[0] + t[1] + ... in order (serial, part 0); returns CEREBRO_LAST_STEP
PARALLEL_N = 4099


def _parallel_helpers() -> str:
    return f"""
define internal i64 @share(i32 %part, i32 %parts) alwaysinline #0 {{
  %p = zext i32 %part to i64
  %n = zext i32 %parts to i64
  %m = mul i64 %p, {PARALLEL_N}
  %q = udiv i64 %m, %n
  ret i64 %q
}}

define internal void @scale(ptr %x, ptr %t, i64 %lo, i64 %hi) alwaysinline #0 {{
entry:
  %empty = icmp uge i64 %lo, %hi
  br i1 %empty, label %done, label %loop
loop:
  %i = phi i64 [%lo, %entry], [%next, %loop]
  %px = getelementptr float, ptr %x, i64 %i
  %pt = getelementptr float, ptr %t, i64 %i
  %vx = load float, ptr %px
  %m = fmul float %vx, 2.0
  %a = fadd float %m, 1.0
  store float %a, ptr %pt
  %next = add i64 %i, 1
  %more = icmp ult i64 %next, %hi
  br i1 %more, label %loop, label %done
done:
  ret void
}}

define internal void @mirror(ptr %t, ptr %x, ptr %y, i64 %lo, i64 %hi) alwaysinline #0 {{
entry:
  %empty = icmp uge i64 %lo, %hi
  br i1 %empty, label %done, label %loop
loop:
  %i = phi i64 [%lo, %entry], [%next, %loop]
  %j = sub i64 {PARALLEL_N - 1}, %i
  %pt = getelementptr float, ptr %t, i64 %j
  %px = getelementptr float, ptr %x, i64 %i
  %py = getelementptr float, ptr %y, i64 %i
  %vt = load float, ptr %pt
  %vx = load float, ptr %px
  %m = fmul float %vt, %vx
  store float %m, ptr %py
  %next = add i64 %i, 1
  %more = icmp ult i64 %next, %hi
  br i1 %more, label %loop, label %done
done:
  ret void
}}

define internal void @total(ptr %t, ptr %s) #0 {{
entry:
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
  %acc = phi float [0.0, %entry], [%sum, %loop]
  %pt = getelementptr float, ptr %t, i64 %i
  %vt = load float, ptr %pt
  %sum = fadd float %acc, %vt
  %next = add i64 %i, 1
  %more = icmp ult i64 %next, {PARALLEL_N}
  br i1 %more, label %loop, label %done
done:
  store float %sum, ptr %s
  ret void
}}
"""


def parallel_model(parts: int = 256, name: str = "parallel") -> Model:
    """The stage-word model above, declaring that a call may be split into `parts` parts."""
    return Model(
        name=name,
        inputs=[_f32("x", PARALLEL_N)],
        outputs=[_f32("y", PARALLEL_N), _f32("s", 1)],
        num_stages=2,
        arena_size=64 + 4 * PARALLEL_N,
        parts=parts,
        body="""
entry:
  %index = and i32 %stage, 65535
  %high = lshr i32 %stage, 16
  %field = and i32 %high, 255
  %partsm1 = lshr i32 %stage, 24
  %parts = add i32 %partsm1, 1
  %alone = icmp eq i32 %parts, 1
  %all = icmp eq i32 %field, 255
  %whole = and i1 %alone, %all
  %part = select i1 %whole, i32 0, i32 %field
  %x = load ptr, ptr %inputs
  %y = load ptr, ptr %outputs
  %ps = getelementptr ptr, ptr %outputs, i64 1
  %s = load ptr, ptr %ps
  %t = getelementptr i8, ptr %arena, i64 64
  %lo = call i64 @share(i32 %part, i32 %parts)
  %next = add i32 %part, 1
  %hi = call i64 @share(i32 %next, i32 %parts)
  %x0 = load float, ptr %x
  %nan = fcmp uno float %x0, %x0
  %last = icmp eq i32 %next, %parts
  %fail = and i1 %nan, %last
  %first = icmp eq i32 %part, 0
  %split = icmp ugt i32 %parts, 1
  %multi = or i1 %split, %whole
  br i1 %multi, label %steps, label %stages
stages:
  switch i32 %index, label %bad [ i32 0, label %s0
                                  i32 1, label %s1 ]
steps:
  switch i32 %index, label %bad [ i32 0, label %s0
                                  i32 1, label %step1
                                  i32 2, label %step2 ]
bad:
  ret i32 1
failed:
  ret i32 3
s0:
  call void @scale(ptr %x, ptr %t, i64 %lo, i64 %hi)
  ret i32 0
s1:
  br i1 %fail, label %failed, label %s1.run
s1.run:
  call void @mirror(ptr %t, ptr %x, ptr %y, i64 %lo, i64 %hi)
  call void @total(ptr %t, ptr %s)
  ret i32 0
step1:
  br i1 %fail, label %failed, label %step1.run
step1.run:
  call void @mirror(ptr %t, ptr %x, ptr %y, i64 %lo, i64 %hi)
  ret i32 0
step2:
  br i1 %first, label %step2.run, label %done
step2.run:
  call void @total(ptr %t, ptr %s)
  br label %done
done:
  ret i32 2
""",
        declarations=_parallel_helpers(),
        reference=_parallel_reference,
    )


def _parallel_reference(x: np.ndarray) -> list[np.ndarray]:
    t = x * np.float32(2.0) + np.float32(1.0)
    return [t[::-1] * x, np.cumsum(t, dtype=np.float32)[-1:]]


PARALLEL = parallel_model()


def parts_seen_model(parts: int) -> Model:
    """A model that writes to y[0] bits 16-31 of the stage word it was last called with (part and parts - 1:
    255 for a whole step, 0 for a plain stage number), returning CEREBRO_LAST_STEP from a whole step and
    CEREBRO_OK from stage 0. Which protocol a host used, seen from the outside."""
    return Model(
        name=f"parts_seen_{parts}",
        arena_size=64,
        inputs=[_f32("x", 1)],
        outputs=[_f32("y", 1)],
        parts=parts,
        body="""
entry:
  %index = and i32 %stage, 65535
  %high = lshr i32 %stage, 16
  %y = load ptr, ptr %outputs
  %seen = uitofp i32 %high to float
  store float %seen, ptr %y
  %bad = icmp ne i32 %index, 0
  br i1 %bad, label %refuse, label %ok
refuse:
  ret i32 1
ok:
  %whole = icmp eq i32 %high, 255
  %status = select i1 %whole, i32 2, i32 0
  ret i32 %status
""",
    )


def random_inputs(model: Model, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for spec in model.inputs:
        if spec.dtype.is_float:
            out.append(rng.standard_normal(spec.shape).astype(spec.dtype.numpy))
        else:
            out.append(rng.integers(-1000, 1000, spec.shape).astype(spec.dtype.numpy))
    return out


# --- surgery on finished files, for the malformed-input tests -----------------------------------------


def section(data: bytes, name: str):
    sec = ElfFile.parse(data).section(name)
    assert sec is not None, name
    return sec


def patch(data: bytes, offset: int, raw: bytes, reseal: bool = True) -> bytes:
    """data with raw written at offset; resealed (new hash) unless asked not to."""
    out = bytearray(data)
    out[offset:offset + len(raw)] = raw
    return seal(bytes(out)) if reseal else bytes(out)


def patch_relocation_type(data: bytes, rela_name: str, index: int, new_type: int) -> bytes:
    rela = section(data, rela_name)
    at = rela.offset + index * 24 + 8  # r_info
    info = struct.unpack_from("<Q", data, at)[0]
    return patch(data, at, struct.pack("<Q", (info & ~0xFFFFFFFF) | new_type))


def rename_symbol(data: bytes, old: str, new: str) -> bytes:
    """Rewrite a symbol name in .strtab in place (new must not be longer)."""
    strtab = section(data, ".strtab")
    table = data[strtab.offset:strtab.offset + strtab.size]
    at = table.index(b"\0" + old.encode() + b"\0") + 1
    raw = new.encode().ljust(len(old), b"\0")
    return patch(data, strtab.offset + at, raw)


_built: dict[tuple[str, str], bytes] = {}


def built(model: Model, arch: str = HOST_ARCH) -> bytes:
    """build(model, arch), compiled once per test session."""
    key = (model.name, arch)
    if key not in _built:
        _built[key] = build(model, arch)
    return _built[key]
