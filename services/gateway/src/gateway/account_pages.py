"""The pages of "Mon compte" (docs/portal.md): the dashboard, Mes informations (the institution), the person's own
page (name, language, email, password, sessions, API tokens) and Confidentialité (export, closure).

Which institution is shown comes from `current_account` (the person's own memberships, never a form); every call
goes to accounts' internal API for `person["user_id"]`, which decides (404 for what is not theirs, 403 for a
member where a manager is needed). A person of no institution (an organiser only) is pointed to the back-office.
A refused form comes back with what was typed (never a password) and the problem next to its field; a form
that worked redirects (303) to its page with `?done=…`, except the new API token, whose secret is shown once on
the answer to the POST and is never put in a URL."""

import asyncio
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.response import Redirect, Template
from pydantic import BaseModel

from gateway import i18n
from gateway.dashboard import Sources, build_dashboard
from gateway.messages import form_errors, problem_message
from gateway.portal import FORM, clip, cookie_secure, form_status, page
from gateway.upstream import Upstream
from gateway.web import ACCOUNT_COOKIE, current_account, end_web_session, remember_language, safe_next
from servicekit.http import ProblemError

ACCOUNT_COOKIE_SECONDS = 365 * 24 * 3600


async def account_page(
    template: str,
    request: Request[Any, Any, Any],
    person: dict[str, Any],
    accounts: Upstream,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """A page of "Mon compte": `page()` with the institution shown (`account_id`, `role`) and, for a person of
    several institutions, the switcher's choices (`institutions`) that account_layout.html shows on every tab."""
    account_id = current_account(request, person)
    role = person.get("memberships", {}).get(str(account_id)) if account_id else None
    return page(
        template,
        person,
        status_code,
        account_id=account_id,
        role=role,
        institutions=await institutions_of(person, accounts),
        **context,
    )


async def institutions_of(person: dict[str, Any], accounts: Upstream) -> list[dict[str, Any]]:
    """The person's institutions with their names, for the switcher; none when they belong to one or none (no
    choice to offer, no call made)."""
    memberships: dict[str, str] = person.get("memberships", {})
    if len(memberships) < 2:
        return []

    async def named(account_id: str) -> dict[str, Any]:
        answer = await accounts.call("GET", f"/internal/accounts/{account_id}/profile", actor=person["user_id"])
        name = answer.json().get("name") if answer.status_code == 200 else None
        return {"account_id": account_id, "name": name or account_id, "role": memberships[account_id]}

    return sorted(await asyncio.gather(*map(named, memberships)), key=lambda institution: institution["name"].lower())


class SwitchForm(BaseModel):
    account_id: str = ""
    next: str = "/account"


class ProfileForm(BaseModel):
    name: str = ""
    contact_name: str = ""
    phone: str = ""
    city: str = ""
    postal_address: str = ""
    billing_address: str = ""
    vat_number: str = ""


PROFILE_FIELDS = tuple(ProfileForm.model_fields)


class SettingsForm(BaseModel):
    name: str = ""
    language: str = "fr"


class EmailChangeForm(BaseModel):
    new_email: str = ""
    password: str = ""


class PasswordChangeForm(BaseModel):
    current_password: str = ""
    new_password: str = ""


class ApiTokenForm(BaseModel):
    token_name: str = ""  # not `name`: the person's own name is a field of the same page
    scope: str = "read"
    expires_in_days: str = ""


class ClosureForm(BaseModel):
    password: str = ""


def managed_account(request: Request[Any, Any, Any], person: dict[str, Any]) -> uuid.UUID | None:
    """The institution shown, if the person manages it."""
    account_id = current_account(request, person)
    return account_id if account_id and person["memberships"].get(str(account_id)) == "manager" else None


def ensure_managed_account(request: Request[Any, Any, Any], person: dict[str, Any]) -> uuid.UUID:
    """The institution shown, for a form only its managers may send: 404 to a person of none, 403 to a member
    (as accounts answers; it still decides)."""
    account_id = current_account(request, person)
    if account_id is None:
        raise NotFoundException
    if person["memberships"].get(str(account_id)) != "manager":
        raise PermissionDeniedException("Only the account's managers can do this.")
    return account_id


class AccountPages(Controller):
    path = "/account"
    include_in_schema = False

    # -- the dashboard, the switcher, the join requests ----------------------------------------------------

    @get("/")
    async def dashboard(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream, dashboard_sources: Sources
    ) -> Template:
        account_id = current_account(request, person)
        parts = None
        if account_id is not None:
            try:
                parts = await build_dashboard(person, account_id, dashboard_sources)
            except ProblemError:  # no longer theirs (removed a moment ago): the page without the parts
                parts = None
        answer = await accounts.call("GET", f"/internal/users/{person['user_id']}/invitations")
        invitations = answer.json() if answer.status_code == 200 else []
        return await account_page(
            "account_dashboard.html", request, person, accounts, parts=parts, invitations=invitations
        )

    @post("/switch")
    async def switch(
        self, data: Annotated[SwitchForm, FORM], request: Request[Any, Any, Any], person: dict[str, Any]
    ) -> Response[Any]:
        """Look at another of one's institutions; an institution that is not the person's is not chosen."""
        response: Response[Any] = Redirect(safe_next(data.next), status_code=303)
        if data.account_id in person.get("memberships", {}):
            response.set_cookie(
                ACCOUNT_COOKIE,
                data.account_id,
                max_age=ACCOUNT_COOKIE_SECONDS,
                httponly=True,
                secure=cookie_secure(request),
                samesite="lax",
                path="/",
            )
        return response

    @post("/invitations/{account_id:uuid}/acceptance")
    async def accept_invitation(
        self, account_id: uuid.UUID, person: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        answer = await accounts.call("POST", f"/internal/users/{person['user_id']}/invitations/{account_id}/acceptance")
        return Redirect(
            "/account?done=" + ("joined" if answer.status_code == 200 else "invitation_gone"), status_code=303
        )

    @post("/invitations/{account_id:uuid}/refusal")
    async def decline_invitation(
        self, account_id: uuid.UUID, person: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        answer = await accounts.call("DELETE", f"/internal/users/{person['user_id']}/invitations/{account_id}")
        done = "declined" if answer.status_code == 204 else "invitation_gone"
        return Redirect(f"/account?done={done}", status_code=303)

    # -- Mes informations: the institution --------------------------------------------------------------------

    @get("/information")
    async def information(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream
    ) -> Template:
        profile = await self._profile(request, person, accounts)
        form = ProfileForm(**{name: profile.get(name) or "" for name in PROFILE_FIELDS}) if profile else None
        return await account_page(
            "account_information.html", request, person, accounts, profile=profile, form=form, errors={}
        )

    @post("/information")
    async def edit_information(
        self,
        data: Annotated[ProfileForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        account_id = current_account(request, person)
        if account_id is None:
            raise NotFoundException
        # An empty optional field clears it; the name is required (accounts refuses an empty one).
        changes = {name: clip(getattr(data, name)).strip() or None for name in PROFILE_FIELDS}
        changes["name"] = changes["name"] or ""
        path = f"/internal/accounts/{account_id}/profile"
        answer = await accounts.call("PATCH", path, changes, actor=person["user_id"])
        if answer.status_code == 200:
            return Redirect("/account/information?done=saved", status_code=303)
        profile = await self._profile(request, person, accounts)
        errors = form_errors(answer.json(), PROFILE_FIELDS)
        return await account_page(
            "account_information.html",
            request,
            person,
            accounts,
            form_status(answer.status_code),
            profile=profile,
            form=data,
            errors=errors,
        )

    async def _profile(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream
    ) -> dict[str, Any] | None:
        account_id = current_account(request, person)
        if account_id is None:
            return None
        answer = await accounts.call("GET", f"/internal/accounts/{account_id}/profile", actor=person["user_id"])
        if answer.status_code != 200:
            raise NotFoundException
        profile: dict[str, Any] = answer.json()
        return profile

    # -- the person: name and language, email, password, sessions, API tokens ---------------------------------

    @get("/me")
    async def me(self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream) -> Template:
        return await self._me_page(request, person, accounts)

    async def _me_page(
        self,
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
        status_code: int = 200,
        **context: Any,
    ) -> Template:
        account_id = managed_account(request, person)
        tokens = None
        if account_id is not None:
            answer = await accounts.call("GET", f"/internal/accounts/{account_id}/api-tokens", actor=person["user_id"])
            tokens = answer.json() if answer.status_code == 200 else None
        values = {
            "settings": SettingsForm(name=person["name"], language=person["language"]),
            "email_form": EmailChangeForm(),
            "token_form": ApiTokenForm(),
            "errors": {},
            "created_token": None,
        } | context
        return await account_page(
            "account_me.html", request, person, accounts, status_code, tokens=tokens, token_account=account_id, **values
        )

    @post("/me")
    async def save_settings(
        self,
        data: Annotated[SettingsForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        language = i18n.language_or_default(data.language)
        body = {"name": clip(data.name), "language": language}
        answer = await accounts.call("PATCH", f"/internal/users/{person['user_id']}", body)
        if answer.status_code != 200:
            errors = form_errors(answer.json(), ("name",))
            return await self._me_page(
                request, person, accounts, form_status(answer.status_code), settings=data, errors=errors
            )
        response: Response[Any] = Redirect("/account/me?done=saved", status_code=303)
        remember_language(response, language, cookie_secure(request))
        return response

    @post("/me/email")
    async def change_email(
        self,
        data: Annotated[EmailChangeForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        body = {"password": clip(data.password), "new_email": clip(data.new_email).strip()[:320]}
        answer = await accounts.call("POST", f"/internal/users/{person['user_id']}/email-change", body)
        if answer.status_code == 202:
            return Redirect("/account/me?done=email_sent", status_code=303)
        problem = answer.json()
        errors = form_errors(problem, ("new_email", "password"))
        if problem.get("code") == "wrong_password":
            errors = {"password": problem_message(problem)}
        form = EmailChangeForm(new_email=data.new_email[:320])
        return await self._me_page(
            request, person, accounts, form_status(answer.status_code), email_form=form, errors=errors
        )

    @post("/me/password")
    async def change_password(
        self,
        data: Annotated[PasswordChangeForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        """The person's other sessions end (accounts); this one stays open, so they stay logged in here."""
        body = {
            "current_password": clip(data.current_password),
            "new_password": clip(data.new_password),
            "session_id": person["session_id"],
        }
        answer = await accounts.call("POST", f"/internal/users/{person['user_id']}/password", body)
        if answer.status_code == 200:
            return Redirect("/account/me?done=password", status_code=303)
        problem = answer.json()
        field = "current_password" if problem.get("code") in ("wrong_password", "too_many_attempts") else "new_password"
        errors = {field: problem_message(problem)}
        return await self._me_page(request, person, accounts, form_status(answer.status_code), errors=errors)

    @post("/me/api-tokens")
    async def create_api_token(
        self,
        data: Annotated[ApiTokenForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        """The new token's secret is in this answer only (never in a URL, never shown again)."""
        account_id = ensure_managed_account(request, person)
        days = data.expires_in_days.strip()
        body = {
            "name": clip(data.token_name),
            "scope": data.scope if data.scope in ("read", "read_write") else "read",
            "expires_in_days": int(days) if days.isdigit() and len(days) < 5 else None,
        }
        if days and body["expires_in_days"] is None:
            errors = {"expires_in_days": i18n.gettext("Indiquez un nombre de jours entre 1 et 366, ou rien.")}
            return await self._me_page(request, person, accounts, 400, token_form=data, errors=errors)
        answer = await accounts.call(
            "POST", f"/internal/accounts/{account_id}/api-tokens", body, actor=person["user_id"]
        )
        if answer.status_code == 201:
            return await self._me_page(request, person, accounts, created_token=answer.json())
        problem = answer.json()
        errors = {"token_name" if problem.get("field") == "name" else "_form": problem_message(problem)}
        return await self._me_page(
            request, person, accounts, form_status(answer.status_code), token_form=data, errors=errors
        )

    @post("/me/api-tokens/{token_id:uuid}/revocation")
    async def revoke_api_token(
        self, token_id: uuid.UUID, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        account_id = ensure_managed_account(request, person)
        path = f"/internal/accounts/{account_id}/api-tokens/{token_id}"
        answer = await accounts.call("DELETE", path, actor=person["user_id"])
        if answer.status_code == 404:
            raise NotFoundException
        return Redirect("/account/me?done=token_revoked#api-tokens", status_code=303)

    # -- Confidentialité: export and closure -----------------------------------------------------------------

    @get("/privacy")
    async def privacy(self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream) -> Template:
        return await account_page("account_privacy.html", request, person, accounts, errors={})

    @get("/privacy/export")
    async def export(
        self, request: Request[Any, Any, Any], person: dict[str, Any], accounts: Upstream
    ) -> Response[Any]:
        """The GDPR export as a file (its managers), as the JSON API gives it."""
        account_id = ensure_managed_account(request, person)
        answer = await accounts.call("GET", f"/internal/accounts/{account_id}/export", actor=person["user_id"])
        if answer.status_code != 200:
            raise NotFoundException
        return Response(
            answer.content,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="visiopass-account-{account_id}.json"'},
        )

    @post("/privacy/closure")
    async def close(
        self,
        data: Annotated[ClosureForm, FORM],
        request: Request[Any, Any, Any],
        person: dict[str, Any],
        accounts: Upstream,
    ) -> Response[Any]:
        """Close the institution's account (its manager, with their password); the person's web session ends here,
        whatever accounts erased, and the confirmation page follows."""
        account_id = ensure_managed_account(request, person)
        path = f"/internal/accounts/{account_id}/closure"
        answer = await accounts.call("POST", path, {"password": clip(data.password)}, actor=person["user_id"])
        if answer.status_code != 200:
            errors = {"password": problem_message(answer.json())}
            return await account_page(
                "account_privacy.html", request, person, accounts, form_status(answer.status_code), errors=errors
            )
        await accounts.call("DELETE", f"/internal/sessions/{person['session_id']}")
        response: Response[Any] = Redirect("/account-closed", status_code=303)
        end_web_session(response)
        return response


class ClosedPage(Controller):
    include_in_schema = False

    @get("/account-closed")
    async def closed(self, visitor: dict[str, Any] | None) -> Template:
        """Where a closed account's manager lands, logged out (a public page: nothing on it is theirs)."""
        return page("account_closed.html", visitor)
