"""PE32 (i386) programs through cerebro-peload32 (the loader built with gcc -m32): the x64 tests'
programs built with i686-w64-mingw32-gcc, compared with the same source built by gcc -m32; crafted
PE32 files for the 32-bit header, import and relocation rules."""

import json
import os
import random
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import crafted_pe
import pytest
import test_pe
import test_pe_crt
import test_pe_programs
from loader_support import DATA, need
from sources import MINGW, source_tree, ucrt_flags

from cerebro.binread import FormatError
from cerebro.loaders.cli import main as cli_main
from cerebro.loaders.native_build import ARCH_FLAGS, CFLAGS, native_program, native_sources
from cerebro.loaders.pe_package import PePackage

# Many stdcall calls (Win32 API shims of 1 to 8 arguments, a program-defined stdcall function with
# 64-bit and double arguments): a shim in the wrong convention moves the stack pointer, which the
# program measures around the loop. On Linux the same source computes what the API calls return.
STDCALL = r"""
#include <stdio.h>
#ifdef _WIN32
#include <windows.h>
#else
#define WINAPI __attribute__((stdcall))
#endif
typedef long long (WINAPI *mix_fn)(int, long long, double, short, char, int);
static long long WINAPI mix(int a, long long b, double c, short d, char e, int f)
{ return a + b + (long long)(c * 2) + d + e + f; }
static mix_fn volatile call_mix = mix;
static unsigned long stack_pointer(void) { unsigned long sp; __asm__ volatile("mov %%esp, %0" : "=r"(sp)); return sp; }

static long long round_trip(int i)
{
#ifdef _WIN32
    static DWORD slot = TLS_OUT_OF_INDEXES;
    static CRITICAL_SECTION cs;
    static HANDLE sem;
    WCHAR w[8];
    char back[8];
    LARGE_INTEGER freq;
    if (slot == TLS_OUT_OF_INDEXES) {
        slot = TlsAlloc();
        InitializeCriticalSection(&cs);
        sem = CreateSemaphoreA(NULL, 0, 10, NULL);
    }
    SetLastError((DWORD)i);
    long long got = GetLastError();
    TlsSetValue(slot, (LPVOID)(INT_PTR)(i * 3));
    got += (INT_PTR)TlsGetValue(slot);
    got += MultiByteToWideChar(CP_ACP, 0, "abc", -1, w, 8);
    got += WideCharToMultiByte(CP_ACP, 0, w, -1, back, sizeof back, NULL, NULL) + back[1];
    EnterCriticalSection(&cs);
    LeaveCriticalSection(&cs);
    ReleaseSemaphore(sem, 1, NULL);
    got += WaitForSingleObject(sem, INFINITE);
    got += QueryPerformanceFrequency(&freq) && freq.QuadPart > 0;
    return got;
#else
    return i + i * 3 + 4 + 4 + 'b' + 0 + 1;
#endif
}

int main(void)
{
    unsigned long before = stack_pointer();
    long long total = 0;
    for (int i = 0; i < 20000; i++) {
        total += call_mix(i, 1LL << 40, 1.25, (short)-i, 'x', 7);
        total += round_trip(i);
    }
    printf("total %lld, stack moved %ld bytes\n", total, (long)(stack_pointer() - before));
    return 0;
}
"""

# NtCurrentTeb() and fs:[...] in the main thread and a CreateThread one: NT_TIB Self, stack bounds,
# ExceptionList's end marker, the PEB's ImageBaseAddress; each thread its own TEB.
TEB = r"""
#include <windows.h>
#include <stdio.h>
static DWORD WINAPI check(LPVOID arg)
{
    NT_TIB *tib = (NT_TIB *)NtCurrentTeb();
    char *peb = (char *)__readfsdword(0x30);
    volatile char local = 0;
    *(NT_TIB **)arg = tib;
    return tib->Self == tib && (char *)tib->StackLimit < &local && &local < (char *)tib->StackBase &&
           (NT_TIB *)__readfsdword(0x18) == tib && *(void **)(peb + 8) == GetModuleHandleA(NULL) &&
           (ULONG_PTR)tib->ExceptionList == (ULONG_PTR)-1;
}
int main(void)
{
    NT_TIB *mine, *other;
    DWORD code = 0;
    int ok = (int)check(&mine);
    HANDLE t = CreateThread(NULL, 0, check, &other, 0, NULL);
    WaitForSingleObject(t, INFINITE);
    GetExitCodeThread(t, &code);
    printf("main thread TEB %d, new thread TEB %lu, distinct %d\n", ok, code, mine != other);
    return 0;
}
"""

