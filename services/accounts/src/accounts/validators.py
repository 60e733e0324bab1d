"""Pure validation rules of accounts: legal identifiers, names, passwords, emails, phones and VAT numbers.

Every function either returns the normalised value or raises a ValidationFailure whose ``code`` is
stable (the API layer translates it) and whose ``message`` is in English. No I/O besides reading the
packaged list of common passwords once.
"""

import re
import unicodedata
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email


class ValidationFailure(ValueError):
    """A value was refused. ``code`` is stable and machine-readable; ``message`` is English prose."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InvalidIdentifier(ValidationFailure):
    """UAI, SIRET, SIREN, VAT number or free-text institution identifier refused."""


class WeakPassword(ValidationFailure):
    """Password refused by the strength rules."""


class InvalidEmail(ValidationFailure):
    """Email address refused."""


class InvalidPhone(ValidationFailure):
    """Phone number refused."""


_WHITESPACE = re.compile(r"\s+")


def _compact(value: str) -> str:
    """Upper case, without any whitespace (including the non-breaking spaces of French formatting)."""
    return _WHITESPACE.sub("", value).upper()


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


# --- UAI (ex-RNE): identifier of a French school ---------------------------------------------------

UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # 23 letters: no I, O, Q
_UAI = re.compile(r"[0-9]{7}[A-Z]")


def uai_check_letter(seven_digits: str) -> str:
    """The check letter of a UAI: the 7-digit number modulo 23, as an index into UAI_LETTERS."""
    return UAI_LETTERS[int(seven_digits) % 23]


def validate_uai(value: str) -> str:
    """Return the UAI normalised (no spaces, upper case), e.g. '0750652b ' -> '0750652B'."""
    uai = _compact(value)
    if not _UAI.fullmatch(uai):
        raise InvalidIdentifier("uai_format", "A UAI is 7 digits followed by a letter, e.g. 0750652B.")
    if uai_check_letter(uai[:7]) != uai[7]:
        raise InvalidIdentifier("uai_checksum", "This UAI is not valid: its check letter does not match.")
    return uai


# --- SIREN / SIRET: identifiers of a French company and of one of its establishments ----------------

LA_POSTE_SIREN = "356000000"
_SIREN = re.compile(r"[0-9]{9}")
_SIRET = re.compile(r"[0-9]{14}")


def validate_siren(value: str) -> str:
    """Return the 9-digit SIREN (spaces removed); Luhn checked."""
    siren = _compact(value)
    if not _SIREN.fullmatch(siren):
        raise InvalidIdentifier("siren_format", "A SIREN is 9 digits.")
    if not _luhn_ok(siren):
        raise InvalidIdentifier("siren_checksum", "This SIREN is not valid: its check digit does not match.")
    return siren


def validate_siret(value: str) -> str:
    """Return the 14-digit SIRET (spaces removed).

    The whole number and its SIREN (first 9 digits) must pass Luhn. Exception: the establishments of
    La Poste (SIREN 356000000) are numbered so that the sum of the 14 digits is a multiple of 5; they
    are accepted by that rule or by Luhn (its head office, 35600000000048, passes Luhn).
    """
    siret = _compact(value)
    if not _SIRET.fullmatch(siret):
        raise InvalidIdentifier("siret_format", "A SIRET is 14 digits.")
    siren = siret[:9]
    if siren == LA_POSTE_SIREN:
        valid = _luhn_ok(siret) or sum(int(c) for c in siret) % 5 == 0
    else:
        valid = _luhn_ok(siren) and _luhn_ok(siret)
    if not valid:
        raise InvalidIdentifier("siret_checksum", "This SIRET is not valid: its check digit does not match.")
    return siret


def siren_of(siret: str) -> str:
    """The SIREN (company) of a SIRET (establishment): its first 9 digits, after validation."""
    return validate_siret(siret)[:9]


# --- Institution identifier -------------------------------------------------------------------------

InstitutionKind = Literal["school", "company", "other"]
OTHER_IDENTIFIER_MAX = 64


def validate_institution_identifier(kind: InstitutionKind, value: str | None) -> str | None:
    """School -> UAI required; company -> SIRET required; other -> optional free text (None if blank)."""
    if value is None or not value.strip():
        if kind == "school":
            raise InvalidIdentifier("uai_required", "A school needs its UAI.")
        if kind == "company":
            raise InvalidIdentifier("siret_required", "A company needs its SIRET.")
        return None
    if kind == "school":
        return validate_uai(value)
    if kind == "company":
        return validate_siret(value)
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidIdentifier("identifier_invalid", "The identifier contains control characters.")
    if len(text) > OTHER_IDENTIFIER_MAX:
        raise InvalidIdentifier("identifier_too_long", f"The identifier is longer than {OTHER_IDENTIFIER_MAX}.")
    return text


# --- Names of people and institutions ---------------------------------------------------------------

NAME_MAX = 200
# Zero-width (non-)joiners: part of the spelling in some scripts (Persian, Indic) and of emoji sequences.
_NAME_JOINERS = frozenset("\u200c\u200d")
# Letters and marks that show nothing: Hangul fillers, the combining grapheme joiner, Khmer inherent vowels.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5")
_LINE_BREAKS = frozenset("\t\n\r")  # in a quoted CSV cell or a pasted name: made spaces like other whitespace


class InvalidName(ValidationFailure):
    """A person's or an institution's name refused."""


def normalise_name(value: str, max_length: int = NAME_MAX) -> str:
    """Return the name in NFC, each run of whitespace (line breaks included) made one space, trimmed.

    The one rule for every name (sign-up contact and institution, one's own, members added or imported,
    the institution's profile), as names end up in mail subjects and on other people's screens:
    - ``name_invalid``: a control character (C0 and C1 but tab and line breaks; DEL), a format character
      (bidi embeddings, overrides and isolates U+202A-U+202E and U+2066-U+2069, marks U+200E/U+200F,
      zero-width space U+200B, word joiner U+2060, BOM U+FEFF, soft hyphen, tags...; only the zero-width
      joiner and non-joiner are kept), a surrogate, private-use or unassigned code point, a blank letter
      (Hangul fillers...), a combining mark with nothing to sit on, or no letter or digit at all (only
      marks, punctuation, symbols or invisible characters);
    - ``name_missing``: nothing but whitespace; ``name_too_long``: more than ``max_length`` characters.
    """
    text = unicodedata.normalize("NFC", value)
    for char in text:
        category = unicodedata.category(char)
        if (category == "Cc" and char not in _LINE_BREAKS) or category in ("Cs", "Co", "Cn"):
            raise InvalidName("name_invalid", "The name contains a control or unassigned character.")
        if category == "Cf" and char not in _NAME_JOINERS:
            raise InvalidName("name_invalid", "The name contains an invisible formatting character.")
        if char in _BLANK_LETTERS:
            raise InvalidName("name_invalid", "The name contains an invisible character.")
    name = " ".join(text.split())
    if not name:
        raise InvalidName("name_missing", "The name is missing.")
    if any(unicodedata.category(word[0]).startswith("M") for word in name.split(" ")):
        raise InvalidName("name_invalid", "The name has a combining mark with no letter before it.")
    if not any(unicodedata.category(char)[0] in "LN" for char in name):
        raise InvalidName("name_invalid", "A name needs at least one letter or digit.")
    if len(name) > max_length:
        raise InvalidName("name_too_long", f"The name is longer than {max_length} characters.")
    return name


# --- Passwords --------------------------------------------------------------------------------------

PASSWORD_MIN = 12
PASSWORD_MAX = 1024
_SEPARATORS = re.compile(r"[\s._\-]+")
_LEET = str.maketrans({"@": "a", "4": "a", "3": "e", "1": "i", "!": "i", "0": "o", "$": "s", "5": "s", "7": "t"})
_RUNS = re.compile(r"[^\W\d_]+|[\W\d_]+")  # letters / non-letters
_NAME_TOKENS = re.compile(r"[^\w]+|_|[0-9]+")
_NAME_STOPWORDS = frozenset(
    {"les", "des", "aux", "sur", "une", "the", "and", "for", "rue", "sas", "sarl", "ltd", "inc"}
)
_WALKS = (
    "1234567890",
    "abcdefghijklmnopqrstuvwxyz",
    "azertyuiopqsdfghjklmwxcvbn",
    "qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "1234567890azertyuiop",
    "1234567890qwertyuiop",
)


def fold_text(text: str) -> str:
    """Case-folded, accents removed: 'Élève' -> 'eleve'."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _strip_affixes(text: str) -> str:
    """Without leading/trailing digits, punctuation and spaces: '2024!motdepasse123!' -> 'motdepasse'."""
    start, end = 0, len(text)
    while start < end and not text[start].isalpha():
        start += 1
    while end > start and not text[end - 1].isalpha():
        end -= 1
    return text[start:end]


@cache
def common_passwords() -> frozenset[str]:
    """The packaged list (common_passwords.txt), folded."""
    text = resources.files("accounts").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(fold_text(line.strip()) for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _is_pattern(text: str) -> bool:
    """Few distinct characters, a repeated short unit, or a keyboard/alphabet/digit walk (either way)."""
    if len(set(text)) <= min(3, len(text) // 2):
        return True
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            if size <= 4 or text[:size] in common_passwords():
                return True
            break
    return any(text in walk * 2 or text in (walk * 2)[::-1] for walk in _WALKS)


def _is_weak_run(run: str) -> bool:
    """A run of letters or of non-letters that adds little: common, a pattern, or very short."""
    return run in common_passwords() or _is_pattern(run) or len(run) <= 3 or (not run[0].isalpha() and len(run) <= 4)


def _is_common(password: str) -> bool:
    folded = fold_text(password)
    plain = {folded, _SEPARATORS.sub("", folded)}
    whole = plain | {w.translate(_LEET) for w in plain}
    stems = {_strip_affixes(w) for w in whole} | {_strip_affixes(w).translate(_LEET) for w in whole}
    common = common_passwords()
    if any(w in common or _is_pattern(w) for w in whole) or any(s in common for s in stems if s):
        return True
    # A few runs, each weak: 'Motdepasse2024', '1234567890ab', 'azerty!!2024'.
    return any(len(runs) <= 3 and all(_is_weak_run(r) for r in runs) for runs in map(_RUNS.findall, plain))


def _personal_tokens(email: str | None, names: Iterable[str]) -> set[str]:
    tokens: set[str] = set()
    sources = list(names)
    if email and "@" in email:
        local = email.rsplit("@", 1)[0]
        sources.append(local)
        tokens.add(_SEPARATORS.sub("", fold_text(local)))
    for source in sources:
        folded = fold_text(source)
        tokens.add(_SEPARATORS.sub("", folded))
        tokens.update(t for t in _NAME_TOKENS.split(folded) if t not in _NAME_STOPWORDS)
    return {t for t in tokens if len(t) >= 3}


def check_password(password: str, *, email: str | None = None, names: Iterable[str] = ()) -> None:
    """Raise WeakPassword unless the password is acceptable.

    Rules (NIST SP 800-63B style, no composition rules):
    - at least 12 characters (Unicode code points after NFC), at most 1024. A passphrase needs no
      separate rule: four words of three letters or more, with separators, are already >= 15 characters;
    - not a common password or pattern: compared case- and accent-insensitively against the packaged
      list, also with separators (space . _ -) removed, with leet substitutions undone (p@ssw0rd), and
      with leading/trailing digits and punctuation stripped (Motdepasse2024! -> motdepasse); repeated
      characters or units, keyboard/alphabet/digit walks, and passwords made of at most three runs of
      letters/non-letters that are each weak (common, a pattern, <= 3 characters, or <= 4 digits or
      symbols, e.g. '1234567890ab') are refused too;
    - not containing the email's local part, nor any word (3+ letters) of the given names (person,
      institution), case- and accent-insensitively.
    """
    length = len(unicodedata.normalize("NFC", password))
    if length > PASSWORD_MAX:
        raise WeakPassword("password_too_long", f"The password must be at most {PASSWORD_MAX} characters long.")
    if length < PASSWORD_MIN:
        raise WeakPassword(
            "password_too_short",
            f"The password must be at least {PASSWORD_MIN} characters long; a passphrase of several words works well.",
        )
    if _is_common(password):
        raise WeakPassword("password_common", "This password is too common or too easy to guess.")
    folded = _SEPARATORS.sub("", fold_text(password))
    if any(token in folded for token in _personal_tokens(email, names)):
        raise WeakPassword("password_personal", "The password must not contain your email address or a name.")


# --- Email ------------------------------------------------------------------------------------------


# Whether the mail relay carries internationalised addresses (SMTPUTF8), from ACCOUNTS_SMTPUTF8 at start
# (accounts.main): when it does not, an address with letters beyond ASCII before its @ is refused where it is typed,
# rather than accepted and then never delivered, and a domain beyond ASCII is kept in its IDNA form.
smtputf8_relay = True


def normalise_email(value: str) -> str:
    """Return the normalised address (domain lower-cased, local part kept as typed).

    Syntax only, no DNS: the domain must have the form of a deliverable one (a dot, a valid TLD, not a
    special-use name such as localhost or .test). Uniqueness must compare case-insensitively.
    """
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail("email_invalid", str(exc)) from None
    if smtputf8_relay:
        return result.normalized
    if result.ascii_email is None:  # letters beyond ASCII before the @: only SMTPUTF8 carries them
        raise InvalidEmail(
            "email_international_unsupported",
            "Our mail cannot reach an address with accented or non-Latin letters before the @: give another one.",
        )
    return result.ascii_email  # the domain in IDNA (xn--...), which every relay carries


# --- Phone ------------------------------------------------------------------------------------------

PHONE_MAX_INPUT = 64


def normalise_phone(value: str, region: str = "FR") -> str:
    """Return the number in E.164 (+33612345678); national numbers are read in ``region``."""
    if len(value) > PHONE_MAX_INPUT:
        raise InvalidPhone("phone_invalid", "This phone number is too long.")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("phone_invalid", "This is not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("phone_invalid", "This phone number is not valid.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- VAT numbers (EU, VIES formats) -----------------------------------------------------------------

_VAT_PATTERNS: dict[str, re.Pattern[str]] = {
    country: re.compile(pattern)
    for country, pattern in {
        "AT": r"U[0-9]{8}",
        "BE": r"[01][0-9]{9}",
        "BG": r"[0-9]{9,10}",
        "CY": r"[0-9]{8}[A-Z]",
        "CZ": r"[0-9]{8,10}",
        "DE": r"[0-9]{9}",
        "DK": r"[0-9]{8}",
        "EE": r"[0-9]{9}",
        "EL": r"[0-9]{9}",
        "ES": r"[0-9A-Z][0-9]{7}[0-9A-Z]",
        "FI": r"[0-9]{8}",
        "FR": r"[0-9A-HJ-NP-Z]{2}[0-9]{9}",
        "HR": r"[0-9]{11}",
        "HU": r"[0-9]{8}",
        "IE": r"[0-9]{7}[A-W][A-I]?|[0-9][A-Z+*][0-9]{5}[A-W]",
        "IT": r"[0-9]{11}",
        "LT": r"[0-9]{9}|[0-9]{12}",
        "LU": r"[0-9]{8}",
        "LV": r"[0-9]{11}",
        "MT": r"[0-9]{8}",
        "NL": r"[0-9]{9}B[0-9]{2}",
        "PL": r"[0-9]{10}",
        "PT": r"[0-9]{9}",
        "RO": r"[1-9][0-9]{1,9}",
        "SE": r"[0-9]{10}01",
        "SI": r"[0-9]{8}",
        "SK": r"[0-9]{10}",
        "XI": r"[0-9]{9}|[0-9]{12}|GD[0-9]{3}|HA[0-9]{3}",  # Northern Ireland
    }.items()
}
_VAT_NOISE = re.compile(r"[\s.\-]+")


def fr_vat_key(siren: str) -> str:
    """The 2-digit key of a French VAT number: (12 + 3 * (SIREN mod 97)) mod 97."""
    return f"{(12 + 3 * (int(siren) % 97)) % 97:02d}"


def validate_vat_number(value: str) -> str:
    """Return the compact EU VAT number ('FR 40 303 265 045' -> 'FR40303265045'; GR -> EL).

    Format checked per country (VIES patterns). For France the numeric key is checked against the
    SIREN; alphanumeric keys (used for some new registrants) are checked for format only.
    """
    vat = _VAT_NOISE.sub("", value).upper()
    if vat.startswith("GR"):
        vat = "EL" + vat[2:]
    pattern = _VAT_PATTERNS.get(vat[:2])
    if pattern is None or not pattern.fullmatch(vat[2:]):
        raise InvalidIdentifier("vat_invalid", "This is not an EU VAT number (country code + number).")
    if vat[:2] == "FR" and vat[2:4].isdigit() and vat[2:4] != fr_vat_key(vat[4:]):
        raise InvalidIdentifier("vat_invalid", "This French VAT number is not valid: its key does not match.")
    return vat
