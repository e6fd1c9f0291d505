"""Public-key signature verification for package signatures, in plain Python integers:
RSA (PKCS#1 v1.5 and PSS), ECDSA over NIST P-256/P-384/P-521, and DSA.

Verification only (no secrets, so no timing concerns). PKCS#1 v1.5 is checked by building
the one valid encoding and comparing it whole, never by parsing the decrypted block (that
parse is where signature forgeries live). Every value from the file is range-checked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cerebro.binread import FormatError
from cerebro.loaders import der

RSA_OID, EC_OID, DSA_OID = "1.2.840.113549.1.1.1", "1.2.840.10045.2.1", "1.2.840.10040.4.1"
MAX_KEY_BITS = 8192  # RSA/DSA moduli: bounds the cost of one pow()
MAX_RSA_EXPONENT_BITS = 64  # real keys use 3 or 65537; a huge exponent would make pow() slow
# DER DigestInfo prefixes (RFC 8017 section 9.2, note 1)
DIGEST_INFO = {
    "sha1": bytes.fromhex("3021300906052b0e03021a05000414"),
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


@dataclass(frozen=True)
class Curve:
    p: int
    b: int  # a = -3 for every NIST prime curve
    gx: int
    gy: int
    n: int


CURVES = {
    "1.2.840.10045.3.1.7": Curve(  # P-256
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551),
    "1.3.132.0.34": Curve(  # P-384
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
        0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
        0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973),
    "1.3.132.0.35": Curve(  # P-521
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
        0x00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66,
        0x011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650,
        0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409),
}


@dataclass(frozen=True)
class PublicKey:
    kind: str  # "rsa", "ec" or "dsa"
    numbers: tuple  # rsa: (n, e); ec: (curve oid, x, y); dsa: (p, q, g, y)
    spki: bytes  # the SubjectPublicKeyInfo encoding it came from


def parse_public_key(spki: bytes) -> PublicKey:
    """A key from a DER SubjectPublicKeyInfo (certificates, APK v2/v3 signer records)."""
    algorithm, key = der.sequence(der.parse(spki), 2, "SubjectPublicKeyInfo")[:2]
    fields = der.sequence(algorithm, 1, "AlgorithmIdentifier")
    oid, raw = fields[0].oid(), key.bits()
    if oid == RSA_OID:
        n, e = (t.integer() for t in der.sequence(der.parse(raw), 2, "RSA public key")[:2])
        if not 512 <= n.bit_length() <= MAX_KEY_BITS or n % 2 == 0 or not 3 <= e < n or e % 2 == 0 or \
                e.bit_length() > MAX_RSA_EXPONENT_BITS:
            raise FormatError(f"RSA public key: unusable modulus ({n.bit_length()} bits) or exponent")
        return PublicKey("rsa", (n, e), spki)
    if oid == EC_OID:
        if len(fields) < 2 or fields[1].tag != der.OID or fields[1].oid() not in CURVES:
            raise FormatError("EC public key: not on a supported named curve (P-256, P-384, P-521)")
        name = fields[1].oid()
        x, y = _decode_point(CURVES[name], raw)
        return PublicKey("ec", (name, x, y), spki)
    if oid == DSA_OID:
        if len(fields) < 2:
            raise FormatError("DSA public key: no domain parameters")
        p, q, g = (t.integer() for t in der.sequence(fields[1], 3, "DSA parameters")[:3])
        y = der.parse(raw).integer()
        if not (512 <= p.bit_length() <= MAX_KEY_BITS and 160 <= q.bit_length() <= 512 and 1 < g < p and 1 < y < p):
            raise FormatError("DSA public key: parameters out of range")
        return PublicKey("dsa", (p, q, g, y), spki)
    raise FormatError(f"public key algorithm {oid} is not supported")


def verify(key: PublicKey, scheme: str, digest: str, message: bytes, signature: bytes) -> bool:
    """Does `signature` sign `message` under key? scheme: pkcs1, pss, ecdsa or dsa (matching the key)."""
    if (scheme, key.kind) not in SCHEMES:
        raise FormatError(f"a {scheme} signature cannot be made with an {key.kind.upper()} key")
    return SCHEMES[(scheme, key.kind)](key.numbers, digest, message, signature)


def _rsa_pkcs1(numbers: tuple, digest: str, message: bytes, signature: bytes) -> bool:
    n, e = numbers
    k = (n.bit_length() + 7) // 8
    s = int.from_bytes(signature, "big")
    if len(signature) > k or s >= n:  # shorter: leading zero bytes dropped, as Java accepts
        return False
    t = DIGEST_INFO[digest] + hashlib.new(digest, message).digest()
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(s, e, n).to_bytes(k, "big") == expected


def _mgf1(seed: bytes, length: int, digest: str) -> bytes:
    out = b"".join(hashlib.new(digest, seed + i.to_bytes(4, "big")).digest()
                   for i in range(-(-length // hashlib.new(digest).digest_size)))
    return out[:length]


def _rsa_pss(numbers: tuple, digest: str, message: bytes, signature: bytes) -> bool:
    """RSASSA-PSS with MGF1 of the same digest and a salt as long as the digest (APK v2/v3)."""
    n, e = numbers
    s = int.from_bytes(signature, "big")
    if len(signature) > (n.bit_length() + 7) // 8 or s >= n:
        return False
    em_bits = n.bit_length() - 1
    em_len = (em_bits + 7) // 8
    m = pow(s, e, n)
    if m >> (8 * em_len):
        return False
    em = m.to_bytes(em_len, "big")
    h_len = hashlib.new(digest).digest_size
    if em_len < 2 * h_len + 2 or em[-1] != 0xBC:
        return False
    masked, h = em[:em_len - h_len - 1], em[em_len - h_len - 1:-1]
    top = 8 * em_len - em_bits  # leftmost bits that must be zero
    if masked[0] & ~(0xFF >> top) & 0xFF:
        return False
    db = bytearray(a ^ b for a, b in zip(masked, _mgf1(h, len(masked), digest), strict=True))
    db[0] &= 0xFF >> top
    pad = len(db) - h_len - 1
    if any(db[:pad]) or db[pad] != 1:
        return False
    salt = bytes(db[pad + 1:])
    return hashlib.new(digest, b"\0" * 8 + hashlib.new(digest, message).digest() + salt).digest() == h


def _hash_int(digest: str, message: bytes, order: int) -> int:
    """The leftmost bit-length-of-order bits of the hash (FIPS 186-4 for ECDSA and DSA)."""
    h = hashlib.new(digest, message).digest()
    return int.from_bytes(h, "big") >> max(0, 8 * len(h) - order.bit_length())


def _dss_pair(signature: bytes, order: int) -> tuple[int, int] | None:
    """(r, s) from a DER Dss-Sig-Value / ECDSA-Sig-Value, both in [1, order)."""
    try:
        r, s = (t.integer() for t in der.sequence(der.parse(signature), 2, "signature value")[:2])
    except FormatError:
        return None
    return (r, s) if 0 < r < order and 0 < s < order else None


def _decode_point(c: Curve, raw: bytes) -> tuple[int, int]:
    size = (c.p.bit_length() + 7) // 8
    if len(raw) == 1 + 2 * size and raw[0] == 4:
        x, y = int.from_bytes(raw[1:1 + size], "big"), int.from_bytes(raw[1 + size:], "big")
    elif len(raw) == 1 + size and raw[0] in (2, 3):  # compressed: y from x (p = 3 mod 4 on these curves)
        x = int.from_bytes(raw[1:], "big")
        y = pow((x * x * x - 3 * x + c.b) % c.p, (c.p + 1) // 4, c.p)
        if y % 2 != raw[0] % 2:
            y = c.p - y
    else:
        raise FormatError("EC public key: bad point encoding")
    if not (x < c.p and y < c.p and (y * y - (x * x * x - 3 * x + c.b)) % c.p == 0):
        raise FormatError("EC public key: the point is not on the curve")
    return x, y


INFINITY = (1, 1, 0)  # Jacobian (X, Y, Z): x = X/Z^2, y = Y/Z^3; no inversion until the end


def _double(c: Curve, pt: tuple[int, int, int]) -> tuple[int, int, int]:
    """2P for a = -3 (dbl-2001-b)."""
    x, y, z = pt
    if z == 0 or y == 0:
        return INFINITY
    delta, gamma = z * z % c.p, y * y % c.p
    beta, alpha = x * gamma % c.p, 3 * (x - delta) * (x + delta) % c.p
    x3 = (alpha * alpha - 8 * beta) % c.p
    return x3, (alpha * (4 * beta - x3) - 8 * gamma * gamma) % c.p, ((y + z) ** 2 - gamma - delta) % c.p


def _add(c: Curve, p1: tuple[int, int, int], p2: tuple[int, int, int]) -> tuple[int, int, int]:
    """P1 + P2 (add-2007-bl)."""
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    z1z1, z2z2 = p1[2] * p1[2] % c.p, p2[2] * p2[2] % c.p
    u1, u2 = p1[0] * z2z2 % c.p, p2[0] * z1z1 % c.p
    s1, s2 = p1[1] * p2[2] * z2z2 % c.p, p2[1] * p1[2] * z1z1 % c.p
    if u1 == u2:
        return _double(c, p1) if s1 == s2 else INFINITY
    h = u2 - u1
    i = 4 * h * h % c.p
    j, r, v = h * i % c.p, 2 * (s2 - s1) % c.p, u1 * i % c.p
    x3 = (r * r - j - 2 * v) % c.p
    return x3, (r * (v - x3) - 2 * s1 * j) % c.p, ((p1[2] + p2[2]) ** 2 - z1z1 - z2z2) * h % c.p


def ec_combination(c: Curve, k1: int, p1: tuple[int, int], k2: int, p2: tuple[int, int]) -> tuple[int, int] | None:
    """k1*P1 + k2*P2 in affine coordinates (None: the point at infinity), both at once (Shamir's trick)."""
    a, b = (*p1, 1), (*p2, 1)
    table = {1: a, 2: b, 3: _add(c, a, b)}
    result = INFINITY
    for i in range(max(k1.bit_length(), k2.bit_length()) - 1, -1, -1):
        result = _double(c, result)
        bits = (k1 >> i & 1) | (k2 >> i & 1) << 1
        if bits:
            result = _add(c, result, table[bits])
    if result[2] == 0:
        return None
    z_inverse = pow(result[2], -1, c.p)
    return result[0] * z_inverse ** 2 % c.p, result[1] * z_inverse ** 3 % c.p


def _ecdsa(numbers: tuple, digest: str, message: bytes, signature: bytes) -> bool:
    name, qx, qy = numbers
    c = CURVES[name]
    pair = _dss_pair(signature, c.n)
    if pair is None:
        return False
    r, s = pair
    w = pow(s, -1, c.n)
    e = _hash_int(digest, message, c.n)
    point = ec_combination(c, e * w % c.n, (c.gx, c.gy), r * w % c.n, (qx, qy))
    return point is not None and point[0] % c.n == r


def _dsa(numbers: tuple, digest: str, message: bytes, signature: bytes) -> bool:
    p, q, g, y = numbers
    pair = _dss_pair(signature, q)
    if pair is None:
        return False
    r, s = pair
    try:
        w = pow(s, -1, q)
    except ValueError:  # q from the file need not be prime
        return False
    v = pow(g, _hash_int(digest, message, q) * w % q, p) * pow(y, r * w % q, p) % p % q
    return v == r


SCHEMES = {("pkcs1", "rsa"): _rsa_pkcs1, ("pss", "rsa"): _rsa_pss, ("ecdsa", "ec"): _ecdsa, ("dsa", "dsa"): _dsa}
