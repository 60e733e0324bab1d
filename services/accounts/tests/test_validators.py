"""Pure rules of accounts.validators: no database, no network."""

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.validators import (
    UAI_LETTERS,
    InvalidEmail,
    InvalidIdentifier,
    InvalidPhone,
    ValidationFailure,
    WeakPassword,
    check_password,
    common_passwords,
    normalise_email,
    normalise_phone,
    siren_of,
    validate_institution_identifier,
    validate_siren,
    validate_siret,
    validate_uai,
    validate_vat_number,
)


def luhn_ok(digits: str) -> bool:
    """Independent Luhn, written from the definition, to check the module against."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d // 10 + d % 10
    return total % 10 == 0


def luhn_complete(prefix: str) -> str:
    return next(prefix + d for d in string.digits if luhn_ok(prefix + d))


def make_siret(siren_base: str, nic_base: str) -> str:
    """A valid SIRET from 8 + 4 free digits: SIREN key, then SIRET key."""
    return luhn_complete(luhn_complete(siren_base) + nic_base)


def code_of(excinfo: pytest.ExceptionInfo[ValidationFailure]) -> str:
    return excinfo.value.code


# --- UAI ----------------------------------------------------------------------------------------------

# Real lycées' UAIs recalled from memory (e.g. 0750654D Henri-IV, 0750655E Louis-le-Grand, 0690026D
# Lycée du Parc, 0310036W Pierre-de-Fermat, 0060030A Masséna). They were verified by the formula only
# (number mod 23 -> letter), not against the official directory (no network here).
KNOWN_UAIS = ["0750652B", "0750654D", "0750655E", "0690026D", "0310036W", "0330021U", "0590117G", "0060030A"]


@pytest.mark.parametrize("uai", KNOWN_UAIS)
def test_known_uais_are_accepted(uai: str) -> None:
    assert validate_uai(uai) == uai


def test_uai_is_normalised() -> None:
    assert validate_uai("  0750652b ") == "0750652B"
    assert validate_uai("0750652 B") == "0750652B"


FULL_WIDTH_UAI = "\uff10\uff17\uff15\uff10\uff16\uff15\uff12B"  # 0750652B in full-width digits


@pytest.mark.parametrize("value", ["", "075065B", "07506520B", "0750652", "A750652B", "0750652-", FULL_WIDTH_UAI])
def test_uai_format(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        validate_uai(value)
    assert code_of(exc) == "uai_format"


@pytest.mark.parametrize("value", ["0750652C", "0750654B", "0750652I", "0750652O", "0750652Q"])
def test_uai_checksum(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        validate_uai(value)
    assert code_of(exc) == "uai_checksum"


@given(st.integers(min_value=0, max_value=9_999_999))
def test_every_number_with_its_letter_is_accepted_and_no_other_letter(number: int) -> None:
    digits = f"{number:07d}"
    good = UAI_LETTERS[number % 23]
    assert validate_uai(digits + good) == digits + good
    for letter in string.ascii_uppercase:
        if letter != good:
            with pytest.raises(InvalidIdentifier):
                validate_uai(digits + letter)


@given(st.text())
def test_uai_on_arbitrary_text_raises_only_validation_failure(value: str) -> None:
    try:
        assert len(validate_uai(value)) == 8
    except ValidationFailure:
        pass


# --- SIREN / SIRET ------------------------------------------------------------------------------------


# 732 829 320 00074: checked by hand with Luhn (and by luhn_ok below); 552 081 317 / 443 061 841 are
# well-known SIRENs that also pass Luhn (verified by the formula only).
@pytest.mark.parametrize("siret", ["73282932000074", "732 829 320 00074", "55208131766522", "44306184100047"])
def test_known_sirets(siret: str) -> None:
    compact = siret.replace(" ", "")
    assert luhn_ok(compact) and luhn_ok(compact[:9])
    assert validate_siret(siret) == compact
    assert siren_of(siret) == compact[:9]


def test_siret_accepts_non_breaking_spaces() -> None:
    assert validate_siret("732\u00a0829\u202f320 00074") == "73282932000074"


@pytest.mark.parametrize("value", ["", "7328293200007", "732829320000745", "7328293200007A", "73282932O00074"])
def test_siret_format(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        validate_siret(value)
    assert code_of(exc) == "siret_format"


@pytest.mark.parametrize("value", ["73282932000075", "73282932000047", "37282932000074"])
def test_siret_checksum(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        validate_siret(value)
    assert code_of(exc) == "siret_checksum"


def test_siret_whose_siren_fails_luhn_is_refused_even_if_the_siret_passes() -> None:
    siret = luhn_complete("732829321" + "0007")
    assert luhn_ok(siret) and not luhn_ok(siret[:9])
    with pytest.raises(InvalidIdentifier) as exc:
        validate_siret(siret)
    assert code_of(exc) == "siret_checksum"


def test_la_poste_exception() -> None:
    # Head office: passes Luhn.
    assert validate_siret("356 000 000 00048") == "35600000000048"
    # An establishment number built for the rule (formula only): digit sum 30, a multiple of 5, fails Luhn.
    assert not luhn_ok("35600000052135")
    assert validate_siret("35600000052135") == "35600000052135"
    assert siren_of("35600000052135") == "356000000"
    with pytest.raises(InvalidIdentifier):
        validate_siret("35600000052136")  # digit sum 31, and not Luhn
    # The digit-sum rule is for La Poste only.
    other = "73282932000081"  # digit sum 45, not Luhn
    assert sum(map(int, other)) % 5 == 0 and not luhn_ok(other)
    with pytest.raises(InvalidIdentifier):
        validate_siret(other)


@given(st.text())
def test_siret_on_arbitrary_text_raises_only_validation_failure(value: str) -> None:
    try:
        assert len(validate_siret(value)) == 14
    except ValidationFailure:
        pass


@given(st.from_regex(r"[0-9]{14}", fullmatch=True))
def test_siret_on_arbitrary_digits_agrees_with_luhn(digits: str) -> None:
    expected = (luhn_ok(digits) and luhn_ok(digits[:9])) or (
        digits[:9] == "356000000" and sum(map(int, digits)) % 5 == 0
    )
    try:
        validate_siret(digits)
        assert expected
    except InvalidIdentifier:
        assert not expected


@given(
    st.from_regex(r"[0-9]{8}", fullmatch=True),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
    st.integers(min_value=0, max_value=13),
    st.integers(min_value=1, max_value=9),
)
def test_one_changed_digit_is_detected(siren_base: str, nic_base: str, position: int, delta: int) -> None:
    siret = make_siret(siren_base, nic_base)
    assert validate_siret(siret) == siret
    changed = siret[:position] + str((int(siret[position]) + delta) % 10) + siret[position + 1 :]
    if changed.startswith("356000000"):
        return  # La Poste numbers follow the digit-sum rule, which misses changes of +-5
    with pytest.raises(InvalidIdentifier):
        validate_siret(changed)


def test_siren() -> None:
    assert validate_siren("732 829 320") == "732829320"
    assert validate_siren("356000000") == "356000000"
    with pytest.raises(InvalidIdentifier) as exc:
        validate_siren("732829321")
    assert code_of(exc) == "siren_checksum"
    with pytest.raises(InvalidIdentifier) as exc:
        validate_siren("73282932")
    assert code_of(exc) == "siren_format"


# --- Institution identifier ---------------------------------------------------------------------------


def test_institution_identifier_by_kind() -> None:
    assert validate_institution_identifier("school", " 0750652b") == "0750652B"
    assert validate_institution_identifier("company", "732 829 320 00074") == "73282932000074"
    assert validate_institution_identifier("other", None) is None
    assert validate_institution_identifier("other", "   ") is None
    assert validate_institution_identifier("other", "  RNA   W751234567 ") == "RNA W751234567"
    with pytest.raises(InvalidIdentifier) as exc:
        validate_institution_identifier("school", None)
    assert code_of(exc) == "uai_required"
    with pytest.raises(InvalidIdentifier) as exc:
        validate_institution_identifier("company", " ")
    assert code_of(exc) == "siret_required"
    with pytest.raises(InvalidIdentifier) as exc:
        validate_institution_identifier("school", "73282932000074")
    assert code_of(exc) == "uai_format"
    with pytest.raises(InvalidIdentifier) as exc:
        validate_institution_identifier("other", "x" * 65)
    assert code_of(exc) == "identifier_too_long"


# --- Passwords ----------------------------------------------------------------------------------------

PERSON = {"email": "camille.martin@lycee-hugo.fr", "names": ["Camille Martin", "Lycée Victor Hugo"]}


def password_code(password: str, **kwargs: object) -> str | None:
    try:
        check_password(password, **kwargs)  # type: ignore[arg-type]
    except WeakPassword as exc:
        return exc.code
    return None


def test_common_password_list_is_packaged_and_sizeable() -> None:
    words = common_passwords()
    assert len(words) > 3000
    assert {"password", "azerty", "motdepasse", "soleil", "123456"} <= words


@pytest.mark.parametrize(
    "password",
    [
        "password123!",
        "azertyuiop12",
        "Motdepasse2024",
        "P@ssw0rd2024!",
        "mot de passe 2024",
        "2024!motdepasse!",
        "Soleil-Soleil-1",
        "qwertyuiopasdf",
        "1234567890ab",
        "aaaaaaaaaaaaaa",
        "abcabcabcabc",
        "passwordpassword",
        "correct horse battery staple",
        "Jetaime!2024!!",
    ],
)
def test_common_passwords_are_refused(password: str) -> None:
    assert password_code(password) == "password_common"


@pytest.mark.parametrize(
    "password",
    [
        "Camille!Zq93-vent",
        "zq93.MARTIN.vent",
        "bleu-VictorZ-8fq!",
        "lycéehugo#Zq93",
        "Lyceehugo#Zq93",
        "x-camillemartin-9",
    ],
)
def test_personal_passwords_are_refused(password: str) -> None:
    assert password_code(password, **PERSON) == "password_personal"


def test_personal_check_ignores_short_words_and_needs_context() -> None:
    assert password_code("Camille!Zq93-vent") is None  # no email or names given
    assert password_code("les-Zq93!vent-rouge", names=["Lycée les Lilas"]) is None  # "les" is a stopword


def test_lengths() -> None:
    assert password_code("Zq9!vW3#kLm") == "password_too_short"  # 11
    assert password_code("Zq9!vW3#kLmp") is None  # 12
    assert password_code("Zq9!vW3#" * 129) == "password_too_long"  # 1032
    rng = random.Random(7)
    assert password_code("".join(rng.choice(string.ascii_letters + string.digits) for _ in range(1024))) is None


def test_long_random_and_passphrase_are_accepted() -> None:
    assert password_code("tV8#qLz2!mWp9@rK", **PERSON) is None
    assert password_code("velours cactus girafe piment", **PERSON) is None
    assert password_code("Velours-Cactus-Girafe-Piment") is None


def test_random_16_character_passwords_are_accepted() -> None:
    rng = random.Random(2024)
    alphabet = string.ascii_letters + string.digits + "!#$%&*+-=?@_"
    for _ in range(2000):
        password = "".join(rng.choice(alphabet) for _ in range(16))
        assert password_code(password) is None, password


# --- Email --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jean.Dupont@Example.COM", "Jean.Dupont@example.com"),
        ("  marie@lycee-hugo.fr \n", "marie@lycee-hugo.fr"),
        ("a+tag@sub.domain.eu", "a+tag@sub.domain.eu"),
        ("élève@école.fr", "élève@école.fr"),
    ],
)
def test_valid_emails_are_normalised(value: str, expected: str) -> None:
    assert normalise_email(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "jean", "jean@", "@example.com", "jean@localhost", "jean@example", "jean@x.test", "jean dupont@x.fr",
     "jean@x..fr", "jean@-x.fr", "jean@[127.0.0.1]", "a@b.123", "Jean <jean@x.fr>"],
)  # fmt: skip
def test_invalid_emails(value: str) -> None:
    with pytest.raises(InvalidEmail) as exc:
        normalise_email(value)
    assert code_of(exc) == "email_invalid"
    assert exc.value.message


def test_without_an_smtputf8_relay_an_international_mailbox_is_refused_where_it_is_typed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("accounts.validators.smtputf8_relay", False)
    with pytest.raises(InvalidEmail) as exc:
        normalise_email("élève@école.fr")
    assert code_of(exc) == "email_international_unsupported"
    assert "before the @" in exc.value.message
    assert normalise_email("eleve@école.fr") == "eleve@xn--cole-9oa.fr"  # kept in IDNA: no SMTPUTF8 needed


@settings(deadline=None)
@given(st.text(max_size=300))
def test_email_on_arbitrary_text_raises_only_validation_failure(value: str) -> None:
    try:
        normalise_email(value)
    except ValidationFailure:
        pass


# --- Phone (phonenumbers) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("06 12 34 56 78", "FR", "+33612345678"),  # FR mobile
        ("07.81.23.45.67", "FR", "+33781234567"),  # FR mobile
        ("01 42 68 53 00", "FR", "+33142685300"),  # FR landline (Paris)
        ("04 72 10 30 30", "FR", "+33472103030"),  # FR landline (Lyon)
        ("+33 6 12 34 56 78", "FR", "+33612345678"),
        ("0033612345678", "FR", "+33612345678"),
        ("+44 20 7946 0958", "FR", "+442079460958"),  # international, region ignored
        ("+1 650-253-0000", "FR", "+16502530000"),
        ("0470 12 34 56", "BE", "+32470123456"),  # national number read in another region
    ],
)
def test_valid_phones(value: str, region: str, expected: str) -> None:
    assert normalise_phone(value, region) == expected


@pytest.mark.parametrize("value", ["", "12", "abc", "06 12", "+33 6 12 34 56 78 90", "00 00 00 00 00", "1" * 100])
def test_invalid_phones(value: str) -> None:
    with pytest.raises(InvalidPhone) as exc:
        normalise_phone(value)
    assert code_of(exc) == "phone_invalid"


# --- VAT ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("FR40303265045", "FR40303265045"),  # key (12 + 3 * (303265045 % 97)) % 97 = 40
        ("fr 44 732 829 320", "FR44732829320"),  # SIREN of the SIRET 73282932000074
        ("FR.40.303.265.045", "FR40303265045"),
        ("FRXB303265045", "FRXB303265045"),  # alphanumeric key: format only
        ("DE123456789", "DE123456789"),
        ("ATU12345678", "ATU12345678"),
        ("BE0123456789", "BE0123456789"),
        ("NL123456789B01", "NL123456789B01"),
        ("ESX1234567X", "ESX1234567X"),
        ("GR123456789", "EL123456789"),
        ("IT12345678901", "IT12345678901"),
        ("SE123456789701", "SE123456789701"),
    ],
)
def test_valid_vat_numbers(value: str, expected: str) -> None:
    assert validate_vat_number(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "FR", "FR41303265045", "FR4030326504", "FRIO303265045", "DE12345678", "NL123456789A01", "US123456789",
     "GB123456789", "ATE12345678", "303265045"],
)  # fmt: skip
def test_invalid_vat_numbers(value: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc:
        validate_vat_number(value)
    assert code_of(exc) == "vat_invalid"


def test_failure_carries_code_and_message() -> None:
    with pytest.raises(ValueError, match="uai_format") as exc:
        validate_uai("nope")
    assert isinstance(exc.value, ValidationFailure)
    assert exc.value.code == "uai_format"
    assert "UAI" in exc.value.message
