"""PE reader on real PE files shipped in pip/setuptools, and the native loader on MinGW programs
built here; outputs are compared with the same C source compiled for Linux."""

import random
import re
import struct
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import crafted_pe
import pip
import pytest
from loader_support import DATA, need

from cerebro.binread import FormatError
from cerebro.loaders.cli import main as cli_main
from cerebro.loaders.native_build import native_program
from cerebro.loaders.pe_package import PePackage

SITE = Path(pip.__file__).parent.parent  # site-packages: pip and setuptools ship these PE files
REAL = {name: SITE / rel for name, rel in {
    "t64.exe": "pip/_vendor/distlib/t64.exe", "t32.exe": "pip/_vendor/distlib/t32.exe",
    "t64-arm.exe": "pip/_vendor/distlib/t64-arm.exe", "cli-64.exe": "setuptools/cli-64.exe",
    "cli-32.exe": "setuptools/cli-32.exe"}.items()}

PORTABLE = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++) printf("arg %d: [%s]\n", i, argv[i]);
    const char *v = getenv("CEREBRO_TEST_VAR");
    printf("env: %s\n", v ? v : "(unset)");
    if (argc > 1) {
        FILE *f = fopen(argv[1], "rb");
        if (!f) { printf("cannot open\n"); return 9; }
        char buf[64]; size_t n = fread(buf, 1, sizeof buf - 1, f); buf[n] = 0; fclose(f);
        printf("file: %s|\n", buf);
    }
    char s[80];
    snprintf(s, sizeof s, "%.3f %e %5d|%-5s| %lld %llx %c %05.1f %%", 3.14159, 12345.678, 42, "ab",
             -1234567890123LL, 0x123456789abcULL, 'z', 2.5);
    puts(s);
    fprintf(stderr, "stderr line\n");
    return argc + 2;
}
"""

TLS = r"""
#include <stdio.h>
#include <windows.h>
static int attached;
static void NTAPI on_tls(PVOID h, DWORD reason, PVOID r)
{ (void)h; (void)r; if (reason == DLL_PROCESS_ATTACH) attached = 42; }
__attribute__((section(".CRT$XLB"), used)) PIMAGE_TLS_CALLBACK tls_cb = on_tls;
int main(void)
{ printf("tls %d %I64x %lu\n", attached, 0x123456789abcULL, 4000000000UL); return attached == 42 ? 0 : 1; }
"""

UNSUPPORTED = r"""
#include <windows.h>
#include <stdio.h>
int main(void) { char b[64]; DWORD n = sizeof b; GetComputerNameA(b, &n); printf("%s\n", b); return 0; }
"""

DLL = "__declspec(dllexport) int add(int a, int b) { return a + b; }\n" \
      "__declspec(dllexport) int mul(int a, int b) { return a * b; }\n"


@pytest.fixture(scope="session")
def mingw(tmp_path_factory):
    need("x86_64-w64-mingw32-gcc", "cc")
    tmp = tmp_path_factory.mktemp("mingw")
    out = {}
    for name, source, flags in (("portable.exe", PORTABLE, []), ("tls.exe", TLS, []),
                                ("unsupported.exe", UNSUPPORTED, []), ("lib.dll", DLL, ["-shared"])):
        src = tmp / (name + ".c")
        src.write_text(source)
        out[name] = tmp / name
        subprocess.run(["x86_64-w64-mingw32-gcc", "-O1", *flags, "-o", str(out[name]), str(src)], check=True)
    out["portable.linux"] = tmp / "portable.linux"
    subprocess.run(["cc", "-O1", "-o", str(out["portable.linux"]), str(tmp / "portable.exe.c")], check=True)
    for target, compiler in (("files.exe", "x86_64-w64-mingw32-gcc"), ("files.linux", "cc")):
        out[target] = tmp / target
        subprocess.run([compiler, "-O1", "-o", str(out[target]), str(DATA / "files.c")], check=True)
    return out


def objdump_imports(path) -> list[str]:
    text = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True, check=True).stdout
    out, dll = [], None
    for line in text.splitlines():
        m = re.match(r"\s*DLL Name: (\S+)", line)
        if m:
            dll = m.group(1)
            continue
        m = re.match(r"\s+[0-9a-f]+\s+(\d+)\s+(\S+)$", line)
        if dll and m:
            out.append(f"{dll}!{m.group(2)}")
    return out


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_pe_files_match_objdump(name):
    path = REAL[name]
    if not path.exists():
        pytest.skip(f"{path} not shipped by this pip/setuptools version")
    need("objdump")
    pkg = PePackage.parse(path.read_bytes())
    info = pkg.info()
    heads = subprocess.run(["objdump", "-h", str(path)], capture_output=True, text=True).stdout
    ref = re.findall(r"^\s*\d+\s+(\S+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", heads, re.M)
    if "arm" not in name:  # Debian's binutils does not know arm64 PE
        assert [(s.name, pkg.pe.image_base + s.virtual_address, s.raw_offset) for s in pkg.pe.sections] == \
            [(n, int(vma, 16), int(off, 16)) for n, vma, off in ref]
    assert info["machine"] == {"t64.exe": "x86-64", "cli-64.exe": "x86-64", "t64-arm.exe": "arm64"}.get(name, "x86")
    assert info["format"] == ("pe32" if "32" in name else "pe32+")
    assert info["subsystem"] == "windows-console"
    if "arm" not in name:
        assert sorted(info["imports"]) == sorted(objdump_imports(path))
    assert "KERNEL32.dll" in info["libraries"]
    assert pkg.verify() == []


def test_checksum_verification_detects_tampering(tmp_path):
    data = bytearray(REAL["t64.exe"].read_bytes())
    pkg = PePackage.parse(bytes(data))
    assert pkg.pe.checksum != 0 and pkg.verify() == []
    data[-100] ^= 0xFF
    assert "checksum mismatch" in PePackage.parse(bytes(data)).verify()[0]


def test_dll_exports(mingw):
    info = PePackage.parse(mingw["lib.dll"].read_bytes()).info()
    assert info["kind"] == "shared-library" and {"add", "mul"} <= set(info["exports"])
    text = subprocess.run(["objdump", "-p", str(mingw["lib.dll"])], capture_output=True, text=True).stdout
    assert re.search(r"\]\s+add\b", text) and re.search(r"\]\s+mul\b", text)
    with pytest.raises(FormatError, match="DLL"):
        PePackage.parse(mingw["lib.dll"].read_bytes()).run([])


@pytest.mark.parametrize("relocate", [False, True])
def test_mingw_program_runs_like_native_build(mingw, tmp_path, relocate):
    (tmp_path / "in.txt").write_text("file contents")
    args = [str(tmp_path / "in.txt"), "two words"]
    env = {"CEREBRO_TEST_VAR": "set-by-test", "PATH": "/usr/bin:/bin"}
    ref = subprocess.run([str(mingw["portable.linux"]), *args], capture_output=True, text=True, env=env)
    loader = native_program("peload")
    got = subprocess.run([str(loader), *(["--relocate"] if relocate else []), str(mingw["portable.exe"]), *args],
                         capture_output=True, text=True, env=env)
    assert got.stdout == ref.stdout and got.stderr == ref.stderr == "stderr line\n"
    assert got.returncode == ref.returncode == 5


def test_files_qsort_atexit_kernel32(mingw, tmp_path):
    """fgets/strtol/realloc, qsort and bsearch with Windows-ABI callbacks, atexit, exit(), and
    GetStdHandle/WriteFile/GetEnvironmentVariableA: same output and status as the Linux build."""
    (tmp_path / "nums.txt").write_text("17\n-3\n42\n1000000\n5\n0\n")
    env = {"CEREBRO_TEST_VAR": "hey", "PATH": "/usr/bin:/bin"}
    ref = subprocess.run([str(mingw["files.linux"]), "nums.txt"], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    got = subprocess.run([str(native_program("peload")), str(mingw["files.exe"]), "nums.txt"], capture_output=True,
                         text=True, env=env, cwd=tmp_path)
    assert ref.stdout.startswith("sorted: -3 0 5 17 42 1000000 \nsum=1000061 n=6\n42 found\n")
    assert (got.stdout, got.returncode) == (ref.stdout, ref.returncode) == (ref.stdout, 7)


def test_cli_run_and_info(mingw, capfd):
    assert cli_main(["pkg", "run", str(mingw["tls.exe"])]) == 0
    assert capfd.readouterr().out == "tls 42 123456789abc 4000000000\n"  # TLS callback ran; Windows %lu is 32-bit
    assert cli_main(["pkg", "info", str(mingw["tls.exe"])]) == 0
    out = capfd.readouterr().out
    assert "subsystem: windows-console" in out and "tls_callbacks: (3)" in out  # MinGW's two + ours


def test_unknown_import_refused_before_execution(mingw, capfd):
    pkg = PePackage.parse(mingw["unsupported.exe"].read_bytes())
    with pytest.raises(FormatError, match=r"unsupported import KERNEL32\.dll!GetComputerNameA"):
        pkg.run([])
    got = subprocess.run([str(native_program("peload")), str(mingw["unsupported.exe"])], capture_output=True, text=True)
    assert got.returncode == 127 and got.stdout == ""
    assert got.stderr == "cerebro-peload: unsupported import KERNEL32.dll!GetComputerNameA\n"
    assert cli_main(["pkg", "run", str(mingw["unsupported.exe"])]) == 2
    assert "GetComputerNameA" in capfd.readouterr().err


def test_pe32_goes_to_the_32_bit_loader_and_arm64_is_refused():
    """distlib's t32.exe runs under peload32 (with no script appended it exits 1, as on Windows; it runs
    one in test_pe_real.py); an arm64 program is refused before any loader is asked."""
    pkg = PePackage.parse(REAL["t32.exe"].read_bytes())
    assert pkg.pe.bits == 32 and pkg.pe.relocations
    assert pkg.run([], timeout=60).returncode == 1
    if not REAL["t64-arm.exe"].exists():
        pytest.skip("t64-arm.exe not shipped by this pip version")
    with pytest.raises(FormatError, match=r"only x86-64 \(PE32\+\) and x86 \(PE32\) programs run here "
                                          r"\(this is arm64, PE32\+\)"):
        PePackage.parse(REAL["t64-arm.exe"].read_bytes()).run([])


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def hostile(exe: bytes):
    pe = struct.unpack_from("<I", exe, 0x3C)[0]
    opt = pe + 24
    sect = opt + struct.unpack_from("<H", exe, pe + 20)[0]
    yield "lfanew past end", patched(exe, 0x3C, "<I", 1 << 30)
    yield "no PE signature", patched(exe, pe, "<I", 0)
    yield "huge section count", patched(exe, pe + 6, "<H", 0xFFFF)
    yield "bad magic", patched(exe, opt, "<H", 0x999)
    yield "overlapping sections", patched(exe, sect + 40 + 12, "<I", struct.unpack_from("<I", exe, sect + 12)[0])
    yield "section data past end", patched(exe, sect + 20, "<I", 1 << 30)
    yield "import dir outside", patched(exe, opt + 112 + 8, "<I", 0x7FFFFFF0)
    yield "reloc block size 0", patched(exe, opt + 112 + 40, "<I", 0x7FFFFFF0)
    yield "truncated", exe[:1000]


@pytest.mark.parametrize("case", range(9))
def test_hostile_pe_gets_clear_errors(mingw, case):
    label, data = list(hostile(mingw["portable.exe"].read_bytes()))[case]
    with pytest.raises(FormatError):
        PePackage.parse(data)


def test_native_loader_never_crashes_on_corrupt_images(mingw, tmp_path):
    """The C loader re-checks every bound itself: corrupt input exits 126/127 with a message, never a signal."""
    exe = mingw["portable.exe"].read_bytes()
    loader = str(native_program("peload"))
    variants = [data for _label, data in hostile(exe)] + [exe[:n] for n in range(0, len(exe), len(exe) // 15)]
    for i, data in enumerate(variants):
        path = tmp_path / f"bad{i}.exe"
        path.write_bytes(data)
        got = subprocess.run([loader, str(path)], capture_output=True, text=True, timeout=20)
        assert got.returncode >= 0, (i, got.returncode, got.stderr)  # killed by a signal: a crash
        # 3: the program's own status, for a corruption it never touches (relocations at the preferred base)
        if got.returncode != 3:
            assert got.returncode in (126, 127) and got.stderr.startswith("cerebro-peload: "), (i, got.stderr)


def test_native_loader_builds_warning_free(tmp_path):
    need("cc")
    from cerebro.loaders.native_build import CFLAGS, native_sources
    proc = subprocess.run(["cc", *CFLAGS, "-Werror", "-fsyntax-only", *map(str, native_sources("peload"))],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_extract_sections(tmp_path):
    pkg = PePackage.parse(REAL["t64.exe"].read_bytes())
    names = pkg.extract(tmp_path)
    assert [n.split("-", 1)[1] for n in names] == [f"{s.name.lstrip('.')}.bin" for s in pkg.pe.sections]
    text = pkg.pe.sections[0]
    assert (tmp_path / names[0]).read_bytes() == pkg.pe.data[text.raw_offset:text.raw_offset + text.raw_size]


# ---- hostile and faulting programs (issue #10 item 12): never a silent death, never a hang ----

FAULT_LINE = re.compile(r"cerebro-peload: (?P<name>[^ ]+) crashed: (?P<cause>SIG[A-Z]+ \([^)]*\)) at "
                        r"(?:(?P<module>[^ +]+)\+(?P<offset>0x[0-9a-f]+)|\?) \(pc 0x[0-9a-f]+\)")  # ?: pc unmapped


def peload(path, *args, relocate=False, timeout=10):
    """Runs cerebro-peload directly, as binfmt_misc does."""
    return subprocess.run([str(native_program("peload")), *(["--relocate"] if relocate else []), str(path), *args],
                          capture_output=True, encoding="utf-8", errors="replace", timeout=timeout,
                          stdin=subprocess.DEVNULL)


def loader_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("cerebro-peload: ")]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crafted")
    for name, data in crafted_pe.all_cases().items():
        (folder / f"{name}.exe").write_bytes(data)
    return folder


@pytest.mark.parametrize(("name", "relocate"), [(n, False) for n in sorted(crafted_pe.FAULTS)] + [("null_read", True)])
def test_fault_is_one_line_naming_signal_address_and_rva(crafted, name, relocate):
    """A fault in the program: one line (signal, address, module+RVA) and exit 125, wherever the image is mapped."""
    assert peload(crafted / "exit7.exe", relocate=relocate).returncode == 7  # the same image, without the fault
    got = peload(crafted / f"{name}.exe", relocate=relocate)
    cause, rva = crafted_pe.FAULTS[name]
    assert (got.returncode, got.stdout) == (125, ""), got.stderr
    line = FAULT_LINE.fullmatch(got.stderr.rstrip("\n"))
    assert line and got.stderr.count("\n") == 1, got.stderr
    assert line["name"] == f"{name}.exe" and line["cause"].startswith(cause)
    if rva is not None:
        assert (line["module"], int(line["offset"], 16)) == (f"{name}.exe", rva)


def test_null_dereference_report_names_the_rva(crafted):
    got = peload(crafted / "null_read.exe")
    assert got.stderr == "cerebro-peload: null_read.exe crashed: SIGSEGV (read of unmapped address 0x0) at " \
                         "null_read.exe+0x1002 (pc 0x140001002)\n"


@pytest.mark.parametrize("name", sorted(crafted_pe.HOSTILE))
def test_hostile_image_refused_by_loader_and_precheck(crafted, name):
    """Each crafted file breaks one rule: the pre-check (`pkg run`) and the loader (binfmt) both refuse it."""
    with pytest.raises(FormatError):
        PePackage.parse((crafted / f"{name}.exe").read_bytes()).check_runnable()
    got = peload(crafted / f"{name}.exe")
    assert (got.returncode, got.stdout) == (126, ""), got.stderr
    assert len(got.stderr.splitlines()) == 1 and got.stderr.startswith("cerebro-peload: "), got.stderr


def section_header(exe: bytes, name: bytes) -> int:
    pe = struct.unpack_from("<I", exe, 0x3C)[0]
    count, opt_size = struct.unpack_from("<H", exe, pe + 6)[0], struct.unpack_from("<H", exe, pe + 20)[0]
    table = pe + 24 + opt_size
    return next(table + 40 * i for i in range(count) if exe[table + 40 * i:table + 40 * i + 8].rstrip(b"\0") == name)


def test_bss_file_data_is_refused_not_a_hang(mingw, tmp_path):
    """The issue's hang: .bss SizeOfRawData set (PointerToRawData 0) filled .bss with the headers, so
    mingw's startup lock (__native_startup_lock) read as taken and the CRT slept forever."""
    exe = mingw["portable.exe"].read_bytes()
    path = tmp_path / "bss.exe"
    path.write_bytes(patched(exe, section_header(exe, b".bss") + 16, "<I", 0x200))
    got = peload(path)
    assert got.returncode == 126 and got.stderr.startswith("cerebro-peload: section .bss holds only uninitialized")


