"""APK loader on an APK built here with Debian's Android tools and on Debian's framework-res.apk;
the dex interpreter against the same program run by the JDK."""

import io
import json
import re
import shutil
import struct
import subprocess
import sys
import zipfile

import crafted_apk
import pytest
from loader_support import DATA, FRAMEWORK_RES, need

from cerebro.binread import FormatError
from cerebro.loaders import limits
from cerebro.loaders.apk import read_apk
from cerebro.loaders.apksig import MAX_SIGNERS, parse_signers
from cerebro.loaders.axml import parse_axml
from cerebro.loaders.cli import main as cli_main
from cerebro.loaders.der import parse_all
from cerebro.loaders.dex import DexFile
from cerebro.loaders.dexvm import run_main
from cerebro.loaders.pkcs7 import verify_signed_data
from cerebro.loaders.pubkey import CURVES, ec_combination, parse_public_key, verify
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
        "Loop", "org.cerebro.demo.Big", "org.cerebro.demo.Catcher", "org.cerebro.demo.Demo", "org.cerebro.demo.Hello",
        "org.cerebro.demo.Hog", "org.cerebro.demo.Oops", "org.cerebro.demo.Thrower"]
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
    assert any("classes.dex: META-INF/MANIFEST.MF digest mismatch" in p for p in problems)
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
    assert got.err == ('Exception in thread "main" java.lang.IllegalStateException: bad state: 2\n'
                       "\tat org.cerebro.demo.Thrower.main(Unknown Source)\n")  # as java prints it (no debug info)


def test_catch_handlers_run(built_apk, capfd):
    assert cli_main(["pkg", "run", "--main", "org.cerebro.demo.Catcher", str(built_apk)]) == 0
    assert capfd.readouterr().out == ("java.lang.ArithmeticException: / by zero\n"  # the VM's, 2nd typed handler
                                      "bad state\n"  # IllegalStateException caught as RuntimeException
                                      "caught by catch-all\n"  # ArrayIndexOutOfBoundsException
                                      "caught NullPointerException from a callee\n"
                                      "org.cerebro.demo.Oops: custom\n"  # the program's class, as Exception
                                      "done\n")


def test_main_class_name_starting_with_L(built_apk, capfd):
    for name in ("Loop", "LLoop;"):
        assert cli_main(["pkg", "run", "--main", name, str(built_apk)]) == 0
        assert capfd.readouterr().out == "55\n"


HOG = """
import json, re, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # old code ran to 3.9 GB: stop it at 3 GiB here
import io
from cerebro.loaders.apk import read_apk
from cerebro.loaders.apksig import MAX_SIGNERS, parse_signers
from cerebro.loaders.dexvm import run_main
dex = list(read_apk(open(sys.argv[1], "rb").read()).dex.values())
report = {}
for args in ([], ["catch"]):
    out, err, start = io.StringIO(), io.StringIO(), time.time()
    try:
        status = run_main(dex, "org.cerebro.demo.Hog", args, out, err)
    except BaseException as e:
        status = repr(e)[:200]
    report[len(args)] = [status, out.getvalue(), err.getvalue(), time.time() - start]
# VmHWM, not ru_maxrss: a child forked from a big pytest keeps the parent's peak across exec
report["peak_mib"] = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) >> 10
print(json.dumps(report))
"""


def test_allocation_loop_ends_in_out_of_memory_error(built_apk):
    """The heap limit: an OutOfMemoryError that ends the program, or that it catches and recovers from."""
    proc = subprocess.run([sys.executable, "-c", HOG, str(built_apk)], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout)
    status, out, err, seconds = report["0"]
    assert (status, out) == (1, "")
    assert err.startswith('Exception in thread "main" java.lang.OutOfMemoryError: Java heap space (')
    assert "heap limit is 256 MiB" in err and seconds < 20
    status, out, err, seconds = report["1"]
    assert (status, out, err) == (0, "caught OutOfMemoryError\nallocated again\n", "")
    assert report["peak_mib"] < 256 + 160  # the limit plus the interpreter itself


