"""What a server's certificate says: subject, issuer, expiry, and whether it looks like interception."""

from __future__ import annotations

import hashlib
import ssl
import time

from bot.checks.target import Target

EXPIRY_WARNING_DAYS = 14
GOOGLE_ISSUER = "Google Trust Services"
# OpenSSL verify codes that mean "signed by someone this machine does not trust".
UNTRUSTED_ISSUER_CODES = {18, 19, 20, 21}  # self-signed leaf, self-signed in chain, no local issuer, no first cert
HOSTNAME_MISMATCH_CODES = {62, 64}
EXPIRED_CODE = 10


def describe_certificate(der: bytes) -> dict[str, object]:
    """Subject, issuer, validity and names of a DER certificate."""
    if not der:
        return {}
    info: dict[str, object] = {"sha256": hashlib.sha256(der).hexdigest()}
    try:
        from cryptography import x509
        from cryptography.x509.oid import ExtensionOID, NameOID
    except ImportError:  # cryptography comes with google-auth; without it only the fingerprint is shown
        return info
    cert = x509.load_der_x509_certificate(der)

    def org(name: x509.Name) -> str:
        values = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(values[0].value) if values else ""

    try:
        sans = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names = [str(n) for n in sans.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    info.update(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        issuer_org=org(cert.issuer),
        not_after=cert.not_valid_after_utc.isoformat(),
        days_left=int((cert.not_valid_after_utc.timestamp() - time.time()) // 86400),
        names=names[:20],
        self_signed=cert.issuer == cert.subject,
    )
    return info


def certificate_line(cert: dict[str, object]) -> str:
    if "subject" not in cert:
        return f"certificate sha256 {str(cert.get('sha256', '?'))[:16]}…"
    return f"subject {cert['subject']}, issuer {cert['issuer']}, expires {str(cert['not_after'])[:10]}"


def certificate_notes(cert: dict[str, object], target: Target) -> list[str]:
    notes = []
    issuer_org = str(cert.get("issuer_org", ""))
    if target.host.endswith(".googleapis.com") and "issuer_org" in cert and GOOGLE_ISSUER not in issuer_org:
        notes.append(
            f"issuer '{issuer_org or cert.get('issuer')}' is not {GOOGLE_ISSUER}: likely TLS interception by a "
            "proxy whose CA this machine trusts (other runtimes, e.g. Node or certifi, may not)"
        )
    days = cert.get("days_left")
    if isinstance(days, int) and days < EXPIRY_WARNING_DAYS:
        notes.append(f"certificate expires in {days} days")
    return notes


def verify_failure(
    exc: ssl.SSLCertVerificationError, cert: dict[str, object], host: str, trust: str
) -> tuple[str, bool]:
    """A human explanation of a failed verification, and whether it looks like interception."""
    presented = certificate_line(cert) if cert else "certificate not readable"
    reason = exc.verify_message or str(exc)
    if exc.verify_code in UNTRUSTED_ISSUER_CODES or cert.get("self_signed"):
        kind = (
            "a self-signed certificate" if cert.get("self_signed") else f"a certificate from an issuer not in {trust}"
        )
        return (
            f"tls: {host} presented {kind} ({reason}); {presented}. Likely TLS interception by a proxy or "
            "security product: trust its CA (SSL_CERT_FILE) rather than turning verification off",
            True,
        )
    if exc.verify_code in HOSTNAME_MISMATCH_CODES:
        names = ", ".join(cert.get("names", []) or []) or "other names"  # type: ignore[arg-type]
        return (
            f"tls: the certificate is for {names}, not {host} ({reason}): wrong base URL, or something "
            f"in between answers for it; {presented}",
            False,
        )
    if exc.verify_code == EXPIRED_CODE:
        return f"tls: the certificate has expired ({reason}); check this machine's clock; {presented}", False
    return f"tls: certificate verification failed ({reason}); {presented}", False
