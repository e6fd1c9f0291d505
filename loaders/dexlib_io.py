"""Standard input for the dex interpreter: System.in read through BufferedReader(InputStreamReader)
(`readLine`) or Scanner (`next`, `nextInt`, `nextLong`, `nextDouble`, `nextLine`, `hasNext*`), as
command-line programs read it. Lines are read from the host's stdin as they are needed, each charged
to the heap."""

from __future__ import annotations

import re
from collections.abc import Callable

from cerebro.loaders.dexlib_lang import parse_double, throw
from cerebro.loaders.dexvalues import bits64

IN = "Ljava/io/InputStream;"
SCANNER = "Ljava/util/Scanner;"
READER = "Ljava/io/BufferedReader;"


class InputStream:
    """System.in: the host's stdin, a line at a time."""

    def __init__(self, stream):
        self.stream = stream

    def read_line(self, vm) -> str | None:
        """The next line with its newline ('' at end of input)."""
        line = self.stream.readline() if self.stream is not None else ""
        vm.allocate(len(line) + 64)
        return line


class Reader:
    """InputStreamReader and BufferedReader over System.in."""
    java_class = READER

    def __init__(self):
        self.source: InputStream | None = None


class Scanner:
    java_class = SCANNER

    def __init__(self):
        self.source: InputStream | None = None
        self.buffer, self.at, self.ended = "", 0, False

    def fill(self, vm) -> bool:
        """Reads one more line into the buffer; False at end of input."""
        if self.ended or self.source is None:
            return False
        line = self.source.read_line(vm)
        if not line:
            self.ended = True
            return False
        self.buffer = self.buffer[self.at:] + line
        self.at = 0
        return True

    def peek_token(self, vm) -> tuple[str, int] | None:
        """The next whitespace-separated token and where it ends, reading lines as needed."""
        while True:
            m = re.compile(r"\s*(\S+)(\s|$)").match(self.buffer, self.at)
            if m and (m.group(2) or self.ended):
                return m.group(1), m.end(1)
            if not self.fill(vm):
                m = re.compile(r"\s*(\S+)").match(self.buffer, self.at)
                return (m.group(1), m.end(1)) if m else None

    def token(self, vm, parse: Callable | None = None):
        found = self.peek_token(vm)
        if found is None:
            throw("java.util.NoSuchElementException")
        text, end = found
        value = text
        if parse is not None:
            try:
                value = parse(text)
            except Exception:  # noqa: BLE001 - any parse failure is Java's InputMismatchException
                throw("java.util.InputMismatchException", f'For input string: "{text}"')
        self.at = end
        return value

    def has_token(self, vm, parse: Callable | None = None) -> int:
        found = self.peek_token(vm)
        if found is None or parse is None:
            return int(found is not None)
        try:
            parse(found[0])
            return 1
        except Exception:  # noqa: BLE001 - a token that does not parse
            return 0

    def next_line(self, vm) -> str:
        while "\n" not in self.buffer[self.at:] and self.fill(vm):
            pass
        rest = self.buffer[self.at:]
        if not rest and self.ended:
            throw("java.util.NoSuchElementException", "No line found")
        line, newline, _ = rest.partition("\n")
        self.at += len(line) + len(newline)
        return line.removesuffix("\r")

    def has_line(self, vm) -> int:
        return int(self.at < len(self.buffer) or self.fill(vm))


def _java_int(bits: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"[+-]?\d+", text) or not -(1 << (bits - 1)) <= int(text) < (1 << (bits - 1)):
            raise ValueError(text)
        return int(text)
    return parse


def _attach(vm, reader, source) -> None:
    if isinstance(source, Reader):
        source = source.source
    if not isinstance(source, InputStream):
        throw("java.lang.UnsupportedOperationException", "only System.in can be read")
    reader.source = source


def _read_line(vm, reader: Reader):
    line = reader.source.read_line(vm) if reader.source else ""
    return line.removesuffix("\n").removesuffix("\r") if line else None


NATIVES: dict[str, Callable] = {
    f"Ljava/io/InputStreamReader;-><init>({IN})V": _attach,
    f"{READER}-><init>(Ljava/io/Reader;)V": _attach,
    f"{SCANNER}-><init>({IN})V": _attach,
}
METHODS: dict[type, dict[str, Callable]] = {
    Reader: {"readLine()Ljava/lang/String;": _read_line, "close()V": lambda vm, r: None},
    Scanner: {
        "next()Ljava/lang/String;": lambda vm, s: s.token(vm),
        "nextInt()I": lambda vm, s: s.token(vm, _java_int(32)),
        "nextLong()J": lambda vm, s: s.token(vm, _java_int(64)),
        "nextDouble()D": lambda vm, s: bits64(s.token(vm, parse_double)),
        "nextLine()Ljava/lang/String;": lambda vm, s: s.next_line(vm),
        "hasNext()Z": lambda vm, s: s.has_token(vm),
        "hasNextInt()Z": lambda vm, s: s.has_token(vm, _java_int(32)),
        "hasNextLine()Z": lambda vm, s: s.has_line(vm),
        "close()V": lambda vm, s: None}}
NATIVE_CLASSES: dict[str, Callable] = {SCANNER: Scanner, READER: Reader, "Ljava/io/InputStreamReader;": Reader}
STATIC_FIELDS = {("Ljava/lang/System;", "in"): lambda vm: vm.stdin}