# msvcrt's 32-bit time functions (i686 MinGW's time_t): the Linux side is built with a 32-bit time_t too.
TIME32 = r"""
#include <stdio.h>
#include <time.h>
int main(void)
{
    static const time_t when[] = {0, 951782400, 1700000000, 2100000000};
    char buf[128];
    for (int i = 0; i < 4; i++) {
        struct tm *g = gmtime(&when[i]);
        strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %A %j", g);
        struct tm copy = *localtime(&when[i]);
        copy.tm_mday += 40;
        time_t later = mktime(&copy);
        printf("%d: %s yday %d | +40 days %ld (mday %d mon %d) diff %.1f\n", (int)sizeof(time_t), buf, g->tm_yday,
               (long)later, copy.tm_mday, copy.tm_mon, difftime(later, when[i]));
    }
    time_t now = time(NULL), also;
    time(&also);
    printf("now plausible %d\n", now > 1600000000 && also >= now);
    return 0;
}
"""

SOURCES = {"portable": test_pe.PORTABLE, "tls": test_pe.TLS, "files": (DATA / "files.c").read_text(),
           "stdcall": STDCALL, "time32": TIME32, "teb": TEB, **{name: test_pe_crt.PROGRAMS[name] for name in (
               "threads", "thread_fault", "thread_local", "jumps_files", "numbers", "ctype", "scanf", "wide")}}
WINDOWS_ONLY = {"tls", "thread_fault", "teb"}
# Debian's i686 MinGW defines _USE_32BIT_TIME_T (msvcrt's 32-bit time, gmtime...), so the x64 time test's
# dates past 2038 do not apply; its i686 build imports the 32-bit time shims.
MINGW32 = "i686-w64-mingw32-gcc"
UCRT_PROGRAMS = ("portable", "files")  # also built on the Universal CRT (api-ms-win-crt-*.dll, ucrt.c's shims)
LINUX_FLAGS = ["-m32", "-idirafter", "/usr/include/x86_64-linux-gnu", "-D_TIME_BITS=64", "-D_FILE_OFFSET_BITS=64",
               "-O1"]


@pytest.fixture(scope="session")
def pe32(tmp_path_factory) -> dict[str, Path]:
    """{"NAME.exe": i686 MinGW build, "NAME.linux": gcc -m32 build}, built once, in parallel."""
    need(MINGW32, "gcc")
    tmp = tmp_path_factory.mktemp("pe32")
    jobs, ucrt = [], ucrt_flags(MINGW32)
    for name, source in SOURCES.items():
        (tmp / f"{name}.c").write_text(source)
        jobs.append(([MINGW32, "-O1"], tmp / f"{name}.exe", tmp / f"{name}.c"))
        if name in UCRT_PROGRAMS and ucrt is not None:
            jobs.append(([MINGW32, "-O1", *ucrt], tmp / f"{name}.ucrt", tmp / f"{name}.c"))
        if name == "scanf":  # msvcrt's own scanf family (varargs in 4-byte slots) rather than MinGW's inline one
            jobs.append(([MINGW32, "-O1", "-D__USE_MINGW_ANSI_STDIO=0"], tmp / "scanf.msvcrt",
                         tmp / "scanf.c"))
        if name not in WINDOWS_ONLY:
            flags = ["-m32", "-O1"] if name == "time32" else LINUX_FLAGS
            jobs.append((["gcc", *flags], tmp / f"{name}.linux", tmp / f"{name}.c"))
    build = lambda job: subprocess.run([*job[0], "-o", str(job[1]), str(job[2]), "-lm", "-pthread"],  # noqa: E731
                                       capture_output=True, text=True)
    with ThreadPoolExecutor(2) as pool:
        for proc in pool.map(build, jobs):
            if proc.returncode and "-m32" in proc.args:
                pytest.skip(f"gcc -m32 cannot build (gcc-multilib): {proc.stderr.strip()[-200:]}")
            assert proc.returncode == 0, proc.stderr
    return {path.name: path for path in tmp.iterdir()}


