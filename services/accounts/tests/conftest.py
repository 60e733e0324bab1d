import os

import pytest

from contracts.examples import EXAMPLE_KEYRING
from servicekit.db import Database
from servicekit.migrations import upgrade

# accounts seals the tokens of its events with this keyring; the tests open them with it (accounts_world.opened)
os.environ.setdefault("ACCOUNTS_EVENT_SECRET_KEYS", EXAMPLE_KEYRING.to_text())


@pytest.fixture
async def db(fresh_database):
    """A fresh accounts database, migrated."""
    database = Database(fresh_database)
    await upgrade(database, "accounts")
    yield database
    await database.dispose()
