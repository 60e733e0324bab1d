"""The "Membres" tab of Mon compte: the people of the institution shown (`web.current_account`), page by page,
and, for its managers, every members flow of accounts (docs/portal.md, "Mon compte: Membres").

Every page and form calls the same internal paths as the JSON API (`gateway.api.MembersApi`) with the person
as `actor`, and accounts decides who may do what: the account comes from `current_account` (never from a
form), a member id that is not the account's is not found, a plain member is refused (403) whatever they
post. A plain member is not shown the list at all: accounts lets only managers (and organisers) read the
members' names and addresses (docs/accounts.md, "Who may do what").

After an action that succeeded the browser is sent (303) to the list with `?done=...`, which shows what
happened; a refused action comes back with the service's status and its reason next to what caused it. The
reports of "add several" and of a CSV import are shown at once instead (they are read once, and the rows to
correct must be seen together): counts with ids (`report-invited`, `report-already`, `report-rejected`) and
the rejected rows in `#rejected-rows`, one per line with its number and the reason in the person's language.

"Add several" is a text area with one person per line, "Name; email": `;`, or a tab (what a row copied from
a spreadsheet holds), or else commas separate the cells; the last is the address and the others make the name
("Camille;Martin;camille@..."). Its lines are numbered as shown, blank lines included, so a rejected line
can be found; the lines rejected come back in the text area to correct.
"""

import math
import re
import unicodedata
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.response import Redirect, Template
from pydantic import BaseModel

from gateway.account_pages import account_page
from gateway.api import MAX_UPLOAD_BYTES
from gateway.i18n import N_, gettext, ngettext
from gateway.messages import problem_message
from gateway.portal import FORM, clip, form_status
from gateway.upstream import Upstream
from gateway.web import current_account

PAGE_SIZE = 50
MAX_PEOPLE = 200  # accounts adds at most 200 people in one request
MAX_NAME = MAX_EMAIL = 400  # what accounts' internal API takes for each (it then applies its own rules)
LINE_BREAK = re.compile(r"\r\n|\r|\n")

DONE = {
    "invited": N_("Invitation envoyée : la personne choisit son mot de passe avec le lien reçu."),
    "already": N_("Cette personne fait déjà partie de l'établissement, ou y est déjà invitée."),
    "corrected": N_("Adresse corrigée : l'invitation part à la nouvelle adresse."),
    "reinvited": N_("Invitation envoyée à nouveau."),
    "reset": N_("Lien de réinitialisation du mot de passe envoyé."),
    "role": N_("Rôle modifié."),
    "removed": N_("Membre retiré de l'établissement."),
}
FIELD_OF_CODE = {"name": "name", "email": "email"}  # a rejected single member: its code's prefix names the field


class NewMemberForm(BaseModel):
    name: str = ""
    email: str = ""


class BatchForm(BaseModel):
    people: str = ""


class CorrectionForm(BaseModel):
    email: str = ""
    page: str = "1"


class RoleForm(BaseModel):
    role: str = ""
    page: str = "1"


class PageForm(BaseModel):
    page: str = "1"


def row_message(code: str, fallback: str = "") -> str:
    """A rejected row's reason in the reader's language (the service's English words for a code not known)."""
    return problem_message({"code": code, "detail": fallback or code})


def page_number(value: str | int) -> int:
    """A page number from a query or a form: anything unusable is the first page."""
    try:
        return min(max(int(str(value)[:9]), 1), 100_000)
    except ValueError:
        return 1


