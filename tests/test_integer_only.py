"""Integer-only models for general-purpose-register targets (fpu "none": x86_64-gpr, aarch64-gpr).

Bit-exact against numpy's integer reference on x86-64 and on aarch64 under qemu-user, for a model built
with the IR builder (matmul_integer in both forms, fixed-point requantization) and one written in JAX
(int8 dot_general accumulating in int32, integer multiply/shift/clip/astype); the meta records fpu
"none" and the code names no FP/SIMD register. Refused with one line: a float op, and an object that
uses an FP/SIMD register, at compile time and in `cerebroc kmod build` (crafted: SIMD code whose meta
claims fpu "none"). The kernel running it without an FPU section is tests/kernel's VM test.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys

import integer_model
import native
import numpy as np
import pytest
from cbx_fixtures import HOST_ARCH, patch, section
from test_aarch64_runtime import run_cbxrun, split_outputs

from cerebro import kmod, runtime
from cerebro.compiler import build, fpu_check
from cerebro.compiler.cbx.format import CbxError
from cerebro.compiler.cbx.reader import read_cbx
from cerebro.compiler.fpu_check import FpuCheckError, fp_instructions, touches_fp
from cerebro.compiler.targets import TARGETS
from cerebro.elf import EM_AARCH64, EM_X86_64
from cerebro.toolchain import build_cbxrun

FPU_OFFSET = 518  # offsetof(struct cbx_meta, fpu)
GPR = {"x86_64": "x86_64-gpr", "aarch64": "aarch64-gpr"}
MACHINE = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}


@pytest.fixture(scope="module")
def aarch64_runner(tmp_path_factory) -> list[str]:
    return native.aarch64_runner(tmp_path_factory.mktemp("cbxrun-aarch64"))


@pytest.fixture(scope="module")
def gpr_objects() -> dict[str, bytes]:
    return {arch: build(integer_model.graph(), target=target) for arch, target in GPR.items()}


def jax_model():
    """The same kind of model in JAX, with its weights, input and numpy reference."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(5)
    w1, w2 = rng.integers(-128, 128, (32, 16), dtype=np.int8), rng.integers(-128, 128, (16, 10), dtype=np.int8)
    bias = rng.integers(-2000, 2000, 16, dtype=np.int32)
    x = rng.integers(-128, 128, (4, 32), dtype=np.int8)
    contract = (((1,), (0,)), ((), ()))

    def requantize(acc, multiplier, shift, low):
        return jnp.clip((acc * multiplier + (1 << (shift - 1))) >> shift, low, 127).astype(jnp.int8)

    def fn(x):
        acc1 = jax.lax.dot_general(x, w1, contract, preferred_element_type=jnp.int32) + bias
        acc2 = jax.lax.dot_general(requantize(acc1, 77, 14, 0), w2, contract, preferred_element_type=jnp.int32)
        return requantize(acc2, 93, 13, -128), acc2

    def reference(x):
        def requant(acc, multiplier, shift, low):
            return np.clip((acc * multiplier + (1 << (shift - 1))) >> shift, low, 127).astype(np.int8)

        acc1 = x.astype(np.int64) @ w1 + bias
        acc2 = requant(acc1, 77, 14, 0).astype(np.int64) @ w2
        return [requant(acc2, 93, 13, -128), acc2.astype(np.int32)]

    return fn, x, reference


