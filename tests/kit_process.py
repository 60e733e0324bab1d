"""kit's relay and consumer as processes of their own, for tests that kill them (SIGKILL skips every `finally`).

    python tests/kit_process.py relay --database-url URL --bootstrap HOST:PORT [--request-timeout-ms N]
    python tests/kit_process.py consumer --database-url URL --bootstrap HOST:PORT --group NAME --keys-file F
        [--broken-keys-file F] [--trap-seq N --trap-file PATH]

The relay publishes the database's outbox (service `kit-test`). The consumer (group `kit-test.<NAME>`, on
kit.TOPIC) records in `effects` the events whose key is a line of `--keys-file`, with kit's recording handler;
it raises ValueError for a key listed in `--broken-keys-file` (read again for every event, so a test can
heal the handler while the process runs). With a trap, the first of its events with sequence number N is
recorded in the open transaction, then the process writes the event id to `--trap-file` and hangs there
(events of other partitions go on): the test can kill it in the middle of a batch, its transaction open.
"""

import argparse
import asyncio
import inspect
import logging
import sys
from pathlib import Path

from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import Envelope
from kit import TOPIC, recording_handler, seq_of
from servicekit.consumer import Consumer, DeadLetters
from servicekit.db import Database
from servicekit.outbox import OutboxRelay

SERVICE = "kit-test"
log = logging.getLogger("kit_process")


async def run_relay(args: argparse.Namespace) -> None:
    options = {}
    if args.request_timeout_ms is not None:
        if "request_timeout_ms" in inspect.signature(OutboxRelay).parameters:
            options["request_timeout_ms"] = args.request_timeout_ms
        else:
            log.warning("this OutboxRelay takes no request_timeout_ms: its producer keeps its own timeout")
    relay = OutboxRelay(args.database_url, args.bootstrap, service=SERVICE, poll_seconds=args.poll_seconds, **options)
    log.info("relay running (%s)", options or "default options")
    await relay.run()


def trapped_handler(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    keys = set(Path(args.keys_file).read_text().split())
    record = recording_handler(keys)
    broken_file = Path(args.broken_keys_file) if args.broken_keys_file else None
    trap_file = Path(args.trap_file) if args.trap_file else None

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        if envelope.subject not in keys:
            return
        if broken_file is not None and envelope.subject in broken_file.read_text().split():
            raise ValueError(f"poison event {envelope.id} (key {envelope.subject} is listed as broken)")
        await record(session, envelope)
        if trap_file is not None and seq_of(envelope.event) == args.trap_seq and not trap_file.exists():
            trap_file.write_text(f"{envelope.id}\n")
            log.info("trapped at event %s (seq %d): hanging until killed", envelope.id, args.trap_seq)
            await asyncio.Event().wait()

    return handle


async def run_consumer(args: argparse.Namespace) -> None:
    db = Database(args.database_url)
    broker = KafkaBroker(args.bootstrap, log_level=logging.DEBUG)
    consumer = Consumer(
        service=SERVICE,
        name=args.group,
        topic=TOPIC,
        handler=trapped_handler(args),
        events=None,
        db=db,
        dead_letters=DeadLetters(args.bootstrap),
        max_attempts=3,
        backoff_seconds=0.05,
    )
    consumer.subscribe(broker)
    await broker.start()
    log.info("consumer %s.%s running", SERVICE, args.group)
    await asyncio.Event().wait()  # until killed: no clean shutdown is ever needed here


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", choices=["relay", "consumer"])
    parser.add_argument("--database-url", required=True, help="SQLAlchemy URL (postgresql+asyncpg://...)")
    parser.add_argument("--bootstrap", required=True, help="Kafka HOST:PORT")
    parser.add_argument("--poll-seconds", type=float, default=0.5, help="relay: poll period besides NOTIFY")
    parser.add_argument("--request-timeout-ms", type=int, help="relay: the Kafka producer's request timeout")
    parser.add_argument("--group", help="consumer: the group's name (group id kit-test.<NAME>)")
    parser.add_argument("--keys-file", help="consumer: the keys whose events it records, one a line")
    parser.add_argument("--broken-keys-file", help="consumer: keys whose events make the handler raise")
    parser.add_argument("--trap-seq", type=int, help="consumer: hang at the first event with this seq")
    parser.add_argument("--trap-file", help="consumer: written (the event id) when the trap springs")
    args = parser.parse_args()
    if args.role == "consumer" and not (args.group and args.keys_file):
        parser.error("consumer needs --group and --keys-file")
    if (args.trap_seq is None) != (args.trap_file is None):
        parser.error("--trap-seq and --trap-file go together")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(run_relay(args) if args.role == "relay" else run_consumer(args))


if __name__ == "__main__":
    main()
