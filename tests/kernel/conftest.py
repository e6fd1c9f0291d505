"""Shared fixtures for the kernel tests: compile the models, build the modules, boot one VM.

Everything runs once per session: the models (JAX MLP, CNN, transformer block
from tests/jax_cases.py, plus hand-written .cbx fixtures) are compiled for
plain x86-64 (QEMU's TCG has no AVX-512), their modules built against the
installed Debian headers, and one QEMU boot runs tests/kernel/guest.sh. Tests
then assert on its "@@CHECK" lines, files and dmesg.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

# shared with the test modules, which cannot import from conftest (see vm_support.py)
from vm_support import CHUNKS, TARGET, WIDE_ARENA, WIDE_OUTPUTS, skip_reason

from cerebro import kmod

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: jax_cases, cbx_fixtures

SLOW_STAGES = 65535  # the stage word's limit
SLOW_SPINS = 2_000_000  # per stage: about 1 ms on a 2 GHz core, 10-50 ms under TCG
JAX_MODELS = {"mlp": "model_mlp", "cnn": "model_cnn", "transformer": "model_transformer_block"}
# The transformer block is split into several stages (one FPU section each) on purpose.
STAGE_FLOPS = {"transformer": 60_000}  # 8 stages: the entry switch must not become a jump table


@dataclass
class ModelCase:
    name: str
    cbx: Path
    inputs: list[np.ndarray]
    expected: list[np.ndarray]  # the user-space runtime's outputs for the same .cbx
    module: str = ""


@dataclass
class VmResult:
    log: str
    checks: dict[str, tuple[bool, str]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    dmesg: str = ""
    models: dict[str, ModelCase] = field(default_factory=dict)

    def file(self, name: str) -> bytes:
        return kmod.vm_file(self.log, name)

    def text(self, name: str) -> str:
        return self.file(name).decode(errors="replace")


def _compile_jax(name: str, out: Path, target: str = TARGET) -> ModelCase:
    """A JAX case compiled to @out; expected outputs from the user-space runtime (for TARGET only)."""
    from jax_cases import get_case

    from cerebro import runtime
    from cerebro.compiler import build
    from cerebro.frontends.jax import trace

    case = get_case(JAX_MODELS[name])
    variables, *inputs = case.args

    def fn(*xs):  # parameters become constants: weights in .cerebro.weights
        return case.fn(variables, *xs)

    stage_flops = STAGE_FLOPS.get(name, 20_000_000)
    model_name = name if target == TARGET else f"{name}_{target}"
    data = build(trace(fn, *inputs).graph, target=target, name=model_name, stage_flops=stage_flops)
    out.write_bytes(data)
    inputs = [np.asarray(x) for x in inputs]
    return ModelCase(name, out, inputs, runtime.load(data)(*inputs) if target == TARGET else [])


def _compile_fixture(name: str, model, out: Path, inputs: list[np.ndarray]) -> ModelCase:
    import cbx_fixtures

    from cerebro import runtime

    data = cbx_fixtures.build(model, "x86_64")
    out.write_bytes(data)
    return ModelCase(name, out, inputs, runtime.load(data)(*inputs))


def _compile_integer(out: Path) -> ModelCase:
    """tests/integer_model.py for x86_64-gpr (fpu "none"): the kernel runs it without an FPU section."""
    import integer_model

    from cerebro import runtime
    from cerebro.compiler import build

    data = build(integer_model.graph(), target="x86_64-gpr", name="int8")
    out.write_bytes(data)
    inputs = integer_model.inputs()
    return ModelCase("int8", out, inputs, runtime.load(data)(*inputs))


def compile_wide(out: Path) -> Path:
    """A model with WIDE_OUTPUTS outputs and a WIDE_ARENA arena whose entry does nothing (never run)."""
    import cbx_fixtures

    from cerebro.compiler.cbx import TensorSpec
    from cerebro.compiler.ir.dtypes import DType

    outputs = [TensorSpec(f"probability_of_class_{i:03d}", (1,), DType.f32) for i in range(WIDE_OUTPUTS)]
    model = cbx_fixtures.Model(name="wide", body="  ret i32 0", inputs=[TensorSpec("x", (1,), DType.f32)],
                               outputs=outputs, arena_size=WIDE_ARENA)
    out.write_bytes(cbx_fixtures.build(model, "x86_64"))
    return out


def compile_slow(out: Path) -> Path:
    """A model whose SLOW_STAGES stages each spin SLOW_SPINS times (minutes in all even on real hardware).

    Never run to the end: the VM kills a call of it to show a fatal signal ends EXECUTE between stages."""
    import cbx_fixtures

    from cerebro.compiler.cbx import TensorSpec
    from cerebro.compiler.ir.dtypes import DType

    spin = cbx_fixtures.elementwise_loop(SLOW_SPINS, "", "  store volatile i64 %i, ptr %arena")
    model = cbx_fixtures.Model(name="slow", body=spin, inputs=[TensorSpec("x", (1,), DType.f32)],
                               outputs=[TensorSpec("y", (1,), DType.f32)], num_stages=SLOW_STAGES, arena_size=64)
    out.write_bytes(cbx_fixtures.build(model, "x86_64"))
    return out


def compile_symbols(out: Path) -> Path:
    """A valid, resealed .cbx with 40 000 extra symbols sharing one 2 MiB name (tests/test_image_parse.py)."""
    from test_image_parse import symbols_sharing_one_name

    out.write_bytes(symbols_sharing_one_name(2 << 20, extra=40_000))
    return out


def _compile_chunked(out: Path) -> ModelCase:
    """tests/test_batch_chunks.py's ONNX CNN at batch 4 in 4 chunks of 1 (the cache budget made tiny): its split
    calls could use 4 arena regions; cerebro.ko runs one part, in one region (meta.arena_size)."""
    from test_batch_chunks import _cnn

    from cerebro import runtime
    from cerebro.compiler import build
    from cerebro.compiler.passes import batch_chunks
    from cerebro.frontends.onnx import import_onnx

    rng = np.random.default_rng(5)
    graph = import_onnx(_cnn(CHUNKS, rng).SerializeToString())
    budget, batch_chunks.CACHE_BUDGET = batch_chunks.CACHE_BUDGET, 1
    try:
        data = build(graph, target=TARGET, name="chunked")
    finally:
        batch_chunks.CACHE_BUDGET = budget
    out.write_bytes(data)
    inputs = [rng.normal(size=(CHUNKS, 3, 16, 16)).astype(np.float32)]
    return ModelCase("chunked", out, inputs, runtime.load(data)(*inputs))


def compile_regions_lie(chunked: Path, out: Path) -> Path:
    """The chunked model resealed with 300 regions (more than its 256 parts): the loader must refuse it."""
    import struct

    import cbx_fixtures

    data = chunked.read_bytes()
    at = cbx_fixtures.section(data, ".cerebro.meta").offset + 520  # offsetof(struct cbx_meta, regions)
    out.write_bytes(cbx_fixtures.patch(data, at, struct.pack("<I", 300)))
    return out


def compile_models(workdir: Path) -> tuple[dict[str, ModelCase], Path]:
    """Every model the VM runs, plus a valid .cbx whose module is never built (for ENOPKG)."""
    import cbx_fixtures

    rng = np.random.default_rng(7)
    models = {name: _compile_jax(name, workdir / f"{name}.cbx") for name in JAX_MODELS}
    models["twoio"] = _compile_fixture("twoio", cbx_fixtures.TWO_IO, workdir / "twoio.cbx",
                                       [rng.standard_normal(3).astype(np.float32),
                                        np.array([3, -4, 5], np.int32)])
    models["staged"] = _compile_fixture("staged", cbx_fixtures.STAGED, workdir / "staged.cbx",
                                        [rng.standard_normal(256).astype(np.float32)])
    models["tiny"] = _compile_fixture("tiny", cbx_fixtures.AFFINE, workdir / "tiny.cbx",
                                      [rng.standard_normal((2, 4)).astype(np.float32)])
    models["int8"] = _compile_integer(workdir / "int8.cbx")
    models["chunked"] = _compile_chunked(workdir / "chunked.cbx")
    unregistered = workdir / "unregistered.cbx"
    unregistered.write_bytes(cbx_fixtures.build(dataclasses.replace(cbx_fixtures.AFFINE, name="unregistered")))
    return models, unregistered


def python_files(workdir: Path) -> dict[str, Path]:
    """This interpreter, its stdlib, numpy, ml_dtypes and cerebro/kernel.py (with the signature class it imports),
    at paths where the guest finds them."""
    import subprocess
    import sysconfig

    import ml_dtypes
    import numpy

    exe = Path(os.path.realpath(sys.executable))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    numpy_dir = Path(numpy.__file__).parent
    ml_dtypes_dir = Path(ml_dtypes.__file__).parent  # dtypes.py's bfloat16
    (workdir / "empty.py").write_text("")
    files = {str(exe): exe, str(stdlib): stdlib, "/py/numpy": numpy_dir,
             "/py/cerebro/__init__.py": workdir / "empty.py",
             "/py/cerebro/kernel.py": kmod.REPO_ROOT / "cerebro" / "kernel.py", "/py/ml_dtypes": ml_dtypes_dir}
    for package in ("compiler", "compiler/cbx", "compiler/ir"):
        files[f"/py/cerebro/{package}/__init__.py"] = workdir / "empty.py"
    for module in ("compiler/cbx/format.py", "compiler/ir/dtypes.py"):
        files[f"/py/cerebro/{module}"] = kmod.REPO_ROOT / module
    for module in ("elf.py", "binread.py"):  # format.py names machines by cerebro/elf.py's table
        files[f"/py/cerebro/{module}"] = kmod.REPO_ROOT / "cerebro" / module
    if (numpy_dir.parent / "numpy.libs").is_dir():
        files["/py/numpy.libs"] = numpy_dir.parent / "numpy.libs"
    binaries = [exe, *stdlib.glob("lib-dynload/*.so"), *numpy_dir.rglob("*.so"), *ml_dtypes_dir.rglob("*.so")]
    ldd = subprocess.run(["ldd", *map(str, binaries)], capture_output=True, text=True).stdout
    for lib in set(re.findall(r"(/\S+\.so[.\d]*) \(0x", ldd)):
        if not lib.startswith(str(numpy_dir.parent)):
            files[lib] = Path(lib)
    return files


def parse_checks(log: str) -> dict[str, tuple[bool, str]]:
    checks = {}
    for m in re.finditer(r"^@@CHECK (\S+) (PASS|FAIL)(.*)$", log, re.M):
        checks[m.group(1)] = (m.group(2) == "PASS", m.group(3).strip())
    return checks


def parse_reasons(log: str) -> dict[str, str]:
    """case -> the last_error it left ("@@REASON name text" lines from vm_checks.c)."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^@@REASON (\S+) (.*)$", log, re.M)}


