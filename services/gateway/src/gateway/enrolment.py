"""The public API of enrolments (docs/api.md, "Enrolments"; the enrollment service: docs/enrollment.md): an
account's enrolments in sessions, their cancellation, and its places on waiting lists; the organisers' view of a
session's enrolments.

Who may do what is decided here, before enrollment is asked (enrollment knows nobody's roles), as for billing
(gateway.billing): reading an account's enrolments: its members and managers, and organisers (of an account that
exists); anyone else 404. Enrolling, cancelling, joining or leaving a waiting list, taking an offered place: the
account's managers; its members and organisers 403, anyone else 404. Enrollment then answers for that account
only: an enrolment or an entry of another account is not found there (404).

An enrolment's `requested_by` is the caller, and its `notice` (who is mailed about it: confirmed, rejected, a
place offered) the caller's address, name and language, never what the client sends. Enrollment's refusals
(409 `session_full`, `enrolment_closed`, `already_enrolled`, `cancellation_closed`...) are relayed as they come;
the saga's outcome (`confirmed`, or `rejected` with billing's `reason`) is read from the enrolment's status."""

import uuid
from typing import Any, Literal

from litestar import Controller, Response, delete, get, post
from pydantic import BaseModel, Field

from gateway import pagination
from gateway.api import ensure_manager
from gateway.backoffice import ensure_organiser
from gateway.billing import ensure_reader, notice_of
from gateway.idempotency import IDEMPOTENT
from gateway.openapi import SESSION_OR_API_TOKEN, problems
from gateway.upstream import Upstream, relay
from servicekit.http import ProblemError
from servicekit.inputs import text

Questions = text(2000, multiline=True)


class EnrolmentRequest(BaseModel):
    session_id: uuid.UUID = Field(description="a published session of the planning (`GET /api/v1/planning`)")
    expected_participants: int = Field(ge=1, le=1000, description="how many people are expected to attend")
    questions: Questions | None = Field(None, description="questions for the animator, shown to the organiser")  # type: ignore[valid-type]
    privatisation: bool = Field(False, description="the whole session for the institution, at its premium price")


class WaitingListRequest(BaseModel):
    expected_participants: int = Field(ge=1, le=1000)
    questions: Questions | None = None  # type: ignore[valid-type]


def enrolment_body(
    identity: dict[str, Any], account_id: uuid.UUID, data: EnrolmentRequest, institution_name: str | None = None
) -> dict[str, Any]:
    """What enrollment is asked: the request, the account (and its name, printed on the certificates of
    attendance), and the caller as requester and person to mail."""
    return {
        **data.model_dump(mode="json"),
        "account_id": str(account_id),
        "institution_name": institution_name,
        "requested_by": identity["user_id"],
        "notice": notice_of(identity),
    }


async def institution_name(accounts: Upstream, account_id: uuid.UUID, actor: str) -> str | None:
    """The institution's name as accounts has it; None when accounts does not say (enrollment then prints none)."""
    try:
        answer = await accounts.call("GET", f"/internal/accounts/{account_id}/profile", actor=actor)
    except ProblemError:
        return None
    name = answer.json().get("name") if answer.status_code == 200 else None
    return name if isinstance(name, str) else None


async def ask_enrolment(
    enrollment: Upstream, accounts: Upstream, identity: dict[str, Any], account_id: uuid.UUID, data: EnrolmentRequest
) -> Any:
    name = await institution_name(accounts, account_id, identity["user_id"])
    body = enrolment_body(identity, account_id, data, name)
    return await enrollment.call("POST", "/internal/enrolments", body, actor=identity["user_id"])


async def take_offered_place(
    enrollment: Upstream, accounts: Upstream, actor: str, account_id: uuid.UUID, entry_id: uuid.UUID
) -> Any:
    """The place held for the institution becomes its enrolment (with its name, as ask_enrolment sends it)."""
    body = {"account_id": str(account_id), "institution_name": await institution_name(accounts, account_id, actor)}
    return await enrollment.call("POST", f"/internal/waiting-list/{entry_id}/confirmation", body, actor=actor)


async def join_waiting_list(
    enrollment: Upstream,
    identity: dict[str, Any],
    account_id: uuid.UUID,
    session_id: uuid.UUID,
    data: WaitingListRequest,
) -> Any:
    body = {
        **data.model_dump(mode="json"),
        "account_id": str(account_id),
        "requested_by": identity["user_id"],
        "notice": notice_of(identity),
    }
    path = f"/internal/sessions/{session_id}/waiting-list"
    return await enrollment.call("POST", path, body, actor=identity["user_id"])


