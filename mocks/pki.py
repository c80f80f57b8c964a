"""A throwaway PKI and signed PDFs, for tests and benchmarks: the signatures a one-stop officer meets.

Two trust hierarchies as in Vietnam (a public national root with a commercial CA under it, and the
government's own root), plus everything that goes wrong: an expired signer, a revoked one with its CRL,
a CA nobody trusts, a self-signed certificate, and a time-stamping authority. PDFs are signed with
pyHanko, the same library that verifies them, so the fixtures are real PAdES signatures.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator.registry import SimpleCertificateStore

NOW = datetime.now(UTC)


@dataclass
class Identity:
    """A certificate with its private key and the chain above it (issuer first, root last)."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def as_json(self) -> dict[str, object]:
        """The identity as the TSA and OCSP mocks take it over `_mock/` (PEM texts)."""
        return {"cert": self.pem.decode(), "key": self.key_pem.decode(),
                "chain": [c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain]}

    def signer(self) -> signers.SimpleSigner:
        def asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
            return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

        key_der = self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        return signers.SimpleSigner(signing_cert=asn1(self.cert), signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                                    cert_registry=SimpleCertificateStore.from_certs([asn1(c) for c in self.chain]))


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(subject: x509.Name, key: rsa.RSAPrivateKey, issuer: Identity | None, *, ca: bool,
           not_before: datetime, not_after: datetime, crl_url: str | None = None,
           usage: str = "sign", ocsp_url: str | None = None) -> Identity:
    signing_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=usage == "sign", key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        if usage == "tsa":
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    if crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_url)], relative_name=None, reasons=None,
            crl_issuer=None)]), critical=False)
    if ocsp_url:  # where pyHanko asks whether the certificate is revoked (RFC 5280 4.2.2.1)
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    chain = [issuer.cert, *issuer.chain] if issuer else []
    return Identity(cert, key, chain)


class TestPki:
    """Roots, CAs and signers; `crl_base` (a URL) puts CRL distribution points in the signers' certificates,
    `ocsp_url` an OCSP responder (the OCSP mock) in those the VNPT CA issues, the TSA's included."""

    __test__ = False  # not a pytest test class

    def __init__(self, crl_base: str = "http://crl.test.invalid", ocsp_url: str | None = None) -> None:
        year = timedelta(days=365)
        past, later = NOW - 2 * year, NOW + 5 * year
        # pyHanko applies a CRL only to certificates naming its distribution point, as real ones all do.
        self.crl_url = f"{crl_base.rstrip('/')}/vnpt-ca.crl"
        self.root_crl_url = f"{crl_base.rstrip('/')}/national-root.crl"
        self.public_root = _issue(_name("Test Vietnam National Root CA", "Bộ Thông tin và Truyền thông"),
                                  _key(), None, ca=True, not_before=past, not_after=later + year)
        self.ca = _issue(_name("Test VNPT Certification Authority", "VNPT Group"), _key(), self.public_root,
                         ca=True, not_before=past, not_after=later, crl_url=self.root_crl_url)
        self.gov_root = _issue(_name("Test Root CA chuyên dùng Chính phủ", "Ban Cơ yếu Chính phủ"), _key(), None,
                               ca=True, not_before=past, not_after=later + year)
        self.gov_ca = _issue(_name("Test Cục Chứng thực số và Bảo mật thông tin", "Ban Cơ yếu Chính phủ"), _key(),
                             self.gov_root, ca=True, not_before=past, not_after=later)
        signer_kw = {"not_before": NOW - year, "not_after": later, "crl_url": self.crl_url, "ocsp_url": ocsp_url}
        self.signer = _issue(_name("Nguyễn Văn An", "UBND xã Tân Lập"), _key(), self.ca, ca=False, **signer_kw)
        self.official = _issue(_name("Trần Thị Bình", "Sở Tư pháp tỉnh Phú Thọ"), _key(), self.gov_ca, ca=False,
                               not_before=NOW - year, not_after=later)
        self.digital_only = _issue(_name("Lê Văn Cường", "UBND xã Tân Lập"), _key(), self.ca, ca=False,
                                   usage="digital_only", **signer_kw)
        self.expired = _issue(_name("Phạm Văn Dũng", "UBND xã Tân Lập"), _key(), self.ca, ca=False,
                              not_before=NOW - 2 * year, not_after=NOW - year, crl_url=self.crl_url,
                              ocsp_url=ocsp_url)
        self.revoked = _issue(_name("Hoàng Thị Em", "UBND xã Tân Lập"), _key(), self.ca, ca=False, **signer_kw)
        self.ocsp_url = ocsp_url
        self.tsa = _issue(_name("Test VNPT Time Stamping Authority", "VNPT Group"), _key(), self.ca, ca=False,
                          not_before=past, not_after=later, usage="tsa", crl_url=self.crl_url, ocsp_url=ocsp_url)
        stranger_root = _issue(_name("Unknown Root CA", "Nobody"), _key(), None, ca=True, not_before=past,
                               not_after=later)
        # A time-stamping authority whose certificate chains to no root the gateway trusts.
        self.stranger_tsa = _issue(_name("Unknown Time Stamping Authority", "Nobody"), _key(), stranger_root,
                                   ca=False, not_before=past, not_after=later, usage="tsa")
        self.stranger = _issue(_name("Nguyễn Văn Lạ", "Nobody"), _key(), stranger_root, ca=False,
                               not_before=NOW - year, not_after=later)
        self_key = _key()
        self.self_signed = _issue(_name("Tự Ký", "Không ai"), self_key, None, ca=False, not_before=NOW - year,
                                  not_after=later)
        self.revoked_at = NOW - timedelta(days=30)

    def tsa_ending(self, not_after: datetime, name: str = "Test VNPT Time Stamping Authority 2") -> Identity:
        """Another TSA of the same CA whose certificate ends at `not_after`: tokens an archive must renew."""
        return _issue(_name(name, "VNPT Group"), _key(), self.ca, ca=False, not_before=NOW - timedelta(days=30),
                      not_after=not_after, usage="tsa", crl_url=self.crl_url, ocsp_url=self.ocsp_url)

    def crl(self, revoked: list[Identity] | None = None) -> bytes:
        """The CA's CRL (DER) listing the revoked signer (revoked a month ago) or those given."""
        return _crl(self.ca, [self.revoked] if revoked is None else revoked, self.revoked_at)

    def root_crl(self) -> bytes:
        """The national root's CRL: it revokes no CA, and lets a fail-closed check of the CA pass."""
        return _crl(self.public_root, [], self.revoked_at)

    def write_trust_dir(self, folder: Path) -> Path:
        """The layout the gateway reads: public/ and government/ roots, one PEM and one DER."""
        (folder / "public").mkdir(parents=True, exist_ok=True)
        (folder / "government").mkdir(parents=True, exist_ok=True)
        (folder / "public" / "national-root.pem").write_bytes(self.public_root.pem)
        (folder / "government" / "gov-root.cer").write_bytes(self.gov_root.der)
        return folder

    def timestamper(self) -> DummyTimeStamper:
        signer = self.tsa.signer()
        return DummyTimeStamper(tsa_cert=signer.signing_cert, tsa_key=signer.signing_key,
                                certs_to_embed=signer.cert_registry)


