"""i686 (32-bit x86) models: built with --target i686, run natively by cbxrun32 (gcc -m32) on x86-64.

The same JAX models as test_models.py's aarch64 run, compared with jax.jit at each case's tolerance;
then what a 64-bit process says about an i686 file (cerebro.load, the 64-bit cbxrun, inspect).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from cbx_fixtures import HOST_ARCH
from jax_cases import assert_outputs_match
from test_models import AARCH64_MODELS, _as_compiled

import cerebro
from cerebro import elf
from cerebro.compiler import build
from cerebro.compiler.cbx import CbxError, read_cbx, seal
from cerebro.frontends.jax import trace
from cerebro.toolchain import RUNTIME_DIR, build_cbxrun

pytestmark = pytest.mark.skipif(HOST_ARCH != "x86_64", reason="i686 processes run on x86-64 hosts")

# test_models.py's aarch64 set, less resnet18: its convs are model_cnn's and flax_conv_depthwise's kinds, and it
# alone took 60% of this file's time
I686_MODELS = [name for name in AARCH64_MODELS if name != "model_resnet18"]
MULTILIB = "gcc-12-multilib"  # scripts/apt-packages.txt: gcc -m32's libraries and headers


def _i686_available() -> bool:
    probe = subprocess.run(["gcc", "-m32", "-x", "c", "-", "-o", os.devnull], input="int main(void){return 0;}",
                           capture_output=True, text=True)
    return probe.returncode == 0


@pytest.fixture(scope="module")
def cbxrun32(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None or not _i686_available():
        if os.geteuid() != 0:
            pytest.skip(f"gcc -m32 cannot link and not root to install {MULTILIB}")
        pytest.fail(f"gcc -m32 cannot link: run scripts/setup.sh as root (apt-get install {MULTILIB})")
    out = tmp_path_factory.mktemp("cbxrun32")
    result = subprocess.run(["make", "-s", "-C", str(RUNTIME_DIR / "user"), f"OUT={out}", str(out / "cbxrun32")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "cbxrun32"


@pytest.fixture(scope="module")
def mlp_i686() -> tuple[bytes, list[np.ndarray]]:
    """model_mlp built for i686, and its runtime inputs."""
    fn, args, _ = _as_compiled("model_mlp")
    traced = trace(fn, *args, name="model_mlp")
    return build(traced.graph, target="i686"), traced.flatten_inputs(*args)


def run_cbx(runner: list[str], data: bytes, inputs: list[np.ndarray], tmp: Path) -> subprocess.CompletedProcess:
    (tmp / "model.cbx").write_bytes(data)
    paths = []
    for k, array in enumerate(inputs):
        (tmp / f"in{k}.bin").write_bytes(np.ascontiguousarray(array).tobytes())
        paths.append(str(tmp / f"in{k}.bin"))
    return subprocess.run([*runner, str(tmp / "model.cbx"), *paths, "-o", str(tmp / "out.bin")],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name, target", [(name, "i686") for name in I686_MODELS] + [("model_cnn", "i686-v3")])
def test_model_on_i686(name: str, target: str, cbxrun32, tmp_path) -> None:
    """Each model compiled for i686 (ELF32; SSE2, or AVX2 for i686-v3) and run in a 32-bit process gives
    jax.jit's results."""
    fn, args, case = _as_compiled(name)
    traced = trace(fn, *args, name=name)
    data = build(traced.graph, target=target)
    assert data[4] == elf.ELFCLASS32 and elf.ElfFile.parse(data).machine == elf.EM_386
    result = run_cbx([str(cbxrun32)], data, traced.flatten_inputs(*args), tmp_path)
    if result.returncode == 1 and "this CPU lacks" in result.stderr:
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    raw = (tmp_path / "out.bin").read_bytes()
    got, at = [], 0
    for spec in traced.graph.outputs:
        got.append(np.frombuffer(raw[at:at + spec.nbytes], spec.dtype.numpy).reshape(spec.shape))
        at += spec.nbytes
    assert at == len(raw)
    assert_outputs_match(got, jax.jit(fn)(*args), case.rtol, case.atol, f"{name} on {target}")


def test_i686_objects_need_no_got(mlp_i686) -> None:
    """Static code: only the relocations arch/i686.c applies, in SHT_REL sections (no GOT, no RELA)."""
    parsed = elf.ElfFile.parse(mlp_i686[0])
    assert {r.type for r in parsed.relocations} <= {1, 2}  # R_386_32, R_386_PC32
    assert all(not r.rela for r in parsed.relocations)


