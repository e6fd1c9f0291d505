"""Structure-aware mutation of real files: what breaks parsers is rarely a random byte but a size,
count or offset set to an extreme, a file cut at a field boundary, or a chunk of another file
spliced in. Fields are found without a per-format table: a 2/4/8-byte integer whose value could
be an offset or size in this file, or a run of ASCII digits (tar and ar store numbers as text).

Input number `index` of stream `stream` is always the same bytes (`mutant`), so a batch only
reports indexes and anyone can regenerate the input."""

from __future__ import annotations

import random
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

MAX_GROWTH = 1 << 20  # mutants stay under seed size + 1 MiB: size bombs come from the crafted corpus
EXTREMES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            (1 << 63) - 1, 1 << 63, (1 << 64) - 1)
WIDTHS = {1: "B", 2: "H", 4: "I", 8: "Q"}
TEXT_NUMBERS = (b"9", b"7", b"0", b" ", b"-", b"\0", b"x")
DIGITS = re.compile(rb"[0-9]{2,}")


@dataclass
class Seed:
    """One real input and the places in it that look like fields (computed once)."""

    data: bytes

    @cached_property
    def fields(self) -> list[tuple[int, int]]:
        """(offset, width) of aligned integers whose value lies in 1..len(data): offsets, sizes, counts."""
        found = []
        limit = len(self.data)
        for width, code in ((2, "<H"), (4, "<I"), (8, "<Q")):
            for off in range(0, limit - width + 1, width):
                value = struct.unpack_from(code, self.data, off)[0]
                if 0 < value <= limit and (width > 2 or value > 1):
                    found.append((off, width))
        return found or [(0, 1)]

    @cached_property
    def numbers(self) -> list[tuple[int, int]]:
        return [m.span() for m in DIGITS.finditer(self.data)] or [(0, 1)]


def _field_extreme(rng: random.Random, seed: Seed, data: bytearray, others: list[Seed]) -> None:
    off, width = rng.choice(seed.fields) if rng.random() < 0.8 else (rng.randrange(len(data)), rng.choice((2, 4, 8)))
    endian = "<" if rng.random() < 0.85 else ">"
    choices = (rng.choice(EXTREMES), len(data), len(data) + rng.randint(-8, 8),
               int.from_bytes(data[off:off + width].ljust(width, b"\0"), "little") + rng.randint(-2, 2))
    value = rng.choice(choices) % (1 << (8 * width))
    data[off:off + width] = struct.pack(endian + WIDTHS[width], value)


def _text_number(rng: random.Random, seed: Seed, data: bytearray, others: list[Seed]) -> None:
    start, end = rng.choice(seed.numbers)
    fill = rng.choice(TEXT_NUMBERS) * (end - start)
    data[start:end] = fill if rng.random() < 0.8 else fill + rng.choice(TEXT_NUMBERS) * rng.randint(1, 12)


def _bytes(rng: random.Random, seed: Seed, data: bytearray, others: list[Seed]) -> None:
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))


def _truncate(rng: random.Random, seed: Seed, data: bytearray, others: list[Seed]) -> None:
    cut = rng.choice(seed.fields)[0] if rng.random() < 0.5 else rng.randrange(len(data))
    del data[min(cut, len(data) - 1):]


def _splice(rng: random.Random, seed: Seed, data: bytearray, others: list[Seed]) -> None:
    donor = rng.choice(others).data
    start = rng.randrange(len(donor))
    chunk = donor[start:start + rng.randint(1, 4096)]
    at = rng.randrange(len(data))
    if rng.random() < 0.5:
        data[at:at + len(chunk)] = chunk
    else:
        data[at:at] = chunk


def _repeat(rng: random.Random, seed: Seed, data: bytearray, others: list[Seed]) -> None:
    """A chunk copied many times: tables with thousands of entries, names, members (quadratic costs)."""
    start = rng.randrange(len(data))
    chunk = data[start:start + rng.choice((8, 16, 32, 40, 60, 64, 512))]
    times = min(rng.choice((2, 16, 256, 4096)), MAX_GROWTH // max(len(chunk), 1))
    data[start:start] = chunk * times


def _cut_range(rng: random.Random, seed: Seed, data: bytearray, others: list[Seed]) -> None:
    start = rng.randrange(len(data))
    end = start + rng.randint(1, 256)
    if rng.random() < 0.5:
        del data[start:end]
    else:
        data[start:end] = bytes(len(data[start:end]))


MUTATORS: tuple[tuple[Callable, int], ...] = (  # (mutator, weight)
    (_field_extreme, 6), (_text_number, 2), (_bytes, 3), (_truncate, 2), (_splice, 2), (_repeat, 1), (_cut_range, 1))
_FUNCS = [m for m, _ in MUTATORS]
_WEIGHTS = [w for _, w in MUTATORS]


def mutate(rng: random.Random, seeds: list[Seed]) -> bytes:
    """One seed with 1-4 stacked mutations."""
    seed = rng.choice(seeds)
    data = bytearray(seed.data)
    for func in rng.choices(_FUNCS, _WEIGHTS, k=rng.choice((1, 1, 2, 3, 4))):
        if not data:
            break
        func(rng, seed, data, seeds)
    return bytes(data[:len(seed.data) + MAX_GROWTH])


def mutant(stream: int, index: int, seeds: list[Seed]) -> bytes:
    """Input `index` of stream `stream`: the same bytes on every run and machine."""
    return mutate(random.Random(stream * 1_000_003 + index), seeds)