def test_pkg_run_timeout_kills_a_sleeping_program(crafted, capfd):
    for argv in (["--timeout", "1", str(crafted / "sleep_forever.exe")],
                 [str(crafted / "sleep_forever.exe"), "--timeout", "1"]):  # both orders: FILE, then options
        assert cli_main(["pkg", "run", *argv]) == 124
        assert capfd.readouterr().err == f"cerebroc pkg: error: {crafted / 'sleep_forever.exe'}: still running " \
                                         "after 1 s; killed (--timeout)\n"
    assert cli_main(["pkg", "run", "--timeout", "1", str(crafted / "exit7.exe")]) == 7


def test_pkg_run_reports_fault_and_refusal(crafted, capfd):
    assert cli_main(["pkg", "run", str(crafted / "null_read.exe")]) == 125
    assert FAULT_LINE.fullmatch(capfd.readouterr().err.rstrip("\n"))
    assert cli_main(["pkg", "run", str(crafted / "bss_with_file_data.exe")]) == 2
    assert capfd.readouterr().err.startswith("cerebroc pkg: error: PE: section '.bss' holds only uninitialized")


def test_pkg_run_options_after_file_are_the_tools_until_double_dash(mingw, capfd):
    """`pkg run FILE --timeout S a -- --timeout b`: the tool takes the first --timeout, the program the rest."""
    exe = str(mingw["portable.exe"])
    assert cli_main(["pkg", "run", exe, "--timeout", "30", "a", "--", "--timeout", "b"]) == 9  # no file "a"
    assert capfd.readouterr().out.startswith("argc=4\narg 1: [a]\narg 2: [--timeout]\narg 3: [b]\n")
    assert cli_main(["pkg", "run", exe, "--program", "x"]) == 2  # .deb's option: refused, not passed on
    assert "--program does not apply" in capfd.readouterr().err


