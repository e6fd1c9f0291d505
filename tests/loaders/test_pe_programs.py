"""Real programs others wrote, built from their own sources with MinGW (x86-64, on msvcrt and on the
UCRT), run through the native PE loader and compared byte for byte with the Linux build of
the same sources (issue 18 item 3): Lua 5.4 (a script computing known values, and Lua's own
platform-independent test files) and the brotli tool (files, stdin/stdout, keeping the input's time
stamp, removing the input)."""

import os
import random
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from loader_support import need
from sources import MINGW, cached_build, source_tree, ucrt_flags

from cerebro.loaders.native_build import native_program
from cerebro.loaders.pe import PeFile
from cerebro.loaders.pe_package import import_support

BUILDS = {  # (sdist, output): the build command in the source tree; "{out}" is the file it writes
    ("lua", "lua"): ["cc", "-O1", "-DLUA_USE_LINUX", "-o", "{out}", "onelua.c", "-lm", "-ldl"],  # as its makefile
    ("lua", "lua.exe"): [MINGW, "-O1", "-o", "{out}", "onelua.c"],
    ("brotli", "brotli"): ["cc", "-O1", "-Iinclude", "-o", "{out}", "tools/brotli.c", "common/*.c", "enc/*.c",
                           "dec/*.c", "-lm"],
    ("brotli", "brotli.exe"): [MINGW, "-O1", "-Iinclude", "-o", "{out}", "tools/brotli.c", "common/*.c", "enc/*.c",
                               "dec/*.c"],
}
# Each .exe is built on MinGW's default C runtime (msvcrt.dll) and on the Universal CRT
# (api-ms-win-crt-*.dll); test_pe32.py builds the same sources for i686.
VARIANTS = ("msvcrt", "ucrt")
EXPECTED_DLLS = {"msvcrt": {"kernel32.dll", "msvcrt.dll"}, "ucrt": {"kernel32.dll", "api-ms-win-crt-stdio-l1-1-0.dll"}}


def variant_compilers() -> dict[str, list[str] | str]:
    """variant -> the MinGW compiler and flags to build it with, or why it cannot be built here."""
    ucrt = ucrt_flags()
    return {"msvcrt": [MINGW], "ucrt": [MINGW, *ucrt] if ucrt else f"{MINGW} ships no UCRT import library"}


def _build(sdist: str, output: str, command: list[str]) -> Path:
    """The command's globs expanded in the source tree (sorted: the same command, the same cache key)."""
    tree = source_tree(sdist)
    expanded = []
    for arg in command:
        expanded += sorted(str(p.relative_to(tree)) for p in tree.glob(arg)) if "*" in arg else [arg]
    return cached_build(sdist, expanded, tree, output)


@pytest.fixture(scope="module")
def programs() -> dict[str, Path | str]:
    """{"lua", "lua.<variant>.exe" for each variant, and the same for brotli}: built once per source
    version and command (cached), two at a time; a variant that cannot be built here maps to why."""
    need(MINGW, "cc")
    for sdist in ("lua", "brotli"):
        source_tree(sdist)  # downloads (or skips) before the builds start
    jobs, out, compilers = {}, {}, variant_compilers()
    for (sdist, output), command in BUILDS.items():
        if not output.endswith(".exe"):
            jobs[output] = (sdist, output, command)
            continue
        for variant, compiler in compilers.items():
            key = f"{sdist}.{variant}.exe"
            if isinstance(compiler, str):
                out[key] = compiler
            else:
                jobs[key] = (sdist, key, [*compiler, *command[1:]])
    with ThreadPoolExecutor(2) as pool:
        return {**out, **dict(zip(jobs, pool.map(lambda job: _build(*job), jobs.values())))}


def run_both(programs: dict, name: str, variant: str, *args: str, cwd: Path, stdin: bytes = b""
             ) -> subprocess.CompletedProcess:
    """The Linux build, then the MinGW build of variant through the loader, with the same arguments,
    input and environment: stdout and exit status must be the same bytes; the loader's run is returned."""
    env = {"PATH": "/usr/bin:/bin", "TZ": "UTC"}
    ref = subprocess.run([programs[name], *args], cwd=cwd, env=env, input=stdin, capture_output=True, timeout=60)
    got = peload(windows_build(programs, name, variant), *args, cwd=cwd, env=env, input=stdin)
    assert (got.stdout, got.returncode) == (ref.stdout, ref.returncode), got.stderr.decode(errors="replace")
    return got


def windows_build(programs: dict, name: str, variant: str) -> Path:
    built = programs[f"{name}.{variant}.exe"]
    if isinstance(built, str):
        pytest.skip(built)
    return built


def peload(exe: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(native_program("peload")), exe, *args], capture_output=True, timeout=60, **kw)


def dlls(exe: Path) -> set[str]:
    """The DLLs the program imports from (lower case), after checking every import has a shim."""
    support = import_support(PeFile.parse(exe.read_bytes()))
    assert not [name for name, ok in support if not ok]
    return {name.split("!")[0].lower() for name, _ok in support}


