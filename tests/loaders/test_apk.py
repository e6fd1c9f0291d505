"""APK loader on an APK built here with Debian's Android tools and on Debian's framework-res.apk;
the dex interpreter against the same program run by the JDK."""

import io
import re
import shutil
import struct
import subprocess
import zipfile

import pytest
from loader_support import DATA, FRAMEWORK_RES, need

from cerebro.loaders import limits
from cerebro.loaders.apk import read_apk
from cerebro.loaders.axml import parse_axml
from cerebro.loaders.cli import main as cli_main
from cerebro.loaders.dex import DexFile
from cerebro.loaders.dexvm import run_main
from cerebro.loaders.errors import FormatError
from cerebro.loaders.zipread import read_zip


def aapt(*args: str) -> str:
    return subprocess.run(["aapt", *args], capture_output=True, text=True, check=True).stdout


def test_manifest_matches_aapt(built_apk):
    pkg = read_apk(built_apk.read_bytes())
    info = pkg.info()
    badging = aapt("dump", "badging", str(built_apk))
    m = re.search(r"package: name='([^']+)' versionCode='(\d+)' versionName='([^']+)'", badging)
    assert (info["package"], str(info["version_code"]), info["version_name"]) == m.groups()
    assert str(info["min_sdk"]) == re.search(r"sdkVersion:'(\d+)'", badging).group(1)
    assert str(info["target_sdk"]) == re.search(r"targetSdkVersion:'(\d+)'", badging).group(1)
    assert info["permissions"] == re.findall(r"uses-permission: name='([^']+)'", badging)
    assert info["main_activity"] == re.search(r"launchable-activity: name='([^']+)'", badging).group(1)
    assert info["components"] == {"activity": ["org.cerebro.demo.Hello"], "service": ["org.cerebro.demo.Worker"]}


def test_dex_native_libs_and_signatures(built_apk):
    pkg = read_apk(built_apk.read_bytes())
    info = pkg.info()
    (dex,) = info["dex"]
    assert dex["checksum_ok"] and sorted(dex["classes"]) == [
        "org.cerebro.demo.Big", "org.cerebro.demo.Demo", "org.cerebro.demo.Hello", "org.cerebro.demo.Thrower"]
    if shutil.which("aarch64-linux-gnu-gcc"):
        (lib,) = info["native_libraries"]["arm64-v8a"]
        assert (lib["name"], lib["machine"], lib["bits"], lib["soname"]) == ("libfoo.so", "aarch64", 64, "libfoo.so")
    sigs = info["signatures"]
    assert any(f.endswith(".SF") for f in sigs["v1"]) and {"v2", "v3"} <= set(sigs["signing_block"])
    assert pkg.verify() == []
    assert subprocess.run(["apksigner", "verify", str(built_apk)], capture_output=True).returncode == 0


def test_tampered_dex_is_detected(built_apk, tmp_path, capfd):
    src = zipfile.ZipFile(built_apk)
    out = tmp_path / "tampered.apk"
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename == "classes.dex":
                body = body[:-1] + bytes([body[-1] ^ 1])
            dst.writestr(item, body)
    problems = read_apk(out.read_bytes()).verify()
    assert any("dex checksum mismatch" in p for p in problems)
    assert any("SHA-1 signature mismatch" in p for p in problems)
    assert any("classes.dex: SHA-256-Digest mismatch" in p for p in problems)
    assert cli_main(["pkg", "verify", str(out)]) == 1
    capfd.readouterr()


def test_signing_block_digest_detects_modification(built_apk):
    """A byte the zip format does not checksum (a local header's timestamp) is still covered by v2/v3."""
    data = bytearray(built_apk.read_bytes())
    assert read_apk(bytes(data)).verify() == []
    data[10] ^= 1
    problems = read_apk(bytes(data)).verify()
    assert [p.split(":")[0] for p in problems] == ["APK Signature Scheme v2", "APK Signature Scheme v3"]
    assert all("modified after signing" in p for p in problems)


def test_run_manifest_main(built_apk, capfd):
    assert cli_main(["pkg", "run", str(built_apk)]) == 0
    assert capfd.readouterr().out == "Hello from dex\n3628800\n"


def test_interpreter_matches_java(built_apk, tmp_path, capfd):
    need("java")
    modules = subprocess.run(["java", "--list-modules"], capture_output=True, text=True).stdout
    if "jdk.compiler@" not in modules:
        pytest.skip("`java Demo.java` needs a JDK (jdk.compiler): apt-get install default-jdk-headless")
    ref = subprocess.run(["java", str(DATA / "Demo.java"), "alpha", "beta"], capture_output=True, text=True,
                         cwd=tmp_path)
    status = cli_main(["pkg", "run", "--main", "org.cerebro.demo.Demo", str(built_apk), "--", "alpha", "beta"])
    got = capfd.readouterr()
    assert got.out == ref.stdout and len(ref.stdout.splitlines()) == 24
    assert status == ref.returncode == 1
    assert got.err.splitlines()[0] == ref.stderr.splitlines()[0] == \
        'Exception in thread "main" java.lang.ArithmeticException: / by zero'


