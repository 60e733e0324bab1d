"""A service process: database, migrations, Kafka broker, outbox relay, consumers and HTTP app, wired once."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any, Protocol

import uvicorn
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from litestar import Litestar
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.types import ExceptionHandlersMap
from prometheus_client import REGISTRY
from pydantic import SecretStr

from contracts import TOPICS, Event, topics_read_by, topics_written_by
from servicekit import migrations
from servicekit.consumer import BatchHandler, Consumer, DeadLetters, Handler, Prepare
from servicekit.db import POOL_USAGE, Database
from servicekit.http import (
    allow_middleware,
    correlation_middleware,
    health_routes,
    internal_token_guard,
    problem_response,
    prometheus_config,
)
from servicekit.inputs import CheckedRequest
from servicekit.kafka import ensure_topics
from servicekit.logs import configure_logging
from servicekit.outbox import Outbox, OutboxRelay
from servicekit.settings import ServiceSettings

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 90.0
LAG_MEASURE_SECONDS = 10.0  # consumer lag is asked of Kafka this often (a Prometheus scrape every 15 s by default)


class Service:
    def __init__(
        self, settings: ServiceSettings, *, migrations_package: str | None, registry_name: str | None = None
    ) -> None:
        """`registry_name`: the service's name in the topic registry (contracts.TOPICS); it creates at start the
        topics it writes and reads, the only ones its Kafka principal may create. None: every topic (tests)."""
        self.settings = settings
        self.name = settings.service_name
        self.registry_name = registry_name
        self.kafka = settings.kafka()
        self.migrations_package = migrations_package
        self.db = Database(settings.database_url, pool_size=settings.database_pool_size)
        # Consumers apply batches on a pool of their own, so that a burst of events never starves HTTP requests.
        self.consumer_db = Database(settings.database_url, pool_size=settings.consumer_pool_size)
        POOL_USAGE.watch(self.name, "http", self.db)
        POOL_USAGE.watch(self.name, "consumers", self.consumer_db)
        self.outbox = Outbox(self.name)
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            security=self.kafka.faststream_security(),
            middlewares=[KafkaPrometheusMiddleware(registry=REGISTRY, app_name=self.name)],
            logger=logging.getLogger(f"{self.name}.kafka"),
        )
        self.dead_letters = DeadLetters(self.kafka)
        self.consumers: list[Consumer] = []
        self.background: list[Callable[[], Awaitable[None]]] = []
        self.relay = OutboxRelay(
            settings.database_url,
            self.kafka,
            service=self.name,
            poll_seconds=settings.relay_poll_seconds,
            batch_size=settings.relay_batch_size,
        )
        self._tasks: list[asyncio.Task[None]] = []

    def consume(
        self,
        topic: str,
        name: str,
        events: Collection[type[Event]] | None = None,
        prepare: Prepare | None = None,
        batch_handler: BatchHandler | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register a handler for `events` of `topic` (all of them when None), in consumer group service.name;
        `prepare` runs first in each of its transactions, `batch_handler` takes whole batches on their first
        attempt (servicekit.consumer)."""

        def register(handler: Handler) -> Handler:
            consumer = Consumer(
                service=self.name,
                name=name,
                topic=topic,
                handler=handler,
                events=events,
                db=self.consumer_db,
                dead_letters=self.dead_letters,
                batch_size=self.settings.consumer_batch_size,
                max_attempts=self.settings.consumer_max_attempts,
                backoff_seconds=self.settings.consumer_backoff_seconds,
                prepare=prepare,
                batch_handler=batch_handler,
            )
            consumer.subscribe(self.broker)
            self.consumers.append(consumer)
            return handler

        return register

    def run_in_background(self, loop: Callable[[], Awaitable[None]]) -> None:
        self.background.append(loop)

    async def start(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        await until_ready("database", self.db.ping, deadline)
        if self.migrations_package:
            await migrations.upgrade(self.db, self.migrations_package)
        await until_ready(
            "kafka",
            lambda: ensure_topics(
                self.kafka,
                self._topics(),
                self.settings.topic_partitions,
                self.settings.topic_replication_factor,
            ),
            deadline,
        )
        await until_ready("kafka broker", self.broker.start, deadline)
        if self.settings.relay_enabled:
            self._spawn(self.relay.run)
        if self.consumers:
            self._spawn(self._measure_lag_forever)
        for loop in self.background:
            self._spawn(loop)
        log.info("%s started", self.name)

    def _topics(self) -> list[str]:
        if self.registry_name is None:
            return [name for topic in TOPICS.values() for name in (topic.name, topic.dlq)]
        return topics_written_by(self.registry_name) + topics_read_by(self.registry_name)

    async def _measure_lag_forever(self) -> None:
        while True:
            for consumer in self.consumers:
                try:
                    await consumer.measure_lag()
                except Exception as exc:  # Kafka away or a rebalance under way: measured again next time
                    log.debug("consumer lag of %s not measured: %r", consumer.group, exc)
            await asyncio.sleep(LAG_MEASURE_SECONDS)

    def _spawn(self, loop: Callable[[], Awaitable[None]]) -> None:
        async def guarded() -> None:
            await loop()

        self._tasks.append(asyncio.create_task(guarded(), name=f"{self.name}:{loop}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for consumer in self.consumers:
            await consumer.close()
        await self.broker.stop()
        await self.dead_letters.close()
        await self.db.dispose()
        await self.consumer_db.dispose()

    async def ready(self) -> None:
        await self.db.ping()
        if not await self.broker.ping(timeout=2.0):
            raise ConnectionError("kafka unreachable")

    def http_app(
        self,
        route_handlers: Sequence[Any],
        *,
        dependencies: dict[str, Any] | None = None,
        title: str | None = None,
        exception_handlers: "ExceptionHandlersMap | None" = None,
    ) -> Litestar:
        """`exception_handlers`: the service's own, e.g. its domain errors as problem details."""

        @contextlib.asynccontextmanager
        async def lifespan(_: Litestar) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        return build_http_app(
            self.name,
            [*route_handlers],
            checks={"database": self.db.ping, "kafka": self._kafka_ready},
            dependencies={"service": Provide(lambda: self, sync_to_thread=False), **(dependencies or {})},
            lifespan=[lifespan],
            title=title,
            guards=[internal_token_guard(_secret(self.settings.internal_token))],
            exception_handlers=exception_handlers,
        )

    async def _kafka_ready(self) -> None:
        if not await self.broker.ping(timeout=2.0):
            raise ConnectionError("kafka unreachable")


LITESTAR_LOGGING = LoggingConfig(
    configure_root_logger=False, loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}}
)


def build_http_app(
    name: str,
    route_handlers: list[Any],
    *,
    checks: dict[str, Callable[[], Awaitable[None]]],
    dependencies: dict[str, Any] | None = None,
    lifespan: list[Any] | None = None,
    title: str | None = None,
    exception_handlers: "ExceptionHandlersMap | None" = None,
    metrics_route: bool = True,
    **options: Any,
) -> Litestar:
    """`options`: more of Litestar's, e.g. an `openapi_config` of the service's own; `middleware` there runs inside
    the kit's own (correlation id, Allow, metrics). `metrics_route=False`: no `/metrics` on this app (the gateway's
    public port; it serves its registry on an internal listener)."""
    metrics = prometheus_config(name)
    options.setdefault("request_class", CheckedRequest)  # JSON bodies checked before they are parsed
    # Litestar would replace the root logger's handlers and give its own logger a plain one (full exception
    # text); its lines go to servicekit.logs' JSON handler like everyone's instead.
    options.setdefault("logging_config", LITESTAR_LOGGING)
    return Litestar(
        route_handlers=[*route_handlers, *health_routes(checks, metrics=metrics_route)],
        dependencies=dependencies or {},
        lifespan=lifespan or [],
        middleware=[correlation_middleware, allow_middleware, metrics.middleware, *options.pop("middleware", ())],
        exception_handlers={Exception: problem_response, **(exception_handlers or {})},
        openapi_config=options.pop("openapi_config", None)
        or OpenAPIConfig(title=title or f"Visiopass {name}", version="1.0.0"),
        **options,
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


async def until_ready(what: str, attempt: Callable[[], Awaitable[Any]], deadline: float) -> None:
    delay = 0.25
    while True:
        try:
            await attempt()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready in time: {exc!r}") from exc
            log.info("waiting for %s: %r", what, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)


KEEP_ALIVE_SECONDS = 75


class ProcessSettings(Protocol):
    service_name: str
    log_level: str
    http_host: str
    http_port: int


def serve(app: Litestar, settings: ProcessSettings) -> None:
    configure_logging(settings.service_name, settings.log_level)
    # proxy_headers=False: uvicorn would otherwise take X-Forwarded-For from any local peer as the client's
    # address; the gateway decides whom to believe (GATEWAY_TRUSTED_PROXIES, gateway.source).
    # timeout_keep_alive: an idle connection must outlive its callers' pools (httpx keeps one 5 s, a proxy such
    # as ingress-nginx 60 s); with uvicorn's default of 5 s the server could close a connection just as a caller
    # sent the next request on it, which then failed ("Server disconnected without sending a response").
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
