"""Host-only checks: the Python mirror of uapi.h, .cbx reading, module naming, build errors."""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import pytest

from cerebro import kernel, kmod

STRUCTS = {"cerebro_load": kernel.Load, "cerebro_buffer": kernel.Buffer, "cerebro_io": kernel.IO,
           "cerebro_tensor_info": kernel.TensorInfo, "cerebro_info": kernel.Info,
           "cerebro_handle_arg": kernel.HandleArg, "cerebro_last_error": kernel.LastError}


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory):
    """sizeof/offsetof of every uapi struct and the ioctl numbers, as the C compiler sees them."""
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    tmp = tmp_path_factory.mktemp("uapi")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <cerebro/uapi.h>", "int main(void) {"]
    for name, struct in STRUCTS.items():
        lines.append(f'printf("{name} sizeof %zu\\n", sizeof(struct {name}));')
        for field, _ in struct._fields_:
            lines.append(f'printf("{name} {field} %zu\\n", offsetof(struct {name}, {field}));')
    for name in kernel.IOCTLS:
        lines.append(f'printf("ioctl {name} %lu\\n", (unsigned long)CEREBRO_IOC_{name});')
    lines += ["return 0;", "}"]
    (tmp / "layout.c").write_text("\n".join(lines))
    subprocess.run(["gcc", "-std=gnu11", f"-I{kmod.KMOD_SRC / 'include'}", "-o", str(tmp / "layout"),
                    str(tmp / "layout.c")], check=True)
    out = subprocess.run([str(tmp / "layout")], capture_output=True, text=True, check=True).stdout
    return {tuple(line.split()[:2]): int(line.split()[2]) for line in out.splitlines()}


@pytest.mark.parametrize("name", list(STRUCTS))
def test_python_structs_match_uapi_header(c_layout, name):
    struct = STRUCTS[name]
    assert ctypes.sizeof(struct) == c_layout[(name, "sizeof")]
    for field, _ in struct._fields_:
        assert getattr(struct, field).offset == c_layout[(name, field)], field


def test_ioctl_numbers_match_uapi_header(c_layout):
    for name, number in kernel.IOCTLS.items():
        assert number == c_layout[("ioctl", name)], name


def test_read_cbx_and_module_name(tmp_path):
    import sys

    sys.path.insert(0, str(kmod.REPO_ROOT / "tests"))
    import cbx_fixtures

    path = tmp_path / "two.cbx"
    path.write_bytes(cbx_fixtures.build(cbx_fixtures.TWO_IO, "x86_64"))
    info = kmod.read_cbx(path)
    assert [t.name for t in info.inputs] == ["a", "b"] and [t.name for t in info.outputs] == ["s", "d"]
    assert info.inputs[1].dtype.numpy.name == "int32" and info.outputs[0].shape == (3,)
    assert info.module_name == "cbx_" + info.hash[:16] and len(info.hash) == 64


def test_read_cbx_refuses_other_files(tmp_path):
    not_elf = tmp_path / "x.cbx"
    not_elf.write_bytes(b"hello")
    with pytest.raises(kmod.KmodError, match="not an ELF"):
        kmod.read_cbx(not_elf)
    with pytest.raises(kmod.KmodError, match="not a .cbx"):
        kmod.read_cbx(shutil.which("gcc") or "/bin/sh")


def test_unknown_kernel_release_is_a_clear_error():
    with pytest.raises(kmod.KmodError, match="no kernel headers for 0.0-none"):
        kmod.find_kernel_release("0.0-none")


def test_model_module_build_enforces_return_thunks(tmp_path):
    """objtool runs on the .cbx code: code that returns without the kernel's return thunk is refused."""
    import sys

    try:
        release = kmod.find_kernel_release()
    except kmod.KmodError as error:
        pytest.skip(str(error))
    sys.path.insert(0, str(kmod.REPO_ROOT / "tests"))
    import cbx_fixtures

    from cerebro.compiler.cbx import finish_object

    model = cbx_fixtures.AFFINE
    text = cbx_fixtures.module_text(model, "x86_64").replace("fn_ret_thunk_extern", "")
    bare = finish_object(cbx_fixtures.compile_object(text, "x86_64"), cbx_fixtures.meta_for(model, "x86_64"),
                         model.weights)
    (tmp_path / "bare.cbx").write_bytes(bare)
    kmod.build_core(tmp_path, release)
    with pytest.raises(kmod.KmodError, match="'naked' return found in RETHUNK build"):
        kmod.build_model_module(tmp_path / "bare.cbx", tmp_path, release)
    (tmp_path / "good.cbx").write_bytes(cbx_fixtures.build(model, "x86_64"))
    assert kmod.build_model_module(tmp_path / "good.cbx", tmp_path, release).exists()


def test_aarch64_cbx_needs_an_arm64_kernel_and_one_architecture_per_build(tmp_path):
    """An aarch64 .cbx builds for Debian's arm64 kernel (tests/kernel/test_arm64_vm.py): an amd64 release
    or a build mixing architectures is refused before anything is fetched or built."""
    import sys

    sys.path.insert(0, str(kmod.REPO_ROOT / "tests"))
    import cbx_fixtures

    arm, x86 = tmp_path / "arm.cbx", tmp_path / "x86.cbx"
    arm.write_bytes(cbx_fixtures.build(cbx_fixtures.AFFINE, "aarch64"))
    x86.write_bytes(cbx_fixtures.build(cbx_fixtures.AFFINE, "x86_64"))
    assert kmod.read_cbx(arm).machine == 183
    with pytest.raises(kmod.KmodError, match="needs a Debian arm64 kernel release"):
        kmod.build_modules([arm], tmp_path / "out", "6.1.0-57-amd64")
    with pytest.raises(kmod.KmodError, match="one build takes models of one architecture; got aarch64, x86_64"):
        kmod.build_modules([arm, x86], tmp_path / "out")
    assert not (tmp_path / "out" / "build").exists()
