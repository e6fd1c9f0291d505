"""One CPU-feature table, runtime_kmod/include/cerebro/cpu_features.h, for the compiler, user space and the kernel.

Both C runtimes expand the table's rows (user/cpu.c, kernel/cerebro_cpu.c); the compiler reads its names
(targets.CPU_FEATURES). These tests show that the compiler reads what a C compiler sees, that whatever asks for
features asks only for rows, and that the kernel build refuses a row whose cpuid position (what user space
reads) is not its X86_FEATURE_* (what the kernel reads).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cerebro import kmod
from cerebro.compiler.cbx.format import EM_386, EM_AARCH64, EM_X86_64
from cerebro.compiler.targets import CPU_FEATURES, CPU_FEATURES_HEADER, TARGETS

_PRINT_ROWS = f"""#include <stdio.h>
#include <cerebro/cpu_features.h>
#define X86(name, ...) puts("{EM_X86_64} " name);
#define ARM64(name, ...) puts("{EM_AARCH64} " name);
int main(void)
{{
	CEREBRO_X86_FEATURES(X86)
	CEREBRO_ARM64_FEATURES(ARM64)
	return 0;
}}
"""


def test_the_compiler_reads_the_rows_a_c_compiler_sees(tmp_path):
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    (tmp_path / "rows.c").write_text(_PRINT_ROWS)
    subprocess.run(["gcc", f"-I{kmod.KMOD_SRC / 'include'}", "-o", str(tmp_path / "rows"), str(tmp_path / "rows.c")],
                   check=True)
    out = subprocess.run([str(tmp_path / "rows")], capture_output=True, text=True, check=True).stdout
    seen: dict[int, tuple[str, ...]] = {}
    for line in out.splitlines():
        machine, name = line.split(" ", 1)
        seen[int(machine)] = (*seen.get(int(machine), ()), name)
    assert CPU_FEATURES == {**seen, EM_386: seen[EM_X86_64]}  # i686 reads the x86 rows too
    assert len(seen[EM_X86_64]) == 23 and len(seen[EM_AARCH64]) == 8


def test_whatever_requires_features_requires_rows():
    """A required name that is not a row is refused by both runtimes as one they cannot check."""
    for target in TARGETS.values():
        required = {name[1:] for name in target.meta_features.split(",") if name.startswith("+")}
        assert required <= set(CPU_FEATURES[target.machine]), target.name
    assert kmod.VM_CPU_FEATURES <= set(CPU_FEATURES[EM_X86_64])


@pytest.fixture(scope="module")
def kernel_release():
    try:
        return kmod.find_kernel_release()
    except kmod.KmodError as error:
        pytest.skip(str(error))


def _build_kernel_cpu_object(stage: Path, release: str, header: str) -> subprocess.CompletedProcess:
    """Kbuild compiles cerebro_cpu.c alone, with @header as cerebro/cpu_features.h."""
    kmod._stage_core(stage)
    (stage / "include" / "cerebro" / "cpu_features.h").write_text(header)
    return subprocess.run(["make", "-C", f"/lib/modules/{release}/build", f"M={stage}", "cerebro_cpu.o"],
                          capture_output=True, text=True)


def test_the_kernel_build_checks_each_row_against_x86_feature_numbers(tmp_path, kernel_release):
    header = CPU_FEATURES_HEADER.read_text()
    built = _build_kernel_cpu_object(tmp_path / "good", kernel_release, header)
    assert built.returncode == 0, built.stdout + built.stderr
    row = 'X("sse4.1",\t0x1,\t\t0, ECX, 19,'
    assert row in header
    refused = _build_kernel_cpu_object(tmp_path / "bad", kernel_release, header.replace(row, row.replace("19", "18")))
    assert refused.returncode != 0
    assert "the cpuid bit of sse4.1 is not X86_FEATURE_XMM4_1" in refused.stderr
