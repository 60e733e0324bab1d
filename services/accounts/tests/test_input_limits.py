"""accounts' internal API checks its input itself (defence in depth behind the gateway): a source is an IP
address, never free text; text fields are within their columns and free of control characters; and the
columns hold what the API accepts."""

import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from accounts import api
from accounts import service as accounts
from accounts_world import OUTBOX, PASSWORD

SIGN_UP = {
    "institution_name": "Association Les Hérons",
    "institution_kind": "other",
    "contact_name": "Camille Martin",
    "email": "camille@asso-test.fr",
    "password": PASSWORD,
    "source": "192.0.2.10",
}


@pytest.mark.parametrize(
    "source", ["<script>alert(1)</script>", "unknown", "x" * 5000, "", "10.0.0.1, 10.0.0.2", "10.0.0.1\x00"]
)
def test_a_source_is_an_ip_address(source):
    for model, body in [
        (api.LoginRequest, {"email": "a@b.fr", "password": "secret", "source": source}),
        (api.EmailRequest, {"email": "a@b.fr", "source": source}),
        (api.SignUpRequest, {**SIGN_UP, "source": source}),
    ]:
        with pytest.raises(ValidationError) as refused:
            model(**body)
        assert [error["loc"] for error in refused.value.errors()] == [("source",)]


def test_a_source_is_kept_normalised():
    assert api.LoginRequest(email="a@b.fr", password="secret", source="::ffff:192.0.2.1").source == "192.0.2.1"
    assert api.EmailRequest(email="a@b.fr", source="2001:DB8::0:1").source == "2001:db8::1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("institution_name", "Hérons\x00"),
        ("contact_name", "Camille\x00"),
        ("city", "Lyon\x00"),
        ("postal_address", "3 rue\x00"),
        ("email", "camille\x00@asso-test.fr"),
        ("password", "violet\x00tramway under nineteen lanterns"),
        ("institution_identifier", "RNA\x00"),
        ("institution_identifier", "x" * 65),
        ("city", "x" * 101),
        ("institution_name", "x" * 201),
    ],
)
def test_sign_up_text_is_bounded_and_free_of_nul(field, value):
    with pytest.raises(ValidationError) as refused:
        api.SignUpRequest(**{**SIGN_UP, field: value})
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (api.LoginRequest, {"email": "a\x00@b.fr", "password": "secret", "source": "192.0.2.1"}),
        (api.EmailRequest, {"email": "a\x00@b.fr", "source": "192.0.2.1"}),
        (api.Settings, {"name": "Léa\x00"}),
        (api.ProfileChanges, {"billing_address": "3 rue\x00"}),
        (api.ProfileChanges, {"phone": "+336\x00"}),
        (api.NewMembers, {"members": [{"name": "Léa\x00", "email": "lea@b.fr"}]}),
        (api.NewMembers, {"members": [{"name": "Léa", "email": "lea\x00@b.fr"}]}),
        (api.MemberChanges, {"email": "lea\x00@b.fr"}),
        (api.EmailChange, {"password": "secret", "new_email": "lea\x00@b.fr"}),
        (api.NewPassword, {"token": "t" * 43, "new_password": "pass\x00word"}),
        (api.TokenRequest, {"token": "t\x00" * 20}),
    ],
)
def test_every_request_model_refuses_nul(model, body):
    with pytest.raises(ValidationError):
        model(**body)


async def test_an_identifier_as_long_as_the_api_allows_is_stored(db):
    identifier = "RNA-" + "7" * 60
    form = accounts.SignUp(
        **{**api.SignUpRequest(**SIGN_UP, institution_identifier=identifier).model_dump(exclude={"source"})}
    )
    async with db.transaction() as session:
        account_id = await accounts.sign_up(session, OUTBOX, form, verification_ttl=timedelta(hours=48))
        stored = await session.scalar(text("SELECT identifier FROM institutions WHERE id = :id"), {"id": account_id})
    assert isinstance(account_id, uuid.UUID) and stored == identifier