def parse_people(text: str) -> tuple[list[tuple[int, str, str]], list[dict[str, Any]]]:
    """The text area's lines as (line, name, email), and the lines that cannot be sent as they are. A line's
    number is its place in the text area (from 1, blank lines counted)."""
    people: list[tuple[int, str, str]] = []
    rejected: list[dict[str, Any]] = []
    for number, line in enumerate(LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        separator = next((s for s in (";", "\t") if s in line), ",")
        cells = [cell.strip() for cell in line.split(separator)]
        while cells and not cells[-1]:
            cells.pop()  # trailing empty cells, as spreadsheets copy them
        if len(cells) < 2:
            code: str | None = "email_missing" if separator in line else "line_format"
        else:  # the address is the last cell; the others make the name ("Camille;Martin;camille@...")
            name, email = " ".join(cell for cell in cells[:-1] if cell), cells[-1]
            code = precheck(name, email)
        if code:
            rejected.append({"line": number, "code": code, "text": line})
        else:
            people.append((number, name, email))
    return people, rejected


def precheck(name: str, email: str) -> str | None:
    """What accounts' internal API would refuse for the whole request (too long, a control character) as the
    row code it means, so that one bad line does not refuse the others; accounts checks everything else."""
    if len(name) > MAX_NAME:
        return "name_too_long"
    if len(email) > MAX_EMAIL or _has_control(email):
        return "email_invalid"
    if _has_control(name):
        return "name_invalid"
    return None


def _has_control(value: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in value)


class MemberPages(Controller):
    path = "/account/members"
    include_in_schema = False

    @get("/")
    async def members(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream, page: str = "1"
    ) -> Template:
        done = request.query_params.get("done")
        notice = gettext(DONE[done]) if done in DONE else None
        return await self._list(request, person, accounts, page_number(page), done_notice=notice)

    # -- adding people --------------------------------------------------------------------------------------

    @post("/add")
    async def add_one(
        self,
        data: Annotated[NewMemberForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        form = NewMemberForm(name=clip(data.name), email=clip(data.email))
        if code := precheck(form.name, form.email):
            field = code.split("_")[0]
            return await self._list(request, person, accounts, 1, 400, add_form=form, add_errors=_one(field, code))
        answer = await self._add(request, person, accounts, [(1, form.name, form.email)], add_form=form)
        if isinstance(answer, Template):
            return answer
        if answer.get("invited"):
            return _done("invited")
        if answer.get("already_members"):
            return _done("already")
        [row] = answer["rejected"]
        field = FIELD_OF_CODE.get(row["code"].split("_")[0], "_form")
        errors = _one(field, row["code"], row.get("message", ""))
        return await self._list(request, person, accounts, 1, 400, add_form=form, add_errors=errors)

    @post("/batch")
    async def add_several(
        self,
        data: Annotated[BatchForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        text = data.people[: MAX_PEOPLE * (MAX_NAME + MAX_EMAIL + 4)]
        people, refused = parse_people(text)
        if not people and not refused:
            errors = {"people": gettext(N_("Écrivez au moins une personne : « Nom ; adresse », une par ligne."))}
            return await self._list(request, person, accounts, 1, 400, batch_text=text, batch_errors=errors)
        if len(people) > MAX_PEOPLE:
            message = gettext(N_("Au plus %(max)d personnes à la fois : importez plutôt un fichier CSV.")) % {
                "max": MAX_PEOPLE
            }
            errors = {"people": message}
            return await self._list(request, person, accounts, 1, 400, batch_text=text, batch_errors=errors)
        if not people:
            report = {"invited": 0, "already_members": 0, "rejected": []}
        else:
            answer = await self._add(request, person, accounts, people, batch_text=text)
            if isinstance(answer, Template):
                return answer
            report = answer
        typed = LINE_BREAK.split(text)
        line_of = {position: line for position, (line, _, _) in enumerate(people, start=1)}  # accounts numbers rows
        rejected = [
            {"line": line_of[row["line"]], "code": row["code"], "text": typed[line_of[row["line"]] - 1], **_reason(row)}
            for row in report["rejected"]
        ] + [{**row, "reason": row_message(row["code"])} for row in refused]
        rejected.sort(key=lambda row: row["line"])
        return await self._report(request, person, accounts, report, rejected, kind="batch")

    @post("/import", request_max_body_size=MAX_UPLOAD_BYTES + 64 * 1024)
    async def import_file(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        account_id = current_account(request, person)
        role = person.get("memberships", {}).get(str(account_id))
        if account_id is None or role != "manager":  # refused before a byte of the file is read, as the API does
            status, code = (403, "forbidden") if role else (404, "not_found")
            return await self._list(request, person, accounts, 1, status, error=problem_message({"code": code}))
        content, code = await _uploaded(request)
        if content is None:
            errors = {"file": row_message(code)}
            return await self._list(request, person, accounts, 1, 413 if code == "file_too_large" else 400,
                                    import_errors=errors)  # fmt: skip
        path = f"/internal/accounts/{account_id}/members/import"
        answer = await accounts.call("POST", path, actor=person["user_id"], content=content, content_type="text/csv")
        if answer.status_code != 200:
            problem = answer.json() if answer.status_code < 500 else {}
            if problem.get("field") == "file":  # the file refused as a whole (accounts.csv_import.UnreadableFile)
                errors = {"file": row_message(str(problem.get("code")), str(problem.get("detail") or ""))}
                return await self._list(request, person, accounts, 1, 400, import_errors=errors)
            return await self._refused(request, person, accounts, answer)
        report = answer.json()
        rejected = [{"line": row["line"], "code": row["code"], **_reason(row)} for row in report["rejected"]]
        return await self._report(request, person, accounts, report, rejected, kind="import")

    # -- one member -----------------------------------------------------------------------------------------

    @post("/{member_id:uuid}/email")
    async def correct_email(
        self,
        member_id: uuid.UUID,
        data: Annotated[CorrectionForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        email = clip(data.email).strip()
        if not email or precheck("", email):
            return await self._row_refused(request, person, accounts, data.page, member_id, 400,
                                           row_message("email_missing" if not email else "email_invalid"),
                                           email)  # fmt: skip
        return await self._member_call(
            request, person, accounts, data.page, member_id, "PATCH", "", {"email": email}, "corrected", email
        )

    @post("/{member_id:uuid}/invitation")
    async def reinvite(
        self,
        member_id: uuid.UUID,
        data: Annotated[PageForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        return await self._member_call(
            request, person, accounts, data.page, member_id, "POST", "/invitation", None, "reinvited"
        )

    @post("/{member_id:uuid}/password-reset")
    async def reset_password(
        self,
        member_id: uuid.UUID,
        data: Annotated[PageForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        return await self._member_call(
            request, person, accounts, data.page, member_id, "POST", "/password-reset", None, "reset"
        )

    @post("/{member_id:uuid}/role")
    async def change_role(
        self,
        member_id: uuid.UUID,
        data: Annotated[RoleForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        if data.role not in ("manager", "member"):
            message = gettext(N_("Choisissez le rôle : gestionnaire ou membre."))
            return await self._row_refused(request, person, accounts, data.page, member_id, 400, message)
        return await self._member_call(
            request, person, accounts, data.page, member_id, "PATCH", "", {"role": data.role}, "role"
        )

    @post("/{member_id:uuid}/removal")
    async def remove(
        self,
        member_id: uuid.UUID,
        data: Annotated[PageForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        return await self._member_call(request, person, accounts, data.page, member_id, "DELETE", "", None, "removed")

    # -- shared ---------------------------------------------------------------------------------------------

    async def _list(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        number: int,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        """The list page (a page of members and the counts), with the forms for managers; `context`: a notice,
        a refusal (`error`, `row_error`), or a form shown again with what was typed and its errors."""
        context = {
            "add_form": NewMemberForm(),
            "add_errors": {},
            "batch_text": "",
            "batch_errors": {},
            "import_errors": {},
            **context,
        }
        account_id = current_account(request, person)
        if account_id is None:
            return await account_page("members.html", request, person, accounts, status_code, state="none", **context)
        offset = (number - 1) * PAGE_SIZE
        path = f"/internal/accounts/{account_id}/members?limit={PAGE_SIZE}&offset={offset}"
        answer = await accounts.call("GET", path, actor=person["user_id"])
        if answer.status_code == 403:  # a plain member: only the managers see the people
            return await account_page("members.html", request, person, accounts, status_code, state="member", **context)
        if answer.status_code != 200:
            problem = answer.json() if answer.status_code < 500 else {"code": "upstream_error"}
            status_code = form_status(answer.status_code)
            context["error"] = problem_message(problem)
            return await account_page("members.html", request, person, accounts, status_code, state="error", **context)
        listing = answer.json()
        return await account_page(
            "members.html",
            request,
            person,
            accounts,
            status_code,
            state="list",
            listing=listing,
            page_number=number,
            pages=max(1, math.ceil(listing["counts"]["total"] / PAGE_SIZE)),
            **context,
        )

    async def _add(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        people: list[tuple[int, str, str]],
        **form: Any,
    ) -> dict[str, Any] | Template:
        """Accounts' report of adding `people` (rows numbered by their place in the list, from 1), or the
        page with the refusal of the whole request (not a manager, address not verified, daily limit...) and
        the `form` shown again as typed."""
        account_id = current_account(request, person)
        if account_id is None:
            error = problem_message({"code": "not_found"})
            return await self._list(request, person, accounts, 1, 404, error=error, **form)
        body = {"members": [{"name": name, "email": email} for _, name, email in people]}
        path = f"/internal/accounts/{account_id}/members"
        answer = await accounts.call("POST", path, body, actor=person["user_id"])
        if answer.status_code == 200:
            report: dict[str, Any] = answer.json()
            return report
        return await self._refused(request, person, accounts, answer, **form)

    async def _member_call(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        page_field: str,
        member_id: uuid.UUID,
        method: str,
        suffix: str,
        body: dict[str, Any] | None,
        done: str,
        typed_email: str = "",
    ) -> Response[Any]:
        """One member's action; the list again (the page the person was on) with what happened."""
        number = page_number(page_field)
        account_id = current_account(request, person)
        if account_id is None:
            message = problem_message({"code": "not_found"})
            return await self._row_refused(request, person, accounts, page_field, member_id, 404, message)
        path = f"/internal/accounts/{account_id}/members/{member_id}{suffix}"
        answer = await accounts.call(method, path, body, actor=person["user_id"])
        if answer.status_code < 300:
            return _done(done, number)
        problem = answer.json() if answer.status_code < 500 else {"code": "upstream_error"}
        refused = await self._row_refused(
            request, person, accounts, page_field, member_id, form_status(answer.status_code),
            _refusal_text(problem), typed_email,
        )  # fmt: skip
        _retry_after(refused, answer)
        return refused

    async def _row_refused(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        page_field: str,
        member_id: uuid.UUID,
        status_code: int,
        message: str,
        typed_email: str = "",
    ) -> Template:
        row_error = {"member_id": str(member_id), "message": message, "email": typed_email}
        return await self._list(
            request, person, accounts, page_number(page_field), status_code, error=message, row_error=row_error
        )

    async def _refused(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        answer: Any,
        **context: Any,
    ) -> Template:
        """The list with a whole request's refusal at the top, in the service's status (Retry-After kept)."""
        problem = answer.json() if answer.status_code < 500 else {"code": "upstream_error"}
        refused = await self._list(
            request, person, accounts, 1, form_status(answer.status_code), error=_refusal_text(problem), **context
        )
        _retry_after(refused, answer)
        return refused

    async def _report(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        report: dict[str, Any],
        rejected: list[dict[str, Any]],
        kind: str,
    ) -> Template:
        """The report of "add several" or of an import; the lines of "add several" rejected are offered again."""
        corrections = "\n".join(row["text"] for row in rejected if row.get("text"))
        return await account_page(
            "members_report.html",
            request,
            person,
            accounts,
            report=report,
            rejected=rejected,
            kind=kind,
            corrections=corrections,
        )


def _one(field: str, code: str, fallback: str = "") -> dict[str, str]:
    return {field if field in ("name", "email") else "_form": row_message(code, fallback)}


def _reason(row: dict[str, Any]) -> dict[str, str]:
    return {"reason": row_message(row["code"], row.get("message", ""))}


def _refusal_text(problem: dict[str, Any]) -> str:
    """The refusal in the reader's language; the daily invitation limit also says how many still fit today."""
    message = problem_message(problem)
    if problem.get("code") == "invitation_limit" and isinstance(problem.get("remaining"), int):
        remaining = problem["remaining"]
        message += " " + ngettext(
            "Aujourd'hui, %(num)d invitation peut encore partir : personne n'a été invité.",
            "Aujourd'hui, %(num)d invitations peuvent encore partir : personne n'a été invité.",
            remaining,
        ) % {"num": remaining}
    return message


def _retry_after(response: Response[Any], answer: Any) -> None:
    if retry_after := answer.headers.get("Retry-After"):
        response.headers["Retry-After"] = retry_after


def _done(what: str, number: int = 1) -> Response[Any]:
    suffix = f"&page={number}" if number > 1 else ""
    return Redirect(f"/account/members?done={what}{suffix}", status_code=303)


async def _uploaded(request: Request[Any, Any, Any]) -> tuple[bytes | None, str]:
    """The CSV file of the import form (its `file` field), or None and why not."""
    try:
        upload = (await request.form()).get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return None, "file_missing"
        content = await upload.read()
        await upload.close()
    except RequestEntityTooLarge:
        return None, "file_too_large"
    if len(content) > MAX_UPLOAD_BYTES:
        return None, "file_too_large"
    return content, ""
