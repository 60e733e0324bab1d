"""The staff-member CSV parser (accounts.csv_import): pure, no database."""

import csv
import io
import random
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.csv_import import (
    MAX_FILE_BYTES,
    TEMPLATE_CSV,
    ImportReport,
    MemberRow,
    RowError,
    UnreadableFile,
    parse_members_csv,
    template_bytes,
)
from member_csv import BAD_KINDS, build_5000_rows

BOM = b"\xef\xbb\xbf"


def unreadable_code(data: bytes, **kwargs: int) -> str:
    with pytest.raises(UnreadableFile) as exc:
        parse_members_csv(data, **kwargs)
    assert exc.value.message
    return exc.value.code


# --- The case: 5,000 rows, 37 bad ones --------------------------------------------------------


def test_5000_rows_with_37_bad_ones() -> None:
    data, expected, good = build_5000_rows()
    report = parse_members_csv(data)
    assert len(report.rows) == good == 4963
    assert len(report.errors) == 37
    assert [(e.line, e.code) for e in report.errors] == expected
    assert {e.code for e in report.errors} == set(BAD_KINDS)
    assert all(e.message for e in report.errors)
    # Rows keep their physical line numbers, also after multi-line quoted names and blank lines.
    by_email = {r.email: r for r in report.rows}
    assert by_email["membre.0@example.com"] == MemberRow(2, "Prénom0 Nom 0", "membre.0@example.com")
    multi = by_email["membre.7@example.com"]
    assert (multi.line, multi.name) == (9, "Prénom7 Jean Nom 7")
    assert by_email["membre.8@example.com"].line == 11
    lines = data.decode("utf-8-sig").split("\r\n")
    for row in rng_sample(report.rows):
        assert row.email in lines[row.line - 1] or row.email in lines[row.line]


def rng_sample(rows: list[MemberRow]) -> list[MemberRow]:
    return random.Random(1).sample(rows, 200)


def test_duplicate_error_names_the_first_line() -> None:
    report = parse_members_csv(b"name,email\nA,a@example.com\nB,b@example.com\nC,A@EXAMPLE.COM\n")
    assert report.errors == [RowError(4, "email_duplicate", "This email is already on line 2.")]
    assert [r.name for r in report.rows] == ["A", "B"]


def test_a_bad_row_does_not_claim_its_email() -> None:
    report = parse_members_csv(b"name;email\n;a@example.com\nAnne;a@example.com\n")
    assert [(e.line, e.code) for e in report.errors] == [(2, "name_missing")]
    assert report.rows == [MemberRow(3, "Anne", "a@example.com")]


# --- File-level refusals ------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"


@pytest.mark.parametrize("data", [b"", BOM, b"   \r\n\n  \t", BOM + b"\r\n"])
def test_empty_file(data: bytes) -> None:
    assert unreadable_code(data) == "file_empty"


@pytest.mark.parametrize(
    "data",
    [
        PNG,
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\x00",
        b"PK\x03\x04\x14\x00\x06\x00",  # an .xlsx (zip)
        b"name;email\nJean;j@example.com\x1b[0m\n",  # control character
        b"name;email\nJean\x81;j@example.com\n",  # invalid UTF-8, undefined in Windows-1252
    ],
)
def test_binary_file(data: bytes) -> None:
    assert unreadable_code(data) == "file_binary"


def test_utf16_file() -> None:
    assert unreadable_code("nom;email\r\nJean;j@example.com\r\n".encode("utf-16")) == "file_encoding"


@pytest.mark.parametrize(
    "data",
    [
        b"Jean Dupont;jean@example.com\nMarie;marie@example.com\n",  # no header
        b"name;phone\nJean;0612345678\n",  # no email column
        b"email\njean@example.com\n",  # no name column
        b"name email\nJean jean@example.com\n",  # neither delimiter
    ],
)
def test_no_recognisable_header(data: bytes) -> None:
    assert unreadable_code(data) == "header_missing"


def test_duplicate_header_column() -> None:
    assert unreadable_code(b"name;email;Email\nJean;a@example.com;b@example.com\n") == "header_duplicate"