class EnrolmentApi(Controller):
    """An account's enrolments: its people read them, its managers enrol and cancel."""

    path = "/api/v1/accounts/{account_id:uuid}"
    tags = ["enrolments"]

    @post(
        "/enrolments",
        status_code=202,
        summary="Enrol the institution in a session: answered at once `pending`, confirmed within a second",
        description="The account's managers. The enrolment is stored `pending` while billing debits the session's "
        "price (its premium price for a privatisation); it then turns `confirmed`, or `rejected` with billing's "
        "`reason` (`insufficient_balance`: buy tokens; `account_unverified`...): read it with `GET .../enrolments/"
        "{id}`. Refused at once (409, nothing written): `session_unavailable`, `enrolment_closed`, `session_full` "
        "(join the waiting list instead), `already_enrolled`, `already_waiting`, `session_privatised`, "
        "`privatisation_unavailable`, `price_changed` (the session's price changed meanwhile: ask again).",
        responses=problems(401, 403, 404, 409, 429),
        security=SESSION_OR_API_TOKEN,
        **IDEMPOTENT,
    )
    async def enrol(
        self,
        account_id: uuid.UUID,
        data: EnrolmentRequest,
        identity: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        return relay(await ask_enrolment(enrollment, accounts, identity, account_id, data))

    @get(
        "/enrolments",
        summary="The account's enrolments, upcoming (soonest first) or past (latest first), and its waiting lists",
        description="Every status: `pending`, `confirmed`, `rejected` (with `reason`), `cancelled`. "
        "`waiting_list`: the account's active entries (`waiting`, or `offered` with `hold_until`).",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def enrolments(
        self,
        account_id: uuid.UUID,
        identity: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
        when: Literal["upcoming", "past"] = "upcoming",
        limit: pagination.Limit = 50,
        offset: pagination.Offset = 0,
    ) -> Response[Any]:
        await ensure_reader(identity, account_id, accounts)
        size = min(limit, 200)  # enrollment's pages are 200 at most
        path = f"/internal/accounts/{account_id}/enrolments?when={when}&limit={size}&offset={offset}"
        return relay(await enrollment.call("GET", path, actor=identity["user_id"]))

    @get(
        "/enrolments/{enrollment_id:uuid}",
        summary="One enrolment of the account, with its session",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def enrolment(
        self,
        account_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        identity: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        await ensure_reader(identity, account_id, accounts)
        path = f"/internal/enrolments/{enrollment_id}?account_id={account_id}"
        return relay(await enrollment.call("GET", path, actor=identity["user_id"]))

    @post(
        "/enrolments/{enrollment_id:uuid}/cancellation",
        status_code=200,
        summary="Cancel an enrolment until the cut-off (48 hours before the start): the token is refunded",
        description="The account's managers. 409 `cancellation_closed` after the cut-off, `not_cancellable` for a "
        "rejected enrolment; cancelling a cancelled enrolment answers it unchanged.",
        responses=problems(401, 403, 404, 409, 429),
        security=SESSION_OR_API_TOKEN,
    )
    async def cancel(
        self, account_id: uuid.UUID, enrollment_id: uuid.UUID, identity: dict[str, Any], enrollment: Upstream
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        path = f"/internal/enrolments/{enrollment_id}/cancellation"
        return relay(await enrollment.call("POST", path, {"account_id": str(account_id)}, actor=identity["user_id"]))

    @post(
        "/sessions/{session_id:uuid}/waiting-list",
        status_code=201,
        summary="Join a full session's waiting list (no token is taken)",
        description="The account's managers. When a place frees, the first in line is offered it for a limited "
        "time (`hold_until`), and mailed. 409 `places_available` (enrol instead), `already_waiting`, "
        "`already_enrolled`, `enrolment_closed`, `session_privatised`, `session_unavailable`.",
        responses=problems(401, 403, 404, 409, 429),
        security=SESSION_OR_API_TOKEN,
    )
    async def join_waiting_list(
        self,
        account_id: uuid.UUID,
        session_id: uuid.UUID,
        data: WaitingListRequest,
        identity: dict[str, Any],
        enrollment: Upstream,
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        return relay(await join_waiting_list(enrollment, identity, account_id, session_id, data))

    @delete(
        "/sessions/{session_id:uuid}/waiting-list",
        status_code=204,
        summary="Leave a session's waiting list (a place held for the institution passes to the next in line)",
        responses=problems(401, 403, 404, 429),
        security=SESSION_OR_API_TOKEN,
    )
    async def leave_waiting_list(
        self, account_id: uuid.UUID, session_id: uuid.UUID, identity: dict[str, Any], enrollment: Upstream
    ) -> Response[None]:
        ensure_manager(identity, account_id)
        path = f"/internal/sessions/{session_id}/waiting-list?account_id={account_id}"
        return relay(await enrollment.call("DELETE", path, actor=identity["user_id"]))

    @post(
        "/waiting-list/{entry_id:uuid}/confirmation",
        status_code=202,
        summary="Take the place offered from the waiting list, before `hold_until`: an enrolment, as above",
        description="The account's managers. 202 `{id, status}` of the enrolment (pending, then confirmed or "
        "rejected); 409 `no_place_offered` when no place is held for the institution (or the hold expired).",
        responses=problems(401, 403, 404, 409, 429),
        security=SESSION_OR_API_TOKEN,
    )
    async def confirm_offered_place(
        self,
        account_id: uuid.UUID,
        entry_id: uuid.UUID,
        identity: dict[str, Any],
        enrollment: Upstream,
        accounts: Upstream,
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        return relay(await take_offered_place(enrollment, accounts, identity["user_id"], account_id, entry_id))


class BackOfficeEnrolmentApi(Controller):
    """Organisers: a session's enrolments and its waiting list."""

    path = "/api/v1/back-office/sessions/{session_id:uuid}/enrolments"
    tags = ["back-office"]

    @get(
        "/",
        summary="A session's enrolments (active first), with expected participants and questions, and its waiting "
        "list in order",
        description="Organisers only. `places_taken` (pending and confirmed enrolments and places held for the "
        "waiting list), `places_held`, `privatised`.",
        responses=problems(401, 403, 404),
        security=SESSION_OR_API_TOKEN,
    )
    async def session_enrolments(
        self,
        session_id: uuid.UUID,
        identity: dict[str, Any],
        enrollment: Upstream,
        limit: pagination.Limit = 200,
        offset: pagination.Offset = 0,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/sessions/enrolments")
        path = f"/internal/sessions/{session_id}/enrolments?limit={limit}&offset={offset}"
        return relay(await enrollment.call("GET", path, actor=identity["user_id"]))
