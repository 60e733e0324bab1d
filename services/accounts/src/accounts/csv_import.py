"""Parsing of the staff-member CSV import: a pure function from the uploaded bytes to a report.

The file has a header row and one member per row: a name (``name``, or ``first_name`` and
``last_name``) and an ``email``. Headers are matched ignoring case, spaces, punctuation and accents,
in English or French (``Nom``, ``Prénom``, ``E-mail``, ``Courriel``...); with a first-name column,
``Nom`` is the last name, otherwise the full name. Other columns are ignored.

Encoding: UTF-8, with or without BOM. Only when the bytes are not valid UTF-8 are they read as
Windows-1252 (what French Excel writes for "CSV (séparateur: point-virgule)"; a superset of the
printable Latin-1 range), and then only if every byte is defined there and no control character
results. UTF-16 (Excel's "Unicode text") is refused with its own code.

Delimiter: semicolon or comma, chosen by which one makes the header recognisable. Quoted fields
(possibly spanning lines, with "" for a quote), CRLF, LF or CR line ends. Line numbers are physical
line numbers in the file (header = line 1 when it is the first line), also after multi-line fields.

A problem with one row is reported for that row (RowError) and the other rows are kept; a problem
with the file itself raises UnreadableFile, and nothing is imported.

Names follow the rule of every name (validators.normalise_name): a name made only of invisible
characters, or holding a control or bidi-override character, is a row problem (``name_invalid``).
"""

import _csv
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from accounts.validators import (
    InvalidEmail,
    InvalidName,
    ValidationFailure,
    fold_text,
    normalise_email,
    normalise_name,
)

MAX_FILE_BYTES = 5 * 1024 * 1024
UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]")  # all but \t \n \r
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")

TEMPLATE_CSV = (
    "Prénom;Nom;E-mail\r\n"
    "Camille;Martin;camille.martin@example.com\r\n"
    "Karim;Benali;karim.benali@example.com\r\n"
)  # example.com is reserved (RFC 2606): an unedited template invites nobody real


def template_bytes() -> bytes:
    """The downloadable template: UTF-8 with a BOM (so that Excel reads the accents), semicolons."""
    return UTF8_BOM + TEMPLATE_CSV.encode("utf-8")


@dataclass(frozen=True)
class MemberRow:
    line: int
    name: str
    email: str


@dataclass(frozen=True)
class RowError:
    line: int
    code: str
    message: str


@dataclass(frozen=True)
class ImportReport:
    rows: list[MemberRow]
    errors: list[RowError]


class UnreadableFile(ValidationFailure):
    """The file as a whole cannot be imported; nothing from it is."""


_ROLES = {
    "name": "name",
    "fullname": "name",
    "displayname": "name",
    "nomcomplet": "name",
    "nomprenom": "name",
    "prenomnom": "name",
    "nometprenom": "name",
    "prenometnom": "name",
    "nom": "nom",  # full name, or last name when there is a first-name column
    "firstname": "first",
    "givenname": "first",
    "forename": "first",
    "first": "first",
    "prenom": "first",
    "lastname": "last",
    "surname": "last",
    "familyname": "last",
    "last": "last",
    "nomdefamille": "last",
    "email": "email",
    "mail": "email",
    "emailaddress": "email",
    "courriel": "email",
    "adresseemail": "email",
    "adressemail": "email",
    "adressecourriel": "email",
    "adresseelectronique": "email",
    "adressedecourriel": "email",
}


@dataclass(frozen=True)
class _Columns:
    width: int
    email: int
    name: int | None
    first: int | None
    last: int | None