def _run(arch: str, data: bytes, inputs: list[np.ndarray], like: list[np.ndarray], runner, tmp_path) -> list:
    """The outputs of data on inputs: the runtime on this host, cbxrun under qemu-aarch64 otherwise."""
    if arch == HOST_ARCH:
        return runtime.load(data)(*inputs)
    result = run_cbxrun(runner, data, inputs, tmp_path)
    assert result.returncode == 0, result.stderr
    return split_outputs((tmp_path / "out.bin").read_bytes(), like)


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_ir_model_bit_exact_without_fp_registers(arch, gpr_objects, request, tmp_path):
    data = gpr_objects[arch]
    meta = read_cbx(data).meta
    assert (meta.fpu, meta.machine) == ("none", MACHINE[arch])
    assert fp_instructions(data, MACHINE[arch]) == []
    runner = request.getfixturevalue("aarch64_runner") if arch != HOST_ARCH else None
    x = integer_model.inputs()
    expected = integer_model.reference(*x)
    for got, want in zip(_run(arch, data, x, expected, runner, tmp_path), expected):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_jax_model_bit_exact_without_fp_registers(arch, request, tmp_path):
    import cerebro

    fn, x, reference = jax_model()
    path = tmp_path / "jax_int.cbx"
    cerebro.compile(fn, target=GPR[arch], cache=False).export(path, x)
    data = path.read_bytes()
    assert read_cbx(data).meta.fpu == "none"
    assert fp_instructions(data, MACHINE[arch]) == []
    assert "fpu:       none" in subprocess.run([sys.executable, "-m", "cerebro.cli", "inspect", str(path)],
                                                capture_output=True, text=True, check=True).stdout
    runner = request.getfixturevalue("aarch64_runner") if arch != HOST_ARCH else None
    expected = reference(x)
    for got, want in zip(_run(arch, data, [x], expected, runner, tmp_path), expected):
        np.testing.assert_array_equal(got, want)


def test_float_op_is_refused_naming_op_and_location():
    import jax.numpy as jnp

    import cerebro

    def halve(x):
        return (x.astype(jnp.float32) * 0.5).astype(jnp.int32)

    with pytest.raises(FpuCheckError) as error:
        cerebro.compile(halve, target="x86_64-gpr", cache=False).export("/dev/null", np.zeros(4, np.int8))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("'convert' at test_integer_only.py:") and "output 0 is f32" in message
    with pytest.raises(FpuCheckError, match="input 'x' is f32"):
        cerebro.compile(lambda x: x + 1, target="x86_64-gpr", cache=False).export("/dev/null", np.zeros(4, np.float32))


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_object_with_fp_registers_is_refused_at_compile_time(arch):
    """A target that claims fpu "none" but lets LLVM use SSE/NEON: the disassembly check refuses its object."""
    simd = dataclasses.replace(TARGETS[arch], name=f"{arch}-simd-claiming-none", fpu="none")
    register = {"x86_64": "%xmm", "aarch64": " [bhsdqv][0-9]"}[arch]
    with pytest.raises(FpuCheckError, match=f"model 'int8_mlp': fpu 'none' but the code uses FP/SIMD registers "
                                            f"in \\d+ instruction\\(s\\), first \\S+: .*{register}"):
        build(integer_model.graph(), target=simd)


def _claiming_none(data: bytes) -> bytes:
    """A .cbx of SIMD code whose meta says fpu "none" (resealed: a valid file, only the claim is false)."""
    return patch(data, section(data, ".cerebro.meta").offset + FPU_OFFSET, (1).to_bytes(2, "little"))


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_kmod_build_refuses_fp_code_claiming_fpu_none(arch, tmp_path):
    crafted = tmp_path / "crafted.cbx"
    crafted.write_bytes(_claiming_none(build(integer_model.graph(), target=arch)))
    assert read_cbx(crafted.read_bytes()).meta.fpu == "none"
    with pytest.raises(kmod.KmodError, match=r"crafted.cbx: fpu 'none' but the code uses FP/SIMD registers"):
        kmod.build_modules([crafted], tmp_path / "out", "0.0.0-no-such-kernel")
    assert not (tmp_path / "out" / "cerebro.ko").exists()  # refused before anything was built


def test_unknown_fpu_value_is_refused(gpr_objects, tmp_path):
    """By the Python reader and by the C parser the runtimes and cerebro.ko share (runtime_kmod/core/meta.c)."""
    data = gpr_objects[HOST_ARCH]
    bad = patch(data, section(data, ".cerebro.meta").offset + FPU_OFFSET, (2).to_bytes(2, "little"))
    with pytest.raises(CbxError, match=r"bad .cerebro.meta: fpu 2 \(0 simd, 1 none\)"):
        read_cbx(bad)
    result = run_cbxrun([str(build_cbxrun(HOST_ARCH, tmp_path / "cbxrun"))], bad, integer_model.inputs(), tmp_path)
    assert result.returncode != 0 and "bad .cerebro.meta: fpu 2" in result.stderr, result.stderr


