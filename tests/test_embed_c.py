"""A model in a C program, both ways (docs/embedding.md), against jax.jit (float32: rtol 1e-5, atol 1e-6).

Direct: `cerebroc export-c` gives model.o + model.h and tests/embed_c/direct_main.c links them with
the system C compiler. Library: `cerebroc runtime-lib` gives libcerebro_runtime.a + cerebro_runtime.h
and tests/embed_c/runtime_main.c loads the .cbx from its file and from memory. Each runs on x86-64
and, under qemu-aarch64-static, on aarch64 (aarch64-linux-gnu-gcc -static).
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cerebro import elf as elfmod
from cerebro.cli import main as cerebroc
from cerebro.compiler.cbx.cheader import arena_bytes
from cerebro.compiler.cbx.format import CbxError
from cerebro.compiler.cbx.reader import read_cbx
from cerebro.compiler.cbx.relink import linkable_object
from cerebro.compiler.driver import build
from cerebro.frontends.jax import trace

RTOL, ATOL = 1e-5, 1e-6
SOURCES = Path(__file__).parent / "embed_c"
HOST = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
# arch -> (compiler target, C compiler, its flags, the command prefix that runs its programs here)
ARCHES = {
    "x86_64": ("host", "gcc", [], []),
    "aarch64": ("aarch64", "aarch64-linux-gnu-gcc", ["-static"], [] if HOST == "aarch64" else ["qemu-aarch64-static"]),
}

_rng = np.random.default_rng(3)
W1, B1 = _rng.standard_normal((16, 32)).astype(np.float32) / 4, _rng.standard_normal(32).astype(np.float32)
W2 = _rng.standard_normal((32, 5)).astype(np.float32) / 4


def mlp(x, shift):
    """Two inputs, two outputs: their order in the C buffers must follow the signature."""
    hidden = jnp.maximum(x @ W1 + B1, 0.0)
    return jnp.tanh(hidden @ W2 + shift), hidden.sum(axis=1)


INPUTS = [_rng.standard_normal((3, 16)).astype(np.float32), _rng.standard_normal(5).astype(np.float32)]


@pytest.fixture(scope="module")
def expected() -> list[np.ndarray]:
    return [np.asarray(out) for out in jax.jit(mlp)(*INPUTS)]


@pytest.fixture(scope="module", params=list(ARCHES))
def arch(request, tmp_path_factory) -> dict:
    """Per arch: the .cbx (one stage per node, so model_run walks several), the compiler and the runner."""
    name = request.param
    target, cc, flags, runner = ARCHES[name]
    if name != HOST and not (name == "aarch64" and HOST == "x86_64"):
        pytest.skip(f"{name} programs cannot run on a {HOST} host")
    missing = [tool for tool in (cc, *runner) if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing (Debian: gcc-aarch64-linux-gnu qemu-user-static)")
    work = tmp_path_factory.mktemp(f"embed-{name}")
    cbx = work / "mlp.cbx"
    cbx.write_bytes(build(trace(mlp, *INPUTS, name="mlp").graph, target=target, stage_flops=0))
    for index, array in enumerate(INPUTS):
        array.astype("<f4").tofile(work / f"in{index}.bin")
    return dict(name=name, cc=cc, flags=flags, runner=runner, work=work, cbx=cbx,
                meta=read_cbx(cbx.read_bytes()).meta)


def compile_c(arch: dict, source: str, output: str, extra: list[str]) -> Path:
    exe = arch["work"] / output
    result = subprocess.run([arch["cc"], "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *arch["flags"],
                             f"-I{SOURCES}", str(SOURCES / source), *extra, "-o", str(exe)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return exe


def run_program(arch: dict, args: list[str]) -> str:
    result = subprocess.run([*arch["runner"], *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def signature_lines(meta) -> list[str]:
    """What both programs print for each tensor."""
    return [f"{role} {t.name} {t.dtype.numpy.name} [{', '.join(map(str, t.shape))}] {t.nbytes}"
            for role, specs in (("input", meta.inputs), ("output", meta.outputs)) for t in specs]


def check_outputs(path: Path, meta, expected: list[np.ndarray]) -> None:
    raw = path.read_bytes()
    assert len(raw) == sum(t.nbytes for t in meta.outputs)
    at = 0
    for spec, want in zip(meta.outputs, expected):
        got = np.frombuffer(raw[at:at + spec.nbytes], "<f4").reshape(spec.shape)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=spec.name)
        at += spec.nbytes


def test_object_and_header_linked_directly(arch, expected):
    meta, work = arch["meta"], arch["work"]
    assert meta.num_stages > 1 and [t.name for t in meta.inputs] == ["x", "shift"]
    assert cerebroc(["export-c", str(arch["cbx"]), "-o", str(work / "direct"), "--prefix", "model"]) == 0
    exe = compile_c(arch, "direct_main.c", "direct.exe", [f"-I{work / 'direct'}", str(work / "direct" / "model.o")])
    stdout = run_program(arch, [str(exe), str(work / "direct.bin"), str(work / "in0.bin"), str(work / "in1.bin")])
    assert stdout.splitlines() == [f"model mlp stages {meta.num_stages} arena {arena_bytes(meta)}",
                                   *signature_lines(meta)]
    check_outputs(work / "direct.bin", meta, expected)


def test_runtime_library_loads_file_and_memory(arch, expected):
    meta, work = arch["meta"], arch["work"]
    install = work / "runtime"
    assert cerebroc(["runtime-lib", "-o", str(install), "--arch", arch["name"]]) == 0
    exe = compile_c(arch, "runtime_main.c", "runtime.exe", [f"-I{install / 'include'}",
                                                         str(install / "lib" / "libcerebro_runtime.a"), "-pthread"])
    stdout = run_program(arch, [str(exe), str(arch["cbx"]), str(work / "runtime.bin"),
                                str(work / "in0.bin"), str(work / "in1.bin")]).splitlines()
    assert stdout[:-2] == [f"model mlp arena {arena_bytes(meta)}", *signature_lines(meta)]
    assert stdout[-2].startswith("half refused: truncated")
    assert stdout[-1] == "misaligned refused: input 'x' is NULL or not 64-byte aligned"
    check_outputs(work / "runtime.bin", meta, expected)
    # a directory opens, but ftell gives LONG_MAX for its size: refused before any read
    refused = subprocess.run([*arch["runner"], str(exe), str(work), str(work / "none.bin")], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1 and refused.stderr == f"load_file: {work}: not a regular file\n"


def test_two_models_link_into_one_program(arch):
    """The prefixes keep two models' globals apart (without them the linker sees cerebro_entry twice)."""
    work = arch["work"] / "two"
    for prefix in ("first", "second"):
        assert cerebroc(["export-c", str(arch["cbx"]), "-o", str(work), "--prefix", prefix]) == 0
    exe = compile_c(arch, "two_models_main.c", "two.exe", [f"-I{work}", str(work / "first.o"), str(work / "second.o")])
    assert run_program(arch, [str(exe), str(arch["work"] / "in0.bin"), str(arch["work"] / "in1.bin")]) == "same\n"


def test_linkable_object_renames_only_the_model_globals(arch):
    data = arch["cbx"].read_bytes()
    before = elfmod.ElfFile.parse(data)
    after = elfmod.ElfFile.parse(linkable_object(data, "net2"))
    renamed = {"cerebro_entry": "net2_entry", "cerebro_weights": "net2_weights", "cerebro_meta": "net2_meta",
               "cerebro_ir": "net2_ir"}
    assert [renamed.get(s.name, s.name) for s in before.symbols] == [s.name for s in after.symbols]
    assert [s.name for s in before.sections] == [s.name for s in after.sections]


def test_export_refuses_bad_prefix_and_corrupt_file(arch, tmp_path, capsys):
    data = arch["cbx"].read_bytes()
    with pytest.raises(CbxError, match="not a C identifier"):
        linkable_object(data, "1model")
    corrupt = tmp_path / "corrupt.cbx"
    flipped = bytearray(data)
    flipped[elfmod.ElfFile.parse(data).section(".cerebro.weights").offset] ^= 1
    corrupt.write_bytes(flipped)
    assert cerebroc(["export-c", str(corrupt), "-o", str(tmp_path / "out")]) == 1
    assert "content hash mismatch" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
