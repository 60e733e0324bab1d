"""Which errors are the infrastructure's (fetch the records again later) and which are the event's (retry, then
dead-letter): a good event must never be dead-lettered because the database was going away."""

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.exc import DBAPIError, IntegrityError

from servicekit.consumer import is_infrastructure_error


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate",
    ["57P01", "57P02", "57P03", "08006", "08003", "53300", "40P01", "40001"],
    ids=[
        "admin shutdown",
        "crash shutdown",
        "cannot connect now",
        "connection failure",
        "no connection",
        "full",
        "deadlock",  # the transaction lost a race: applied again later, never dead-lettered
        "serialization failure",
    ],
)
def test_a_database_going_away_is_the_infrastructures_fault(sqlstate: str) -> None:
    assert is_infrastructure_error(DBAPIError("SELECT 1", {}, DriverError(sqlstate)))


@pytest.mark.parametrize("sqlstate", ["23505", "22001", "42P01"], ids=["unique", "too long", "no table"])
def test_an_error_in_what_the_handler_does_is_the_events(sqlstate: str) -> None:
    assert not is_infrastructure_error(IntegrityError("INSERT", {}, DriverError(sqlstate)))


def test_network_and_kafka_errors_are_the_infrastructures() -> None:
    assert is_infrastructure_error(ConnectionResetError())
    assert is_infrastructure_error(KafkaConnectionError())
    assert not is_infrastructure_error(ValueError("no rule for this event"))
