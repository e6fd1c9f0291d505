"""Small programs for the dex interpreter, each run on the JVM (the reference) and through
run_main: stdout, stderr and exit status must match exactly.

Debian bookworm has no javac-to-dex tool (no d8, dx/dalvik-exchange left the archive), so the
programs are smali (assembled with Debian's smali) and the JVM runs the same dex turned into class
files by Debian's enjarify: one source, two machines. One smali call, one enjarify call and one
`java` per program, cached by the sources' hash under loader_support.CACHE."""

import io
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from jvm_reference import jvm_reference
from loader_support import need

from cerebro.binread import FormatError
from cerebro.loaders.apk import ApkPackage
from cerebro.loaders.dex import DexFile
from cerebro.loaders.dexvm import run_main

PROGRAMS_DIR = Path(__file__).parent / "dex_programs"
# program (class with main) -> its arguments
RUNS = {"Exc": [], "Strs": [], "Colls": [], "Refl": [], "Keys": [], "Input": [], "Lines": [], "Sync": [], "Enums": [],
        "Misc": []}
STDIN = {"Input": "3\n10 20\n  -5 2.5 rest of line\nsecond line\nthird\n", "Lines": "alpha\n\nbeta\r\ngamma"}


def _assemble_jar(work: Path) -> None:
    """Assembles every .smali into one dex and converts it for the JVM."""
    need("smali", "enjarify")
    sources = sorted(map(str, PROGRAMS_DIR.glob("*.smali")))
    subprocess.run(["smali", "assemble", "-o", str(work / "classes.dex"), *sources], check=True, capture_output=True)
    # enjarify's launcher prefers pypy/python3 from PATH; Debian's module lives with /usr/bin/python3
    subprocess.run(["enjarify", "-f", "-o", str(work / "programs.jar"), str(work / "classes.dex")], check=True,
                   capture_output=True, env={**os.environ, "PYTHON": "/usr/bin/python3"})


@pytest.fixture(scope="module")
def programs():
    folder, expected = jvm_reference("dex-programs", sorted(PROGRAMS_DIR.glob("*.smali")), _assemble_jar, RUNS, STDIN)
    return DexFile.parse((folder / "classes.dex").read_bytes()), expected


@pytest.mark.parametrize("name", sorted(RUNS))
def test_program_matches_the_jvm(programs, name):
    dex, expected = programs
    out, err = io.StringIO(), io.StringIO()
    status = run_main([dex], name, RUNS[name], out, err, stdin=io.StringIO(STDIN.get(name, "")))
    assert [status, out.getvalue(), err.getvalue()] == expected[name]


def test_collections_and_strings_count_against_the_heap_limit(programs):
    """A program keeping every string it makes in a HashMap ends in OutOfMemoryError (the heap limit)."""
    dex, _expected = programs
    out, err = io.StringIO(), io.StringIO()
    status = run_main([dex], "Grow", [], out, err, max_heap=48 << 20)
    assert status == 1 and out.getvalue() == ""
    assert err.getvalue().startswith('Exception in thread "main" java.lang.OutOfMemoryError: Java heap space')
    assert err.getvalue().endswith("\tat Grow.main(Unknown Source)\n")


def test_app_without_main_says_what_it_needs(programs):
    """`pkg run` of an app: the MAIN activity has no main(String[]); the error names the framework it
    needs and the classes --main could run instead."""
    dex, _expected = programs
    app = SimpleNamespace(dex={"classes.dex": dex}, main_activity=lambda: "App")
    with pytest.raises(FormatError) as refused:
        ApkPackage.run(app, [])
    message = str(refused.value)
    assert message.startswith("apk: the MAIN activity App has no static main(String[]): it is an Android app "
                              "(App extends android.app.Activity), and running one needs the Android framework")
    assert "classes with main(String[]): " in message and "Colls" in message and message.endswith("--main CLASS")
    out, err = io.StringIO(), io.StringIO()
    assert run_main([dex], "Colls", [], out, err) == 0  # what --main Colls runs