@pytest.mark.parametrize("tool", ["objdump", "aarch64-linux-gnu-objdump", "llvm-objdump"])
def test_every_disassembler_sees_the_fp_registers(tool, gpr_objects, monkeypatch):
    """The patterns read binutils' and LLVM's syntax alike: SIMD code is caught, GPR code passes."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")
    arches = [arch for arch in ("x86_64", "aarch64") if tool in fpu_check.DISASSEMBLERS[MACHINE[arch]]]
    for arch in arches:
        monkeypatch.setitem(fpu_check.DISASSEMBLERS, MACHINE[arch], (tool,))
        assert fp_instructions(gpr_objects[arch], MACHINE[arch]) == []
        assert len(fp_instructions(build(integer_model.graph(), target=arch), MACHINE[arch])) > 10


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_every_integer_kernel_compiles_without_fp_registers(arch):
    """test_codegen_kernels' kernels of integer types (and matmul_integer's forms, via the model above) on a
    target with no vector registers: instruction selection succeeds, calls nothing, names no FP register."""
    from test_codegen_kernels import _EVERY_KERNEL, _module, _optimised, one_node

    target = TARGETS[GPR[arch]]
    integer = [case for case in _EVERY_KERNEL if all(np.dtype(dtype).kind in "iub" for _, dtype in case[1])]
    assert len(integer) >= 4
    for op, inputs, attrs in integer:
        node = one_node(op, [np.zeros(shape, dtype) for shape, dtype in inputs], **attrs)
        parsed, machine = _optimised(_module(node, target), target)
        assert fp_instructions(machine.emit_object(parsed), MACHINE[arch]) == [], op
        asm = machine.emit_assembly(parsed)
        calls = re.findall(r"^\s+(?:call\w*|jmp|bl|b)\s+([A-Za-z_]\w*)(?:@PLT)?\s*$", asm, re.M)
        assert set(calls) <= {"memcpy", "memset"}, (op, calls)  # no soft-float or libgcc helper


# (machine, instruction as objdump prints it, touches FP/SIMD state)
INSTRUCTIONS = [
    (EM_X86_64, "movdqu %xmm0, (%rsi)", True), (EM_X86_64, "vpaddd %ymm1, %ymm2, %ymm3", True),
    (EM_X86_64, "kmovw %k1, %eax", True), (EM_X86_64, "paddd %mm0, %mm1", True), (EM_X86_64, "fld %st(1)", True),
    (EM_X86_64, "fnstcw -2(%rsp)", True), (EM_X86_64, "ldmxcsr (%rsp)", True), (EM_X86_64, "wait", True),
    (EM_X86_64, "xsave64 (%rdi)", True), (EM_X86_64, "vzeroupper", True),
    (EM_X86_64, "imull $0x4d, %eax, %eax", False), (EM_X86_64, "rep stosq %rax, %es:(%rdi)", False),
    (EM_X86_64, "jmp 0x40 <node0_add+0x40>", False), (EM_X86_64, "movl $0x1, %eax  # imm = 0x1", False),
    (EM_AARCH64, "ldp q0, q1, [x0]", True), (EM_AARCH64, "sshll v0.8h, v0.8b, #0", True),
    (EM_AARCH64, "fmov s0, w1", True), (EM_AARCH64, "ldr d31, [x2]", True), (EM_AARCH64, "msr fpcr, x0", True),
    (EM_AARCH64, "mrs x1, fpsr", True), (EM_AARCH64, "ld1w {z0.s}, p0/z, [x0]", True),
    (EM_AARCH64, "b b4 <node3_add+0xb4>", False), (EM_AARCH64, "cbz w0, d8 <f+0xd8>", False),
    (EM_AARCH64, "b.cs 6c <node0_convert+0x6c>  // b.hs, b.nlast", False),
    (EM_AARCH64, "csel x8, xzr, x8, hi\t// hi = pmore", False), (EM_AARCH64, "prfm pldl1keep, [x0]", False),
    (EM_AARCH64, "madd w8, w9, w10, w8", False), (EM_AARCH64, "ldrsb w15, [x14, #-1]", False),
]


@pytest.mark.parametrize("machine,instruction,fp", INSTRUCTIONS, ids=lambda v: v if isinstance(v, str) else None)
def test_fp_patterns_per_instruction(machine, instruction, fp):
    """Registers and the state instructions that name none (MXCSR, FPCR, x87 control) are caught; addresses
    of branch targets (b4, d8) and comments are not read as registers."""
    assert touches_fp(instruction, machine) is fp
