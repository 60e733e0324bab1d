"""`make up`'s time to ready (cold: new state dir; warm: existing one) and resident memory at idle.

    uv run python tests/bench/footprint.py [--cold]

Runs the same Stack + System as `make up`, on their own ports and state dir (.run/footprint).
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "local"))

import devstack  # noqa: E402
from system import System  # noqa: E402

PORTS = {"accounts": 38101, "billing": 38102, "catalogue": 38103, "enrollment": 38104, "notifier": 38105}


def rss_mb(pid: int, with_children: bool = False) -> float:
    process = psutil.Process(pid)
    processes = [process, *(process.children(recursive=True) if with_children else [])]
    return sum(p.memory_info().rss for p in processes) / 2**20


def main(cold: bool) -> None:
    state = ROOT / ".run" / "footprint"
    if cold:
        shutil.rmtree(state, ignore_errors=True)
    stack = devstack.Stack(
        state, devstack.Ports(kafka=39192, kafka_controller=39193, postgres=35533, smtp=31125, mail_http=38125)
    )
    system = System(stack, log_dir=state / "service-logs", ports={**PORTS, "gateway": 38000})
    started = time.monotonic()
    stack.start()
    try:
        system.start()
        ready = time.monotonic() - started
        time.sleep(10)
        print(f"time to ready ({'cold' if cold else 'warm'}): {ready:.1f} s")
        status = stack.status()
        for name in devstack.COMPONENTS:
            print(f"  {name:12} {status[name]['rss_mb']:7.0f} MB")
        for name, process in system.processes.items():
            print(f"  {name:12} {rss_mb(process.pid):7.0f} MB")
    finally:
        system.stop()
        stack.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="start from an empty state dir")
    main(parser.parse_args().cold)