def peload32(exe, *args, relocate=False, timeout=30, **kw) -> subprocess.CompletedProcess:
    loader = native_program("peload", bits=32)
    return subprocess.run([str(loader), *(["--relocate"] if relocate else []), str(exe), *args], capture_output=True,
                          text=True, errors="replace", timeout=timeout, **kw)


def same_as_linux(pe32, name, *args, relocate=False, stdin="", exe="exe", **kw) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "TZ": "UTC", "CEREBRO_TEST_VAR": "x y"}
    ref = subprocess.run([str(pe32[f"{name}.linux"]), *args], capture_output=True, text=True, env=env, input=stdin,
                         **kw)
    got = peload32(pe32[f"{name}.{exe}"], *args, relocate=relocate, env=env, input=stdin, **kw)
    assert (got.stdout, got.returncode) == (ref.stdout, ref.returncode), got.stderr
    return got


@pytest.mark.parametrize("relocate", [False, True])
def test_argv_printf_env_file_io(pe32, tmp_path, relocate):
    """The x64 portable program: argv, getenv, fopen/fread, printf of 64-bit and double varargs (two
    4-byte slots each on i386); --relocate applies the HIGHLOW relocations of a real MinGW image."""
    (tmp_path / "in.txt").write_text("hello")
    got = same_as_linux(pe32, "portable", str(tmp_path / "in.txt"), "two words", relocate=relocate)
    assert "-1234567890123 123456789abc z 002.5 %" in got.stdout and got.returncode == 5
    assert got.stderr == "stderr line\n"


@pytest.mark.parametrize("name", UCRT_PROGRAMS)
def test_ucrt_builds_match_linux(pe32, tmp_path, name):
    """The same programs linked against the UCRT (__stdio_common_vfprintf with a 64-bit options word
    in two slots, __acrt_iob_func, _configure_narrow_argv...) run by peload32."""
    if f"{name}.ucrt" not in pe32:
        pytest.skip(f"{MINGW32} ships no UCRT import library (libucrt.a)")
    imports = {i.dll.lower() for i in PePackage.parse(pe32[f"{name}.ucrt"].read_bytes()).pe.imports}
    assert "api-ms-win-crt-stdio-l1-1-0.dll" in imports and "msvcrt.dll" not in imports
    (tmp_path / "nums.txt").write_text("17\n-3\n42\n1000000\n5\n0\n")
    same_as_linux(pe32, name, "nums.txt", "two words", exe="ucrt", cwd=tmp_path)


def test_files_qsort_bsearch_atexit_kernel32(pe32, tmp_path):
    (tmp_path / "nums.txt").write_text("17\n-3\n42\n1000000\n5\n0\n")
    got = same_as_linux(pe32, "files", "nums.txt", cwd=tmp_path)
    assert got.stdout.startswith("sorted: -3 0 5 17 42 1000000 \nsum=1000061 n=6\n42 found\n") and got.returncode == 7


def test_teb_through_fs_in_every_thread(pe32):
    got = peload32(pe32["teb.exe"])
    assert (got.returncode, got.stdout, got.stderr) == (0, "main thread TEB 1, new thread TEB 1, distinct 1\n", "")


