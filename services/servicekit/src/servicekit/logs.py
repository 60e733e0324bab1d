"""JSON-lines logging with the service name and the correlation / event ids of the current flow.

Nothing personal or secret is logged: database and validation errors carry the values they were given (a
password hash in an INSERT, an email in a unique-key DETAIL, a field's input), so their text is replaced by
their kind wherever they would be printed: in a traceback, or as an argument of a message. Security events
(`security_event`) are structured lines of their own, with ids rather than addresses or names."""

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from servicekit import context

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Errors whose text repeats the values they were handed: SQL parameters, constraint details, field inputs.
_TELLTALE_MODULES = ("sqlalchemy", "asyncpg", "psycopg", "pydantic", "pydantic_core")

security_log = logging.getLogger("security")


def _telltale(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in _TELLTALE_MODULES


def safe_error_text(exc: BaseException) -> str:
    """`exc`'s type and, unless its text may hold the values it was given, its text. A database error keeps
    its SQLSTATE and constraint, which say what went wrong without saying with what."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    if not _telltale(exc):
        return f"{kind}: {exc}"
    orig = getattr(exc, "orig", None) or exc
    known = {
        name: value
        for name in ("sqlstate", "constraint_name", "table_name", "column_name")
        if (value := getattr(orig, name, None) or getattr(exc, name, None))
    }
    if hasattr(exc, "errors") and callable(exc.errors):  # pydantic: where and what, never the input
        try:
            known["errors"] = [(e.get("loc"), e.get("type")) for e in exc.errors(include_input=False)]
        except TypeError:
            pass
    detail = " ".join(f"{name}={value}" for name, value in known.items())
    return f"{kind}: [text withheld: it may hold personal data]{' ' + detail if detail else ''}"


def safe_traceback(exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> str:
    """A traceback as Python prints it, each exception of the chain shown by `safe_error_text`."""
    chain: list[tuple[BaseException, str]] = []
    link = ""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append((exc, link))
        if exc.__cause__ is not None:
            exc, link = exc.__cause__, "\nThe above exception was the direct cause of the following exception:\n\n"
        elif exc.__context__ is not None and not exc.__suppress_context__:
            exc, link = exc.__context__, "\nDuring handling of the above exception, another exception occurred:\n\n"
        else:
            exc = None
    parts: list[str] = []
    for error, link_after in reversed(chain):
        frames = "".join(traceback.format_tb(error.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{safe_error_text(error)}\n")
        if link_after:
            parts.append(link_after)
    return "".join(parts).rstrip("\n")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            if any(isinstance(arg, BaseException) and _telltale(arg) for arg in args):
                record.args = tuple(
                    safe_error_text(arg) if isinstance(arg, BaseException) and _telltale(arg) else arg for arg in args
                )
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": context.correlation_id.get(),
            "event_id": context.event_id.get(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = safe_traceback(*record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def security_event(name: str, *, outcome: str, **fields: Any) -> None:
    """Log one security event (ASVS V7.2) as a structured line: `security_event` is its name (login_failed,
    access_denied, ...), `outcome` what was decided (refused, locked, changed, ...), and `fields` who and
    what: `user_id` (the actor), `account_id`, `target_user_id`, `source` (the client's address). Callers
    pass ids, never a password, a token, an email address or a name; keys that look like one are dropped
    here too, as a second line of defence. `source` defaults to the request's client address (context)."""
    fields.setdefault("source", context.client_address.get())
    safe = {
        key: value
        for key, value in fields.items()
        if value is not None and not any(word in key for word in _SECRET_KEYS)
    }
    security_log.warning(
        "security event: %s (%s)", name, outcome, extra={"security_event": name, "outcome": outcome, **safe}
    )


_SECRET_KEYS = ("password", "token", "secret", "hash", "email", "name", "cookie")


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Litestar's own logger gets a plain handler of its own (full exception text): ours instead.
    for name in ("uvicorn", "uvicorn.error", "faststream", "faststream.access.kafka", "litestar"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
