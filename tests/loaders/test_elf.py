"""ELF reader checked against binutils' readelf on objects built here (x86-64, aarch64, ELF32)."""

import re
import shutil
import struct
import subprocess

import pytest

from cerebro import elf as E
from cerebro.binread import FormatError

C_SOURCE = "int g = 3; extern int h(int); int f(void) { return h(g) + 1; } int main(void) { return f(); }\n"
ASM32 = ".text\n.globl start\nstart:\n movl $var, %eax\n call ext\n.data\nvar: .long 7\n"


def build(tmp_path, compiler: str, *flags: str, source: str = C_SOURCE, suffix: str = ".c") -> bytes:
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} not installed")
    src = tmp_path / f"src{suffix}"
    src.write_text(source)
    out = tmp_path / "out.o"
    subprocess.run([compiler, *flags, "-o", str(out), str(src)], check=True)
    return out.read_bytes()


def readelf(path, *flags: str) -> str:
    return subprocess.run(["readelf", "-W", *flags, str(path)], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("elf")
    out = {"x86_64.o": build(tmp, "cc", "-c", "-O1")}
    exe = tmp / "exe"
    subprocess.run(["cc", "-O1", "-Dh=abs", "-o", str(exe), str(tmp / "src.c")], check=True)
    out["exe"] = exe.read_bytes()
    if shutil.which("aarch64-linux-gnu-gcc"):
        out["aarch64.o"] = build(tmp, "aarch64-linux-gnu-gcc", "-c", "-O1")
    out["i386.o"] = build(tmp, "as", "--32", source=ASM32, suffix=".s")
    for name, data in out.items():
        (tmp / name).write_bytes(data)
    return tmp, out


def readelf_sections(text: str) -> list[tuple[str, int, int]]:
    rows = re.findall(r"\[\s*(\d+)\]\s+(\S*)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", text)
    return [(name, int(off, 16), int(size, 16)) for i, name, off, size in rows if i != "0"]


@pytest.mark.parametrize("name", ["x86_64.o", "exe", "aarch64.o", "i386.o"])
def test_sections_symbols_relocations_match_readelf(objects, name):
    tmp, files = objects
    if name not in files:
        pytest.skip(f"{name} toolchain not installed")
    f = E.ElfFile.parse(files[name])
    ref = readelf_sections(readelf(tmp / name, "-S"))
    assert [(s.name, s.offset, s.size) for s in f.sections[1:]] == ref
    ref_syms = re.findall(r"^\s*\d+:\s+([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s+(\S+)\s+\S+\s+\S+\s+\S+\s*(\S*)(?: \(\d+\))?$",
                          readelf(tmp / name, "-s"), re.M)
    ours = [(s.value, s.size, s.name.split("@")[0]) for s in f.dynamic_symbols + f.symbols if s.type != E.STT_SECTION]
    ref = [(int(v, 16), int(sz, 0), n.split("@")[0]) for v, sz, typ, n in ref_syms if typ != "SECTION"]
    assert ref == ours and len(ours) > 3
    ref_rel = re.findall(r"^([0-9a-f]{8,16})\s+([0-9a-f]{8,16})\s+R_\S+", readelf(tmp / name, "-r"), re.M)
    assert sorted(int(o, 16) for o, _ in ref_rel) == sorted(r.offset for r in f.relocations)
    for r in f.relocations:
        assert 0 <= r.section < len(f.sections)


def test_header_fields(objects):
    _tmp, files = objects
    o = E.ElfFile.parse(files["x86_64.o"])
    assert (o.ei_class, o.machine, o.type, o.bits) == (E.ELFCLASS64, E.EM_X86_64, E.ET_REL, 64)
    text = o.section(".text")
    assert text is not None and text.flags & E.SHF_EXECINSTR and len(o.section_data(text)) == text.size
    assert o.section(".nope") is None
    bss = next((s for s in o.sections if s.type == E.SHT_NOBITS), None)
    if bss is not None:
        assert o.section_data(bss) == b""
    x = E.ElfFile.parse(files["exe"])
    assert x.type in (E.ET_DYN, E.ET_EXEC) and x.entry and any(s.type == E.PT_LOAD for s in x.segments)
    assert "libc.so.6" in x.needed()
    assert any(s.name == "main" and s.type == E.STT_FUNC and s.bind == E.STB_GLOBAL for s in x.symbols)
    i = E.ElfFile.parse(files["i386.o"])
    assert (i.bits, i.machine) == (32, E.EM_386)
    assert i.relocations and not any(r.rela for r in i.relocations)
    if "aarch64.o" in files:
        assert E.ElfFile.parse(files["aarch64.o"]).machine == E.EM_AARCH64


def test_offsets_allow_in_place_patching(objects):
    """The runtime patches bytes at section.offset: check that it lands where section_data says."""
    _tmp, files = objects
    o = E.ElfFile.parse(files["x86_64.o"])
    text = o.section(".text")
    patched = bytearray(files["x86_64.o"])
    patched[text.offset:text.offset + 4] = b"\xde\xad\xbe\xef"
    assert E.ElfFile.parse(bytes(patched)).section_data(text)[:4] == b"\xde\xad\xbe\xef"


def corrupt(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def hostile_variants(o: bytes):
    shoff = struct.unpack_from("<Q", o, 0x28)[0]
    yield "empty", b""
    yield "bad magic", b"\x7fELG" + o[4:]
    yield "bad class", o[:4] + b"\x07" + o[5:]
    yield "truncated header", o[:40]
    yield "truncated sections", o[: shoff + 10]
    yield "huge shnum", corrupt(o, 0x3C, "<H", 0xFFFF)
    yield "shoff past end", corrupt(o, 0x28, "<Q", 1 << 60)
    yield "tiny shentsize", corrupt(o, 0x3A, "<H", 8)
    yield "bad shstrndx", corrupt(o, 0x3E, "<H", 500)
    yield "section offset past end", corrupt(o, shoff + 64 + 0x18, "<Q", 1 << 40)
    yield "section size huge", corrupt(o, shoff + 64 + 0x20, "<Q", 1 << 62)
    yield "phnum huge", corrupt(corrupt(o, 0x20, "<Q", 64), 0x38, "<H", 0xFFFF)


@pytest.mark.parametrize("case", range(12))
def test_hostile_input_raises_format_error(objects, case):
    _tmp, files = objects
    label, data = list(hostile_variants(files["x86_64.o"]))[case]
    with pytest.raises(FormatError):
        E.ElfFile.parse(data)


def test_every_truncation_is_a_clean_error_or_parse(objects):
    _tmp, files = objects
    o = files["x86_64.o"]
    for n in range(0, len(o), max(1, len(o) // 200)):
        try:
            E.ElfFile.parse(o[:n])
        except FormatError:
            pass


def test_image_model_matches_nm(objects, tmp_path):
    from cerebro.loaders.image import ElfPackage
    tmp, files = objects
    pkg = ElfPackage.parse(files["exe"])
    info = pkg.info()
    undefined = subprocess.run(["nm", "-D", "--undefined-only", str(tmp / "exe")], capture_output=True, text=True,
                               check=True).stdout
    assert info["imports"] == sorted({line.split()[-1].split("@")[0] for line in undefined.splitlines()})
    assert info["libraries"] == ["libc.so.6"] and info["kind"] == "executable" and info["machine"] == "x86-64"
    names = pkg.extract(tmp_path / "sections")
    text = next(n for n in names if n.endswith("-text.bin"))
    sec = pkg.elf.section(".text")
    assert (tmp_path / "sections" / text).read_bytes() == pkg.elf.section_data(sec)
