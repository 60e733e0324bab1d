"""Secrets inside events, sealed for their one reader: nobody who can read a topic, its dead letters or a log
of it can use them.

A `SealedSecret` is the string `v1.<kid>.<base64url(nonce + ciphertext + tag)>` (no padding): AES-256-GCM
with a 96-bit random nonce, under the key `kid` of a `Keyring`. Its associated data binds it to one field
of one event of one aggregate (`secret_context`), so a sealed value moved to another event, field or account
does not open. A keyring comes from the environment as `kid1:<base64 32-byte key>,kid2:...`: the first key
seals, every key opens, so keys rotate by putting a new key first, then dropping the old one once the
events it sealed are consumed (or their links expired). Only the producing service and the reader hold it.

    keyring = Keyring.parse(settings.event_secret_keys.get_secret_value())
    sealed = seal(token, keyring, secret_context(AccountRegistered, "verification_token", account_id))
    token = unseal(sealed, keyring, secret_context(AccountRegistered, "verification_token", account_id))

Errors (`SecretError`) never quote a key, a plain value or a sealed value.
"""

import base64
import binascii
import os
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import Field

from contracts.base import ContractError

SCHEME = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
_KID = r"[A-Za-z0-9_-]{1,32}"
_KID_RE = re.compile(_KID)
SEALED_PATTERN = rf"^{SCHEME}\.{_KID}\.[A-Za-z0-9_-]{{38,}}$"  # nonce (12) + tag (16) + >= 1 byte, in base64url
_SEALED_RE = re.compile(SEALED_PATTERN)

SealedSecret = Annotated[
    str,
    Field(
        pattern=SEALED_PATTERN,
        max_length=4096,
        json_schema_extra={
            "format": "sealed-secret",
            "x-secret": True,
            "x-sealed-with": "AES-256-GCM",
        },
    ),
]
"""A secret sealed by `seal` for the event's one reader: `v1.<kid>.<base64url nonce+ciphertext+tag>`."""


class SecretError(ContractError):
    """A keyring that cannot be read, or a sealed value that does not open (wrong key, event, or tampered)."""


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("not base64") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Keyring:
    """Named AES-256 keys: the first seals, all open. Its repr never shows a key."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise SecretError("a keyring needs at least one key")
        kids = [kid for kid, _ in self.keys]
        if len(set(kids)) != len(kids):
            raise SecretError("a key id appears twice in the keyring")
        for kid, key in self.keys:
            if not _KID_RE.fullmatch(kid):
                raise SecretError("a key id must be 1 to 32 letters, digits, '-' or '_'")
            if len(key) != KEY_BYTES:
                raise SecretError(f"key {kid} must be {KEY_BYTES} bytes (base64 of 32 random bytes)")

    @classmethod
    def parse(cls, text: str) -> "Keyring":
        """`kid1:<base64 key>,kid2:<base64 key>` (standard or URL-safe base64, padded or not)."""
        keys = []
        for part in text.split(","):
            kid, sep, encoded = part.strip().partition(":")
            if not sep:
                raise SecretError("each key must be written <kid>:<base64 key>, separated by commas")
            try:
                key = _b64decode(encoded.strip())
            except SecretError:
                raise SecretError(f"key {kid.strip()} is not base64") from None
            keys.append((kid.strip(), key))
        return cls(tuple(keys))

    @classmethod
    def generate(cls, kid: str = "k1") -> "Keyring":
        return cls(((kid, AESGCM.generate_key(bit_length=256)),))

    def to_text(self) -> str:
        """The environment form of this keyring (a secret: never log it)."""
        return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in self.keys)

    @property
    def sealing_kid(self) -> str:
        return self.keys[0][0]

    def key(self, kid: str) -> bytes | None:
        return next((key for each, key in self.keys if each == kid), None)


def secret_context(event: type | str, field_name: str, aggregate_id: uuid.UUID | str) -> bytes:
    """Associated data binding a sealed value to one field of one event (by name) of one aggregate."""
    name = event if isinstance(event, str) else _event_name(event)
    return f"visiopass-sealed-secret|{name}|{field_name}|{aggregate_id}".encode()


def _event_name(event: type) -> str:
    event_name = getattr(event, "event_name", None)
    return event_name() if callable(event_name) else event.__name__


def seal(plain: str, keyring: Keyring, context: bytes) -> str:
    """`plain` encrypted and authenticated under the keyring's first key, bound to `context`."""
    kid = keyring.sealing_kid
    key = keyring.key(kid)
    assert key is not None
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plain.encode(), context)
    return f"{SCHEME}.{kid}.{_b64encode(nonce + sealed)}"


def unseal(sealed: str, keyring: Keyring, context: bytes) -> str:
    """The plain value of a sealed one, or SecretError (unknown key, another event's value, tampered)."""
    if not _SEALED_RE.fullmatch(sealed):
        raise SecretError("not a sealed secret")
    _, kid, body = sealed.split(".", 2)
    key = keyring.key(kid)
    if key is None:
        raise SecretError(f"sealed with key {kid}, which is not in the keyring")
    data = _b64decode(body)
    try:
        plain = AESGCM(key).decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], context)
    except InvalidTag:
        raise SecretError(f"a value sealed with key {kid} does not open for this event and field") from None
    return plain.decode()


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and _SEALED_RE.fullmatch(value) is not None


@cache
def secret_fields(model: type) -> tuple[str, ...]:
    """The fields of an event model that hold sealed secrets: those its JSON Schema marks `x-secret`."""
    schema = model.model_json_schema()  # type: ignore[attr-defined]
    return tuple(
        name
        for name, prop in schema.get("properties", {}).items()
        if prop.get("x-secret") or any(variant.get("x-secret") for variant in prop.get("anyOf", ()))
    )