def test_superclass_cycle_is_refused(tmp_path):
    """A hostile dex whose classes are each other's superclass: refused, not an endless walk."""
    need("smali")
    (tmp_path / "A.smali").write_text(".class public LA;\n.super LB;\n"
                                      ".method public static main([Ljava/lang/String;)V\n    .locals 2\n"
                                      "    new-instance v0, LA;\n    instance-of v1, v0, LC;\n    return-void\n"
                                      ".end method\n")
    (tmp_path / "B.smali").write_text(".class public LB;\n.super LA;\n")
    subprocess.run(["smali", "assemble", "-o", "classes.dex", "A.smali", "B.smali"], cwd=tmp_path, check=True)
    with pytest.raises(FormatError, match="superclasses"):
        run_main([DexFile.parse((tmp_path / "classes.dex").read_bytes())], "A", [], io.StringIO(), io.StringIO())


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


def test_empty_zip_member_name_is_a_clear_refusal(tmp_path, capfd):
    with pytest.raises(FormatError, match="empty name"):
        read_zip(crafted_apk.empty_name_zip())
    path = tmp_path / "empty-name.apk"
    path.write_bytes(crafted_apk.empty_name_zip())
    assert cli_main(["pkg", "info", str(path)]) == 2
    assert capfd.readouterr().err == "cerebroc pkg: error: apk: entry '' has an empty name\n"


def test_signer_certificate_matches_apksigner(built_apk):
    printed = subprocess.run(["apksigner", "verify", "--print-certs", str(built_apk)], capture_output=True,
                             text=True, check=True).stdout
    digests = re.findall(r"certificate SHA-256 digest: ([0-9a-f]{64})", printed)
    assert read_apk(built_apk.read_bytes()).info()["signatures"]["signer_certificates_sha256"] == digests


# crafted APK -> what verify must report (all of it, or the line that must be there)
SIGNATURE_ATTACKS = {
    "stripped_apk": ["META-INF/K.SF: the signer also made an APK Signature Scheme v2 signature, which is missing "
                     "(signature stripped)", "(signature stripped)",
                     "META-INF/K.SF: digest of META-INF/MANIFEST.MF's section for 'classes.dex' does not match"],
    "resigned_sf_apk": ["META-INF/K.EC: the signature does not verify with the signer's certificate"],
    "swapped_key_v1_apk": ["META-INF/K.EC: the signature does not verify with the signer's certificate",
                           "(signature stripped)", "(signature stripped)"],
    "forged_v2_digest_apk": ["APK Signature Scheme v2: signature 0x0201 (ecdsa/sha256) does not verify",
                             "APK Signature Scheme v3: signature 0x0201 (ecdsa/sha256) does not verify"],
    "swapped_key_v2_apk": ["APK Signature Scheme v2: signature 0x0201 (ecdsa/sha256) does not verify",
                           "APK Signature Scheme v3: signature 0x0201 (ecdsa/sha256) does not verify"],
    "v3_sdk_range_apk": ["APK Signature Scheme v3: min/max SDK versions differ between the signer record and its "
                         "signed data"],
}


@pytest.mark.parametrize("attack", sorted(SIGNATURE_ATTACKS))
def test_signature_attacks_fail_verify_as_with_apksigner(built_apk, tmp_path, attack, capfd):
    """Each attack keeps every digest it can consistent; the signature checks must still catch it."""
    path = tmp_path / f"{attack}.apk"
    path.write_bytes(getattr(crafted_apk, attack)(built_apk.read_bytes()))
    problems = read_apk(path.read_bytes()).verify()
    unmatched = list(problems)
    for expected in SIGNATURE_ATTACKS[attack]:
        unmatched.remove(next(p for p in unmatched if expected in p))
    assert unmatched == []
    assert cli_main(["pkg", "verify", str(path)]) == 1
    assert "OK" not in capfd.readouterr().out
    apksigner = subprocess.run(["apksigner", "verify", str(path)], capture_output=True, text=True)
    assert apksigner.returncode != 0 and "DOES NOT VERIFY" in apksigner.stdout + apksigner.stderr
    if attack == "stripped_apk":
        assert "Signature stripped?" in apksigner.stdout + apksigner.stderr


