"""The kernel runtime on arm64: one boot of Debian's arm64 kernel under qemu-system-aarch64 (-M virt
-cpu cortex-a72, TCG) running tests/kernel/guest_arm64.sh.

The models are compiled for aarch64 and built into arm64 modules by `cerebro.kmod` exactly as
`cerebroc kmod build` does (Debian's arm64 headers, kernel and busybox fetched on first use). Reference:
the user-space aarch64 runtime (cbxrun under qemu-aarch64) on the same .cbx and inputs, which runs the
same machine code, so outputs must be bit-identical; and JAX within each case's tolerance.
"""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_kernel_vm import BAD_INPUT

from cerebro import kmod
from cerebro.elf import EM_AARCH64
from cerebro.kmod_arch import ARCHES, check_shadow_call_stack, x18_instructions

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: jax_cases, cbx_fixtures, native

ARCH = ARCHES[EM_AARCH64]
JAX_MODELS = {"mlp": "model_mlp", "cnn": "model_cnn", "transformer": "model_transformer_block",
              "resnet18": "model_resnet18", "embed": "flax_embed", "depthwise": "flax_conv_depthwise"}
# (tests/test_models.py's AARCH64_MODELS, the user-space aarch64 set)
# The ioctl cases `vm-checks badinput` makes (the first part of the x86-64 matrix)
IOCTL_CASES = list(BAD_INPUT)[: list(BAD_INPUT).index("rmmod_model_in_use") + 1]
SYSFS_CASES = {"unload_model_in_use", "rmmod_model_in_use"}


def skip_reason() -> str | None:
    """Why the arm64 VM cannot run here, or None."""
    if platform.machine() not in ("x86_64", "amd64"):
        return f"the arm64 kernel is cross-built with the host's amd64 linux-kbuild; this host is {platform.machine()}"
    tools = {ARCH.qemu[0]: ARCH.qemu_package, ARCH.cc: "gcc-aarch64-linux-gnu", "qemu-aarch64-static":
             "qemu-user-static", "busybox": "busybox-static", "cpio": "cpio", "make": "make",
             "apt-get": "apt (to fetch the arm64 kernel)"}
    missing = [pkg for tool, pkg in tools.items() if not shutil.which(tool)]
    if missing:
        return f"missing Debian packages: {' '.join(missing)} (see scripts/apt-packages.txt)"
    try:
        kmod.find_kernel_release(None, ARCH)
    except kmod.KmodError as error:
        return str(error)
    return None


