"""Just enough DER (X.690) to read X.509 certificates and PKCS#7 SignedData: every length is
checked against its container, so a hostile encoding raises FormatError, never IndexError."""

from __future__ import annotations

from dataclasses import dataclass

from cerebro.binread import FormatError

SEQUENCE, SET, INTEGER, BIT_STRING, OCTET_STRING, OID, NULL = 0x30, 0x31, 0x02, 0x03, 0x04, 0x06, 0x05
MAX_CHILDREN = 1024  # elements in one SEQUENCE/SET: certificates and signatures have a handful


def context(n: int, constructed: bool = True) -> int:
    """The tag of [n] (context-specific)."""
    return 0x80 | (0x20 if constructed else 0) | n


@dataclass(frozen=True)
class Tlv:
    tag: int  # the identifier octet (single-octet tags only)
    raw: bytes  # the whole encoding, header included: signatures cover encodings
    header: int  # length of the tag and length octets

    @property
    def body(self) -> bytes:
        return self.raw[self.header:]

    def children(self) -> list[Tlv]:
        return parse_all(self.body)

    def integer(self) -> int:
        self.expect(INTEGER, "INTEGER")
        if not self.body:
            raise FormatError("DER: empty INTEGER")
        return int.from_bytes(self.body, "big", signed=True)

    def oid(self) -> str:
        self.expect(OID, "OBJECT IDENTIFIER")
        arcs, value = [], 0
        for i, b in enumerate(self.body):
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                arcs.append(value)
                value = 0
            elif i == len(self.body) - 1:
                raise FormatError("DER: truncated OBJECT IDENTIFIER")
        if not arcs:
            raise FormatError("DER: empty OBJECT IDENTIFIER")
        first = min(arcs[0] // 40, 2)
        return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))

    def bits(self) -> bytes:
        """A BIT STRING's bytes (keys and signatures: whole bytes, no unused bits)."""
        self.expect(BIT_STRING, "BIT STRING")
        if not self.body or self.body[0] != 0:
            raise FormatError("DER: BIT STRING with unused bits")
        return self.body[1:]

    def expect(self, tag: int, what: str) -> Tlv:
        if self.tag != tag:
            raise FormatError(f"DER: expected {what} (tag {tag:#04x}), found tag {self.tag:#04x}")
        return self


def parse_one(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    """The element at pos and the position after it."""
    if pos + 2 > len(data):
        raise FormatError("DER: truncated element")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise FormatError("DER: multi-byte tags are not supported")
    if first < 0x80:
        length, header = first, 2
    elif first == 0x80:
        raise FormatError("DER: indefinite length (BER) is not supported")
    else:
        n = first & 0x7F
        if n > 4 or pos + 2 + n > len(data):
            raise FormatError("DER: bad length field")
        length, header = int.from_bytes(data[pos + 2:pos + 2 + n], "big"), 2 + n
    end = pos + header + length
    if end > len(data):
        raise FormatError(f"DER: element of {length} bytes overruns its container")
    return Tlv(tag, bytes(data[pos:end]), header), end


def parse_all(data: bytes) -> list[Tlv]:
    out, pos = [], 0
    while pos < len(data):
        if len(out) == MAX_CHILDREN:
            raise FormatError(f"DER: more than {MAX_CHILDREN} elements in one container")
        item, pos = parse_one(data, pos)
        out.append(item)
    return out


def parse(data: bytes) -> Tlv:
    """Exactly one element filling all of data."""
    item, end = parse_one(data)
    if end != len(data):
        raise FormatError(f"DER: {len(data) - end} bytes after the element")
    return item


def sequence(tlv: Tlv, least: int, what: str) -> list[Tlv]:
    """The children of a SEQUENCE that must have at least `least` of them."""
    items = tlv.expect(SEQUENCE, what).children()
    if len(items) < least:
        raise FormatError(f"DER: {what} has {len(items)} fields, expected at least {least}")
    return items
