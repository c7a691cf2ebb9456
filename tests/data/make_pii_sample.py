"""Writes pii_sample.tsv: labelled lines for the dutch_pii redactor (deterministic).

Each line: the text, a tab, and the same text with every piece of personal data
replaced by its marker. Negatives (dates, amounts, case numbers, nine-digit numbers
that fail the 11-proof, IBANs with a wrong check digit) stay as they are.

    python tests/data/make_pii_sample.py
"""

from __future__ import annotations

import random
from pathlib import Path

RNG = random.Random(20251111)
NAMES = ["jan.jansen", "p.de.vries", "m.bakker", "sanne_visser", "k.smit+werk", "a.meijer"]
DOMAINS = ["om.nl", "rechtspraak.nl", "example.com", "politie.nl", "gemeente-utrecht.nl"]


def bsn(valid: bool) -> str:
    while True:
        digits = [RNG.randrange(10) for _ in range(8)]
        total = sum(d * w for d, w in zip(digits, (9, 8, 7, 6, 5, 4, 3, 2), strict=True))
        last = total % 11
        if valid and last < 10 and any(digits):
            return "".join(map(str, digits)) + str(last)
        if not valid:
            wrong = (last + RNG.randrange(1, 10)) % 10
            candidate = "".join(map(str, digits)) + str(wrong)
            if (total - wrong) % 11:
                return candidate


def iban(valid: bool) -> str:
    bank = RNG.choice(["ABNA", "INGB", "RABO", "SNSB", "TRIO"])
    account = "".join(str(RNG.randrange(10)) for _ in range(10))
    digits = "".join(str(int(c, 36)) for c in bank + account + "NL00")
    check = 98 - int(digits) % 97
    if not valid:
        check = (check + RNG.randrange(1, 90)) % 97 + 2
    raw = f"NL{check:02d}{bank}{account}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4)) if RNG.random() < 0.5 else raw


def phone() -> str:
    mobile = "".join(str(RNG.randrange(10)) for _ in range(8))
    area = RNG.choice(["20", "10", "30", "70", "40"])
    rest = "".join(str(RNG.randrange(10)) for _ in range(7))
    return RNG.choice(
        [
            f"06-{mobile}",
            f"06 {mobile[:4]} {mobile[4:]}",
            f"+31 6 {mobile}",
            f"+316{mobile}",
            f"0{area}-{rest}",
            f"0{area} {rest[:3]} {rest[3:]}",
            f"+31 (0){area} {rest}",
            f"0031 6 {mobile}",
        ]
    )


def email() -> str:
    return f"{RNG.choice(NAMES)}@{RNG.choice(DOMAINS)}"


POSITIVE = [
    ("Stuur het stuk naar {v} voor vrijdag.", "[EMAIL]", email),
    ("De aangever is bereikbaar op {v}.", "[TELEFOON]", phone),
    (
        "Schadevergoeding overmaken op rekening {v} t.n.v. de benadeelde.",
        "[IBAN]",
        lambda: iban(True),
    ),
    ("BSN van de verdachte: {v}.", "[BSN]", lambda: bsn(True)),
    ("Getuige (bsn {v}) verklaarde ter zitting.", "[BSN]", lambda: bsn(True)),
    ("Contact via {v} of via de balie.", "[EMAIL]", email),
    ("Bel de raadsman op {v} na 14.00 uur.", "[TELEFOON]", phone),
]
NEGATIVE = [
    "Zaaknummer 13/{a}-19, zitting van 12 maart 2025.",
    "Het bedrag van € {b} is voldaan op 01-02-2024.",
    "Registratienummer {c} komt niet overeen met het dossier.",
    "Rekening {d} is onbekend bij de bank.",
    "Artikel 27 lid 1 Wetboek van Strafvordering is van toepassing.",
    "Postcode 3511 AB, huisnummer 12, Utrecht.",
    "Het parketnummer {a} is aan de rechter-commissaris gezonden.",
    "De vordering van {b} euro is afgewezen.",
]


def main() -> None:
    lines = []
    for _ in range(160):
        template, marker, make = RNG.choice(POSITIVE)
        value = make()
        lines.append((template.format(v=value), template.format(v=marker)))
    for _ in range(70):
        text = RNG.choice(NEGATIVE).format(
            a=RNG.randrange(100000, 999999),
            b=f"{RNG.randrange(1, 999)}.{RNG.randrange(100, 999)},{RNG.randrange(10, 99)}",
            c=bsn(False),
            d=iban(False),
        )
        lines.append((text, text))
    for _ in range(20):  # two kinds on one line
        e, p = email(), phone()
        lines.append((f"Mail {e} of bel {p}.", "Mail [EMAIL] of bel [TELEFOON]."))
    RNG.shuffle(lines)
    out = Path(__file__).with_name("pii_sample.tsv")
    out.write_text("".join(f"{a}\t{b}\n" for a, b in lines), encoding="utf-8")


if __name__ == "__main__":
    main()