def test_msvcrt_32_bit_time_functions(pe32):
    got = same_as_linux(pe32, "time32")
    assert got.stdout.startswith("4: 1970-01-01 00:00:00 Thursday 001 yday 0 | +40 days 3456000 ")


def test_stdcall_calls_keep_the_stack_balanced(pe32):
    got = same_as_linux(pe32, "stdcall")
    assert got.stdout.endswith(", stack moved 0 bytes\n")


@pytest.mark.parametrize("name", ["threads", "thread_local", "jumps_files", "numbers", "ctype", "scanf", "wide"])
def test_crt_programs_match_linux(pe32, tmp_path, name):
    """The x64 CRT tests' programs: threads (TEB per thread through fs, DLL_THREAD_ATTACH/DETACH),
    __thread (libgcc emutls), setjmp/longjmp (_setjmp3), _stat64, strtod, ctype, scanf, wide strings."""
    data = tmp_path / "data.txt"
    data.write_text("first line\nsecond\n")
    os.utime(data, (1_000_000_000, 1_234_567_890))
    args = {"jumps_files": [str(data)]}.get(name, [])
    got = same_as_linux(pe32, name, *args, stdin=test_pe_crt.SCANF_INPUT)
    if name == "threads":
        assert got.stderr == "thread attach 4 detach 4\n"
    if name == "scanf":
        assert "sscanf" in {i.name for i in PePackage.parse(pe32["scanf.msvcrt"].read_bytes()).pe.imports}
        same_as_linux(pe32, name, stdin=test_pe_crt.SCANF_INPUT, exe="msvcrt")


def test_tls_callback_and_cli_run_pick_the_32_bit_loader(pe32, capfd):
    assert cli_main(["pkg", "run", str(pe32["tls.exe"])]) == 0
    assert capfd.readouterr().out == "tls 42 123456789abc 4000000000\n"
    assert cli_main(["pkg", "info", "--json", str(pe32["tls.exe"])]) == 0
    assert '"format": "pe32"' in capfd.readouterr().out
    # against peload32's shims: _setjmp3 (i386 setjmp) is only there
    assert cli_main(["pkg", "info", "--imports", "--json", str(pe32["jumps_files.exe"])]) == 0
    info = json.loads(capfd.readouterr().out)
    assert info["unsupported_imports"] == 0 and {"import": "msvcrt.dll!_setjmp3", "supported": True} in \
        info["imports"]