def test_64_bit_processes_refuse_i686_files_and_say_how_to_run_them(mlp_i686, cbxrun32, tmp_path) -> None:
    data, inputs = mlp_i686
    with pytest.raises(CbxError, match=r"for i686 \(32-bit x86\), which a 64-bit process cannot load: run it "
                                       r"with cbxrun32 \(build it: make -C .*/user OUT=DIR DIR/cbxrun32\)"):
        cerebro.load(data)
    host = run_cbx([str(build_cbxrun("x86_64", tmp_path / "host"))], data, inputs, tmp_path)
    assert host.returncode == 1 and "wrong machine: file is i686, host is x86-64" in host.stderr
    x86_64 = build(trace(lambda x: x + 1, np.ones(3, np.float32)).graph, target="x86_64")
    refused = run_cbx([str(cbxrun32)], x86_64, [np.ones(3, np.float32)], tmp_path)
    assert refused.returncode == 1 and "wrong machine: file is x86-64, host is i686" in refused.stderr


def test_cbxrun32_checks_the_content_hash(mlp_i686, cbxrun32, tmp_path) -> None:
    data, inputs = mlp_i686
    text = elf.ElfFile.parse(data).section(".text")
    corrupt = bytearray(data)
    corrupt[text.offset] ^= 1
    result = run_cbx([str(cbxrun32)], bytes(corrupt), inputs, tmp_path)
    assert result.returncode == 1 and "corrupt .cbx: content hash mismatch" in result.stderr


def test_cbxrun32_refuses_malformed_elf32(mlp_i686, cbxrun32, tmp_path) -> None:
    """An i386 file must be ELF32, and an addend read in place must lie inside its section."""
    data, inputs = mlp_i686
    parsed = elf.ElfFile.parse(data)
    elf64 = bytearray(data)
    elf64[4] = elf.ELFCLASS64
    result = run_cbx([str(cbxrun32)], bytes(elf64), inputs, tmp_path)
    assert result.returncode == 1 and "bad magic: not a 32-bit little-endian ELF file" in result.stderr
    rel = next(s for s in parsed.sections if s.type == elf.SHT_REL and s.info == parsed.section(".text").index)
    straddling = bytearray(data)
    straddling[rel.offset:rel.offset + 4] = (parsed.section(".text").size - 2).to_bytes(4, "little")
    result = run_cbx([str(cbxrun32)], seal(bytes(straddling)), inputs, tmp_path)
    assert result.returncode == 1 and "runs past the end of its section" in result.stderr, result.stderr


def test_inspect_reads_elf32(mlp_i686, tmp_path) -> None:
    data, _ = mlp_i686
    info = read_cbx(data)
    assert info.meta.triple == "i686-unknown-linux-gnu" and info.meta.features == "+sse2"
    (tmp_path / "m.cbx").write_bytes(data)
    shown = subprocess.run([sys.executable, "-m", "cerebro.cli", "inspect", "--json", str(tmp_path / "m.cbx")],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["triple"] == "i686-unknown-linux-gnu"
    assert json.loads(shown.stdout)["machine"] == "x86"  # cerebro/elf.py's name for EM_386


_EMBED_MAIN = """#include <stdio.h>
#include <stdlib.h>
#include "m.h"
int main(void)
{
	static float x[8] __attribute__((aligned(64))), y[8] __attribute__((aligned(64)));
	const void *in[1] = { x };
	void *out[1] = { y };
	void *arena = aligned_alloc(64, 4096);
	int i;

	for (i = 0; i < 8; i++)
		x[i] = (float)i;
	if (m_run(in, out, arena) != 0)
		return 1;
	for (i = 0; i < 8; i++)
		printf("%g\\n", y[i]);
	return 0;
}
"""


def test_export_c_links_into_a_32_bit_program(cbxrun32, tmp_path) -> None:
    """cerebroc export-c of an i686 .cbx: the ELF32 object, renamed, links into a gcc -m32 program (no PIE:
    the code is static) with the header's return thunk."""
    x = np.arange(8, dtype=np.float32)
    (tmp_path / "m.cbx").write_bytes(build(trace(lambda v: v * 2 + 1, x).graph, target="i686"))
    exported = subprocess.run([sys.executable, "-m", "cerebro.cli", "export-c", str(tmp_path / "m.cbx"), "-o",
                               str(tmp_path), "--prefix", "m"], capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    (tmp_path / "main.c").write_text(_EMBED_MAIN)
    linked = subprocess.run(["gcc", "-m32", "-no-pie", "-idirafter", "/usr/include/x86_64-linux-gnu", "-o",
                             str(tmp_path / "main"), str(tmp_path / "main.c"), str(tmp_path / "m.o")],
                            capture_output=True, text=True)
    assert linked.returncode == 0, linked.stderr
    ran = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and [float(v) for v in ran.stdout.split()] == list(x * 2 + 1)
