import base64
import os
import re
import uuid

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts import EVENT_TYPES, TOPICS
from contracts.events.accounts import AccountRegistered, VerificationLinkRequested
from contracts.examples import EXAMPLE_KEYRING, EXAMPLE_TOKENS, EXAMPLES
from contracts.schemas import schema_of
from contracts.secrets import (
    Keyring,
    SealedSecret,
    SecretError,
    is_sealed,
    seal,
    secret_context,
    secret_fields,
    unseal,
)
from contracts.topics import SUPERSEDED

ACCOUNT = uuid.UUID("a0000000-0000-4000-8000-000000000001")
TOKEN = "tok-" + "x" * 40
CONTEXT = secret_context(AccountRegistered, "verification_token", ACCOUNT)


def key_text() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_a_sealed_value_opens_with_its_keyring_and_context_only() -> None:
    keyring = Keyring.generate("k1")
    sealed = seal(TOKEN, keyring, CONTEXT)
    assert TOKEN not in sealed and is_sealed(sealed)
    assert re.fullmatch(r"v1\.k1\.[A-Za-z0-9_-]+", sealed)
    assert unseal(sealed, keyring, CONTEXT) == TOKEN
    assert seal(TOKEN, keyring, CONTEXT) != sealed, "a fresh nonce each time"
    with pytest.raises(SecretError):
        unseal(sealed, Keyring.generate("k1"), CONTEXT)  # another key of the same name


@pytest.mark.parametrize(
    "context",
    [
        secret_context(VerificationLinkRequested, "verification_token", ACCOUNT),  # another event
        secret_context(AccountRegistered, "reset_token", ACCOUNT),  # another field
        secret_context(AccountRegistered, "verification_token", uuid.uuid4()),  # another account
    ],
)
def test_a_sealed_value_moved_elsewhere_does_not_open(context: bytes) -> None:
    keyring = Keyring.generate()
    with pytest.raises(SecretError, match="does not open"):
        unseal(seal(TOKEN, keyring, CONTEXT), keyring, context)


def test_a_tampered_value_does_not_open() -> None:
    keyring = Keyring.generate()
    sealed = seal(TOKEN, keyring, CONTEXT)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SecretError):
        unseal(flipped, keyring, CONTEXT)
    with pytest.raises(SecretError, match="not a sealed secret"):
        unseal(TOKEN, keyring, CONTEXT)


def test_keys_rotate_the_first_seals_and_all_open() -> None:
    old_text, new_text = f"old:{key_text()}", f"new:{key_text()}"
    old = Keyring.parse(old_text)
    sealed_before = seal(TOKEN, old, CONTEXT)
    rotated = Keyring.parse(f"{new_text}, {old_text}")
    assert rotated.sealing_kid == "new"
    assert seal(TOKEN, rotated, CONTEXT).startswith("v1.new.")
    assert unseal(sealed_before, rotated, CONTEXT) == TOKEN
    with pytest.raises(SecretError, match="key old, which is not in the keyring"):
        unseal(sealed_before, Keyring.parse(new_text), CONTEXT)


def test_keyring_text_round_trips_and_accepts_url_safe_base64() -> None:
    raw = os.urandom(32)
    keyring = Keyring.parse(f"a:{base64.urlsafe_b64encode(raw).decode().rstrip('=')}")
    assert keyring.key("a") == raw
    assert Keyring.parse(keyring.to_text()) == keyring


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "<kid>:<base64 key>"),
        ("nokey", "<kid>:<base64 key>"),
        ("a:!!!", "not base64"),
        (f"a:{base64.b64encode(b'short').decode()}", "32 bytes"),
        ("a b:" + base64.b64encode(bytes(32)).decode(), "key id"),
        (f"a:{base64.b64encode(bytes(32)).decode()},a:{base64.b64encode(bytes(32)).decode()}", "twice"),
    ],
)
def test_a_bad_keyring_is_refused_without_quoting_its_keys(text: str, reason: str) -> None:
    with pytest.raises(SecretError, match=re.escape(reason)) as info:
        Keyring.parse(text)
    secret = text.partition(":")[2]
    assert not secret or secret not in str(info.value)


def test_a_keyring_never_shows_its_keys() -> None:
    text = key_text()
    keyring = Keyring.parse(f"k:{text}")
    assert text not in repr(keyring) and text not in str(keyring)


def test_the_sealed_type_refuses_plain_tokens() -> None:
    adapter = TypeAdapter(SealedSecret)
    with pytest.raises(ValidationError):
        adapter.validate_python(TOKEN)
    adapter.validate_python(seal(TOKEN, Keyring.generate(), CONTEXT))


TOKENISH = re.compile(r"(^|_)(token|secret|password)($|_)")


def test_every_current_token_field_is_sealed_and_marked_so_in_its_schema() -> None:
    """No current event carries a token, secret or password in clear: such fields are SealedSecret, whose
    JSON Schema says `x-secret` and `format: sealed-secret` (a field turned back into plain text changes its
    format: the compatibility test calls that breaking)."""
    current = [model for topic in TOPICS.values() for model in topic.events]
    for model in current:
        properties = schema_of(model)["properties"]
        for name, prop in properties.items():
            if not TOKENISH.search(name):
                continue
            variants = prop.get("anyOf", [prop])
            strings = [v for v in variants if v.get("type") == "string"]
            if not strings:
                continue  # e.g. a count of (billing) tokens
            assert name in secret_fields(model), f"{model.__name__}.{name} is not sealed"
            for variant in strings:
                assert variant.get("x-secret") is True and variant.get("format") == "sealed-secret", (
                    f"{model.__name__}.{name}"
                )


def test_sealed_fields_are_those_of_the_mailed_links() -> None:
    sealed = {(m.event_name(), f) for m in EVENT_TYPES.values() if m not in SUPERSEDED for f in secret_fields(m)}
    assert sealed == set(EXAMPLE_TOKENS)


def test_the_examples_tokens_open_with_the_example_keyring() -> None:
    for model, event in EXAMPLES.items():
        for name in secret_fields(model):
            context = secret_context(model, name, event.aggregate_id())
            assert unseal(getattr(event, name), EXAMPLE_KEYRING, context) == EXAMPLE_TOKENS[(model.event_name(), name)]