def _decode(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFile("file_too_large", f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
    if data.startswith(_UTF16_BOMS):
        raise UnreadableFile("file_encoding", "The file is in UTF-16; save it as CSV UTF-8 (or CSV) instead.")
    body = data.removeprefix(UTF8_BOM)
    if b"\x00" in body:
        raise UnreadableFile("file_binary", "This is not a text file; upload a CSV file.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = body.decode("cp1252")
        except UnicodeDecodeError:
            raise UnreadableFile("file_binary", "This is not a text file; upload a CSV file.") from None
    if _CONTROL.search(text):
        raise UnreadableFile("file_binary", "This is not a text file; upload a CSV file.")
    if not text.strip():
        raise UnreadableFile("file_empty", "The file is empty.")
    return text


def _header_columns(cells: list[str]) -> _Columns | None:
    while cells and not cells[-1].strip():
        cells = cells[:-1]
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        role = _ROLES.get(_NOT_ALNUM.sub("", fold_text(cell)))
        if role is None:
            continue
        if role in found:
            raise UnreadableFile("header_duplicate", f"The header has the column {cell.strip()!r} twice.")
        found[role] = index
    if "nom" in found:
        nom = found.pop("nom")
        if "first" in found and "last" not in found:
            found["last"] = nom
        elif "name" not in found:
            found["name"] = nom
    if "email" not in found or not found.keys() & {"name", "first", "last"}:
        return None
    return _Columns(len(cells), found["email"], found.get("name"), found.get("first"), found.get("last"))


def _row_name(cells: list[str], columns: _Columns) -> str:
    if columns.name is not None:
        parts = [cells[columns.name]]
    else:
        parts = [cells[i] for i in (columns.first, columns.last) if i is not None]
    return " ".join(" ".join(parts).split())


def parse_members_csv(data: bytes, *, max_rows: int = 10_000) -> ImportReport:
    """Parse an uploaded member list; see the module docstring for the accepted format."""
    text = _decode(data)
    physical = list(io.StringIO(text, newline=""))  # splits on \r\n, \n and \r, keeping them
    header_index = next(i for i, line in enumerate(physical) if line.strip())  # exists: text is not blank
    header_line = physical[header_index]
    delimiters = sorted(";,", key=header_line.count, reverse=True)
    for delimiter in delimiters:
        columns = _header_columns(next(csv.reader([header_line], delimiter=delimiter)))
        if columns is not None:
            break
    else:
        raise UnreadableFile(
            "header_missing",
            "The first line must be a header naming the columns: name (or first_name and last_name) and email.",
        )

    reader = csv.reader(iter(physical[header_index + 1 :]), delimiter=delimiter, skipinitialspace=True)
    rows: list[MemberRow] = []
    errors: list[RowError] = []
    first_line_of: dict[str, int] = {}
    data_rows = 0
    for line, cells in _records(reader, first_line=header_index + 2):
        if not any(cell.strip() for cell in cells):
            continue  # blank line, or only delimiters
        data_rows += 1
        if data_rows > max_rows:
            raise UnreadableFile("too_many_rows", f"The file has more than {max_rows} rows; split it.")
        while len(cells) > columns.width and not cells[-1].strip():
            cells = cells[:-1]  # trailing empty cells, as spreadsheets write them
        if len(cells) != columns.width:
            code = "too_many_columns" if len(cells) > columns.width else "too_few_columns"
            errors.append(RowError(line, code, f"Expected {columns.width} columns, found {len(cells)}."))
            continue
        checked = check_member(line, _row_name(cells, columns), cells[columns.email], first_line_of)
        if isinstance(checked, MemberRow):
            rows.append(checked)
        else:
            errors.append(checked)
    return ImportReport(rows, errors)


def check_member(line: int, name: str, raw_email: str, first_line_of: dict[str, int]) -> MemberRow | RowError:
    """One member's name and email checked (the name by `validators.normalise_name`, the rule of every name),
    both normalised; `first_line_of` (email -> line) spots duplicates and records this one."""
    try:
        name = normalise_name(name)
    except InvalidName as exc:
        return RowError(line, exc.code, exc.message)
    raw_email = raw_email.strip()
    if not raw_email:
        return RowError(line, "email_missing", "The email is missing.")
    try:
        email = normalise_email(raw_email)
    except InvalidEmail as exc:
        return RowError(line, "email_invalid", exc.message)
    key = email.casefold()
    if key in first_line_of:
        return RowError(line, "email_duplicate", f"This email is already on line {first_line_of[key]}.")
    first_line_of[key] = line
    return MemberRow(line, name, email)


def _records(reader: "_csv.Reader", first_line: int) -> Iterator[tuple[int, list[str]]]:
    """Each record with the physical line it starts on."""
    while True:
        start = first_line + reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UnreadableFile("file_malformed", f"Line {start}: the CSV is malformed ({exc}).") from None
        yield start, cells