def test_sizes_from_the_program_are_java_exceptions(programs):
    """A bad regex, an out-of-range radix, a 10^9-wide format and a 2^31-fold repeat: Java exceptions
    (the heap is asked before the string exists), not host memory or a Python error."""
    dex, _expected = programs
    out, err = io.StringIO(), io.StringIO()
    status = run_main([dex], "Limits", [], out, err, max_heap=64 << 20)
    assert out.getvalue() == "class java.util.regex.PatternSyntaxException\n5\nformat width: OutOfMemoryError\n"
    assert status == 1 and err.getvalue().startswith('Exception in thread "main" java.lang.OutOfMemoryError: ')


def test_list_of_is_an_immutable_list(programs):
    dex, _expected = programs
    out, err = io.StringIO(), io.StringIO()
    assert run_main([dex], "ListOf", [], out, err) == 1
    assert out.getvalue() == "[b, a, c]\n"
    assert err.getvalue() == ('Exception in thread "main" java.lang.UnsupportedOperationException\n'
                              "\tat ListOf.main(Unknown Source)\n")


@pytest.mark.timeout(30)
def test_catastrophic_regexes_end_within_the_budget(programs):
    """Issue 18: "(a+)+$" and "(a|aa)*c" on 40 a's and a b (~2^40 backtracking steps) are refused with
    PatternSyntaxException; "a*a*a*a*a*a*a*a*b" (~42^9 steps there) is charged to the instruction budget
    before re runs and ends the run at it. Common patterns still work. Before the fix re ran for hours."""
    dex, _expected = programs
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(FormatError, match=r"^dex: instruction budget exhausted \(a regex's worst case"):
        run_main([dex], "Regex", [], out, err)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("worst-case matching cost is unbounded (a repeat of something that can match")
    assert lines[1:] == ["(a+)+$", "class java.util.regex.PatternSyntaxException", "x-y-z -,w", "3"]


def test_regex_charges_follow_re_worst_cases():
    """What split charges (instructions) on n characters: linear for a greedy repeat at the end,
    quadratic where re really rescans (`\\s*,\\s*` on spaces), and no shortcut under (?i), where
    [A-Z]* can start with the literal that follows it."""
    from cerebro.loaders.dexregex import bounded_regex

    def charged(pattern: str, n: int) -> int:
        spent = []
        bounded_regex(SimpleNamespace(spend=spent.append), pattern, " " * n, searches=2)
        return spent[0]

    assert charged(r"\s+", 100_000) < 10_000 and charged(",", 100_000) < 2_000
    assert 1_000_000 < charged(r"\s*,\s*", 10_000) < 5_000_000
    assert charged("(?i)[A-Z]*a", 10_000) > charged("[A-Z]*a", 10_000)


def test_replace_all_asks_the_heap_before_the_result_exists():
    """"(?=(.*))" -> "$1" on 20k characters makes 2*10^8 of them: an OutOfMemoryError once the heap's
    8 MB are asked for, with the host's memory never near the whole result (it was built, then asked)."""
    import tracemalloc

    from cerebro.loaders.dexexc import JavaThrow
    from cerebro.loaders.dexlib_lang import METHODS, STRING

    asked = []

    def allocate(size: int) -> None:
        asked.append(size)
        if sum(asked) > 8 << 20:
            raise JavaThrow("java.lang.OutOfMemoryError", "Java heap space")

    vm = SimpleNamespace(spend=lambda steps: None, allocate=allocate)
    replace_all = METHODS[str][f"replaceAll({STRING}{STRING}){STRING}"]
    tracemalloc.start()
    try:
        with pytest.raises(JavaThrow, match="OutOfMemoryError"):
            replace_all(vm, "x" * 20_000, "(?=(.*))", "$1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20
    asked.clear()
    assert replace_all(vm, "a1b22", "([0-9])", "<$1>") == "a<1>b<2><2>"