LUA_SCRIPT = r"""
local t = {}
for i = 1, 20 do t[i] = (i * 7919) % 101 end
table.sort(t, function(a, b) return a > b end)
print(table.concat(t, ","))
print(string.format("%5.2f %d %x %s %q %g", math.pi, 2^53 // 3, 255, 1/3, "a\nb", 1e300 * 1e10))
print(math.sin(1), math.acos(0.5), math.asin(1), math.tan(1), math.log(100, 10), math.sqrt(2), math.fmod(7, 3))
print(("hello world"):gsub("o", "0"), ("abc"):rep(3, "-"), ("%d items"):format(42), ("x"):byte())
local n = 0 for w in ("the quick brown fox"):gmatch("%a+") do n = n + #w end print(n)
print(utf8.char(72, 228, 8364), utf8.len("h\u{E4}\u{20AC}"), math.maxinteger, math.mininteger, 7 // 2, 7.5 // 2)
print(os.time{year=2020, month=1, day=1, hour=0}, os.date("!%Y-%m-%d %H:%M:%S", 1700000000))
local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
print(co(1), co(10), select("#", pcall(error)), tonumber("0x10"), tonumber("z", 36))
local fib = setmetatable({}, {__index = function(s, k) local v = k < 2 and k or s[k-1] + s[k-2] s[k] = v return v end})
print(fib[90], string.pack("<i4d", 7, 0.5):byte(1, -1))
local f = assert(io.open(arg[1], "w")) f:write("line1\n", 42, "\n", 3.5, "\n") f:close()
for l in io.lines(arg[1]) do io.write("[", l, "]") end print()
f = assert(io.open(arg[1], "r")) print(f:read("n", "n", "n"), f:seek("end")) f:close()
print(os.rename(arg[1], arg[1] .. ".moved"), io.open(arg[1]) == nil, os.remove(arg[1] .. ".moved"))
print(select(2, os.remove(arg[1] .. ".gone")) ~= nil, io.popen("echo piped"):read("a"), os.execute("exit 3"))
local tmp = os.tmpname() local g = assert(io.open(tmp, "w")) g:write("tmp") g:close() print(#tmp > 0, os.remove(tmp))
print(os.setlocale(), os.setlocale("C", "numeric"), os.getenv("TZ"), #arg, arg[0] ~= nil)
"""


@pytest.mark.parametrize("variant", VARIANTS)
def test_lua_script_matches_linux_build(programs, tmp_path, variant):
    assert EXPECTED_DLLS[variant] <= dlls(windows_build(programs, "lua", variant))
    (tmp_path / "known.lua").write_text(LUA_SCRIPT)
    got = run_both(programs, "lua", variant, "known.lua", "out.txt", cwd=tmp_path)
    lines = got.stdout.decode().splitlines()
    assert lines[0] == ",".join(map(str, sorted(((i * 7919) % 101 for i in range(1, 21)), reverse=True)))
    assert lines[7] == "1577836800\t2023-11-14 22:13:20" and lines[9].startswith("2880067194370816120\t7\t0")
    assert lines[10:15] == ["[line1][42][3.5]", "nil\t13", "true\ttrue\ttrue", "true\tpiped", "\tnil\texit\t3"]
    assert lines[15:] == ["true\ttrue", "C\tC\tUTC\t1\ttrue"]
    assert got.stderr == b""


# Lua 5.4's own test files (testes/) whose output does not depend on the platform (long is 32 bits on
# Windows, so tpack.lua differs; math.lua and sort.lua print random seeds and timings); each checks
# itself with assert and the runs must agree byte for byte.
LUA_TESTES = ["bitwise", "calls", "closure", "coroutine", "events", "goto", "literals", "nextvar", "pm", "utf8",
              "vararg"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_lua_own_test_files(programs, variant):
    testes = source_tree("lua") / "testes"
    for name in LUA_TESTES:
        got = run_both(programs, "lua", variant, "-e", "_port=true _soft=true", f"{name}.lua", cwd=testes)
        assert got.returncode == 0 and got.stdout.strip(), name


def _text(size: int) -> bytes:
    rng = random.Random(5)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 9))) for _ in range(500)]
    out, length = [], 0
    while length < size:
        out.append(rng.choice(words) + rng.choice(" \n"))
        length += len(out[-1])
    return "".join(out).encode()[:size]


@pytest.mark.parametrize("variant", VARIANTS)
def test_brotli_compresses_and_decompresses_identically(programs, tmp_path, variant):
    """brotli.exe compresses a 100 KB file to the same bytes as the Linux build (files and pipes),
    decompresses it back, gives the output the input's time stamp (_utime64), and with -j
    removes the input (_unlink)."""
    assert EXPECTED_DLLS[variant] <= dlls(windows_build(programs, "brotli", variant))
    data = _text(100_000)
    for side in ("linux", "exe"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "in.txt").write_bytes(data)
        os.utime(tmp_path / side / "in.txt", (1_000_000_000, 1_234_567_890))
    args = ["-j", "-q", "9", "-o", "in.txt.br", "in.txt"]
    ref = subprocess.run([programs["brotli"], *args], cwd=tmp_path / "linux", capture_output=True)
    got = peload(windows_build(programs, "brotli", variant), *args, cwd=tmp_path / "exe")
    assert (got.returncode, got.stderr) == (ref.returncode, ref.stderr) == (0, b"")
    compressed = (tmp_path / "exe" / "in.txt.br").read_bytes()
    assert compressed == (tmp_path / "linux" / "in.txt.br").read_bytes() and len(compressed) < len(data) // 2
    assert not (tmp_path / "exe" / "in.txt").exists() and not (tmp_path / "linux" / "in.txt").exists()
    assert os.stat(tmp_path / "exe" / "in.txt.br").st_mtime == 1_234_567_890
    assert run_both(programs, "brotli", variant, "-dc", "in.txt.br", cwd=tmp_path / "exe").stdout == data
    got = run_both(programs, "brotli", variant, "-c", "-q", "5", "-w", "18", cwd=tmp_path, stdin=data)
    assert run_both(programs, "brotli", variant, "-d", cwd=tmp_path, stdin=got.stdout).stdout == data
