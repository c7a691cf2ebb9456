"""Redactors for ``redact=``: text in, text out, applied before anything is stored.

``dutch_pii`` replaces e-mail addresses, Dutch phone numbers, IBANs (mod-97 checked)
and BSNs (11-proof checked, so an arbitrary nine-digit number is left alone) with
``[EMAIL]``, ``[TELEFOON]``, ``[IBAN]`` and ``[BSN]``::

    AuditedOpenAI(db, redact=dutch_pii)
"""

from __future__ import annotations

import re

__all__ = ["dutch_pii", "is_bsn", "is_iban"]

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"(?:\+31|0031)[ -]?(?:\(0\)[ -]?)?[1-9](?:[ -]?\d){8}"  # international: +31 6 12345678
    r"|0[1-9](?:[ -]?\d){8}"  # national: 06-12345678, 020 123 4567
    r")(?![\d-])"
)
# Not part of a longer number, a case number (13/123456789-19) or an amount.
_BSN = re.compile(r"(?<![\d/-])(?<!\d[.,])(?:\d{9}|\d{4}\.\d{2}\.\d{3})(?!\d|[.,/-]\d)")

# IBAN lengths of the countries most often seen in Dutch files (others: 15-34).
_IBAN_LENGTHS = {"NL": 18, "BE": 16, "DE": 22, "FR": 27, "GB": 22, "LU": 20, "ES": 24, "IT": 27}


def is_iban(text: str) -> bool:
    """True for an IBAN whose check digits are right (ISO 13616 mod 97)."""
    iban = text.replace(" ", "")
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is not None and len(iban) != expected:
        return False
    if not 15 <= len(iban) <= 34:  # noqa: PLR2004 - the IBAN length range
        return False
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def is_bsn(text: str) -> bool:
    """True for a nine-digit number that passes the BSN 11-proof."""
    digits = [int(c) for c in text if c.isdigit()]
    if len(digits) != 9 or not any(digits):  # noqa: PLR2004 - a BSN has nine digits
        return False
    total = sum(d * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True))
    return total % 11 == 0


def dutch_pii(text: str) -> str:
    """Replace e-mail addresses, Dutch phone numbers, valid IBANs and valid BSNs."""
    parts: list[str] = []
    end = 0
    # IBAN-shaped text is settled first (redacted when valid, kept when not) and kept
    # away from the other patterns: its digit groups are no phone number or BSN.
    for match in _IBAN.finditer(text):
        parts.append(_others(text[end : match.start()]))
        parts.append("[IBAN]" if is_iban(match.group()) else match.group())
        end = match.end()
    parts.append(_others(text[end:]))
    return "".join(parts)


def _others(text: str) -> str:
    text = _EMAIL.sub("[EMAIL]", text)
    text = _BSN.sub(lambda m: "[BSN]" if is_bsn(m.group()) else m.group(), text)
    return _PHONE.sub("[TELEFOON]", text)