def mutations(seed: bytes, regions: list[tuple[int, int]], count: int, rng: random.Random):
    """@count copies of @seed with a few bytes (and maybe one 32-bit field) changed inside @regions."""
    extremes = [b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00"]
    for _ in range(count):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 6)):
            start, end = rng.choice(regions)
            data[rng.randrange(start, end)] = rng.randrange(256)
        if rng.random() < 0.5:
            start, end = rng.choice(regions)
            pos = rng.randrange(start, end - 4)
            data[pos:pos + 4] = rng.choice(extremes)
        yield bytes(data)


def loader_regions(exe: bytes) -> list[tuple[int, int]]:
    """What the loader reads before the program runs: headers, section table, import/relocation/TLS data."""
    pe = PePackage.parse(exe).pe
    regions = [(0, pe.size_of_headers)]
    regions += [(s.raw_offset, s.raw_offset + s.raw_size) for s in pe.sections
                if s.name in (".idata", ".reloc", ".tls", ".rdata") and s.raw_size > 8]
    return regions


def check_mutations(run, seeds: list[tuple[bytes, int]], tmp_path: Path, rng: random.Random) -> None:
    """`count` mutations of each seed run through run(path, "arg", timeout=20): each exits (the program's
    status, or 125/126/127), never by a signal, never hangs, and the loader says at most one line, the
    last, and exactly one when it refuses or reports a fault; all four outcomes must occur."""
    cases = []
    for seed, count in seeds:
        for data in mutations(seed, loader_regions(seed), count, rng):
            cases.append(tmp_path / f"m{len(cases)}.exe")
            cases[-1].write_bytes(data)

    def outcome(path):
        try:
            got = run(path, "arg", timeout=20)
        except subprocess.TimeoutExpired:
            return path, "hung", ""
        return path, got.returncode, got.stderr

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(outcome, cases))
    for path, status, stderr in results:
        assert status != "hung", f"{path.name} hung"
        assert status >= 0, f"{path.name} died by signal {-status}"
        lines = loader_lines(stderr)
        assert len(lines) <= 1 and (not lines or stderr.splitlines()[-1] == lines[0]), (path.name, stderr)
        if status in (125, 126, 127):
            assert len(lines) == 1, (path.name, status, stderr)
        if status == 125:
            assert FAULT_LINE.fullmatch(lines[0]), lines[0]
    seen = {status for _, status, _ in results}
    assert {125, 126, 127} <= seen and seen - {125, 126, 127}  # all four outcomes were exercised


def test_mutated_pe_files_never_die_silently_or_hang(mingw, tmp_path):
    """Mutated real PE files run straight through cerebro-peload (the binfmt path)."""
    seeds = [(mingw["portable.exe"].read_bytes(), 600)] + [(REAL[n].read_bytes(), 60) for n in
                                                           ("t64.exe", "cli-64.exe") if REAL[n].exists()]
    check_mutations(peload, seeds, tmp_path, random.Random(12))
