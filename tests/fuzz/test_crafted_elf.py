"""The ELF reader against names that all point into one long string (tests/fuzz/crafted_elf.py): refused or
read once, in linear time and memory, through every reader built on it (ELF info, .cbx)."""

from __future__ import annotations

import pytest
from crafted_elf import CRAFTED, SHT_STRTAB, SYM, elf64, symbols_sharing_one_name
from fuzz_batch import run_inputs

from cerebro.binread import FormatError
from cerebro.compiler.cbx import CbxError, read_cbx
from cerebro.elf import MAX_NAME, ElfFile
from cerebro.loaders.image import ElfPackage

EXPECTED = {  # what each crafted file gets: an error matching this, or None (parses: the names are read once)
    "name-bomb-symbols-sharing-one-name.o": f"unterminated or over {MAX_NAME} bytes",
    "name-bomb-symbols-at-successive-offsets.o": "names add up to more than",
    "name-bomb-libraries-sharing-one-name.so": f"unterminated or over {MAX_NAME} bytes",
    "name-bomb-sections-sharing-one-name.o": None,
}


def test_bounded_in_a_child(tmp_path):
    """Run where 20 GiB of copies cannot hurt: under 1 GiB of address space and the time limit."""
    files = [tmp_path / name for name in sorted(CRAFTED)]
    for path in files:
        path.write_bytes(CRAFTED[path.name]())
    for target in ("elf", "cbx"):
        outcome = run_inputs(target, tmp_path, files=files, time_limit=10)
        assert not outcome.findings, (target, [(files[f["index"]].name, f["error"]) for f in outcome.findings])


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_clear_error_or_parse(name):
    data = CRAFTED[name]()
    if EXPECTED[name] is None:
        elf = ElfFile.parse(data)
        assert len({s.name for s in elf.sections[1:-1]}) == 1 and len(elf.sections) > 60_000
    else:
        with pytest.raises(FormatError, match=EXPECTED[name]):
            ElfPackage.parse(data).info()
        with pytest.raises(CbxError):  # the .so is refused earlier, as not relocatable
            read_cbx(data)


def test_long_names_within_the_bound_are_read():
    elf = ElfFile.parse(symbols_sharing_one_name(name_len=MAX_NAME - 1, count=50))
    assert [len(s.name) for s in elf.symbols] == [0] + [MAX_NAME - 1] * 50
    strtab = b"\0" + b"".join(f"sym{i}".encode() + b"\0" for i in range(3))
    symtab = SYM.pack(0, 0, 0, 0, 0, 0) + b"".join(SYM.pack(1 + 5 * i, 0x10, 0, 0xFFF1, 0, 0) for i in range(3))
    elf = ElfFile.parse(elf64([(".strtab", SHT_STRTAB, strtab, 0, 0), (".symtab", 2, symtab, 1, SYM.size)]))
    assert [s.name for s in elf.symbols] == ["", "sym0", "sym1", "sym2"]
