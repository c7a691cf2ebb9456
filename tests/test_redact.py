"""The dutch_pii redactor: checks, and precision/recall on a labelled sample of 250 lines."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from audited_openai.redact import dutch_pii, is_bsn, is_iban

SAMPLE = Path(__file__).parent / "data" / "pii_sample.tsv"
MARKER = re.compile(r"\[(EMAIL|TELEFOON|IBAN|BSN)\]")


def test_checks() -> None:
    """IBANs are mod-97 checked, BSNs 11-proof checked."""
    assert is_iban("NL91 ABNA 0417 1643 00")
    assert not is_iban("NL92 ABNA 0417 1643 00")
    assert not is_iban("NL91 ABNA 0417 1643")  # too short for NL
    assert is_bsn("111222333")
    assert is_bsn("1112.22.333")
    assert not is_bsn("123456789")
    assert not is_bsn("000000000")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail a.b@om.nl nu", "mail [EMAIL] nu"),
        ("bel 06-12345678 of +31 20 123 4567", "bel [TELEFOON] of [TELEFOON]"),
        ("IBAN NL91ABNA0417164300", "IBAN [IBAN]"),
        ("bsn 111222333", "bsn [BSN]"),
        ("zaak 13/123456789-19 en 123456789", "zaak 13/123456789-19 en 123456789"),
        ("€ 1.234.567,00 op 2025-11-11", "€ 1.234.567,00 op 2025-11-11"),
    ],
)
def test_examples(text: str, expected: str) -> None:
    """Each kind is found; numbers that only look like one are left alone."""
    assert dutch_pii(text) == expected


def test_precision_and_recall_on_the_labelled_sample() -> None:
    """Report precision and recall over 250 labelled lines; both must be at least 0.98."""
    lines = [line.split("\t") for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    assert len(lines) >= 200
    tp = fp = fn = 0
    for text, expected in lines:
        want = Counter(MARKER.findall(expected))
        got = Counter(MARKER.findall(dutch_pii(text)))
        hits = sum((want & got).values())
        tp += hits
        fp += sum(got.values()) - hits
        fn += sum(want.values()) - hits
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(
        f"dutch_pii on {len(lines)} lines: precision {precision:.3f}, recall {recall:.3f} (tp {tp}, fp {fp}, fn {fn})"
    )
    assert precision >= 0.98
    assert recall >= 0.98
    # and the raw text is gone: the redacted line is the labelled one, character for character
    exact = sum(dutch_pii(text) == expected for text, expected in lines)
    assert exact / len(lines) >= 0.98