def test_too_many_rows() -> None:
    data = b"name,email\n" + b"".join(b"N%d,n%d@example.com\n" % (i, i) for i in range(11))
    assert unreadable_code(data, max_rows=10) == "too_many_rows"
    assert len(parse_members_csv(data, max_rows=11).rows) == 11
    assert len(parse_members_csv(data + b"\n\n,\n", max_rows=11).rows) == 11  # blank lines are not rows


def test_file_too_large() -> None:
    assert unreadable_code(b"name,email\n" + b"a" * MAX_FILE_BYTES) == "file_too_large"


def test_malformed_csv() -> None:
    # An unclosed quote swallows the rest of a big file into one field larger than the csv limit.
    data = b'name,email\n"Jean,j@example.com\n' + b"Anne,a@example.com\n" * 10_000
    assert unreadable_code(data) == "file_malformed"


# --- Accepted shapes ----------------------------------------------------------------------------------


def test_header_only_file() -> None:
    assert parse_members_csv(b"name;email\r\n") == ImportReport([], [])
    assert parse_members_csv(BOM + "Prénom;Nom;Courriel".encode()) == ImportReport([], [])


def test_template_parses_cleanly() -> None:
    data = template_bytes()
    assert data.startswith(BOM)
    assert data[3:].decode("utf-8") == TEMPLATE_CSV
    assert TEMPLATE_CSV.splitlines()[0].count(";") == 2
    report = parse_members_csv(data)
    assert report.errors == []
    assert report.rows == [
        MemberRow(2, "Camille Martin", "camille.martin@example.com"),
        MemberRow(3, "Karim Benali", "karim.benali@example.com"),
    ]
    assert parse_members_csv(TEMPLATE_CSV.encode()) == report  # also without the BOM


@pytest.mark.parametrize(
    "header",
    ["name,email", " Name , E-Mail ", "NOM;COURRIEL", "Nom complet;Adresse électronique", "Full name,Email address",
     "Nom;Adresse mail;Téléphone", "name;e_mail", '"Name";"Email"'],
)  # fmt: skip
def test_full_name_headers(header: str) -> None:
    delimiter = ";" if ";" in header else ","
    extra = delimiter if header.count(delimiter) == 2 else ""
    data = f"{header}\nJean  Dupont{delimiter}jean@example.com{extra}\n".encode()
    assert parse_members_csv(data).rows == [MemberRow(2, "Jean Dupont", "jean@example.com")]


@pytest.mark.parametrize(
    "header",
    ["first_name,last_name,email", "Prénom;Nom;E-mail", "PRENOM;NOM DE FAMILLE;MAIL", "First Name,Surname,Email",
     "Given name;Family name;Courriel"],
)  # fmt: skip
def test_first_and_last_name_headers(header: str) -> None:
    delimiter = ";" if ";" in header else ","
    data = f"{header}\nJean{delimiter}Dupont{delimiter}jean@example.com\n".encode()
    assert parse_members_csv(data).rows == [MemberRow(2, "Jean Dupont", "jean@example.com")]


def test_email_column_first_and_extra_columns_ignored() -> None:
    data = b"email;team;name\njean@example.com;A;Jean\n"
    assert parse_members_csv(data).rows == [MemberRow(2, "Jean", "jean@example.com")]


def test_windows_1252_fallback() -> None:
    data = "Prénom;Nom;E-mail\r\nHélène;Dupré-Œuvray;helene@example.com\r\n".encode("cp1252")
    assert parse_members_csv(data).rows == [MemberRow(2, "Hélène Dupré-Œuvray", "helene@example.com")]


def test_quoted_fields_and_line_endings() -> None:
    data = b'name,email\r\n"Dupont, Jean",jean@example.com\r"Le ""Boss""",boss@example.com\n'
    assert parse_members_csv(data).rows == [
        MemberRow(2, "Dupont, Jean", "jean@example.com"),
        MemberRow(3, 'Le "Boss"', "boss@example.com"),
    ]


