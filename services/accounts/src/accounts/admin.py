"""Operator commands: `python -m accounts.admin grant-organiser|revoke-organiser EMAIL`.

The first organiser can only come from here (organisers grant the role to others through the API). It uses
the service's own settings (ACCOUNTS_DATABASE_URL)."""

import argparse
import asyncio

from accounts import access
from accounts.credentials import user_by_email
from accounts.errors import AccountsError
from accounts.settings import AccountsSettings
from servicekit.db import Database


async def set_organiser(email: str, organiser: bool) -> str:
    database = Database(AccountsSettings().database_url)
    try:
        async with database.transaction() as session:
            user = await user_by_email(session, email)
            if user is None:
                return f"no user has the address {email}"
            await access.set_organiser(session, None, user.id, organiser)
            return f"{user.email} is {'now' if organiser else 'no longer'} an organiser"
    except AccountsError as exc:
        return exc.message() or exc.title
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m accounts.admin", description=__doc__)
    parser.add_argument("command", choices=["grant-organiser", "revoke-organiser"])
    parser.add_argument("email")
    arguments = parser.parse_args()
    print(asyncio.run(set_organiser(arguments.email, arguments.command == "grant-organiser")))


if __name__ == "__main__":
    main()