def _crl(issuer: Identity, revoked: list[Identity], at: datetime) -> bytes:
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
               .last_update(NOW - timedelta(hours=1)).next_update(NOW + timedelta(days=7))
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                              critical=False)
               .add_extension(x509.CRLNumber(1), critical=False))
    for who in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(who.cert.serial_number).revocation_date(at).build())
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def one_page_pdf(text: str = "GIAY KHAI SINH - Ban sao dien tu", *, padding: int = 0,
                 incompressible: bool = False) -> bytes:
    """A minimal valid one-page PDF; `padding` bytes of image data make it as large as wanted (random ones with
    `incompressible`, as a scanned form's JPEG is: a zip cannot shrink them)."""
    content = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> /XObject << /Im1 6 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    width = max(1, padding // 1000) if padding else 1
    data = (os.urandom(width * 1000) if incompressible else bytes((i * 7) % 251 for i in range(width * 1000))) \
        if padding else b"\x00"
    height = 1000 if padding else 1
    objects.append(b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
                   b"/BitsPerComponent 8 /Length %d >>\nstream\n" % (width, height, len(data)) + data
                   + b"\nendstream")
    return pdf_file(objects)


def pdf_file(objects: list[bytes], root: int = 1) -> bytes:
    """Objects 1..n as a PDF file with its cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref))
    return out.getvalue()


def sign(pdf: bytes, who: Identity, *, field_name: str = "Signature1", digest: str = "sha256",
         certify: bool = False, timestamper: DummyTimeStamper | None = None, reason: str | None = None) -> bytes:
    """Sign (or certify, allowing no changes after) a PDF with pyHanko, in an incremental update."""
    from pyhanko.sign.fields import MDPPerm

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    meta = signers.PdfSignatureMetadata(field_name=field_name, md_algorithm=digest, certify=certify,
                                        docmdp_permissions=MDPPerm.NO_CHANGES, reason=reason,
                                        subfilter=fields.SigSeedSubFilter.PADES)
    out = signers.sign_pdf(writer, meta, signer=who.signer(), timestamper=timestamper,
                           new_field_spec=fields.SigFieldSpec(field_name))
    return out.getvalue()


def with_crls_in_dss(pdf: bytes, *crls: bytes) -> bytes:
    """Embed CRLs in the document security store (how long-term signatures carry revocation data)."""
    from asn1crypto import crl as asn1_crl

    out = io.BytesIO(pdf)
    DocumentSecurityStore.add_dss(out, sig_contents=None, crls=[asn1_crl.CertificateList.load(c) for c in crls],
                                  force_write=True)
    return out.getvalue()


def change_page_text(pdf: bytes, text: str = "GIAY KHAI SINH - DA SUA") -> bytes:
    """An incremental update after signing that replaces what the page shows."""
    from pyhanko.pdf_utils import generic

    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    stream = generic.StreamObject(stream_data=f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode())
    page["/Contents"] = writer.add_object(stream)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def add_signature_field(pdf: bytes, name: str = "Signature2") -> bytes:
    """An incremental update that only adds an empty signature field: form filling, which a certification
    allowing no changes forbids."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    fields.append_signature_field(writer, fields.SigFieldSpec(name, box=(20, 20, 120, 60)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
