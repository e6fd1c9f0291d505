"""Hypothesis fuzzing of every parser, seeded with real files: mutated input must parse or raise
FormatError, never another exception, a hang or a huge allocation. Bounded: fixed example counts."""

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader_support import FRAMEWORK_RES

from cerebro.loaders.apk import read_apk
from cerebro.loaders.ar import read_ar
from cerebro.loaders.axml import parse_axml
from cerebro.loaders.deb import read_deb
from cerebro.loaders.dex import DexFile
from cerebro.loaders.elf import ElfFile
from cerebro.loaders.errors import FormatError
from cerebro.loaders.pe import PeFile
from cerebro.loaders.pe_package import PePackage
from cerebro.loaders.tar import read_tar
from cerebro.loaders.zipread import read_zip

EXAMPLES = int(os.environ.get("CEREBRO_FUZZ_EXAMPLES", "150"))  # raise locally for a longer campaign
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="CEREBRO_FUZZ_RANDOM" not in os.environ,
                database=None, suppress_health_check=list(HealthCheck))


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    """The seed with a few bytes overwritten, maybe a 32-bit field set to an extreme, maybe truncated."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if data:
            data[pos] = draw(st.integers(0, 255))
    if draw(st.booleans()) and len(data) > 8:
        pos = draw(st.integers(0, len(data) - 4))
        data[pos:pos + 4] = draw(st.sampled_from([b"\xff\xff\xff\x7f", b"\x00\x00\x00\x80", b"\xff\xff\xff\xff",
                                                  b"\x00\x00\x00\x00"]))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data)


class Seeds(dict):
    def __repr__(self) -> str:  # keeps Hypothesis failure reports readable
        return f"Seeds({sorted(self)})"


def survives(parse, data: bytes) -> None:
    try:
        parse(data)
    except FormatError:
        pass


@pytest.fixture(scope="module")
def seeds(tmp_path_factory, built_apk, debian_debs) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("seeds")
    (tmp / "a.c").write_text("int x = 1; int f(int y) { return x + y; }\n")
    subprocess.run(["cc", "-c", "-o", str(tmp / "a.o"), str(tmp / "a.c")], check=True)
    import pip
    apk = built_apk.read_bytes()
    z = read_zip(apk)
    deb = debian_debs["hello"].read_bytes()
    control = next(m for m in read_ar(deb) if m.name.startswith("control.tar"))
    return Seeds({"elf": (tmp / "a.o").read_bytes(),
            "pe": (Path(pip.__file__).parent / "_vendor/distlib/t64.exe").read_bytes(),
            "apk": apk, "dex": z.read("classes.dex"), "axml": z.read("AndroidManifest.xml"),
            "deb": deb, "tar": control.data})


def fuzz_case(kind: str, parse):
    @FUZZ
    @given(data=st.data())
    def run(seeds, data):
        survives(parse, data.draw(mutated(seeds[kind])))
    return run


test_fuzz_elf = fuzz_case("elf", ElfFile.parse)
test_fuzz_pe = fuzz_case("pe", PeFile.parse)
test_fuzz_dex = fuzz_case("dex", DexFile.parse)
test_fuzz_axml = fuzz_case("axml", parse_axml)
def inspect_fully(reader):
    """Parse, then everything `pkg info` and `pkg verify` do after parsing (nested ELF, digests)."""
    def run(data: bytes) -> None:
        pkg = reader(data)
        pkg.info()
        pkg.verify()
    return run


test_fuzz_apk = fuzz_case("apk", inspect_fully(read_apk))
test_fuzz_deb = fuzz_case("deb", inspect_fully(read_deb))
test_fuzz_pe_package = fuzz_case("pe", inspect_fully(PePackage.parse))
test_fuzz_tar = fuzz_case("tar", lambda d: read_tar("control.tar.xz", d))


@FUZZ
@given(blob=st.binary(max_size=512))
def test_fuzz_random_bytes_every_parser(blob):
    for parse in (ElfFile.parse, PeFile.parse, DexFile.parse, parse_axml, read_zip, read_ar, read_deb):
        survives(parse, blob)
    for magic in (b"\x7fELF\x02\x01\x01", b"MZ", b"dex\n035\0", b"\x03\x00\x08\x00", b"!<arch>\n", b"PK\x03\x04"):
        for parse in (ElfFile.parse, PeFile.parse, DexFile.parse, parse_axml, read_ar, read_zip):
            survives(parse, magic + blob)


def test_framework_res_mutations_are_cheap():
    """A large real APK: a corrupted central directory must fail fast."""
    if not FRAMEWORK_RES.exists():
        pytest.skip("android-framework-res is not installed")
    data = bytearray(FRAMEWORK_RES.read_bytes())
    data[-10:-6] = b"\xff\xff\xff\x7f"
    survives(read_apk, bytes(data))


@FUZZ
@given(data=st.data())
def test_fuzz_dex_interpreter(seeds, data):
    """Mutated code must run, throw a Java exception (status 1) or stop with FormatError."""
    import io

    from cerebro.loaders.dexvm import run_main
    try:
        dex = DexFile.parse(data.draw(mutated(seeds["dex"])))
        status = run_main([dex], "org.cerebro.demo.Demo", ["x"], io.StringIO(), io.StringIO(), max_steps=20_000)
    except FormatError:
        return
    assert isinstance(status, int)
