"""X.509 certificates (only the parts a signature check needs) and PKCS#7 SignedData with a
detached content: the signature block (META-INF/*.RSA, *.EC, *.DSA) of a v1 APK/JAR signer.

No trust chain is built: like Android, a signature is checked against the certificate that
comes with it, and the certificate's SHA-256 is the signer's identity.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cerebro.binread import FormatError
from cerebro.loaders import der
from cerebro.loaders.pubkey import parse_public_key, verify

SIGNED_DATA_OID = "1.2.840.113549.1.7.2"
MESSAGE_DIGEST_OID = "1.2.840.113549.1.9.4"
DIGEST_OIDS = {"1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.4": "sha224", "2.16.840.1.101.3.4.2.1": "sha256",
               "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512"}
SIGNATURE_OIDS = {  # signature algorithm -> scheme; the digest is the SignerInfo's digestAlgorithm
    "1.2.840.113549.1.1.1": "pkcs1", "1.2.840.113549.1.1.5": "pkcs1", "1.2.840.113549.1.1.11": "pkcs1",
    "1.2.840.113549.1.1.12": "pkcs1", "1.2.840.113549.1.1.13": "pkcs1", "1.2.840.113549.1.1.14": "pkcs1",
    "1.2.840.10045.2.1": "ecdsa", "1.2.840.10045.4.1": "ecdsa", "1.2.840.10045.4.3.1": "ecdsa",
    "1.2.840.10045.4.3.2": "ecdsa", "1.2.840.10045.4.3.3": "ecdsa", "1.2.840.10045.4.3.4": "ecdsa",
    "1.2.840.10040.4.1": "dsa", "1.2.840.10040.4.3": "dsa", "2.16.840.1.101.3.4.3.1": "dsa",
    "2.16.840.1.101.3.4.3.2": "dsa"}


@dataclass(frozen=True)
class Certificate:
    raw: bytes
    serial: int
    issuer: bytes  # the Name's encoding, compared byte for byte
    spki: bytes  # SubjectPublicKeyInfo encoding

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def parse_certificate(raw: bytes) -> Certificate:
    tbs = der.sequence(der.sequence(der.parse(raw), 3, "certificate")[0], 6, "TBSCertificate")
    if tbs[0].tag == der.context(0):  # explicit version
        tbs = tbs[1:]
    if len(tbs) < 6:
        raise FormatError("DER: TBSCertificate is missing fields")
    return Certificate(raw, tbs[0].integer(), tbs[2].raw, tbs[5].expect(der.SEQUENCE, "SubjectPublicKeyInfo").raw)


def verify_signed_data(block: bytes, content: bytes) -> Certificate:
    """The certificate whose key made the one SignerInfo's signature over `content` (raises if none)."""
    info = der.sequence(der.parse(block), 2, "PKCS#7 ContentInfo")
    if info[0].oid() != SIGNED_DATA_OID or info[1].tag != der.context(0):
        raise FormatError("PKCS#7: not SignedData")
    fields = der.sequence(der.parse(info[1].body), 4, "SignedData")
    certs = [parse_certificate(c.raw) for field in fields[3:] if field.tag == der.context(0) for c in field.children()]
    signer_infos = fields[-1].expect(der.SET, "SignerInfos").children()
    if len(signer_infos) != 1:
        raise FormatError(f"PKCS#7: {len(signer_infos)} SignerInfos, expected exactly one")
    si = der.sequence(signer_infos[0], 5, "SignerInfo")
    sid = der.sequence(si[1], 2, "IssuerAndSerialNumber (subject key identifiers are not supported)")
    cert = next((c for c in certs if c.issuer == sid[0].raw and c.serial == sid[1].integer()), None)
    if cert is None:
        raise FormatError("PKCS#7: no certificate matches the SignerInfo")
    digest = DIGEST_OIDS.get(der.sequence(si[2], 1, "digest algorithm")[0].oid())
    rest = si[3:]
    message = content
    if rest[0].tag == der.context(0):  # signed attributes: the signature covers them, they carry the digest
        message = bytes([der.SET]) + rest[0].raw[1:]
        digests = [a.children()[1].children() for a in rest[0].children()
                   if der.sequence(a, 2, "attribute")[0].oid() == MESSAGE_DIGEST_OID]
        if digest is None or len(digests) != 1 or len(digests[0]) != 1 or \
                digests[0][0].expect(der.OCTET_STRING, "messageDigest").body != hashlib.new(digest, content).digest():
            raise FormatError("PKCS#7: the signed messageDigest attribute does not match the signed file")
        rest = rest[1:]
    if len(rest) < 2:
        raise FormatError("PKCS#7: SignerInfo has no signature")
    scheme = SIGNATURE_OIDS.get(der.sequence(rest[0], 1, "signature algorithm")[0].oid())
    if digest is None or scheme is None:
        raise FormatError("PKCS#7: unsupported digest or signature algorithm")
    signature = rest[1].expect(der.OCTET_STRING, "signature").body
    if not verify(parse_public_key(cert.spki), scheme, digest, message, signature):
        raise FormatError(f"the signature does not verify with the signer's certificate (SHA-256 {cert.sha256[:16]})")
    return cert