def test_the_32_bit_loader_builds_without_warnings():
    proc = subprocess.run(["cc", *CFLAGS, *ARCH_FLAGS[32], "-Werror", "-fsyntax-only",
                           *map(str, native_sources("peload", bits=32))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_64_bit_loader_hands_pe32_over_and_the_32_bit_one_refuses_pe32_plus(pe32, tmp_path):
    """binfmt_misc runs the x86-64 peload for every MZ file: it execs peload32 for a PE32 one."""
    got = subprocess.run([str(native_program("peload")), "--relocate", str(pe32["tls.exe"])], capture_output=True,
                         text=True)
    assert (got.returncode, got.stdout, got.stderr) == (0, "tls 42 123456789abc 4000000000\n", "")
    exe = tmp_path / "exit7.exe"
    exe.write_bytes(crafted_pe.program("exit7"))
    got = peload32(exe)
    assert (got.returncode, got.stderr) == (126, "cerebro-peload: machine 0x8664: only PE32 i386 programs run in "
                                                 "this loader (x86-64 PE32+ programs run with cerebro-peload)\n")


# ---- crafted PE32 files ----

@pytest.mark.parametrize("relocate", [False, True])
def test_crafted_pe32_exits_through_stdcall_exit_process(tmp_path, relocate):
    exe = tmp_path / "exit7.exe"
    exe.write_bytes(crafted_pe.build32(crafted_pe.EXIT32))
    got = peload32(exe, relocate=relocate)
    assert (got.returncode, got.stderr) == (7, "")


@pytest.mark.parametrize("name, cause, rva", [("null_read", r"read of unmapped address 0x0", "0x1002"),
                                               ("stack_overflow", r"write to unmapped address 0x[0-9a-f]+", "0x1000")])
def test_crafted_pe32_fault_report(tmp_path, name, cause, rva):
    """One line and exit 125 as on x64 (the overflow is reported from the alternate signal stack)."""
    exe = tmp_path / f"{name}.exe"
    exe.write_bytes(crafted_pe.build32(crafted_pe.PROGRAMS32[name]))
    got = peload32(exe)
    assert (got.returncode, got.stdout) == (125, "")
    assert re.fullmatch(rf"cerebro-peload: {name}\.exe crashed: SIGSEGV \({cause}\) at {name}\.exe\+{rva} "
                        rf"\(pc 0x40{rva[2:]}\)\n", got.stderr), got.stderr


@pytest.mark.parametrize("how", ["null", "overflow"])
def test_fault_in_a_thread_is_reported(pe32, how):
    got = peload32(pe32["thread_fault.exe"], how)
    assert (got.returncode, got.stdout) == (125, "")
    assert re.fullmatch(r"cerebro-peload: thread_fault\.exe crashed: SIGSEGV \(write to (unmapped|protected) "
                        r"address 0x[0-9a-f]+\) at thread_fault\.exe\+0x[0-9a-f]+ \(pc 0x[0-9a-f]+\)\n", got.stderr), \
        got.stderr


HOSTILE32 = {  # name -> (loader exit status, its message, what pkg run's pre-check says or None)
    "highlow_outside_image": (126, "relocation target at RVA 0x10004 (+0x4) lies outside the image", "outside"),
    "highlow_straddles_image_end": (126, "relocation target at RVA 0x4ffe (+0x4) lies outside the image",
                                    "outside"),
    "dir64_in_pe32": (126, "unsupported base relocation type 10 at RVA 0x1004 in a PE32 image", "type 10"),
    "optional_header_truncated": (126, "optional header size 200 too small for 16 data directories", "too small"),
    "file_ends_in_optional_header": (126, "truncated PE header (offset 0x94)", "PE"),
    "image_base_past_4gib": (126, "ImageBase 0xffff0000 is not a 64 KiB-aligned user-space address",
                             "ImageBase 0xffff0000"),
    "import_by_ordinal": (127, "unsupported import KERNEL32.dll!#5", None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE32))
def test_crafted_pe32_refused_before_running(tmp_path, name):
    status, message, precheck = HOSTILE32[name]
    exe = tmp_path / f"{name}.exe"
    exe.write_bytes(crafted_pe.HOSTILE32[name]())
    got = peload32(exe)
    assert (got.returncode, got.stdout, got.stderr) == (status, "", f"cerebro-peload: {message}\n")
    if precheck:
        with pytest.raises(FormatError, match=re.escape(precheck)):
            PePackage.parse(exe.read_bytes()).run([])


# ---- third-party programs: the x64 tests' Lua 5.4 and brotli builds, for i386 ----

def _i386(command: list[str]) -> list[str]:
    """A test_pe_programs build command for i386: i686 MinGW for the .exe, gcc -m32 for Linux."""
    first, *rest = command
    return [MINGW32, *rest] if first == MINGW else ["gcc", *LINUX_FLAGS, *rest]


@pytest.fixture(scope="module")
def third_party() -> dict[str, Path]:
    """{"lua.exe", "lua", "brotli.exe", "brotli"} for i386, built once per source version (cached)."""
    need(MINGW32, "gcc")
    for sdist in ("lua", "brotli"):
        source_tree(sdist)  # downloads (or skips) before the builds start
    jobs = {output: (sdist, output.replace(".", "32.") if "." in output else f"{output}32", _i386(command))
            for (sdist, output), command in test_pe_programs.BUILDS.items()}
    ucrt = ucrt_flags(MINGW32)
    if ucrt is not None:
        command = _i386(test_pe_programs.BUILDS["lua", "lua.exe"])
        jobs["lua.ucrt.exe"] = ("lua", "lua32.ucrt.exe", [command[0], *ucrt, *command[1:]])
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(jobs, pool.map(lambda job: test_pe_programs._build(*job), jobs.values())))


def run_both(programs, name, *args, cwd, stdin=b"", exe="exe") -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "TZ": "UTC"}
    ref = subprocess.run([programs[name], *args], cwd=cwd, env=env, input=stdin, capture_output=True, timeout=60)
    got = subprocess.run([str(native_program("peload", bits=32)), programs[f"{name}.{exe}"], *args], cwd=cwd,
                         env=env, input=stdin, capture_output=True, timeout=60)
    assert (got.stdout, got.returncode) == (ref.stdout, ref.returncode), got.stderr.decode(errors="replace")
    return got


