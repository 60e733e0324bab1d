"""Valid, unique French identifiers for tests (the databases outlive one test run)."""

import random

from accounts.validators import uai_check_letter


def new_uai() -> str:
    digits = f"{random.randrange(10**7):07d}"
    return digits + uai_check_letter(digits)


def with_luhn_digit(digits: str) -> str:
    for check in "0123456789":
        candidate = digits + check
        total = sum(
            (d * 2 - 9 if d > 4 else d * 2) if i % 2 else d for i, d in enumerate(map(int, reversed(candidate)))
        )
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def new_siret() -> str:
    """A SIRET whose SIREN (first 9 digits) and whole 14 digits both pass Luhn."""
    siren = with_luhn_digit(f"{random.randrange(1, 10**8):08d}")
    return with_luhn_digit(siren + f"{random.randrange(10**4):04d}")
