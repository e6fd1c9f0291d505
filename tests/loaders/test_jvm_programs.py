"""Java programs compiled by Debian's javac at test time, run by the JVM front end of the dex
interpreter (classfile + jvmvm) and by `java`: stdout, stderr and exit status must match exactly.
One javac call and one `java` per program, cached by the sources' hash under loader_support.CACHE.
Then hostile class files (crafted_class.py): each gives one clear error, never a Python one."""

import hashlib
import io
import random
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from crafted_class import Pool, build_class
from jvm_reference import jvm_reference
from loader_support import CACHE, need
from sources import Sdist
from sources import _download as sdist_download

from cerebro.binread import FormatError
from cerebro.loaders import cli
from cerebro.loaders.classfile import parse_class
from cerebro.loaders.jvmjar import read_jar
from cerebro.loaders.jvmvm import run_classes

PROGRAMS_DIR = Path(__file__).parent / "java_programs"
# program (class with main) -> its arguments
RUNS = {"Colls": [], "Strs": [], "Numbers": [], "Exc": [], "Refl": [], "Threads": [], "Oop": ["a", "b"],
        "Lambdas": [], "Exit": ["one", "3"], "Records": [], "Input": [], "Lines": ["lines"],
        "Streams": [], "Nulls": ["x"], "Algo": [], "Props": [], "WaitNotify": [],
        "WaitExit": ["exit"], "ArrayTypes": ["x", "y"]}
STDIN = {"Input": "3\n10 20 -5\n2.5 word and the rest\nsecond line\n\n--\nx\ny\n",
         "Lines": "alpha\n\n  beta \r\ngamma"}
MAIN_OF = {"Lines": "Input", "WaitExit": "WaitNotify"}  # runs whose class is another's