def test_lua_pe32_matches_linux(third_party, tmp_path):
    """The x64 test's known-values script (files, popen, os.time/os.date, string.pack) and Lua's own
    portable test files, byte for byte against the gcc -m32 build."""
    (tmp_path / "known.lua").write_text(test_pe_programs.LUA_SCRIPT)
    got = run_both(third_party, "lua", "known.lua", "out.txt", cwd=tmp_path)
    assert got.stdout.decode().splitlines()[7] == "1577836800\t2023-11-14 22:13:20" and got.stderr == b""
    testes = source_tree("lua") / "testes"
    for name in test_pe_programs.LUA_TESTES:
        got = run_both(third_party, "lua", "-e", "_port=true _soft=true", f"{name}.lua", cwd=testes)
        assert got.returncode == 0 and got.stdout.strip(), name
    if "lua.ucrt.exe" in third_party:  # the same on the UCRT
        assert run_both(third_party, "lua", "known.lua", "out.txt", cwd=tmp_path, exe="ucrt.exe").stderr == b""


def test_brotli_pe32_compresses_identically(third_party, tmp_path):
    """brotli.exe (i686) compresses to the Linux build's bytes, keeps the time stamp through msvcrt's
    32-bit _stat/_utime (crt32.c), and decompresses back, from files and through pipes."""
    data = test_pe_programs._text(100_000)
    for side in ("linux", "exe"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "in.txt").write_bytes(data)
        os.utime(tmp_path / side / "in.txt", (1_000_000_000, 1_234_567_890))
    args = ["-q", "9", "-o", "in.txt.br", "in.txt"]
    assert subprocess.run([third_party["brotli"], *args], cwd=tmp_path / "linux").returncode == 0
    got = subprocess.run([str(native_program("peload", bits=32)), third_party["brotli.exe"], *args],
                         cwd=tmp_path / "exe", capture_output=True)
    assert (got.returncode, got.stderr) == (0, b"")
    compressed = (tmp_path / "exe" / "in.txt.br").read_bytes()
    assert compressed == (tmp_path / "linux" / "in.txt.br").read_bytes() and len(compressed) < len(data) // 2
    assert os.stat(tmp_path / "exe" / "in.txt.br").st_mtime == 1_234_567_890
    assert run_both(third_party, "brotli", "-dc", "in.txt.br", cwd=tmp_path / "exe").stdout == data
    got = run_both(third_party, "brotli", "-c", "-q", "5", cwd=tmp_path, stdin=data)
    assert run_both(third_party, "brotli", "-d", cwd=tmp_path, stdin=got.stdout).stdout == data


def test_mutated_pe32_files_never_die_silently_or_hang(pe32, tmp_path):
    """test_pe's mutation run through peload32: the i686 MinGW program and the real PE32 launchers with
    header, import and relocation bytes changed; each run exits (never by a signal, never hangs), and a
    refusal or fault is exactly one loader line."""
    seeds = [(pe32["portable.exe"].read_bytes(), 250)] + [(test_pe.REAL[n].read_bytes(), 30) for n in
                                                          ("t32.exe", "cli-32.exe") if test_pe.REAL[n].exists()]
    test_pe.check_mutations(peload32, seeds, tmp_path, random.Random(32))
