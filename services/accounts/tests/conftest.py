import pytest

from servicekit.db import Database
from servicekit.migrations import upgrade


@pytest.fixture
async def db(fresh_database):
    """A fresh accounts database, migrated."""
    database = Database(fresh_database)
    await upgrade(database, "accounts")
    yield database
    await database.dispose()
