"""`make up`: the infrastructure and the six services on this machine, in the foreground until Ctrl-C."""

import signal
import sys
import time
from pathlib import Path

from devstack import Stack
from system import System


def main() -> int:
    started = time.monotonic()
    stack = Stack.from_env()
    system = System(stack, log_dir=Path(stack.state_dir) / "service-logs")
    system.keep_secrets(Path(stack.state_dir) / "secrets.json")

    def request_stop(signum: int, _frame: object) -> None:
        # A second Ctrl-C or SIGTERM (uv and make forward signals too) must not cut the clean stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        print("starting Kafka, PostgreSQL and the SMTP catcher ...", flush=True)
        stack.start()
        print("starting accounts, billing, catalogue, enrollment, notifier, gateway ...", flush=True)
        system.start()
        elapsed = time.monotonic() - started
        print(
            f"\nVisiopass is up ({elapsed:.1f}s).\n"
            f"  portal and public API   {system.url('gateway')}   (OpenAPI: {system.url('gateway')}/schema)\n"
            f"  sign up, then log in    {system.url('gateway')}/signup   (its confirmation link: captured emails)\n"
            f"  planning                {system.url('gateway')}/planning   (organisers: /back-office/sessions)\n"
            f"  captured emails         {stack.mail_api}\n"
            f"  Kafka                   {stack.kafka_bootstrap}\n"
            f"  PostgreSQL              {stack.database_url('<service>')}\n"
            f"  service logs            {system.log_dir}\n"
            f"  metrics                 http://127.0.0.1:<port>/metrics of each service; the gateway's: "
            f"{system.metrics_url('gateway')}\n"
            "The first organiser (back-office): ACCOUNTS_DATABASE_URL="
            f"{stack.database_url('accounts')} uv run python -m accounts.admin grant-organiser EMAIL\n"
            "Ctrl-C stops everything.",
            flush=True,
        )
        while True:
            for name, process in system.processes.items():
                if process.poll() is not None:
                    print(f"{name} exited ({process.returncode}); last lines:\n{system.log_tail(name)}", flush=True)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        print(f"make up failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("stopping ...", flush=True)
        system.stop()
        stack.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