def test_stripped_apk_would_run_the_attackers_code(built_apk, tmp_path, capfd):
    """Why verify matters: the stripped APK is a valid zip whose code now says something else."""
    path = tmp_path / "stripped.apk"
    path.write_bytes(crafted_apk.stripped_apk(built_apk.read_bytes()))
    assert cli_main(["pkg", "run", str(path)]) == 0
    assert capfd.readouterr().out.startswith("Owned from dex\n")


def test_signature_block_truncations_are_format_errors(built_apk):
    z = read_zip(built_apk.read_bytes())
    block, sf = z.read("META-INF/K.EC"), z.read("META-INF/K.SF")
    assert verify_signed_data(block, sf).sha256
    for n in range(len(block)):
        with pytest.raises(FormatError):
            verify_signed_data(block[:n], sf)


SIGNATURE_CASES = [  # openssl genpkey options, openssl dgst options, our scheme, digest
    (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], ["-sha256"], "pkcs1", "sha256"),
    (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
     ["-sha512", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"], "pss", "sha512"),
    (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], ["-sha256"], "ecdsa", "sha256"),
    (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], ["-sha512"], "ecdsa", "sha512"),
    (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], ["-sha256"], "ecdsa", "sha256"),
]


@pytest.mark.parametrize("keygen,sign,scheme,digest", SIGNATURE_CASES)
def test_signature_verification_agrees_with_openssl(tmp_path, keygen, sign, scheme, digest):
    need("openssl")
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    (tmp_path / "msg").write_bytes(b"signed by openssl\n")
    run("openssl", "genpkey", *keygen, "-out", "key.pem")
    run("openssl", "pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "key.der")
    run("openssl", "dgst", *sign, "-sign", "key.pem", "-out", "sig", "msg")
    key = parse_public_key((tmp_path / "key.der").read_bytes())
    signature = (tmp_path / "sig").read_bytes()
    assert verify(key, scheme, digest, b"signed by openssl\n", signature)
    assert not verify(key, scheme, digest, b"signed by openssl?", signature)
    assert not verify(key, scheme, digest, b"signed by openssl\n", signature[:-1] + bytes([signature[-1] ^ 1]))


def test_curve_constants_define_their_groups():
    for curve in CURVES.values():
        assert (curve.gy ** 2 - (curve.gx ** 3 - 3 * curve.gx + curve.b)) % curve.p == 0
        g = (curve.gx, curve.gy)
        assert ec_combination(curve, curve.n, g, 0, g) is None
        assert ec_combination(curve, 2, g, 0, g) == ec_combination(curve, 1, g, 1, g)


def der(tag: int, body: bytes) -> bytes:
    size = len(body).to_bytes(4, "big").lstrip(b"\0")
    return bytes([tag]) + (bytes([len(body)]) if len(body) < 0x80 else bytes([0x80 | len(size)]) + size) + body


def test_signature_inputs_cannot_buy_unbounded_work():
    """Each limit a hostile signature would otherwise turn into memory or CPU time."""
    with pytest.raises(FormatError, match="more than 1024 elements"):
        parse_all(b"\x05\x00" * 1025)  # a container of a million tiny elements would be a million objects
    rsa_oid = der(0x06, bytes.fromhex("2a864886f70d010101")) + der(0x05, b"")
    for e in (65537, (1 << 100) + 1):  # a huge exponent makes each pow() slow
        key = der(0x30, der(0x02, b"\0" + (1 << 2047 | 1).to_bytes(256, "big")) + der(0x02, e.to_bytes(13, "big")))
        spki = der(0x30, der(0x30, rsa_oid) + der(0x03, b"\0" + key))
        if e == 65537:
            assert parse_public_key(spki).numbers[1] == 65537
        else:
            with pytest.raises(FormatError, match="exponent"):
                parse_public_key(spki)
    lp = lambda body: struct.pack("<I", len(body)) + body  # noqa: E731
    signer = lp(lp(b"") * 3) + lp(b"") + lp(b"")  # signed data (no digests, certificates, attributes), no signatures
    signers = b"".join([lp(signer)] * (MAX_SIGNERS + 1))
    with pytest.raises(FormatError, match=f"{MAX_SIGNERS + 1} signers"):
        parse_signers(lp(signers), "v2")


def test_zip_records_are_counted_before_zipfile_reads_them(monkeypatch):
    """zipfile makes an object per central directory record: a file of millions is refused first."""
    data = make_zip({f"f{i}": b"x" for i in range(11)})
    monkeypatch.setattr(limits, "MAX_ENTRIES", 10)
    monkeypatch.setattr(zipfile, "ZipFile", None)  # read_zip must not get as far as zipfile
    with pytest.raises(FormatError, match="over 10 central directory records"):
        read_zip(data)


def test_rsa_and_dsa_signers_verify_and_tampering_fails(built_apk, tmp_path):
    """The same APK signed by apksigner with RSA and DSA keys (v1 PKCS#7 and v2/v3 records), and v1 only:
    there an added entry is caught only by the rule that every entry be listed in MANIFEST.MF."""
    run = lambda *cmd: subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    aligned = str(built_apk.parent / "aligned.apk")
    for alg in ("RSA", "DSA"):
        run("keytool", "-genkeypair", "-keystore", f"{alg}.jks", "-storepass", "secret1", "-keypass", "secret1",
            "-alias", "k", "-keyalg", alg, "-keysize", "2048", "-dname", "CN=t", "-validity", "100", "-noprompt")
        run("apksigner", "sign", "--ks", f"{alg}.jks", "--ks-pass", "pass:secret1", "--out", f"{alg}.apk", aligned)
        signed = (tmp_path / f"{alg}.apk").read_bytes()
        assert read_apk(signed).verify() == []
        (problem,) = read_apk(crafted_apk.resigned_sf_apk(signed)).verify()
        assert problem.startswith(f"META-INF/K.{alg}: the signature does not verify with the signer's certificate")
        assert len(read_apk(crafted_apk.forged_v2_digest_apk(signed)).verify()) == 2
    run("apksigner", "sign", "--ks", "RSA.jks", "--ks-pass", "pass:secret1", "--v2-signing-enabled", "false",
        "--v3-signing-enabled", "false", "--min-sdk-version", "14", "--out", "v1.apk", aligned)
    v1_only = (tmp_path / "v1.apk").read_bytes()
    assert read_apk(v1_only).verify() == [] and read_apk(v1_only).signing_pairs == {}
    (tmp_path / "added.apk").write_bytes(crafted_apk.added_entry_apk(v1_only))
    assert read_apk((tmp_path / "added.apk").read_bytes()).verify() == [
        "classes2.dex: not listed in META-INF/MANIFEST.MF (an unprotected entry)"]
    assert subprocess.run(["apksigner", "verify", str(tmp_path / "added.apk")], capture_output=True).returncode != 0


def test_malformed_signature_files_are_verify_problems_not_info_failures(built_apk, tmp_path, capfd):
    z = zipfile.ZipFile(built_apk)
    entries = {name: z.read(name) for name in z.namelist()}
    for name in ("META-INF/MANIFEST.MF", "META-INF/K.SF"):
        broken = dict(entries, **{name: b"Manifest-Version: 1.0\r\nno colon here\r\n"})
        path = tmp_path / "broken.apk"
        path.write_bytes(make_zip(broken))
        assert cli_main(["pkg", "info", str(path)]) == 0
        assert cli_main(["pkg", "verify", str(path)]) == 1
        assert f"{name}: malformed line b'no colon here'" in capfd.readouterr().err


def test_dsa_key_with_composite_q_fails_cleanly():
    """DSA parameters come from the file: a q without inverses must fail the check, not raise ValueError."""
    integer = lambda v: der(0x02, b"\0" + v.to_bytes((v.bit_length() + 7) // 8, "big"))  # noqa: E731
    params = der(0x30, integer((1 << 1023) + 1) + integer(1 << 160) + integer(2))
    spki = der(0x30, der(0x30, der(0x06, bytes.fromhex("2a8648ce380401")) + params) + der(0x03, b"\0" + integer(3)))
    key = parse_public_key(spki)
    assert verify(key, "dsa", "sha256", b"message", der(0x30, integer(1) + integer(2))) is False


def test_methods_sharing_a_code_item_read_it_once():
    dex = DexFile.parse(crafted_apk.shared_code_dex(methods=2000, units=50_000))
    codes = {id(m.code) for m in dex.classes[0].direct_methods}
    assert len(dex.classes[0].direct_methods) == 2000 and len(codes) == 1