def _compile_jar(work: Path) -> None:
    """Compiles every .java into one JAR (no Main-Class)."""
    need("javac")
    (work / "classes").mkdir()
    subprocess.run(["javac", "-d", str(work / "classes"), *map(str, sorted(PROGRAMS_DIR.glob("*.java")))],
                   check=True, capture_output=True)
    with zipfile.ZipFile(work / "programs.jar", "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
        for path in sorted((work / "classes").glob("*.class")):
            z.write(path, path.name)


@pytest.fixture(scope="module")
def programs():
    sources = sorted(PROGRAMS_DIR.glob("*.java"))
    folder, expected = jvm_reference("jvm-programs", sources, _compile_jar, RUNS, STDIN, MAIN_OF)
    return folder / "programs.jar", expected


@pytest.mark.parametrize("name", sorted(RUNS))
def test_program_matches_the_jvm(programs, name, monkeypatch):
    jar, expected = programs
    monkeypatch.chdir(CACHE)  # where the JVM ran them (Props prints user.dir)
    out, err = io.StringIO(), io.StringIO()
    status = run_classes(list(read_jar(jar.read_bytes()).classes.values()), MAIN_OF.get(name, name), RUNS[name],
                         out, err,
                         stdin=io.StringIO(STDIN.get(name, "")))
    assert [status, out.getvalue(), err.getvalue()] == expected[name]


def test_pkg_run_takes_main_class_from_the_manifest(programs, tmp_path, capsys):
    """`cerebroc pkg run x.jar ARGS`: Main-Class from META-INF/MANIFEST.MF (continued over two lines);
    `--main` another class; a lone .class file runs its own main; missing classes are named."""
    jar, expected = programs
    with zipfile.ZipFile(jar) as src, zipfile.ZipFile(tmp_path / "exit.jar", "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nMain-Class: Ex\r\n it\r\n\r\n")
        for name in src.namelist():
            if name.endswith(".class"):
                z.writestr(name, src.read(name))
        (tmp_path / "Exit.class").write_bytes(src.read("Exit.class"))
    assert cli.main(["pkg", "run", str(tmp_path / "exit.jar"), "one", "3"]) == 3
    assert list(capsys.readouterr()[:2]) == expected["Exit"][1:]
    assert cli.main(["pkg", "run", str(tmp_path / "Exit.class"), "x"]) == 0
    assert capsys.readouterr().out == "args 1\narg [x]\nnot reached\n"
    assert cli.main(["pkg", "run", "--main", "Refl", str(tmp_path / "exit.jar")]) == 0
    assert capsys.readouterr().out == expected["Refl"][1]
    with pytest.raises(FormatError, match=r"^jar: class Nope is not in the jar; classes with main\(String\[\]\): "
                                          r"Algo, ArrayTypes, Colls, Exc, Exit \(and 12 more\); run one with --main"):
        cli.load_package(tmp_path / "exit.jar").run([], main="Nope")


def test_pkg_info_lists_the_jar(programs):
    jar, _expected = programs
    info = read_jar(jar.read_bytes()).info()
    assert info["format"] == "jar" and info["main_class"] is None and info["class_versions"] == ["61 (Java 17)"]
    assert info["classes_with_main"] == sorted(RUNS.keys() - MAIN_OF.keys()) and "Oop$Planet" in info["classes"]


def test_missing_library_method_is_named(programs):
    """A call into a part of the Java library the interpreter lacks: one line naming class and method."""
    pool = Pool()
    ref = pool.member(10, "java/lang/Runtime", "getRuntime", "()Ljava/lang/Runtime;")
    data = build_class(bytes([0xB8]) + ref.to_bytes(2, "big") + bytes([0x57, 0xB1]), pool=pool)
    with pytest.raises(FormatError, match=r"^jar: method Ljava/lang/Runtime;->getRuntime\(\)Ljava/lang/Runtime; is "
                                          "not in the jar and not supported by the interpreter$"):
        run_classes([parse_class(data)], "T", [], io.StringIO(), io.StringIO())


def test_budget_heap_and_depth_limits():
    """An endless loop ends at the instruction budget; arrays kept forever end in OutOfMemoryError at the
    heap limit; endless recursion is a StackOverflowError, all as Java sees them."""
    loop = build_class(bytes([0xA7, 0x00, 0x00]))  # goto self
    with pytest.raises(FormatError, match=r"^jar: instruction budget exhausted"):
        run_classes([parse_class(loop)], "T", [], io.StringIO(), io.StringIO(), max_steps=10_000)
    # Object[] chain = null; for (;;) chain = new Object[] {chain, new int[100000]};
    pool = Pool()
    size, obj = pool.add(b"\x03" + (100_000).to_bytes(4, "big")), pool.cls("java/lang/Object")
    grow = build_class(bytes([0x01, 0x4C, 0x05, 0xBD, 0, obj, 0x59, 0x03, 0x2B, 0x53, 0x59, 0x04, 0x12, size,
                              0xBC, 0x0A, 0x53, 0x4C, 0xA7, 0xFF, 0xF0]), max_stack=4, max_locals=2, pool=pool)
    out, err = io.StringIO(), io.StringIO()
    assert run_classes([parse_class(grow)], "T", [], out, err, max_heap=48 << 20) == 1
    assert err.getvalue().startswith('Exception in thread "main" java.lang.OutOfMemoryError: ')
    pool = Pool()
    me = pool.member(10, "T", "main", "([Ljava/lang/String;)V")
    recurse = build_class(bytes([0x2A, 0xB8]) + me.to_bytes(2, "big") + bytes([0xB1]), pool=pool)
    out, err = io.StringIO(), io.StringIO()
    assert run_classes([parse_class(recurse)], "T", [], out, err) == 1
    assert err.getvalue().startswith('Exception in thread "main" java.lang.StackOverflowError\n\tat T.main(')


HOSTILE = {  # name -> (class file bytes, the one-line error)
    "huge pool count": (build_class(b"\xb1", pool_count=65535), r"constant pool entry count 65534 does not fit"),
    "truncated file": (build_class(b"\xb1")[:40], r"lies outside the file"),
    "future version": (build_class(b"\xb1", version=70), r"class file version 70\.0 is not one of Java 1\.1-17"),
    "class names itself": (b"\xca\xfe\xba\xbe\x00\x00\x00\x3d\x00\x03\x07\x00\x01\x07\x00\x02"
                           b"\x00\x21\x00\x01\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
                           r"constant pool index 1 for a class name is a Class entry"),
    "stack underflow": (build_class(b"\x57\xb1"), r"operand stack underflow at 0 \(opcode 0x57\)"),
    "stack overflow": (build_class(b"\x03\x03\x03\x57\x57\x57\xb1", max_stack=2),
                       r"operand stack overflow at 2: 3 words, max_stack 2"),
    "push in a loop": (build_class(b"\x03\xa7\xff\xff", max_stack=100),
                       r"operand stack depth at 0 is 0 on one path, 1 on another"),
    "truncated code": (build_class(b"\x03\x11\x00"), r"instruction at 1 is truncated by the end of the code"),
    "jump out of range": (build_class(b"\xa7\x00\x64"), r"jump from 0 to 100, which is not an instruction"),
    "jump into an instruction": (build_class(b"\x11\x00\x00\xa7\xff\xfe"), r"jump from 3 to 1, which is not"),
    "falls off the end": (build_class(b"\x03\x57"), r"execution falls off the end of the code after 1"),
    "local past max_locals": (build_class(b"\x15\x05\x57\xb1"), r"uses local 5, past max_locals 1"),
    "field index out of range": (build_class(b"\xb2\x03\xe7\x57\xb1"),
                                 r"constant pool index 999 for a field or method is out of range"),
    "method index names a Utf8": (build_class(b"\xb8\x00\x01\xb1"),
                                  r"constant pool index 1 for a field or method is a Utf8 entry"),
    "huge tableswitch": (build_class(b"\x03\xaa\x00\x00\x00\x00\x00\x04\x80\x00\x00\x00\x7f\xff\xff\xff"),
                         r"tableswitch at 1 has range -2147483648\.\.2147483647"),
    "handler outside the code": (build_class(b"\xb1", exceptions=[(0, 1, 9, 0)]),
                                 r"exception table entry 0 \(0-1 -> 9\) lies outside the code"),
    "jsr": (build_class(b"\xa8\x00\x03\xb1"), r"opcode 0xa8 at 0 is not supported \(jsr/ret subroutines\)"),
    "empty code": (build_class(b""), r"code length 0 is outside 1\.\.65535"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_class_file_gives_one_clear_error(name):
    data, message = HOSTILE[name]
    with pytest.raises(FormatError, match=message) as refused:
        run_classes([parse_class(data, "t.class")], "T", [], io.StringIO(), io.StringIO())
    assert "\n" not in str(refused.value) and str(refused.value).startswith("t.class")


PY4J = ("py4j==0.10.9.7", "py4j-0.10.9.7-py2.py3-none-any.whl",
        "85defdfd2b2376eb3abf5ca6474b51ab7e0de341c75a02f46dc9b5976f5a5c1b",
        "py4j-0.10.9.7.data/data/share/py4j/py4j0.10.9.7.jar")


def _wheel_jar(requirement: str, wheel_name: str, sha256: str, member: str) -> Path:
    """A JAR inside a pinned PyPI wheel, downloaded (pip) once and checked against its sha256."""
    folder = CACHE / "wheels"
    wheel = folder / wheel_name
    if not wheel.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                               "-d", str(folder), requirement], capture_output=True, text=True)
        if not wheel.is_file():
            pytest.skip(f"pip download of {wheel_name} failed: {proc.stderr.strip()[-300:]}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert digest == sha256, f"{wheel}: sha256 {digest}, pinned {sha256}"
    target = folder / member.rsplit("/", 1)[-1]
    if not target.is_file():
        with zipfile.ZipFile(wheel) as z:
            target.write_bytes(z.read(member))
    return target


@pytest.mark.parametrize("args", [["--help"], ["--die-on-broken-pipe", "notaport"]])
def test_py4j_gateway_server_main_matches_the_jvm(args):
    """py4j's own main class (PyPI's py4j wheel, Java 6 class files): its class initialiser turns
    java.util.logging off, main parses the arguments and prints its usage (stderr, status 1) as on a JVM."""
    need("java")
    jar = _wheel_jar(*PY4J)
    reference = subprocess.run(["java", "-cp", str(jar), "py4j.GatewayServer", *args], capture_output=True, text=True,
                               timeout=60)
    assert reference.returncode == 1 and reference.stderr.startswith("usage: ")
    out, err = io.StringIO(), io.StringIO()
    status = run_classes(list(read_jar(jar.read_bytes()).classes.values()), "py4j.GatewayServer", args, out, err)
    assert [status, out.getvalue(), err.getvalue()] == [1, reference.stdout, reference.stderr]


JPYPE = Sdist("JPype1", "1.5.0", sha256="425a6e1966afdd5848b60c2688bcaeb7e40ba504a686f1114589668e0631e878", tree="",
              path="25/42/8ca50a0e27e3053829545829e7bcba071cbfa4d5d8fd7fc5d1d988f325b1")


def test_jpype_main_with_an_unloadable_signature_fails_as_the_launcher_does(tmp_path):
    """JPype's test JAR unsatisfied.jar (PyPI's JPype1 1.5.0 sdist, pinned sha256): TestClass.main would
    print, but another public method returns a class the JAR lacks; the java launcher's look-up of main
    resolves it and stops with NoClassDefFoundError, status 1, and so does `pkg run`."""
    need("java")
    with tarfile.open(sdist_download(JPYPE)) as tar:
        data = tar.extractfile("JPype1-1.5.0/test/jar/unsatisfied.jar").read()
    jar = tmp_path / "unsatisfied.jar"
    jar.write_bytes(data)
    main = "org.jpype.unsatisfied.TestClass"
    reference = subprocess.run(["java", "-cp", str(jar), main], capture_output=True, text=True, timeout=60)
    assert reference.returncode == 1
    assert "NoClassDefFoundError: org/jpype/unsatisfied/UnsatisfiedClass" in reference.stderr
    out, err = io.StringIO(), io.StringIO()
    status = run_classes(list(read_jar(data).classes.values()), main, [], out, err)
    assert [status, out.getvalue(), err.getvalue()] == [1, reference.stdout, reference.stderr]


def test_multi_release_jar_runs_the_versioned_class(programs, tmp_path):
    """Multi-Release: true: META-INF/versions/9/Exit.class replaces the base Exit, as on java 17; without
    the manifest attribute the versioned class is ignored."""
    need("javac", "java")
    jar, _expected = programs
    (tmp_path / "Exit.java").write_text('public class Exit { public static void main(String[] a) { '
                                        'System.out.println("release 9 " + a.length); } }')
    subprocess.run(["javac", "-d", str(tmp_path / "v9"), str(tmp_path / "Exit.java")], check=True,
                   capture_output=True)
    outputs = []
    for multi in ("true", "false"):
        mr = tmp_path / f"mr-{multi}.jar"
        with zipfile.ZipFile(jar) as src, zipfile.ZipFile(mr, "w") as z:
            z.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\r\nMulti-Release: {multi}\r\n\r\n")
            z.writestr("Exit.class", src.read("Exit.class"))
            z.write(tmp_path / "v9" / "Exit.class", "META-INF/versions/9/Exit.class")
        reference = subprocess.run(["java", "-cp", str(mr), "Exit"], capture_output=True, text=True, timeout=60)
        out, err = io.StringIO(), io.StringIO()
        status = run_classes(list(read_jar(mr.read_bytes()).classes.values()), "Exit", [], out, err)
        assert [status, out.getvalue(), err.getvalue()] == [reference.returncode, reference.stdout, reference.stderr]
        outputs.append(out.getvalue())
    assert outputs == ["release 9 0\n", "args 0\nnot reached\n"]


def test_concat_recipe_wanting_more_than_the_call_site_gives(programs):
    """A makeConcatWithConstants recipe asking for two arguments where the call site passes one (Exit's
    "arg [\\1]" turned into "arg [\\1\\1"): one clear error (it was a Python StopIteration)."""
    jar, _expected = programs
    with zipfile.ZipFile(jar) as z:
        data = z.read("Exit.class")
    assert data.count(b"arg [\x01]") == 1
    bad = parse_class(data.replace(b"arg [\x01]", b"arg [\x01\x01"), "Exit.class")
    with pytest.raises(FormatError, match=r"^jar: string concatenation recipe wants 2 arguments and 0 constants, "
                                          r"the call site has 1 and 0$"):
        run_classes([bad], "Exit", ["x"], io.StringIO(), io.StringIO())


def test_mutated_class_files_parse_or_give_format_error(programs):
    """300 seeded mutations (bytes changed, cut, inserted) of the compiled programs: each class file
    reads and decodes, or gives FormatError; never another Python error."""
    from cerebro.loaders.jvmcode import decode
    jar, _expected = programs
    with zipfile.ZipFile(jar) as z:
        seeds = [z.read(n) for n in sorted(z.namelist()) if n.endswith(".class")]
    rng = random.Random(18)
    refused = 0
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.6:
                data[at] = rng.randrange(256)
            elif choice < 0.8:
                del data[at:at + rng.randint(1, 16)]
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 8))
        try:
            c = parse_class(bytes(data))
            for m in c.direct_methods + c.virtual_methods:
                if m.code is not None:
                    decode(m.code, m.ref.name)
        except FormatError as e:
            assert "\n" not in str(e)
            refused += 1
    assert refused > 100