def _compile_jax(name: str, out: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """The JAX case compiled for aarch64 to @out: (inputs, JAX's outputs, tolerance)."""
    from jax_cases import get_case

    from cerebro.compiler import build
    from cerebro.frontends.jax import trace

    case = get_case(JAX_MODELS[name])
    variables, *inputs = case.args

    def fn(*xs):  # parameters become constants: weights in .cerebro.weights
        return case.fn(variables, *xs)

    out.write_bytes(build(trace(fn, *inputs).graph, target="aarch64", name=f"{name}_arm64"))
    want = fn(*inputs)
    want = list(want) if isinstance(want, (tuple, list)) else [want]
    return [np.asarray(x) for x in inputs], [np.asarray(w) for w in want], dict(rtol=case.rtol, atol=case.atol)


def _compile_integer(out: Path) -> tuple[list[np.ndarray], list[np.ndarray], dict]:
    """tests/integer_model.py for aarch64-gpr (fpu "none": run without a NEON section): (inputs, numpy's
    integer reference, exact)."""
    import integer_model

    from cerebro.compiler import build

    out.write_bytes(build(integer_model.graph(), target="aarch64-gpr", name="int8_arm64"))
    inputs = integer_model.inputs()
    return inputs, integer_model.reference(*inputs), dict(rtol=0, atol=0)


def _userspace(runner: list[str], cbx: Path, input_files: list[Path], out: Path) -> bytes:
    """The user-space aarch64 runtime's raw outputs for the same .cbx and inputs."""
    proc = subprocess.run([*runner, str(cbx), *map(str, input_files), "-o", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


def _split(data: bytes, specs: list) -> list[np.ndarray]:
    outputs, at = [], 0
    for spec in specs:
        outputs.append(np.frombuffer(data[at : at + spec.nbytes], spec.dtype.numpy).reshape(spec.shape))
        at += spec.nbytes
    assert at == len(data), f"{len(data)} bytes for a signature of {at}"
    return outputs


@pytest.fixture(scope="module")
def arm64_vm(tmp_path_factory) -> dict:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    import dataclasses

    import cbx_fixtures
    import native

    work = tmp_path_factory.mktemp("arm64_vm")
    runner = native.aarch64_runner(work / "cbxrun")
    models, env, files = {}, [], {}
    compiled = {name: _compile_jax(name, work / f"{name}.cbx") for name in JAX_MODELS}
    compiled["int8"] = _compile_integer(work / "int8.cbx")
    for name, (inputs, jax_out, tolerance) in compiled.items():
        cbx = work / f"{name}.cbx"
        paths = []
        for i, array in enumerate(inputs):
            paths.append(work / f"{name}_in{i}.bin")
            paths[-1].write_bytes(np.ascontiguousarray(array).tobytes())
            files[f"/root/{paths[-1].name}"] = paths[-1]
        info = kmod.read_cbx(cbx)
        models[name] = dict(cbx=cbx, inputs=inputs, jax=jax_out, tolerance=tolerance, info=info,
                            userspace=_userspace(runner, cbx, paths, work / f"{name}_user.bin"))
        env += [f"mod_{name}={info.module_name}", f"inputs_{name}='{' '.join(p.name for p in paths)}'"]
        files[f"/root/{name}.cbx"] = cbx
    out = work / "out"
    built = kmod.build_modules([m["cbx"] for m in models.values()], out)
    release = kmod.find_kernel_release(None, ARCH)
    for name, ko in zip(models, built[1:-1]):
        files[f"/root/{name}.ko"] = ko
    sve = work / "sve.cbx"
    sve.write_bytes(cbx_fixtures.build(dataclasses.replace(cbx_fixtures.AFFINE, name="sve"), "aarch64",
                                       features="+neon,+sve"))
    unregistered = work / "unregistered.cbx"
    unregistered.write_bytes(cbx_fixtures.build(dataclasses.replace(cbx_fixtures.AFFINE, name="unregistered"),
                                                "aarch64"))
    data = models["mlp"]["cbx"].read_bytes()
    (work / "truncated.cbx").write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    corrupt[0x40 + 8] ^= 0xFF  # inside .text: the content hash no longer matches
    (work / "corrupt.cbx").write_bytes(bytes(corrupt))
    (work / "models.env").write_text(f"MODELS='{' '.join(models)}'\n" + "\n".join(env) + "\n")
    files.update({"/root/cerebro.ko": built[0], "/bin/cerebro-ctl": built[-1],
                  "/bin/vm-checks": kmod.build_ctl(out, HERE / "vm_checks.c", "vm-checks", ARCH),
                  "/root/sve.ko": kmod.build_model_module(sve, out, release),
                  "/root/command_channel.sh": HERE / "command_channel.sh",
                  "/root/guest_lib.sh": HERE / "guest_lib.sh"})
    for name in ("unregistered.cbx", "truncated.cbx", "corrupt.cbx", "models.env"):
        files[f"/root/{name}"] = work / name
    script = kmod.INIT_HEADER + (HERE / "guest_arm64.sh").read_text() + kmod.INIT_FOOTER
    initrd = kmod.build_initramfs(work / "initrd.cpio", files, script, ARCH)
    log = kmod.run_in_vm(kmod.kernel_image(release, ARCH), initrd, timeout=300, arch=ARCH)
    (work / "serial.log").write_text(log)
    if "@@DONE" not in log:
        pytest.fail("the arm64 VM did not finish its script; log tail:\n" + log[-4000:])
    checks = {m.group(1): (m.group(2) == "PASS", m.group(3).strip())
              for m in re.finditer(r"^@@CHECK (\S+) (PASS|FAIL)(.*)$", log, re.M)}
    reasons = {m.group(1): m.group(2) for m in re.finditer(r"^@@REASON (\S+) (.*)$", log, re.M)}
    return dict(log=log, checks=checks, reasons=reasons, models=models, runner=runner,
                dmesg=kmod.vm_sections(log).get("dmesg", ""))


def assert_check(vm: dict, name: str) -> None:
    assert name in vm["checks"], f"the guest printed no check {name!r}"
    ok, why = vm["checks"][name]
    assert ok, f"{name}: {why}"


def test_modules_are_arm64_and_load(arm64_vm):
    for name in ("insmod_core", "device_node", *(f"insmod_{m}" for m in JAX_MODELS)):
        assert_check(arm64_vm, name)
    assert "cerebro: /dev/cerebro ready" in arm64_vm["dmesg"]


@pytest.mark.parametrize("name", [*JAX_MODELS, "int8"])
def test_model_matches_userspace_bit_for_bit_and_jax(arm64_vm, name):
    assert_check(arm64_vm, f"run_{name}")
    model = arm64_vm["models"][name]
    got = kmod.vm_file(arm64_vm["log"], f"out_{name}")
    assert got == model["userspace"], f"{name}: the kernel's outputs differ from the user-space aarch64 runtime's"
    for out, want in zip(_split(got, model["info"].outputs), model["jax"]):
        np.testing.assert_allclose(out, want, **model["tolerance"])


def test_integer_model_runs_without_neon_section(arm64_vm):
    """sysfs fpu: none for the aarch64-gpr model (its outputs: the test above, exact), simd for the float ones;
    ftrace sees no kernel_neon_begin in its runs."""
    assert kmod.vm_file(arm64_vm["log"], "fpu").decode().split() == ["int8", "none", "mlp", "simd"]
    calls = dict(line.split() for line in kmod.vm_file(arm64_vm["log"], "fpu_calls").decode().splitlines())
    assert calls["int8"] == "0" and int(calls["mlp"]) >= 5, calls  # kernel_neon_begin in 5 runs, by ftrace


def test_model_built_for_sve_is_refused_on_a_cpu_without_it(arm64_vm):
    """Cortex-A72 has no SVE: registration refuses the module (EOPNOTSUPP) instead of faulting later."""
    assert_check(arm64_vm, "insmod_sve_refused")
    dmesg = arm64_vm["dmesg"]
    after = dmesg[dmesg.index("cerebro-check: insmod_sve_refused") :]
    assert "needs CPU feature sve, which this CPU lacks" in after


@pytest.mark.parametrize("case", IOCTL_CASES)
def test_bad_ioctl_gets_errno_and_reason(arm64_vm, case):
    assert_check(arm64_vm, case)
    reason = BAD_INPUT[case][1]
    if reason is not None:
        assert reason in arm64_vm["reasons"].get(case, ""), f"{case}: reason {arm64_vm['reasons'].get(case)!r}"
    if case not in SYSFS_CASES:
        assert_check(arm64_vm, f"{case}_last_error")


def test_sysfs_pre_and_post_processing(arm64_vm):
    """scale/offset (cerebro_fp.c inside a NEON section) equals the user-space runtime on x*0.5+0.25; softmax
    within 1e-5 of numpy; argmax exact."""
    model = arm64_vm["models"]["mlp"]
    for name in ("run_pre", "run_softmax", "run_argmax"):
        assert_check(arm64_vm, name)
    work = model["cbx"].parent
    scaled = work / "mlp_pre_in.bin"
    scaled.write_bytes((model["inputs"][0] * np.float32(0.5) + np.float32(0.25)).tobytes())
    want = _userspace(arm64_vm["runner"], model["cbx"], [scaled], work / "mlp_pre_out.bin")
    assert kmod.vm_file(arm64_vm["log"], "out_pre") == want
    (logits,) = _split(model["userspace"], model["info"].outputs)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    softmax = np.frombuffer(kmod.vm_file(arm64_vm["log"], "out_softmax"), np.float32).reshape(logits.shape)
    np.testing.assert_allclose(softmax, shifted / shifted.sum(axis=-1, keepdims=True), rtol=1e-5, atol=1e-7)
    argmax = np.frombuffer(kmod.vm_file(arm64_vm["log"], "out_argmax"), np.int32)
    np.testing.assert_array_equal(argmax, logits.argmax(axis=-1))


def test_command_channel_example(arm64_vm):
    """docs/kernel.md's busybox example, run as is: the ioctls' outputs, and INFO's signature text."""
    assert_check(arm64_vm, "channel_example_matches_ioctl")
    text = kmod.vm_file(arm64_vm["log"], "channel_example").decode()
    assert f"module {arm64_vm['models']['mlp']['info'].module_name}" in text, text


def test_neon_sections_are_measured(arm64_vm):
    """The longest kernel_neon_begin/end section per model under TCG (printed for docs/kernel.md)."""
    text = kmod.vm_file(arm64_vm["log"], "sections").decode()
    print("\n" + text)
    for name in JAX_MODELS:
        found = re.search(rf"^{name} stages (\d+) max_fpu_section_ns (\d+) mean_latency_ns (\d+)$", text, re.M)
        assert found and int(found.group(2)) > 0 and int(found.group(3)) > 0, text


def test_dmesg_free_of_oops_bug_warning(arm64_vm):
    for bad in ("Oops", "BUG:", "WARNING:", "Call Trace", "Internal error", "Kernel panic"):
        assert bad not in arm64_vm["log"], f"{bad!r} in the arm64 VM log"


def test_generated_code_leaves_x18_alone(arm64_vm):
    """The aarch64 target reserves x18, where kernels with shadow call stacks (Android's GKI) keep its pointer."""
    for name, model in arm64_vm["models"].items():
        assert x18_instructions(model["cbx"]) == [], f"{name} uses x18"


def test_shadow_call_stack_kernel_refuses_code_using_x18(tmp_path):
    """A kernel built with CONFIG_SHADOW_CALL_STACK gets no module whose code writes x18 (an older .cbx)."""
    if not shutil.which("aarch64-linux-gnu-objdump"):
        pytest.skip("aarch64-linux-gnu-objdump missing (Debian: binutils-aarch64-linux-gnu)")
    import dataclasses

    import cbx_fixtures

    clean, dirty = tmp_path / "clean.cbx", tmp_path / "x18.cbx"
    clean.write_bytes(cbx_fixtures.build(cbx_fixtures.AFFINE, "aarch64"))
    # 30 values live at once (volatile loads, then stores): without +reserve-x18, LLVM allocates x18 too
    loads = "".join(f"  %p{i} = getelementptr i64, ptr %arena, i64 {i}\n  %v{i} = load volatile i64, ptr %p{i}\n"
                    for i in range(30))
    stores = "".join(f"  store volatile i64 %v{i}, ptr %p{29 - i}\n" for i in range(30))
    body = loads + stores + "  ret i32 0"
    dirty.write_bytes(cbx_fixtures.build(dataclasses.replace(cbx_fixtures.AFFINE, name="x18", body=body), "aarch64"))
    scs, debian = "CONFIG_SHADOW_CALL_STACK=y\n", "# CONFIG_SHADOW_CALL_STACK is not set\n"
    check_shadow_call_stack(scs, clean)
    check_shadow_call_stack(debian, dirty)
    refusal = r"uses x18 \('[0-9a-f]+:\s+\w+\s.*\bx18\b.*'\), which this kernel's shadow call stack"
    with pytest.raises(kmod.KmodError, match=refusal):
        check_shadow_call_stack(scs, dirty)
