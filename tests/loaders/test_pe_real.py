"""Real Windows programs others built (issue 18): pip's ninja wheel for win_amd64, an MSVC build with
its C runtime linked in, runs under the native loader and behaves as the Linux ninja of the same
version (pip's manylinux wheel): `--version`, a two-step build, a failing command, the no-op second
run, a rebuild after a touch, a tool. Both wheels are pinned by version and sha256 and cached.
Also the bounds the new KERNEL32 shims put on what a program hands them (crafted with MinGW)."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from loader_support import CACHE, need

from cerebro.loaders.native_build import native_program

NINJA_VERSION = "1.13.2"
WHEELS = {  # platform -> (wheel file, sha256, the program inside it)
    "win_amd64": (f"ninja-{NINJA_VERSION}-py3-none-win_amd64.whl",
                  "1293f4078278b70d0ee4b6cc8f3a9e030656c9b2f59909970343c4fe76070118", "ninja.exe"),
    "manylinux2014_x86_64": (f"ninja-{NINJA_VERSION}-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
                             "65a24341b5ac09fcadcc37082660be40a94174e51a937fabf6e2cae26225fa2c", "ninja"),
}


def _program(platform: str) -> Path:
    """The ninja program of the pinned wheel for platform, downloaded (pip) and extracted once."""
    wheel_name, sha256, program = WHEELS[platform]
    return _wheel_member(wheel_name, sha256, f"ninja=={NINJA_VERSION}", platform,
                         f"ninja-{NINJA_VERSION}.data/scripts/{program}")


def _wheel_member(wheel_name: str, sha256: str, requirement: str, platform: str, member: str) -> Path:
    """member of the pinned wheel, downloaded (pip) and extracted once."""
    folder = CACHE / "wheels"
    wheel = folder / wheel_name
    if not wheel.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                               "--platform", platform, "-d", str(folder), requirement],
                              capture_output=True, text=True)
        if not wheel.is_file():
            pytest.skip(f"pip download of {wheel_name} failed: {proc.stderr.strip()[-300:]}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert digest == sha256, f"{wheel}: sha256 {digest}, pinned {sha256}"
    program = member.rsplit("/", 1)[-1]
    target = folder / f"{wheel_name.split('-py')[0]}-{platform}" / program
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            data = z.read(member)
        tmp = target.with_name(f"{program}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR)
        os.replace(tmp, target)
    return target


@pytest.fixture(scope="module")
def ninjas() -> tuple[list[str], list[str]]:
    """(command running ninja.exe under the loader, command running the Linux ninja)."""
    return [str(native_program("peload")), str(_program("win_amd64"))], [str(_program("manylinux2014_x86_64"))]


def test_ninja_exe_version_matches_linux(ninjas):
    windows, linux = ninjas
    got = subprocess.run([*windows, "--version"], capture_output=True, text=True, timeout=60)
    want = subprocess.run([*linux, "--version"], capture_output=True, text=True, timeout=60)
    assert (got.returncode, got.stdout, got.stderr) == (0, want.stdout, "")
    assert got.stdout.startswith(NINJA_VERSION)


BUILD = """\
rule gen
  command = printf '%s\\n' "$$(cat $in)" "line two" > $out
  description = GEN $out
rule fail
  command = echo failing; exit 3
build mid.txt: gen in.txt
build out.txt: gen mid.txt
build bad: fail out.txt
default out.txt
"""

# (argv after ninja, a step before it in the build folder): each step's exit code, output and files
STEPS = [([], None), ([], None), (["bad"], None), ([], "touch"), (["-t", "targets", "all"], None),
         (["-t", "query", "mid.txt"], None)]


def _run_steps(command: list[str], folder: Path) -> list[tuple[int, str, str, str]]:
    folder.mkdir()
    (folder / "build.ninja").write_text(BUILD)
    (folder / "in.txt").write_text("first\n")
    results = []
    for args, before in STEPS:
        if before == "touch":
            (folder / "in.txt").write_text("second\n")
        proc = subprocess.run([*command, *args], cwd=folder, capture_output=True, timeout=60)
        out = (folder / "out.txt").read_bytes() if (folder / "out.txt").exists() else b""
        results.append((proc.returncode, proc.stdout.decode(), proc.stderr.decode(), out.decode()))
    return results


def test_ninja_exe_builds_as_linux_ninja(ninjas, tmp_path):
    """Subprocesses (CreateProcessA -> /bin/sh -c), their output through an overlapped named pipe on a
    completion port, file times (FindFirstFileExA, GetFileAttributesExA), the build and deps logs.
    ninja.exe's own lines end in CRLF: its C runtime writes stdout in text mode, as on Windows."""
    windows, linux = ninjas
    got = _run_steps(windows, tmp_path / "windows")
    want = _run_steps(linux, tmp_path / "linux")
    assert "\r\n" in got[0][1] and "\r\n" not in want[0][1]
    normalized = [(rc, out.replace("\r\n", "\n"), err.replace("\r\n", "\n"), data) for rc, out, err, data in got]
    assert normalized == want
    assert want[1][1] == "ninja: no work to do.\n" and want[2][0] != 0 and want[3][3] == "second\nline two\nline two\n"