def test_deadlock_is_one_error_naming_each_thread(programs):
    """Two threads taking two locks in opposite orders: the JVM hangs for ever; the scheduler finds every
    thread waiting and says so (WaitNotify's argument takes that path; without one it matches java)."""
    jar, _expected = programs
    with pytest.raises(FormatError, match=r"^jar: deadlock: every thread waits for ever, so the JVM would hang "
                                          r"\(main: the lock of a java.lang.Object; Thread-0: the lock of a "
                                          r"java.lang.Object\)$"):
        run_classes(list(read_jar(jar.read_bytes()).classes.values()), "WaitNotify", ["deadlock"], io.StringIO(),
                    io.StringIO())


def test_arithmetic_on_a_reference_allocates_nothing():
    """dexvm's arithmetic (shared by the JVM front end): a register holding an array multiplied by 10^4 was
    Python's list repetition, 80 MB outside the heap limit before the TypeError (10^6 x 1000 was 8 GB);
    now it is refused before anything is built."""
    import tracemalloc

    from cerebro.loaders.dexvm import _arith
    array = [0] * 1000
    tracemalloc.start()
    try:
        with pytest.raises(TypeError, match="arithmetic on a list and a int"):
            _arith("I", "mul", array, 10_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_null_pointer_message_analysis_is_bounded(monkeypatch):
    """The dataflow pass behind a NullPointerException's `because` part stops after MAX_WORK stack words
    (hostile code could merge deep stacks at many joins): the message then names only the action, as the
    JVM's does when it cannot tell."""
    from cerebro.loaders import jvmnpe
    pool = Pool()
    length = pool.member(10, "java/lang/String", "length", "()I")
    code = bytes([0x01, 0xB6]) + length.to_bytes(2, "big") + bytes([0x57, 0xB1])  # ((String) null).length()
    messages = []
    for work in (jvmnpe.MAX_WORK, 0):
        monkeypatch.setattr(jvmnpe, "MAX_WORK", work)
        err = io.StringIO()
        assert run_classes([parse_class(build_class(code, pool=pool))], "T", [], io.StringIO(), err) == 1
        messages.append(err.getvalue().splitlines()[0])
    assert messages == ['Exception in thread "main" java.lang.NullPointerException: Cannot invoke "String.length()" '
                        'because "null" is null',
                        'Exception in thread "main" java.lang.NullPointerException: Cannot invoke "String.length()"']


JEP = Sdist("jep", "4.3.2", sha256="4deb6f9f5bc993a0818861efc5323ccc71373c4c38f303fc412998f02dde6e5c", tree="",
            path="f3/df/2af8063636862e47005fc508a998a5e7a1dc6c26ced95f547af9e2a820c9")


@pytest.mark.parametrize(("jar_name", "main"), [("sqlitejdbc-v056.jar", "org.ibex.nestedvm.RuntimeCompiler"),
                                                ("fakenetty.jar", "io.netty.channel.socket.nio.FakeNettyClass")])
def test_jep_test_jars_mains_match_the_jvm(jar_name, main, tmp_path):
    """Two JARs in jep 4.3.2's sdist (pinned sha256): NestedVM's RuntimeCompiler (class files of Java
    1.1-1.3 javac) prints its usage and exits 1 without arguments; FakeNettyClass runs and prints nothing."""
    need("java")
    with tarfile.open(sdist_download(JEP)) as tar:
        data = tar.extractfile(f"jep-4.3.2/src/test/python/lib/{jar_name}").read()
    jar = tmp_path / jar_name
    jar.write_bytes(data)
    reference = subprocess.run(["java", "-cp", str(jar), main], capture_output=True, text=True, timeout=60)
    out, err = io.StringIO(), io.StringIO()
    status = run_classes(list(read_jar(data).classes.values()), main, [], out, err)
    assert [status, out.getvalue(), err.getvalue()] == [reference.returncode, reference.stdout, reference.stderr]
    assert reference.stderr == ("Usage: RuntimeCompiler mipsbinary\n" if "nestedvm" in main else "")
