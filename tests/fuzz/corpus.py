"""The regression corpus: every crafted hostile file of issue #10, made by the generator modules the
loader tests keep (`python tests/loaders/crafted_<kind>.py OUTDIR`) and tests/fuzz/crafted_elf.py,
sorted into seed groups by magic bytes. A generator that is not there is skipped; one that fails is an
error (a generator that silently makes nothing would hide regressions).

`python tests/fuzz/corpus.py OUTDIR` writes the corpus as the fuzzers see it: OUTDIR/<group>/."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

GENERATORS = [Path(__file__).resolve().parents[1] / "loaders" / f"crafted_{kind}.py" for kind in ("deb", "pe", "apk")]
GENERATORS.append(Path(__file__).resolve().parent / "crafted_elf.py")
MAX_FILE = 64 << 20  # a crafted file bigger than this would be a generator bug, not a parser test
TIME_LIMIT_S = 20.0  # per crafted file: a decompression bomb costs seconds to unpack up to the 512 MiB limit
PREFIX = "crafted-"
COSTLY = ("bomb", "large")  # in the names of inputs built to cost seconds (bombs, huge members, name bombs)
GROUP_BY_MAGIC: tuple[tuple[int, bytes, str], ...] = (  # (offset, magic, seed group), first match wins
    (0, b"!<arch>\n", "deb"), (0, b"MZ", "pe"), (0, b"PK\x03\x04", "apk"), (0, b"PK\x05\x06", "apk"),
    (0, b"\x7fELF", "elf"), (0, b"dex\n", "dex"), (0, b"\x03\x00\x08\x00", "axml"), (0, b"\x1f\x8b", "tar"),
    (0, b"\xfd7zXZ\x00", "tar"), (0, b"\x28\xb5\x2f\xfd", "tar"), (257, b"ustar", "tar"))


def group_of(data: bytes) -> str | None:
    return next((group for offset, magic, group in GROUP_BY_MAGIC if data[offset:offset + len(magic)] == magic), None)


def crafted_files() -> tuple[dict[str, dict[str, bytes]], list[str]]:
    """{seed group: {"<generator>-<file>": bytes}} from every generator present (unclassifiable files are
    left out), and one line per generator that failed."""
    corpus: dict[str, dict[str, bytes]] = {}
    failures = []
    for generator in GENERATORS:
        if not generator.exists():
            continue
        with tempfile.TemporaryDirectory() as out:
            proc = subprocess.run([sys.executable, str(generator), out], capture_output=True, text=True)
            if proc.returncode != 0:
                failures.append(f"{generator.name} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
                continue
            for path in sorted(Path(out).rglob("*")):
                if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_FILE:
                    continue
                data = path.read_bytes()
                group = group_of(data)
                if group is not None:
                    name = f"{generator.stem}-" + str(path.relative_to(out)).replace("/", "_")
                    corpus.setdefault(group, {})[name] = data
    return corpus, failures


def is_mutation_seed(path: Path) -> bool:
    """Real files and crafted files except the costly ones: every mutant of a bomb is a bomb, seconds each;
    those run once, as they are, in the regression test."""
    return not path.name.startswith(PREFIX) or not any(word in path.name for word in COSTLY)


def write_corpus(folder: Path) -> tuple[list[Path], list[str]]:
    """Crafted files into folder/<group>/ (where they also become fuzz seeds); their paths and the failures."""
    written = []
    corpus, failures = crafted_files()
    for group, files in corpus.items():
        (folder / group).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = folder / group / f"{PREFIX}{name}"
            path.write_bytes(data)
            written.append(path)
    return written, failures


if __name__ == "__main__":
    paths, problems = write_corpus(Path(sys.argv[1]))
    print("\n".join(map(str, paths + problems)))
    sys.exit(1 if problems else 0)
