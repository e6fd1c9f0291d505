"""Android binary XML (AndroidManifest.xml inside an APK): chunks, string pool, elements.

Attribute names compiled by aapt may be empty strings resolved through the resource map,
so well-known android: attribute ids are named here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cerebro.binread import FormatError, Reader

RES_STRING_POOL, RES_XML, RES_XML_RESOURCE_MAP = 0x0001, 0x0003, 0x0180
XML_START_NS, XML_END_NS, XML_START_ELEMENT, XML_END_ELEMENT, XML_CDATA = 0x0100, 0x0101, 0x0102, 0x0103, 0x0104
MAX_STRINGS = 1 << 20
MAX_DEPTH = 256
MAX_ELEMENTS = 1 << 18
ANDROID_ATTRS = {0x01010003: "name", 0x01010001: "label", 0x01010002: "icon", 0x0101021B: "versionCode",
                 0x0101021C: "versionName", 0x0101020C: "minSdkVersion", 0x01010270: "targetSdkVersion",
                 0x01010271: "maxSdkVersion", 0x01010010: "exported", 0x0101000C: "hasCode",
                 0x01010006: "permission", 0x01010018: "authorities", 0x0101000F: "debuggable"}
TYPE_NULL, TYPE_REFERENCE, TYPE_STRING, TYPE_FLOAT = 0x00, 0x01, 0x03, 0x04
TYPE_INT_DEC, TYPE_INT_HEX, TYPE_BOOLEAN = 0x10, 0x11, 0x12


@dataclass
class Element:
    tag: str
    attrs: dict[str, object] = field(default_factory=dict)
    children: list[Element] = field(default_factory=list)

    def find_all(self, tag: str) -> list[Element]:
        out = [self] if self.tag == tag else []
        for child in self.children:
            out += child.find_all(tag)
        return out


def read_string_pool(r: Reader, off: int) -> list[str]:
    fields = r.unpack("HHIIIIII", off, "string pool")
    _t, header_size, size, count, _styles, flags, strings_start, _styles_start = fields
    r.check(off, size, "string pool")
    if count > MAX_STRINGS or count * 4 > size:
        raise FormatError(f"binary XML: string pool claims {count} strings in {size} bytes")
    utf8 = bool(flags & 0x100)
    out = []
    total = 0
    for i in range(count):
        start = off + strings_start + r.u32(off + header_size + 4 * i, "string offset")
        if utf8:
            _n16, p = _len8(r, start)
            n8, p = _len8(r, p)
            out.append(r.bytes(p, n8, "string").decode("utf-8", "replace"))
        else:
            n = r.u16(start, "string length")
            p = start + 2
            if n & 0x8000:
                n = ((n & 0x7FFF) << 16) | r.u16(p, "string length")
                p += 2
            out.append(r.bytes(p, 2 * n, "string").decode("utf-16-le", "replace"))
        if not (off <= start < off + size):
            raise FormatError(f"binary XML: string {i} lies outside its pool")
        total += len(out[-1])
        if total > size:  # real pools never overlap their strings
            raise FormatError("binary XML: string pool decodes to more text than it holds (overlapping strings)")
    return out


def _len8(r: Reader, p: int) -> tuple[int, int]:
    n = r.u8(p, "string length")
    if n & 0x80:
        return ((n & 0x7F) << 8) | r.u8(p + 1, "string length"), p + 2
    return n, p + 1


def _value(strings: list[str], raw: int, dtype: int, data: int) -> object:
    if dtype == TYPE_STRING or (raw != 0xFFFFFFFF and raw < len(strings)):
        return strings[raw] if raw < len(strings) else ""
    if dtype == TYPE_BOOLEAN:
        return data != 0
    if dtype == TYPE_INT_DEC:
        return data - (1 << 32) if data >= 1 << 31 else data
    if dtype == TYPE_INT_HEX:
        return hex(data)
    if dtype == TYPE_REFERENCE:
        return f"@{data:#010x}"
    return data


def parse_axml(data: bytes) -> Element:
    """The document's root element."""
    r = Reader(data, "binary XML")
    typ, header_size, size = r.unpack("HHI", 0, "header")
    if typ != RES_XML or size > len(data) or header_size < 8:
        raise FormatError("binary XML: not an Android binary XML document")
    strings: list[str] = []
    res_ids: list[int] = []
    stack: list[Element] = [Element("#document")]
    pos, count = header_size, 0

    def string(i: int) -> str:
        if i == 0xFFFFFFFF:
            return ""
        if i >= len(strings):
            raise FormatError(f"binary XML: string index {i} out of range ({len(strings)})")
        return strings[i]

    while pos + 8 <= size:
        ctype, chead, csize = r.unpack("HHI", pos, "chunk header")
        if csize < 8 or pos + csize > size:
            raise FormatError(f"binary XML: chunk at {pos:#x} has bad size {csize}")
        count += 1
        if count > MAX_ELEMENTS:
            raise FormatError("binary XML: too many chunks")
        if ctype == RES_STRING_POOL:
            strings = read_string_pool(r, pos)
        elif ctype == RES_XML_RESOURCE_MAP:
            res_ids = [r.u32(pos + chead + 4 * i) for i in range((csize - chead) // 4)]
        elif ctype == XML_START_ELEMENT:
            _ns, name, attr_start, attr_size, attr_count = r.unpack("IIHHH", pos + chead, "element")
            el = Element(string(name))
            base = pos + chead + attr_start
            if base + attr_count * max(attr_size, 20) > pos + csize:
                raise FormatError(f"binary XML: element <{el.tag}> attributes overrun their chunk")
            for a in range(attr_count):
                _ans, aname, raw, _vsize, _res0, dtype, vdata = r.unpack("IIIHBBI", base + a * max(attr_size, 20),
                                                                         "attribute")
                key = string(aname)
                if not key and aname < len(res_ids):
                    key = ANDROID_ATTRS.get(res_ids[aname], f"{res_ids[aname]:#010x}")
                el.attrs[key] = _value(strings, raw, dtype, vdata)
            stack[-1].children.append(el)
            stack.append(el)
            if len(stack) > MAX_DEPTH:
                raise FormatError(f"binary XML: elements nested deeper than {MAX_DEPTH}")
        elif ctype == XML_END_ELEMENT:
            if len(stack) == 1:
                raise FormatError("binary XML: end tag without a start tag")
            stack.pop()
        pos += csize
    root = stack[0].children
    if len(root) != 1:
        raise FormatError(f"binary XML: expected one root element, found {len(root)}")
    return root[0]
