"""Input checked at the edge, the same way in every service: a JSON body decoder that refuses what would
break a service further in, and field types that keep text within its column and free of control characters.

A request is refused with a 400 problem before any of it is used:
- a body that is not UTF-8, is not JSON, or nests more than MAX_JSON_DEPTH deep: `invalid_body`;
- a field that breaks its type (too long, a NUL or other control character, a lone surrogate, an integer out
  of range, a wrong type): `invalid_request`, naming the field in `field` and `errors`.

Text types here are generic (length, control characters); rules about what a name or an address may contain
belong to the service that owns them (accounts.validators)."""

import functools
import ipaddress
import re
import unicodedata
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.exceptions import SerializationException
from litestar.params import Parameter
from litestar.types import Empty
from pydantic import AfterValidator, Field, StringConstraints, TypeAdapter, ValidationError

from servicekit.http import ProblemError

MAX_JSON_DEPTH = 32
# Query and body integers: PostgreSQL's integer, and far beyond any page or count we serve.
MAX_INT = 2**31 - 1
# Every request body is read whole before parsing; this bounds what a JSON body may be (files have their own).
MAX_JSON_BODY_BYTES = 1024 * 1024

# One pass, left to right: a string (to its end, or the body's if it never ends) or a bracket. A string cannot
# fail to match, so no position is scanned twice (a pattern needing the closing quote would be quadratic).
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def invalid_body(detail: str) -> ProblemError:
    return ProblemError(400, "invalid_body", "Invalid body", detail)


def check_json_body(body: bytes) -> None:
    """Refuse a body that is not UTF-8 or nests deeper than MAX_JSON_DEPTH, before any parser sees it (a
    recursive parser runs out of stack on `[[[[...`)."""
    if len(body) > MAX_JSON_BODY_BYTES:
        raise ProblemError(
            413, "body_too_large", "Body too large", f"A JSON body is {MAX_JSON_BODY_BYTES} bytes at most."
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_body("The body is not valid UTF-8.") from None
    depth = 0
    for token in _TOKENS.finditer(body):
        if token.group() in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise invalid_body(f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep.")
        elif token.group() in (b"]", b"}"):
            depth -= 1


class CheckedRequest(Request[Any, Any, Any]):
    """A request whose JSON body is checked (check_json_body) before it is decoded, and whose decoding errors
    are `invalid_body` problems."""

    async def json(self) -> Any:
        if self._json is Empty and self._connection_state.json is Empty:
            check_json_body(await self.body())
        try:
            return await super().json()
        except (SerializationException, msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise invalid_body("The body is not valid JSON.") from exc


def _clean(value: str, allowed: str) -> str:
    for char in value:
        if char not in allowed and unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError("must not contain control characters")
    return value


def _single_line(value: str) -> str:
    return _clean(value, "")


def _multi_line(value: str) -> str:
    return _clean(value, "\t\n\r")


def _no_nul(value: str) -> str:
    if "\x00" in value or any(unicodedata.category(char) == "Cs" for char in value):
        raise ValueError("must not contain NUL or lone surrogates")
    return value


def text(max_length: int, *, min_length: int = 0, strip: bool = True, multiline: bool = False) -> Any:
    """A string of at most `max_length` characters (its column's length), without control characters (tab and
    line breaks allowed when `multiline`)."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=strip, min_length=min_length, max_length=max_length),
        AfterValidator(_multi_line if multiline else _single_line),
    ]


def _ip_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise ValueError("must be an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


# The fields every service shares. Lengths are those of the columns that keep them.
Name = text(200, min_length=1)
EmailInput = text(320, min_length=1)
Token = text(200, min_length=10, strip=False)
# Passwords are never stored as text: any character but NUL (hashers stop or fail on it) and lone surrogates.
Password = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_no_nul)]
# A client's address, as the gateway computed it (valid IPv4 or IPv6, normalised): the key of per-source limits.
SourceAddress = Annotated[str, StringConstraints(max_length=100), AfterValidator(_ip_address)]
Offset = Annotated[int, Parameter(ge=0, le=MAX_INT, description="how many to skip")]


@functools.cache
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def checked_query(name: str, value: str | None, kind: Any) -> Any:
    """A text query parameter checked against one of the types here, as a body's field would be: Litestar checks
    a query parameter's declared length but runs none of its validators (control characters). A refusal is
    `400 invalid_request` naming the parameter."""
    if value is None:
        return None
    try:
        return _adapter(kind).validate_python(value)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise ProblemError(
            400,
            "invalid_request",
            "Invalid request",
            f"Query parameter {name}: {message}",
            field=name,
            errors=[{"key": name, "source": "query", "message": message}],
        ) from None
