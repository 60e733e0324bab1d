"""Taking part in an enrolled session, JSON API (docs/portal.md, "Mes Webvisio: taking part"; enrollment keeps the
links, shares, attendances, feedback and certificates: docs/enrollment.md): an enrolment's participation link, its
re-issue and revocation, sharing it by mail or SMS (now or at a chosen time), the attendance, the institution's
feedback, the certificates of attendance; and for organisers a session's attendance and feedback and the statistics
per session and per theme (JSON and CSV).

Who may do what is decided here, before enrollment is asked, as for the enrolments (gateway.enrolment):
- reading an enrolment's link, attendance and certificates: the account's people and organisers (of an account that
  exists); anyone else 404;
- re-issuing or revoking the link, sharing it, reading and cancelling its sendings (they name people's addresses):
  the account's managers (`gateway.api.ensure_manager`: members and organisers 403, anyone else 404);
- the institution's feedback: its people (members and managers); organisers 403, anyone else 404;
- a session's attendance and feedback, the statistics: organisers only (403 `organisers_only`).
Enrollment then answers for that account only: an enrolment, a share or a certificate of another account is not
found there (404)."""

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from litestar import Controller, Response, delete, get, post
from litestar.params import Parameter
from pydantic import AwareDatetime, BaseModel, Field

from gateway import i18n
from gateway.api import ensure_manager
from gateway.backoffice import ensure_organiser
from gateway.billing import ensure_reader
from gateway.openapi import BEARER, SESSION_OR_API_TOKEN, problems
from gateway.upstream import Upstream, relay
from servicekit.http import ProblemError
from servicekit.inputs import Name, text
from servicekit.logs import security_event

Message = text(1000, multiline=True)
Comment = text(2000, multiline=True)
STATISTICS_DAYS = 365  # the statistics' default span: the year up to today


class Recipient(BaseModel):
    channel: Literal["email", "sms"] = Field(description="`email`, or `sms` to a mobile phone")
    address: text(320, min_length=1) = Field(  # type: ignore[valid-type]
        description="an email address, or a phone number in E.164 form (`+33612345678`)"
    )
    name: Name | None = Field(None, description="the recipient's name, used in the greeting")


class ShareRequest(BaseModel):
    recipients: list[Recipient] = Field(min_length=1, max_length=20)
    message: Message | None = Field(None, description="a personal message, sent with the link")  # type: ignore[valid-type]
    send_at: AwareDatetime | None = Field(
        None, description="when to send (before the session's end); absent: now. With its offset, e.g. `Z`"
    )
    language: Literal["fr", "en"] | None = Field(None, description="of the message around the link; yours by default")


class FeedbackRequest(BaseModel):
    rating: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")
    comment: Comment | None = None  # type: ignore[valid-type]


def ensure_person(identity: dict[str, Any], account_id: uuid.UUID) -> None:
    """The account's own people (members and managers): organisers 403, anyone else 404."""
    if str(account_id) in identity.get("memberships", {}):
        return
    if identity.get("is_organiser"):
        security_event("access_denied", outcome="forbidden", user_id=identity.get("user_id"), account_id=account_id)
        raise ProblemError(403, "forbidden", "Forbidden", "Only the account's people can do this.")
    security_event("access_denied", outcome="not_found", user_id=identity.get("user_id"), account_id=account_id)
    raise ProblemError(404, "not_found", "Not found")


def enrolment_path(enrollment_id: uuid.UUID, tail: str, account_id: uuid.UUID | None = None) -> str:
    query = f"?account_id={account_id}" if account_id else ""
    return f"/internal/enrolments/{enrollment_id}/{tail}{query}"


def by(identity: dict[str, Any], account_id: uuid.UUID) -> dict[str, Any]:
    return {"account_id": str(account_id), "requested_by": identity["user_id"]}


async def share_link(
    enrollment: Upstream, identity: dict[str, Any], account_id: uuid.UUID, enrollment_id: uuid.UUID, data: ShareRequest
) -> Any:
    """Ask enrollment to send the link to `data.recipients`; the sender is the caller."""
    body = {
        **by(identity, account_id),
        "sender_name": identity.get("name"),
        "language": data.language or i18n.language_or_default(identity.get("language")),
        "message": data.message,
        "send_at": data.send_at.astimezone(UTC).isoformat() if data.send_at else None,
        "recipients": [recipient.model_dump() for recipient in data.recipients],
    }
    return await enrollment.call("POST", enrolment_path(enrollment_id, "link/shares"), body, actor=identity["user_id"])


