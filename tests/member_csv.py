"""The issue's member file: 5,000 rows of which 37 are bad, for the parser's and the import's tests and the
import benchmark."""

import random

BOM = b"\xef\xbb\xbf"

BAD_KINDS = [
    "email_invalid",
    "name_missing",
    "email_duplicate",
    "too_many_columns",
    "too_few_columns",
    "name_too_long",
    "email_missing",
]
BAD_EMAILS = ["jean.dupont@", "pas-un-email", "x@localhost", "a@b", "deux@@example.com", "espace @example.com"]


def build_5000_rows() -> tuple[bytes, list[tuple[int, str]], int]:
    """An Excel-like file (BOM, semicolons, CRLF, a header and 5,000 rows), with 37 varied bad rows,
    some quoted names spanning two lines, and some blank lines. Returns the bytes, the expected
    (line, code) errors and the expected number of good rows."""
    rng = random.Random(37)
    bad = dict(zip(sorted(rng.sample(range(1, 5000), 37)), (BAD_KINDS * 6)[:37], strict=True))
    lines = ["Prénom;Nom;Adresse e-mail"]
    expected: list[tuple[int, str]] = []
    line = 1  # physical number of the last line written
    for i in range(5000):
        first, last, email = f"Prénom{i}", f"Nom {i}", f"membre.{i}@example.com"
        kind = bad.get(i)
        if kind == "email_invalid":
            email = BAD_EMAILS[i % len(BAD_EMAILS)]
        elif kind == "name_missing":
            first = last = " "
        elif kind == "email_duplicate":
            email = "MEMBRE.0@example.com"  # row 0 is always good; case differs
        elif kind == "name_too_long":
            first = "x" * 201
        elif kind == "email_missing":
            email = ""
        if kind == "too_many_columns":
            record = f"{first};{last};{email};en trop"
        elif kind == "too_few_columns":
            record = f"{first} {last};{email}"
        elif i % 250 == 7 and not kind:
            record = f'"{first}\r\nJean";"{last}";{email}'  # quoted name on two physical lines
        else:
            record = f"{first};{last};{email}"
        if i % 1000 == 500:
            lines.append("")  # a blank line, skipped silently
            lines.append(";;")  # a row of empty cells, as spreadsheets write them
            line += 2
        lines.append(record)
        start = line + 1
        line += record.count("\n") + 1
        if kind:
            expected.append((start, kind))
    data = BOM + ("\r\n".join(lines) + "\r\n").encode("utf-8")
    return data, expected, 5000 - 37
