"""The Win32/CRT surface of the native PE loader (issue 18 item 3, x64): every missing import named in
one refusal, `pkg info --imports`, and the CRT functions classic C programs use, each program built
with MinGW during the test and compared with the same source built for Linux."""

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from loader_support import need

from cerebro.loaders.cli import main as cli_main
from cerebro.loaders.native_build import native_program
from cerebro.loaders.pe_package import shim_table

MISSING = r"""
#include <windows.h>
#include <stdio.h>
#include <direct.h>
int main(void)
{
    char b[64]; DWORD n = sizeof b;
    GetComputerNameA(b, &n);
    GetVolumeInformationA(NULL, NULL, 0, NULL, NULL, NULL, NULL, 0);
    printf("%d\n", _getdrive());
    return 0;
}
"""

PROGRAMS = {"missing": MISSING}


@pytest.fixture(scope="session")
def crt_programs(tmp_path_factory) -> dict[str, dict[str, str]]:
    """{name: {"exe": MinGW build, "linux": cc build (when the source is portable)}}, built once, in parallel."""
    need("x86_64-w64-mingw32-gcc", "cc")
    tmp = tmp_path_factory.mktemp("crt")
    jobs = []
    for name, source in PROGRAMS.items():
        (tmp / f"{name}.c").write_text(source)
        jobs.append((["x86_64-w64-mingw32-gcc", "-O1"], tmp / f"{name}.exe", tmp / f"{name}.c"))
        if "windows.h" not in source:
            jobs.append((["cc", "-O1"], tmp / f"{name}.linux", tmp / f"{name}.c"))
    build = lambda job: subprocess.run([*job[0], "-o", str(job[1]), str(job[2]), "-lm"], check=True)  # noqa: E731
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(build, jobs))
    return {name: {kind: str(tmp / f"{name}.{kind}") for kind in ("exe", "linux") if (tmp / f"{name}.{kind}").exists()}
            for name in PROGRAMS}


def peload(exe: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(native_program("peload")), exe, *args], capture_output=True, text=True, timeout=20, **kw)


def test_every_missing_import_in_one_refusal(crt_programs, capfd):
    exe = crt_programs["missing"]["exe"]
    got = peload(exe)
    want = "unsupported imports (3): KERNEL32.dll: GetComputerNameA, GetVolumeInformationA; msvcrt.dll: _getdrive"
    assert (got.returncode, got.stdout, got.stderr) == (127, "", f"cerebro-peload: {want}\n")
    assert cli_main(["pkg", "run", exe]) == 2
    assert capfd.readouterr().err == f"cerebroc pkg: error: PE: {want}\n"  # the pre-check words it the same


def test_info_imports_marks_each_import(crt_programs, capfd):
    exe = crt_programs["missing"]["exe"]
    assert cli_main(["pkg", "info", "--imports", "--json", exe]) == 0
    info = json.loads(capfd.readouterr().out)
    support = {i["import"]: i["supported"] for i in info["imports"]}
    assert support["KERNEL32.dll!GetComputerNameA"] is False and support["msvcrt.dll!_getdrive"] is False
    assert support["msvcrt.dll!malloc"] is True and support["KERNEL32.dll!Sleep"] is True
    assert info["unsupported_imports"] == 3 == sum(not ok for ok in support.values())
    assert cli_main(["pkg", "info", "--imports", exe]) == 0
    out = capfd.readouterr().out
    assert "  KERNEL32.dll!GetComputerNameA (no shim)\n" in out and "  msvcrt.dll!malloc (supported)\n" in out


def test_ucrt_names_map_onto_the_msvcrt_shims():
    table = shim_table()
    for dll in ("api-ms-win-crt-stdio-l1-1-0.dll", "API-MS-WIN-CRT-STRING-L1-1-0.DLL", "VCRUNTIME140.dll",
                "ucrtbase.dll"):
        assert table.supports(dll, "memcpy") and table.supports(dll, "fwrite")
        assert not table.supports(dll, "__stdio_common_vfprintf")
    assert not table.supports("api-ms-win-core-synch-l1-2-0.dll", "memcpy")  # only the CRT sets are aliased


def test_info_imports_refused_for_other_formats(tmp_path, capfd):
    elf = tmp_path / "true"
    elf.write_bytes(open("/bin/true", "rb").read())
    assert cli_main(["pkg", "info", "--imports", str(elf)]) == 2
    assert "--imports applies to .exe files" in capfd.readouterr().err