async def give_feedback(
    enrollment: Upstream,
    identity: dict[str, Any],
    account_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    data: FeedbackRequest,
) -> Any:
    body = {**by(identity, account_id), "rating": data.rating, "comment": data.comment}
    return await enrollment.call("POST", enrolment_path(enrollment_id, "feedback"), body, actor=identity["user_id"])


async def read_for_reader(
    identity: dict[str, Any],
    accounts: Upstream,
    enrollment: Upstream,
    account_id: uuid.UUID,
    enrollment_id: uuid.UUID,
    tail: str,
) -> Response[Any]:
    """enrollment's `GET /internal/enrolments/{id}/<tail>` for one of the account's readers."""
    await ensure_reader(identity, account_id, accounts)
    path = enrolment_path(enrollment_id, tail, account_id)
    return relay(await enrollment.call("GET", path, actor=identity["user_id"]))


def pdf_download(answer: Any, certificate_id: uuid.UUID) -> Response[Any]:
    """A certificate's PDF as a download, enrollment's problem otherwise."""
    if answer.status_code != 200:
        return relay(answer)
    name = f'attachment; filename="attestation-{certificate_id}.pdf"'
    return Response(answer.content, media_type="application/pdf", headers={"Content-Disposition": name})


# -- statistics ------------------------------------------------------------------------------------------------------


def statistics_span(starts_from: date | None, starts_to: date | None) -> tuple[date, date]:
    """The days asked, [from, to); by default the year up to today (included), in the portal's zone."""
    today = datetime.now(UTC).astimezone(i18n.timezone).date()
    upper = starts_to or today + timedelta(days=1)
    lower = starts_from or upper - timedelta(days=STATISTICS_DAYS)
    return lower, upper


async def read_statistics(
    enrollment: Upstream, actor: str, starts_from: date, starts_to: date, theme_id: uuid.UUID | None
) -> Any:
    query = {"from": starts_from.isoformat(), "to": starts_to.isoformat()}
    if theme_id:
        query["theme_id"] = str(theme_id)
    return await enrollment.call("GET", f"/internal/statistics?{urlencode(query)}", actor=actor)


CSV_HEADER = (
    "seance",
    "theme",
    "debut",
    "statut",
    "capacite",
    "inscriptions",
    "annulations",
    "etablissements_presents",
    "taux_presence",
    "participants",
    "note_moyenne",
    "nombre_avis",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: a value starting like a formula gets a leading quote (CWE-1236)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}".replace(".", ",")
    shown = str(value)
    return "'" + shown if shown.startswith(FORMULA_STARTS) else shown