BOUNDS = r"""
#include <windows.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    static char name[400], cmd[40000], path[5000];
    static wchar_t wpath[5000];
    STARTUPINFOA si = { sizeof si };
    PROCESS_INFORMATION pi;
    WIN32_FILE_ATTRIBUTE_DATA d;
    HANDLE h;
    DWORD code;
    strcpy(name, "\\\\.\\pipe\\");
    memset(name + 9, 'p', 300);
    h = CreateNamedPipeA(name, PIPE_ACCESS_INBOUND, 0, 1, 0, 0, 0, NULL);
    printf("long pipe name: %d %lu\n", h == INVALID_HANDLE_VALUE, GetLastError());
    memset(cmd, 'x', sizeof cmd - 1);
    memcpy(cmd, "echo ", 5);
    int started = CreateProcessA(NULL, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi);
    printf("long command line: %d %lu\n", started, GetLastError());
    memset(path, 'a', sizeof path - 1);
    int found = GetFileAttributesExA(path, GetFileExInfoStandard, &d);
    printf("long path: %d %lu\n", found, GetLastError());
    for (int i = 0; i < 4999; i++)
        wpath[i] = L'a';
    h = CreateFileW(wpath, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    printf("long wide path: %d %lu\n", h == INVALID_HANDLE_VALUE, GetLastError());
    char ok[] = "exit 7";
    if (CreateProcessA(NULL, ok, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        WaitForSingleObject(pi.hProcess, INFINITE);
        GetExitCodeProcess(pi.hProcess, &code);
        int closed = CloseHandle(pi.hProcess);
        printf("exit code %lu, close %d %d\n", code, closed, CloseHandle(pi.hThread));
    }
    if (argc > 1) {
        WIN32_FIND_DATAA f;
        FindFirstFileExA(argv[1], FindExInfoBasic, &f, FindExSearchNameMatch, NULL, 0);
        puts("not reached");
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def bounds_exe(tmp_path_factory) -> Path:
    need("x86_64-w64-mingw32-gcc")
    tmp = tmp_path_factory.mktemp("bounds")
    (tmp / "bounds.c").write_text(BOUNDS)
    subprocess.run(["x86_64-w64-mingw32-gcc", "-O1", "-o", str(tmp / "bounds.exe"), str(tmp / "bounds.c")], check=True)
    return tmp / "bounds.exe"


def test_caller_sizes_are_bounded(bounds_exe):
    """A pipe name past 256 characters is refused (ERROR_INVALID_PARAMETER, not copied over the end of
    the name buffer), a command line past CreateProcess's 32767 characters and paths past PATH_MAX fail
    with ERROR_FILENAME_EXCED_RANGE; a short command still runs and its exit code comes back."""
    got = subprocess.run([str(native_program("peload")), str(bounds_exe)], capture_output=True, text=True, timeout=60)
    assert (got.returncode, got.stderr) == (0, "")
    assert got.stdout.splitlines() == ["long pipe name: 1 87", "long command line: 0 206", "long path: 0 206",
                                       "long wide path: 1 206", "exit code 7, close 1 1"]


def test_unimplemented_search_pattern_fails_loudly(bounds_exe):
    """FindFirstFileEx only lists "DIR\\*": another pattern is one line and exit 126, never a fake listing."""
    got = subprocess.run([str(native_program("peload")), str(bounds_exe), "sub\\*.txt"], capture_output=True,
                         text=True, timeout=60)
    assert got.returncode == 126 and "not reached" not in got.stdout
    assert got.stderr == ('cerebro-peload: KERNEL32!FindFirstFileEx: only "DIR\\*" patterns are implemented, '
                          'not "sub\\*.txt"\n')


def _interrupt(command: list[str], folder: Path) -> tuple[int, str, bool]:
    """Ctrl-C (SIGINT to ninja alone) while a command runs: ninja stops it and says so."""
    folder.mkdir()
    (folder / "build.ninja").write_text("rule s\n  command = touch started; sleep 20; touch $out\nbuild o: s\n")
    proc = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not (folder / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out.decode().replace("\r\n", "\n"), (folder / "o").exists()


def test_ninja_exe_interrupt_matches_linux(ninjas, tmp_path):
    """SetConsoleCtrlHandler's handler runs on SIGINT, GenerateConsoleCtrlEvent stops the command's
    process group, its exit (CONTROL_C_EXIT) reads as interrupted, as ninja on Linux reports it."""
    windows, linux = ninjas
    want = _interrupt(linux, tmp_path / "linux")
    assert want == (130, "ninja: build stopped: interrupted by user.\n", False)
    assert _interrupt(windows, tmp_path / "windows") == want


DISTLIB_WHEEL = ("distlib-0.4.0-py2.py3-none-any.whl",
                 "9659f7d87e46584a30b5780e43ac7a2143098441670ff0a49d5f9034c54a6c16")
SCRIPT = "import sys\nprint(sys.argv[1:], sys.stdin.read().upper())\nsys.stderr.write('to stderr\\n')\nsys.exit(3)\n"


def _windows(path: Path) -> str:
    return str(path).replace("/", "\\")


@pytest.mark.parametrize(("launcher_name", "shebang"), [("t64.exe", "absolute"), ("t64.exe", "launcher_dir"),
                                                      ("t32.exe", "launcher_dir")])
def test_distlib_launcher_runs_its_script_as_python_does(tmp_path, launcher_name, shebang):
    """pip's console-script launcher (distlib's t64.exe, an old static MSVC runtime) written as distlib's
    ScriptMaker writes it on Windows: the launcher, a '#!' line naming python.exe (an absolute path or
    <launcher_dir>), then a zip with __main__.py. It finds that line in its own file (SetFilePointer),
    starts python.exe through CreateProcessW in a job object and exits with its code: the output, the
    exit status and stdin are those of running python on the same zip directly. t32.exe: the same
    launcher for i386, under peload32."""
    launcher = _wheel_member(*DISTLIB_WHEEL, "distlib==0.4.0", "any", f"distlib/{launcher_name}")
    scripts = tmp_path / "Scripts"
    scripts.mkdir()
    (scripts / "python.exe").symlink_to(os.path.realpath(sys.executable))
    python = _windows(scripts / "python.exe") if shebang == "absolute" else "<launcher_dir>\\python.exe"
    archive = tmp_path / "main.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("__main__.py", SCRIPT)
    exe = scripts / "hello.exe"
    exe.write_bytes(launcher.read_bytes() + f'#!"{python}"\n'.encode() + archive.read_bytes())
    # the loader's command line must quote as the MSVC runtime parses: a '"' inside, backslashes before a '"'
    # and at a word's end (t64 re-sends these words to python in its own CreateProcessW line)
    args = ["a", "b c", "\\not\\a\\file", "", "tab\tx", "x\\", 'd"e', 'f\\\\"g', "h\\\\", '"']
    got = subprocess.run([str(native_program("peload")), str(exe), *args], input="in\n", capture_output=True,
                         text=True, timeout=60)
    want = subprocess.run([str(scripts / "python.exe"), str(exe), *args], input="in\n", capture_output=True,
                          text=True, timeout=60)
    assert (got.returncode, got.stdout, got.stderr) == (3, want.stdout, want.stderr)
    assert want.stdout == f"{args} IN\n\n"


LAUNCHER_BOUNDS = r"""
#include <windows.h>
#include <shlwapi.h>
#include <stdio.h>
static struct { wchar_t dest[MAX_PATH], canary[1024]; } out;
static wchar_t line[40000], dir[5000];
int main(void)
{
    STARTUPINFOW si = { sizeof si };
    PROCESS_INFORMATION pi;
    DWORD code;
    for (int i = 0; i < 39999; i++)
        line[i] = L'x';
    int started = CreateProcessW(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi);
    printf("long command line: %d %lu\n", started, GetLastError());
    wcscpy(line, L"\\bin\\true");
    for (int i = 0; i < 3000; i++)
        wcscat(line, L" a");
    started = CreateProcessW(NULL, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi);
    printf("3000 words: %d %lu\n", started, GetLastError());
    for (int len = 300; len <= 4000; len += 3700) {
        for (int i = 0; i < len; i++)
            dir[i] = i % 10 ? L'd' : L'\\';
        dir[len] = 0;
        out.canary[0] = L'c';
        wchar_t *r = PathCombineW(out.dest, dir, L"file");
        printf("combine %d: %d %d %lu\n", len, r == NULL, out.canary[0] == L'c' && !out.canary[1], GetLastError());
    }
    printf("%ls\n", PathCombineW(out.dest, L"\\a\\b\\", L"..\\c\\.\\d"));
    printf("%ls\n", PathCombineW(out.dest, L"\\a", L"\\e"));
    wcscpy(dir, L"\\a\\b.exe");
    int removed = PathRemoveFileSpecW(dir);
    printf("%d %ls ", removed, dir);
    removed = PathRemoveFileSpecW(dir);
    printf("%d %ls ", removed, dir);
    removed = PathRemoveFileSpecW(dir);
    printf("%d %ls\n", removed, dir);
    printf("%ls\n", StrStrIW(L"C:\\Python\\PYTHON.EXE", L"python.exe"));
    wchar_t ok[] = L"\"\\bin\\sh\" -c \"exit 5\"";
    if (CreateProcessW(NULL, ok, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        WaitForSingleObjectEx(pi.hProcess, INFINITE, FALSE);
        GetExitCodeProcess(pi.hProcess, &code);
        printf("exit code %lu\n", code);
    }
    return 0;
}
"""


def test_launcher_shims_bound_what_they_parse(tmp_path):
    """CreateProcessW refuses a command line past 32767 characters (ERROR_FILENAME_EXCED_RANGE) and one
    of more than 2048 words (ERROR_INVALID_PARAMETER), never writing past its buffers; PathCombineW
    gives NULL for a result past MAX_PATH, leaving what follows the caller's buffer alone; the SHLWAPI
    functions answer as on Windows; a '\\'-rooted program runs and its exit code comes back."""
    need("x86_64-w64-mingw32-gcc")
    (tmp_path / "bounds.c").write_text(LAUNCHER_BOUNDS)
    subprocess.run(["x86_64-w64-mingw32-gcc", "-O1", "-o", str(tmp_path / "bounds.exe"), str(tmp_path / "bounds.c"),
                    "-lshlwapi"], check=True)
    got = subprocess.run([str(native_program("peload")), str(tmp_path / "bounds.exe")], capture_output=True,
                         text=True, timeout=60)
    assert (got.returncode, got.stderr) == (0, "")
    assert got.stdout.splitlines() == ["long command line: 0 206", "3000 words: 0 87", "combine 300: 1 1 206",
                                       "combine 4000: 1 1 206", "\\a\\c\\d", "\\e", "1 \\a 1 \\ 0 \\",
                                       "PYTHON.EXE", "exit code 5"]


SETUPTOOLS_WHEEL = ("setuptools-80.9.0-py3-none-any.whl",
                    "062d34222ad13e0cc312a4c02d73f059e86a4acbfbdea8f8f76b28c99f306922")


@pytest.mark.parametrize(("launcher_name", "bits", "shebang"), [
    ("cli-64.exe", 64, "absolute"), ("cli-64.exe", 64, "none"), ("cli-32.exe", 32, "posix"),
    ("gui-64.exe", 64, "absolute")])
def test_setuptools_launcher_runs_its_script_as_python_does(tmp_path, launcher_name, bits, shebang):
    """setuptools' console-script launcher (cli-64.exe / cli-32.exe: MSVC, UCRT DLLs) as easy_install wrote
    it: hello.exe beside hello-script.py, whose '#!' line names python.exe (a '\\' path, a '/' path, or none:
    then python.exe in the launcher folder's parent). It finds its script by GetModuleFileNameA and
    GetFinalPathNameByHandleA, reads the '#!' line (_open/_read), finds python with _splitpath/_makepath and
    starts `\\...\\python.exe "\\...\\hello-script.py" "arg"...` by CreateProcessA: a Windows command line that
    /bin/sh cannot run, so it is split and run as CreateProcessW does. gui-64.exe (hello-script.pyw) hands
    the same words to _execv instead. Output, stdin and exit status are those of python running the script."""
    launcher = _wheel_member(*SETUPTOOLS_WHEEL, "setuptools==80.9.0", "any", f"setuptools/{launcher_name}")
    scripts = tmp_path / "Scripts"
    scripts.mkdir()
    python = (tmp_path if shebang == "none" else scripts) / "python.exe"
    python.symlink_to(os.path.realpath(sys.executable))
    line = {"absolute": f"#!{_windows(python)}\n", "posix": f"#!{python}\n", "none": ""}[shebang]
    script = scripts / ("hello-script.pyw" if launcher_name.startswith("gui") else "hello-script.py")
    script.write_text(line + SCRIPT)
    exe = scripts / "hello.exe"
    exe.write_bytes(launcher.read_bytes())
    args = ["a", "b c", "\\not\\a\\file", "", "tab\tx", "x\\", 'd"e', 'f\\\\"g', "h\\\\", '"', "$HOME", "*"]
    got = subprocess.run([str(native_program("peload", bits=bits)), str(exe), *args], input="in\n",
                         capture_output=True, text=True, timeout=60)
    want = subprocess.run([str(python), str(script), *args], input="in\n",
                          capture_output=True, text=True, timeout=60)
    assert (got.returncode, got.stdout, got.stderr) == (3, want.stdout, want.stderr)
    assert want.stdout == f"{args} IN\n\n"


UCRT_STARTUP_BOUNDS = r"""
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <io.h>
#include <fcntl.h>
#include <float.h>
int main(int argc, char **argv)
{
    static struct { char path[MAX_PATH]; char canary[64]; } out;
    static char dir[400], drive[_MAX_DRIVE], d[_MAX_DIR], name[_MAX_FNAME], ext[_MAX_EXT];
    STARTUPINFOA si = { sizeof si };
    PROCESS_INFORMATION pi;
    DWORD code;
    HANDLE h = CreateFileA(argv[0], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    strcpy(out.canary, "canary");
    DWORD need = GetFinalPathNameByHandleA(h, out.path, 4, 0);
    printf("small buffer: %d %d\n", need == strlen(argv[1]) + 1, out.path[0] == 0);
    DWORD got = GetFinalPathNameByHandleA(h, out.path, MAX_PATH, 0);
    printf("final path: %d %d\n", got == strlen(argv[1]), !strcmp(out.path, argv[1]));
    got = GetFinalPathNameByHandleA((HANDLE)0x7777, out.path, MAX_PATH, 0);
    printf("bad handle: %lu %lu\n", got, GetLastError());
    got = GetFinalPathNameByHandleA(h, out.path, MAX_PATH, 1);
    printf("guid volume: %lu %lu\n", got, GetLastError());
    _splitpath("C:\\a\\b.c\\name.tar.gz", drive, d, name, ext);
    printf("split: [%s] [%s] [%s] [%s]\n", drive, d, name, ext);
    _splitpath("\\dir/plain", NULL, d, name, ext);
    printf("split: [%s] [%s] [%s]\n", d, name, ext);
    _makepath(out.path, "C", "\\x\\y", "z", "txt");
    printf("make: %s\n", out.path);
    _makepath(out.path, NULL, "\\x/", "z", ".c");
    printf("make: %s\n", out.path);
    int fd = _open(argv[0], _O_RDONLY | _O_BINARY);
    char mz[2];
    int n = _read(fd, mz, 2);
    printf("read: %d %.2s %d\n", n, mz, _close(fd));
    char shell[] = "echo $((6 * 7)) > shell.txt";
    char windows[] = "\\bin\\sh -c \"echo $((6 * 7)) > windows.txt\" unused";
    char alias[] = "\\true && exit 5";
    char *lines[] = { shell, windows, alias };
    for (int i = 0; i < 3; i++)
        if (CreateProcessA(NULL, lines[i], NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
            WaitForSingleObject(pi.hProcess, INFINITE);
            GetExitCodeProcess(pi.hProcess, &code);
            printf("command %d: exit %lu\n", i, code);
        } else {
            printf("command %d: not started %lu\n", i, GetLastError());
        }
#ifdef __i386__
    unsigned int cw;
    printf("controlfp: %d", _controlfp_s(&cw, _PC_24 | _RC_CHOP, _MCW_PC | _MCW_RC));
    printf(" %#x %#x", cw & _MCW_PC, cw & _MCW_RC);
    volatile double third = 1.0 / 3.0;
    printf(" %d", _controlfp_s(&cw, _PC_53 | _RC_NEAR, _MCW_PC | _MCW_RC));
    printf(" %#x %.17g", cw & (_MCW_PC | _MCW_RC), third);
    printf(" bad mask %d\n", _controlfp_s(&cw, 0, 0x80000000u));
#endif
    if (argc > 2) {
        memset(dir, 'd', sizeof dir - 1);
        dir[0] = '\\';
        char *words[] = { "sh", "-c", "\"echo $0 \\\"$1\\\" > exec.txt; exit 4\"", "a b", NULL };
        if (argv[2][0] == 's')
            _splitpath(dir, NULL, d, name, ext);
        else if (argv[2][0] == 'm')
            _makepath(out.path, NULL, dir, "f", "x");
        else
            _execv("\\bin\\sh", words);
        puts("not reached");
    }
    return strcmp(out.canary, "canary") != 0;
}
"""


@pytest.mark.parametrize("bits", [64, 32])
def test_ucrt_startup_shims_bound_what_they_write(tmp_path, bits):
    """What setuptools' launchers brought in, with crafted inputs: GetFinalPathNameByHandleA asks for a
    bigger buffer (leaving a small one alone) and refuses bad handles and other volume forms;
    _splitpath/_makepath split and join as msvcrt does, and a part longer than its fixed-size buffer
    (_MAX_FNAME, MAX_PATH) ends the program with one line instead of writing past it; _open/_read/_close;
    _execv joins its words with blanks and re-splits them (as Windows does) and replaces the process;
    CreateProcessA runs a shell line with /bin/sh, a '\\'-rooted program with no shell (its quoted
    argument is one word, '>' inside it is the shell's), and a '\\' word that names no file (sh's
    `\\true`, a command bypassing aliases) through the shell; on i386, _controlfp_s (MinGW's over
    msvcrt's _controlfp) sets the x87 precision and rounding and refuses unknown bits."""
    compiler = {64: "x86_64-w64-mingw32-gcc", 32: "i686-w64-mingw32-gcc"}[bits]
    need(compiler)
    (tmp_path / "bounds.c").write_text(UCRT_STARTUP_BOUNDS)
    exe = tmp_path / "bounds.exe"
    subprocess.run([compiler, "-O1", "-o", str(exe), str(tmp_path / "bounds.c")], check=True)
    loader = str(native_program("peload", bits=bits))
    got = subprocess.run([loader, str(exe), _windows(exe)], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert (got.returncode, got.stderr) == (0, "")
    want = ["small buffer: 1 1", "final path: 1 1", "bad handle: 0 6", "guid volume: 0 87",
            "split: [C:] [\\a\\b.c\\] [name.tar] [.gz]", "split: [\\dir/] [plain] []", "make: C:\\x\\y\\z.txt",
            "make: \\x/z.c", "read: 2 MZ 0", "command 0: exit 0", "command 1: exit 0", "command 2: exit 5"]
    if bits == 32:
        want.append("controlfp: 0 0x20000 0x300 0 0x10000 0.33333333333333331 bad mask 22")
    assert got.stdout.splitlines() == want
    assert (tmp_path / "shell.txt").read_text() == "42\n" and (tmp_path / "windows.txt").read_text() == "42\n"
    for which, message in (("split", "_splitpath: the file name part (398 bytes) does not fit its 256-byte buffer"),
                           ("make", "_makepath: the path is longer than MAX_PATH (260)")):
        got = subprocess.run([loader, str(exe), _windows(exe), which], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path)
        assert (got.returncode, got.stderr) == (126, f"cerebro-peload: {message}\n")
        assert "not reached" not in got.stdout
    got = subprocess.run([loader, str(exe), _windows(exe), "exec"], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert (got.returncode, got.stderr) == (4, "")
    assert (tmp_path / "exec.txt").read_text() == "a b\n"  # "a b" became $0=a $1=b: the joined line was re-split