def test_thrown_exception_ends_program_like_java(built_apk, capfd):
    status = cli_main(["pkg", "run", "--main", "org.cerebro.demo.Thrower", str(built_apk), "--", "a", "b"])
    got = capfd.readouterr()
    assert (status, got.out) == (1, "about to throw\n")
    assert got.err == 'Exception in thread "main" java.lang.IllegalStateException: bad state: 2\n'


def test_interpreter_refuses_what_it_cannot_run(built_apk):
    dex = read_apk(built_apk.read_bytes()).dex["classes.dex"]
    with pytest.raises(FormatError, match="no public static void main"):
        run_main([dex], "org.cerebro.demo.Big", [])
    with pytest.raises(FormatError, match="not in the dex"):
        run_main([dex], "org.nope.Missing", [])
    with pytest.raises(FormatError, match="instruction budget"):
        run_main([dex], "org.cerebro.demo.Demo", [], io.StringIO(), io.StringIO(), max_steps=500)
    fact = next(m for m in dex.find_class("org.cerebro.demo.Hello").direct_methods if m.ref.name == "fact")
    fact.code.insns[0] = 0x00FF  # an opcode outside the supported subset
    with pytest.raises(FormatError, match="opcode 0xff"):
        run_main([dex], "org.cerebro.demo.Hello", [], io.StringIO(), io.StringIO())


def test_framework_res_matches_aapt():
    need("aapt")
    if not FRAMEWORK_RES.exists():
        pytest.skip("android-framework-res is not installed")
    info = read_apk(FRAMEWORK_RES.read_bytes()).info()
    assert info["package"] == "android" and info["dex"] == []
    tree = aapt("dump", "xmltree", str(FRAMEWORK_RES), "AndroidManifest.xml")
    assert len(re.findall(r"E: uses-permission ", tree)) == len(info["permissions"])
    assert sum(len(v) for v in info["components"].values()) == len(
        re.findall(r"E: (activity|activity-alias|service|receiver|provider) ", tree))


def make_zip(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, body in entries.items():
            z.writestr(name, body)
    return buf.getvalue()


def test_hostile_zips(built_apk, monkeypatch, tmp_path):
    with pytest.raises(FormatError, match="traversal"):
        read_zip(make_zip({"../evil": b"x"}))
    with pytest.raises(FormatError, match="absolute"):
        read_zip(make_zip({"/etc/evil": b"x"}))
    with pytest.raises(FormatError, match="bomb"):
        read_zip(make_zip({"zeros": b"\0" * (8 << 20)}))  # ratio ~1000:1
    monkeypatch.setattr(limits, "MAX_UNPACKED", 1 << 20)
    with pytest.raises(FormatError, match="bomb|total"):
        read_zip(make_zip({f"f{i}": bytes(range(256)) * 2048 for i in range(3)}, zipfile.ZIP_STORED))
    monkeypatch.undo()
    # overlapping entries: a second central directory record pointing at the first local header
    one = make_zip({"a": b"A" * 100, "b": b"B" * 100}, zipfile.ZIP_STORED)
    cd = one.rindex(b"PK\x01\x02")
    overlapped = bytearray(one)
    struct.pack_into("<I", overlapped, cd + 42, 0)
    with pytest.raises(FormatError):
        read_zip(bytes(overlapped))
    data = built_apk.read_bytes()
    for n in (0, 10, 100, len(data) // 2, len(data) - 10):
        with pytest.raises(FormatError):
            read_apk(data[:n])
    with pytest.raises(FormatError, match="no AndroidManifest"):
        read_apk(make_zip({"classes.dex": b"x"}))
    with pytest.raises(FormatError, match="binary XML"):
        read_apk(make_zip({"AndroidManifest.xml": b"\x03\x00\x08\x00" + b"\xff" * 60}))


def test_hostile_dex_and_axml(built_apk):
    z = read_zip(built_apk.read_bytes())
    dex = z.read("classes.dex")
    DexFile.parse(dex)
    cases = [dex[:50], b"dex\n099\0" + dex[8:], dex[:32] + struct.pack("<I", 1 << 30) + dex[36:]]
    for offset in (56, 64, 72, 88, 96):  # string/type/proto/method/class counts set huge
        cases.append(dex[:offset] + struct.pack("<I", 0x7FFFFFFF) + dex[offset + 4:])
    for data in cases:
        with pytest.raises(FormatError):
            DexFile.parse(data)
    xml = z.read("AndroidManifest.xml")
    parse_axml(xml)
    huge_pool = xml[:8] + struct.pack("<HHI", 1, 28, 1 << 30) + xml[16:]
    for data in (xml[:40], huge_pool, b"\x03\x00\x08\x00\xff\xff\xff\x7f"):
        with pytest.raises(FormatError):
            parse_axml(data)


def test_extract_matches_unzip(built_apk, tmp_path):
    need("unzip")
    assert cli_main(["pkg", "extract", str(built_apk), str(tmp_path / "ours")]) == 0
    subprocess.run(["unzip", "-q", str(built_apk), "-d", str(tmp_path / "ref")], check=True)
    ours = {p.relative_to(tmp_path / "ours"): p.read_bytes() for p in (tmp_path / "ours").rglob("*") if p.is_file()}
    ref = {p.relative_to(tmp_path / "ref"): p.read_bytes() for p in (tmp_path / "ref").rglob("*") if p.is_file()}
    assert ours == ref and len(ours) >= 5