def statistics_csv(figures: dict[str, Any]) -> bytes:
    """One line per session, `;` separated, UTF-8 with a BOM and French decimal commas (as billing's export)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in figures.get("sessions", []):
        starts = row.get("starts_at")
        writer.writerow(
            csv_cell(value)
            for value in (
                row.get("title"),
                row.get("theme_title"),
                datetime.fromisoformat(starts).astimezone(i18n.timezone).strftime("%Y-%m-%d %H:%M") if starts else "",
                row.get("status"),
                row.get("capacity"),
                row.get("enrolments"),
                row.get("cancellations"),
                row.get("attended_enrolments"),
                _float(row.get("attendance_rate")),
                row.get("people"),
                _float(row.get("rating_average")),
                row.get("rating_count"),
            )
        )
    return ("\ufeff" + out.getvalue()).encode()


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def csv_download(answer: Any, starts_from: date, starts_to: date) -> Response[Any]:
    if answer.status_code != 200:
        return relay(answer)
    name = f'attachment; filename="statistiques-{starts_from}-{starts_to}.csv"'
    return Response(
        statistics_csv(answer.json()), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": name}
    )


From = Annotated[date | None, Parameter(query="from", description="first day (included) of the sessions' starts")]
To = Annotated[date | None, Parameter(query="to", description="last day (excluded); by default tomorrow")]


# -- the API -----------------------------------------------------------------------------------------------------------


class ParticipationApi(Controller):
    """An enrolment's link, attendance, feedback and certificates."""

    path = "/api/v1/accounts/{account_id:uuid}/enrolments/{enrollment_id:uuid}"
    tags = ["enrolments"]
    security = SESSION_OR_API_TOKEN

    @get(
        "/link",
        summary="The enrolment's participation link: its `path` (`/join/<token>`) and when the room opens",
        description="A confirmed enrolment has one active link, valid until some days after the session; anyone "
        "holding it may join from `opens_at` (15 minutes before the start). 404 `link_not_found` when there is "
        "none (not confirmed, revoked, cancelled or expired).",
        responses=problems(401, 403, 404),
    )
    async def link(
        self,
        account_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        identity: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        return await read_for_reader(identity, accounts, enrollment, account_id, enrollment_id, "link")

    @post(
        "/link/reissue",
        status_code=200,
        summary="Replace the link by a new one (the old one stops working at once)",
        description="The account's managers. The new link is mailed to the enrolment's contact when the session "
        "is less than two days away. 409 `not_confirmed`.",
        responses=problems(401, 403, 404, 409, 429),
    )
    async def reissue(
        self, account_id: uuid.UUID, enrollment_id: uuid.UUID, identity: dict[str, Any], enrollment: Upstream
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        path = enrolment_path(enrollment_id, "link/reissue")
        return relay(await enrollment.call("POST", path, by(identity, account_id), actor=identity["user_id"]))

    @post(
        "/link/revoke",
        status_code=204,
        summary="Revoke the link: nobody joins with it any more (re-issue one to take part)",
        description="The account's managers.",
        responses=problems(401, 403, 404, 429),
    )
    async def revoke(
        self, account_id: uuid.UUID, enrollment_id: uuid.UUID, identity: dict[str, Any], enrollment: Upstream
    ) -> Response[None]:
        ensure_manager(identity, account_id)
        path = enrolment_path(enrollment_id, "link/revoke")
        return relay(await enrollment.call("POST", path, by(identity, account_id), actor=identity["user_id"]))

    @get(
        "/link/shares",
        summary="The link's sendings (newest first): to whom, when, status (`scheduled`, `sent`, `cancelled`)",
        description="The account's managers (the list names people's addresses).",
        responses=problems(401, 403, 404),
    )
    async def shares(
        self, account_id: uuid.UUID, enrollment_id: uuid.UUID, identity: dict[str, Any], enrollment: Upstream
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        path = enrolment_path(enrollment_id, "link/shares", account_id)
        return relay(await enrollment.call("GET", path, actor=identity["user_id"]))

    @post(
        "/link/shares",
        status_code=201,
        summary="Send the link by mail or SMS to 1 to 20 people, with a personal message, now or at `send_at`",
        description="The account's managers. Each recipient gets the link current when the sending goes (a link "
        "re-issued meanwhile goes instead; none, and the sending is cancelled). 409 `link_not_found` (no active "
        "link), `share_limit_reached` (200 recipients a day per account); 400 for an address that is no email "
        "or E.164 phone number, or a `send_at` after the session's end.",
        responses=problems(401, 403, 404, 409, 429),
    )
    async def share(
        self,
        account_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        data: ShareRequest,
        identity: dict[str, Any],
        enrollment: Upstream,
    ) -> Response[Any]:
        ensure_manager(identity, account_id)
        return relay(await share_link(enrollment, identity, account_id, enrollment_id, data))

    @delete(
        "/link/shares/{share_id:uuid}",
        status_code=204,
        summary="Cancel a scheduled sending",
        description="The account's managers. 409 `share_already_sent`.",
        responses=problems(401, 403, 404, 409, 429),
    )
    async def cancel_share(
        self,
        account_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        share_id: uuid.UUID,
        identity: dict[str, Any],
        enrollment: Upstream,
    ) -> Response[None]:
        ensure_manager(identity, account_id)
        path = enrolment_path(enrollment_id, f"link/shares/{share_id}", account_id)
        return relay(await enrollment.call("DELETE", path, actor=identity["user_id"]))

    @get(
        "/attendance",
        summary="Who joined the session through the enrolment's link, and a summary (joins, people, minutes)",
        responses=problems(401, 403, 404),
    )
    async def attendance(
        self,
        account_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        identity: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        return await read_for_reader(identity, accounts, enrollment, account_id, enrollment_id, "attendance")

    @post(
        "/feedback",
        status_code=201,
        summary="The institution's rating of the session (1 to 5) and comment, once it has ended",
        description="The account's people (members and managers), once per enrolment. 409 `session_not_ended`, "
        "`feedback_already_given`, `not_confirmed`.",
        responses=problems(401, 403, 404, 409, 429),
    )
    async def feedback(
        self,
        account_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        data: FeedbackRequest,
        identity: dict[str, Any],
        enrollment: Upstream,
    ) -> Response[Any]:
        ensure_person(identity, account_id)
        return relay(await give_feedback(enrollment, identity, account_id, enrollment_id, data))

    @get(
        "/certificates",
        summary="The certificates of attendance issued after the session, one per person who joined",
        responses=problems(401, 403, 404),
    )
    async def certificates(
        self,
        account_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        identity: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        return await read_for_reader(identity, accounts, enrollment, account_id, enrollment_id, "certificates")

    @get(
        "/certificates/{certificate_id:uuid}/pdf",
        summary="A certificate of attendance as PDF (A4, with its verification code)",
        responses=problems(401, 403, 404),
        media_type="application/pdf",
    )
    async def certificate_pdf(
        self,
        account_id: uuid.UUID,
        enrollment_id: uuid.UUID,
        certificate_id: uuid.UUID,
        identity: dict[str, Any],
        accounts: Upstream,
        enrollment: Upstream,
    ) -> Response[Any]:
        await ensure_reader(identity, account_id, accounts)
        return await certificate_file(enrollment, identity["user_id"], account_id, enrollment_id, certificate_id)


async def certificate_file(
    enrollment: Upstream, actor: str, account_id: uuid.UUID, enrollment_id: uuid.UUID, certificate_id: uuid.UUID
) -> Response[Any]:
    """The PDF of one of the enrolment's certificates (404 for a certificate of another enrolment or account)."""
    listed = await enrollment.call("GET", enrolment_path(enrollment_id, "certificates", account_id), actor=actor)
    if listed.status_code != 200:
        return relay(listed)
    if str(certificate_id) not in {item["id"] for item in listed.json()["items"]}:
        raise ProblemError(404, "not_found", "Not found")
    path = f"/internal/certificates/{certificate_id}/pdf?account_id={account_id}"
    return pdf_download(await enrollment.call("GET", path, actor=actor), certificate_id)


class BackOfficeParticipationApi(Controller):
    """Organisers: a session's attendance and feedback; the statistics."""

    path = "/api/v1/back-office"
    tags = ["back-office"]
    security = BEARER

    @get(
        "/sessions/{session_id:uuid}/attendance",
        summary="A session's attendance per enrolment (institution, joins, people, names) and its summary",
        description="Organisers only. `summary`: `enrolments_confirmed`, `enrolments_attended`, `attendance_rate` "
        "(0 to 1, null without enrolments), `people`.",
        responses=problems(401, 403, 404),
    )
    async def session_attendance(
        self, session_id: uuid.UUID, identity: dict[str, Any], enrollment: Upstream
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/sessions/attendance")
        return relay(await enrollment.call("GET", f"/internal/sessions/{session_id}/attendance"))

    @get(
        "/sessions/{session_id:uuid}/feedback",
        summary="A session's feedback: average, count, distribution of the ratings 1 to 5, the comments",
        description="Organisers only. Each item's `respondent` is `institution` (rated from Mes Webvisio) or the "
        "name of a person who rated through the link or the thank-you mail.",
        responses=problems(401, 403, 404),
    )
    async def session_feedback(
        self, session_id: uuid.UUID, identity: dict[str, Any], enrollment: Upstream
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/sessions/feedback")
        return relay(await enrollment.call("GET", f"/internal/sessions/{session_id}/feedback"))

    @get(
        "/statistics",
        summary="Enrolments, cancellations, attendance and ratings per session and per theme, between two days",
        description="Organisers only. Sessions starting in [`from`, `to`) (days; by default the year up to "
        "today), of one theme when `theme_id` is given: `sessions`, `themes` (the same figures per theme), "
        "`totals`. `attendance_rate` is the share of confirmed enrolments someone joined through the link.",
        responses=problems(401, 403),
    )
    async def statistics(
        self,
        identity: dict[str, Any],
        enrollment: Upstream,
        starts_from: From = None,
        starts_to: To = None,
        theme_id: uuid.UUID | None = None,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/statistics")
        lower, upper = statistics_span(starts_from, starts_to)
        return relay(await read_statistics(enrollment, identity["user_id"], lower, upper, theme_id))

    @get(
        "/statistics.csv",
        summary="The statistics per session as CSV (`;`, UTF-8 with a BOM, decimal commas), for a spreadsheet",
        description="Organisers only; the same filters. Header: `" + ";".join(CSV_HEADER) + "`.",
        responses=problems(401, 403),
        media_type="text/csv",
    )
    async def statistics_export(
        self,
        identity: dict[str, Any],
        enrollment: Upstream,
        starts_from: From = None,
        starts_to: To = None,
        theme_id: uuid.UUID | None = None,
    ) -> Response[Any]:
        ensure_organiser(identity, "/api/v1/back-office/statistics.csv")
        lower, upper = statistics_span(starts_from, starts_to)
        answer = await read_statistics(enrollment, identity["user_id"], lower, upper, theme_id)
        return csv_download(answer, lower, upper)