def boot_test_vm(workdir: Path) -> VmResult:
    release = kmod.find_kernel_release()
    models, unregistered = compile_models(workdir)
    out = workdir / "out"
    paths = kmod.build_modules([m.cbx for m in models.values()], out, release)
    checker = kmod.build_ctl(out, HERE / "vm_checks.c", "vm-checks")
    files = {"/root/cerebro.ko": paths[0], "/bin/cerebro-ctl": paths[-1], "/bin/vm-checks": checker,
             "/root/unregistered.cbx": unregistered}
    # AVX-512 code: QEMU's TCG CPU lacks it, so registration must refuse it
    v4 = _compile_jax("mlp", workdir / "mlp_v4.cbx", target="x86_64-v4")
    files["/root/v4.ko"] = kmod.build_model_module(v4.cbx, out, release)
    wide = compile_wide(workdir / "wide.cbx")
    wide_ko = kmod.build_model_module(wide, out, release)
    files.update({"/root/wide.cbx": wide, "/root/wide.ko": wide_ko})
    slow = compile_slow(workdir / "slow.cbx")
    files.update({"/root/slow.cbx": slow, "/root/slow.ko": kmod.build_model_module(slow, out, release),
                  "/root/symbols.cbx": compile_symbols(workdir / "symbols.cbx"),
                  "/root/regions_lie.cbx": compile_regions_lie(models["chunked"].cbx, workdir / "regions_lie.cbx")})
    env = [f"MODELS='{' '.join(models)}'", f"PYTHON={os.path.realpath(sys.executable)}",
           f"mod_wide={wide_ko.stem}", f"WIDE_ARENA={WIDE_ARENA}"]
    files.update(python_files(workdir))
    files["/root/guest_api.py"] = HERE / "guest_api.py"
    files["/root/command_channel.sh"] = HERE / "command_channel.sh"
    files["/root/guest_lib.sh"] = HERE / "guest_lib.sh"
    for (name, model), ko in zip(models.items(), paths[1:-1]):
        model.module = ko.stem
        files[f"/root/{name}.ko"] = ko
        files[f"/root/{name}.cbx"] = model.cbx
        names = []
        for i, array in enumerate(model.inputs):
            path = workdir / f"{name}_in{i}.bin"
            path.write_bytes(np.ascontiguousarray(array).tobytes())
            files[f"/root/{path.name}"] = path
            names.append(path.name)
        env += [f"mod_{name}={model.module}", f"inputs_{name}='{' '.join(names)}'"]
    data = models["mlp"].cbx.read_bytes()
    (workdir / "truncated.cbx").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    corrupt[0x40 + 8] ^= 0xFF  # inside .text: the content hash no longer matches
    (workdir / "corrupt.cbx").write_bytes(bytes(corrupt))
    (workdir / "models.env").write_text("\n".join(env) + "\n")
    for name in ("truncated.cbx", "corrupt.cbx", "models.env"):
        files[f"/root/{name}"] = workdir / name
    script = kmod.INIT_HEADER + (HERE / "guest.sh").read_text() + kmod.INIT_FOOTER
    initrd = kmod.build_initramfs(workdir / "initrd.cpio", files, script)
    log = kmod.run_in_vm(kmod.kernel_image(release), initrd, timeout=400)
    (workdir / "serial.log").write_text(log)
    sections = kmod.vm_sections(log)
    return VmResult(log, parse_checks(log), parse_reasons(log), sections.get("dmesg", ""), models)


@pytest.fixture(scope="session")
def vm(tmp_path_factory) -> VmResult:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    result = boot_test_vm(tmp_path_factory.mktemp("kernel_vm"))
    if "@@DONE" not in result.log:
        pytest.fail("the VM did not finish its script; log tail:\n" + result.log[-4000:])
    return result