def test_multiline_field_and_leading_blank_lines_keep_physical_line_numbers() -> None:
    data = b'\n\nname;email\n"Jean\nPaul\n\nDupont";jp@example.com\n\nAnne;bad\n'
    report = parse_members_csv(data)
    assert report.rows == [MemberRow(4, "Jean Paul Dupont", "jp@example.com")]
    assert [(e.line, e.code) for e in report.errors] == [(9, "email_invalid")]


def test_trailing_empty_cells_are_tolerated_but_real_extra_cells_are_not() -> None:
    data = b"name;email;;\nJean;jean@example.com;;\nAnne;anne@example.com\nPaul;paul@example.com;x\nZoe\n"
    report = parse_members_csv(data)
    assert [r.line for r in report.rows] == [2, 3]
    assert [(e.line, e.code) for e in report.errors] == [(4, "too_many_columns"), (5, "too_few_columns")]


def test_email_is_normalised_and_name_length_limit() -> None:
    data = ("name,email\n" + "x" * 200 + ",A@Example.COM\n" + "y" * 201 + ",b@example.com\n").encode()
    report = parse_members_csv(data)
    assert report.rows == [MemberRow(2, "x" * 200, "A@example.com")]
    assert [(e.line, e.code) for e in report.errors] == [(3, "name_too_long")]


# --- Properties ---------------------------------------------------------------------------------------

CSV_PIECES = st.sampled_from(
    ["name", "email", "nom", "prénom", "courriel", ";", ",", '"', '""', "\n", "\r\n", "\r", " ", "Jean",
     "a@example.com", "A@EXAMPLE.COM", "x@", "é", "\ufeff", "\t", "\x00", "\x85", "\u2028", "💥"]
)  # fmt: skip


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(lambda t: t.encode("utf-8")),
        st.lists(CSV_PIECES, max_size=80).map(lambda p: "".join(p).encode("utf-8")),
        st.lists(CSV_PIECES, max_size=80).map(lambda p: ("name;email\n" + "".join(p)).encode("utf-8")),
        st.binary(max_size=300).map(lambda b: b"name,email\n" + b),
    )
)
def test_arbitrary_bytes_give_a_report_or_unreadable_file(data: bytes) -> None:
    try:
        report = parse_members_csv(data)
    except UnreadableFile as exc:
        assert exc.code and exc.message
        return
    assert isinstance(report, ImportReport)
    lines = [r.line for r in report.rows] + [e.line for e in report.errors]
    assert len(lines) == len(set(lines))
    assert all(2 <= n <= data.count(b"\n") + data.count(b"\r") + 1 for n in lines)


NAMES = st.text(
    st.characters(categories=("L", "N", "P", "Zs"), exclude_characters="\u115f\u1160\u3164\uffa0"),
    min_size=1,
    max_size=40,
).filter(lambda s: any(unicodedata.category(c)[0] in "LN" for c in s))  # what validators.normalise_name accepts
EMAILS = st.builds(
    "{}@{}.{}".format,
    st.from_regex(r"[a-z][a-z0-9]{0,12}(\.[a-z0-9]{1,6})?", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True),
    st.sampled_from(["com", "fr", "org", "eu"]),
)


@settings(deadline=None, max_examples=150)
@given(
    st.lists(st.tuples(NAMES, EMAILS), max_size=30, unique_by=lambda r: r[1]),
    st.sampled_from([",", ";"]),
    st.sampled_from(["\r\n", "\n"]),
    st.booleans(),
    st.sampled_from([["name", "email"], ["Nom", "Courriel"], ["E-mail", "Full name"]]),
)
def test_round_trip(members: list[tuple[str, str]], delimiter: str, newline: str, bom: bool, header: list[str]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    email_first = header[0] == "E-mail"
    for name, email in members:
        writer.writerow([email, name] if email_first else [name, email])
    data = (BOM if bom else b"") + out.getvalue().encode("utf-8")
    report = parse_members_csv(data)
    assert report.errors == []
    expected = [(unicodedata.normalize("NFC", " ".join(n.split())), e) for n, e in members]
    assert [(r.name, r.email) for r in report.rows] == expected
