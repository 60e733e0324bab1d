"""docker-compose.yml, deploy/docker/ and deploy/prometheus/prometheus.yml checked against the code.

No Docker engine is needed: the files are parsed and every expectation is derived from the code, not from a
copy of it: the service packages under services/, their pydantic-settings classes (env prefix, fields,
defaults), servicekit's health and metrics routes, the Kafka version pinned for the local stack (devstack),
the workspace pyproject files and uv.lock.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import os
import re
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
INITDB_DIR = "/docker-entrypoint-initdb.d"
PACKAGE_PREFIX = "visiopass-"


def _service_packages() -> list[str]:
    """Every runnable service of the workspace: services/<name>/ except the servicekit library."""
    return sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml") if p.parent.name != "servicekit")


SERVICES = _service_packages()


# ------------------------------------------------------------------------------------------------ loading


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


def compose_services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def compose_service(name: str) -> dict[str, Any]:
    services = compose_services()
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


@cache
def prometheus_config() -> dict[str, Any]:
    data = yaml.safe_load(PROMETHEUS_FILE.read_text())
    assert isinstance(data, dict), f"{PROMETHEUS_FILE} is empty"
    return data


@cache
def settings_class(name: str) -> type[BaseSettings]:
    module = importlib.import_module(f"{name}.settings")
    classes = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{module.__name__} should define exactly one settings class, found {classes}"
    return classes[0]


def env_prefix(name: str) -> str:
    return str(settings_class(name).model_config.get("env_prefix") or "")


def has_field(name: str, field: str) -> bool:
    return field in settings_class(name).model_fields


# ------------------------------------------------------------------------------------ compose interpolation

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's variable interpolation, with the variables unset unless given in `env`.

    A required variable (`${NAME:?message}`) that is unset becomes `required-name`, which stands for the value
    the operator must supply (URL-safe, so URLs built from it still parse).
    """
    env = env or {}

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"] or ""
        present, non_empty = name in env, bool(env.get(name))
        if op == ":-":
            return env[name] if non_empty else arg
        if op == "-":
            return env[name] if present else arg
        if op in (":?", "?"):
            return env[name] if (non_empty if op == ":?" else present) else "required-" + name.lower().replace("_", "-")
        if op == ":+":
            return arg if non_empty else ""
        if op == "+":
            return arg if present else ""
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def variables(raw: str) -> set[str]:
    return {m["braced"] or m["named"] for m in _VARIABLE.finditer(raw) if not m["escaped"]}


def required_variables(raw: str) -> set[str]:
    return {m["braced"] for m in _VARIABLE.finditer(raw) if m["braced"] and m["op"] in (":?", "?")}


def raw_environment(service: str) -> dict[str, str]:
    env = compose_service(service).get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        env = dict(pairs)
    assert isinstance(env, dict), f"{service}: environment must be a mapping or a list"
    for key, value in env.items():
        assert not isinstance(value, bool), f"{service}: {key} is a YAML boolean, quote it"
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def environment(service: str) -> dict[str, str]:
    return {key: interpolate(value) for key, value in raw_environment(service).items()}


def setting(name: str, field: str) -> str | None:
    """The value docker-compose.yml gives to a settings field of service `name` (None when not set)."""
    return environment(name).get(env_prefix(name) + field.upper())


def effective(name: str, field: str) -> Any:
    value = setting(name, field)
    return value if value is not None else settings_class(name).model_fields[field].default


def http_port(name: str) -> int:
    value = setting(name, "http_port")
    assert value is not None, f"{name}: {env_prefix(name)}HTTP_PORT is not set"
    return int(value)


def healthcheck_urls(service: str) -> list[str]:
    test = (compose_service(service).get("healthcheck") or {}).get("test") or []
    command = " ".join(test) if isinstance(test, list) else str(test)
    return re.findall(r"https?://[^\s'\"]+", command)


def depends_on(service: str) -> dict[str, str]:
    """Names the service depends on, with their condition (service_started when the short list form is used)."""
    deps = compose_service(service).get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def image_service(prefix: str) -> str:
    matches = [name for name, svc in compose_services().items() if str(svc.get("image", "")).startswith(prefix)]
    assert len(matches) == 1, f"expected one compose service with an image {prefix}*, found {matches}"
    return matches[0]


def volume_mounts(service: str) -> list[tuple[str, str]]:
    """(source, target) of each volume of a compose service, short or long syntax."""
    mounts = []
    for entry in compose_service(service).get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            parts = str(entry).split(":")
            mounts.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return mounts


def host_ports(service: str) -> list[tuple[int, str]]:
    """(host port, protocol) of every port a compose service publishes on the host."""
    published: list[tuple[int, str]] = []
    for entry in compose_service(service).get("ports") or []:
        if isinstance(entry, dict):
            spec, protocol = str(entry.get("published") or ""), str(entry.get("protocol") or "tcp")
        else:
            text = interpolate(str(entry))
            text, _, protocol = text.partition("/")
            protocol = protocol or "tcp"
            parts = text.rsplit(":", 2)
            spec = parts[-2] if len(parts) >= 2 else ""
        spec = interpolate(spec)
        if not spec:
            continue  # container port only: Docker picks a free host port
        first, _, last = spec.partition("-")
        published += [(port, protocol) for port in range(int(first), int(last or first) + 1)]
    return published


def container_port_published_at(service: str, container_port: int) -> int:
    for entry in compose_service(service).get("ports") or []:
        if isinstance(entry, dict):
            if int(entry["target"]) == container_port and entry.get("published"):
                return int(interpolate(str(entry["published"])))
        else:
            parts = interpolate(str(entry)).partition("/")[0].rsplit(":", 2)
            if len(parts) >= 2 and int(parts[-1]) == container_port:
                return int(parts[-2])
    raise AssertionError(f"{service} does not publish its port {container_port}")


# ------------------------------------------------------------------------------------------------- services


def test_the_workspace_has_services() -> None:
    assert SERVICES, "no service package found under services/"
    for name in SERVICES:
        project = tomllib.loads((ROOT / "services" / name / "pyproject.toml").read_text())["project"]
        assert project["name"] == PACKAGE_PREFIX + name
        assert (ROOT / "services" / name / "src" / name / "__main__.py").is_file(), f"`python -m {name}` cannot run"


@pytest.mark.parametrize("name", SERVICES)
def test_service_is_built_from_the_dockerfile(name: str) -> None:
    build = compose_service(name).get("build")
    assert isinstance(build, dict), f"{name}: build must be a mapping with context, dockerfile and args"
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    assert context == ROOT, f"{name}: the build context must be the repository root (uv.lock, workspace)"
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    args = build.get("args") or {}
    if isinstance(args, list):
        args = dict(item.split("=", 1) for item in args)
    assert str(args.get("SERVICE")) == name


def test_every_service_built_from_the_dockerfile_is_a_package() -> None:
    for service, spec in compose_services().items():
        build = spec.get("build")
        if isinstance(build, dict) and (COMPOSE_FILE.parent / build.get("dockerfile", "")).resolve() == DOCKERFILE:
            args = build.get("args") or {}
            assert service in SERVICES and args.get("SERVICE") == service, f"{service}: builds no service package"


@pytest.mark.parametrize("name", SERVICES)
def test_env_vars_are_settings_fields(name: str) -> None:
    cls = settings_class(name)
    prefix = env_prefix(name)
    assert prefix == f"{name.upper()}_", f"{cls.__name__} has env prefix {prefix!r}"
    known = {prefix + field.upper() for field in cls.model_fields}
    known |= {str(f.validation_alias).upper() for f in cls.model_fields.values() if isinstance(f.validation_alias, str)}
    for key in environment(name):
        assert key.startswith(prefix) or key == "TZ", f"{name}: {key} is not read by {cls.__name__} (prefix {prefix})"
        assert key.upper() in known, f"{name}: {key} is not a field of {cls.__name__} (typo?)"


@pytest.mark.parametrize("name", SERVICES)
def test_settings_validate_with_the_compose_environment(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = env_prefix(name)
    for key in list(os.environ):
        if key.upper().startswith(prefix):
            monkeypatch.delenv(key)
    for key, value in environment(name).items():
        monkeypatch.setenv(key, value)
    settings = settings_class(name)()
    assert settings.http_host == "0.0.0.0", f"{name} must listen on every interface inside its container"


@pytest.mark.parametrize("name", SERVICES)
def test_connection_settings_are_set(name: str) -> None:
    required = ["http_host", "http_port", "internal_token", "database_url", "kafka_bootstrap_servers", "log_level"]
    for field in required:
        if has_field(name, field):
            assert setting(name, field), f"{name}: {env_prefix(name)}{field.upper()} must be set"
    assert setting(name, "http_host") == "0.0.0.0"


@pytest.mark.parametrize("name", SERVICES)
def test_http_port_is_exposed_probed_and_scraped(name: str) -> None:
    from servicekit.http import health_routes

    port = http_port(name)
    exposed = {int(str(p).partition("/")[0]) for p in compose_service(name).get("expose") or []}
    assert port in exposed, f"{name}: expose {port}"

    health_paths = {path for route in health_routes({}) for path in getattr(route, "paths", ())}
    urls = healthcheck_urls(name)
    assert urls, f"{name}: no healthcheck hitting its readiness route"
    probe = urlsplit(urls[0])
    assert probe.hostname in ("127.0.0.1", "localhost") and probe.port == port
    assert probe.path in health_paths and probe.path.endswith("ready"), f"{name}: probe {probe.path}"
    test = compose_service(name)["healthcheck"]["test"]
    assert "python" in test and "curl" not in " ".join(test), f"{name}: the image has Python, not curl"


def test_all_services_share_one_required_internal_token() -> None:
    raws = {name: raw_environment(name).get(env_prefix(name) + "INTERNAL_TOKEN") for name in SERVICES}
    assert all(raws.values()), f"INTERNAL_TOKEN missing: {raws}"
    assert len(set(raws.values())) == 1, f"the services must share one internal token: {raws}"
    raw = next(iter(raws.values()))
    assert raw is not None and required_variables(raw) and raw.strip().startswith("${"), (
        "the internal token must come from a required variable (${NAME:?...}), never a committed literal"
    )


def test_only_the_producer_and_the_reader_of_sealed_tokens_hold_the_event_keyring() -> None:
    """contracts.secrets: accounts and enrollment seal the tokens of mailed links, the notifier opens them; nobody
    else may."""
    holders = {
        service for service in compose_services() for key in raw_environment(service) if key.endswith("SECRET_KEYS")
    }
    assert holders == {"accounts", "enrollment", "notifier"}, f"EVENT_SECRET_KEYS given to {sorted(holders)}"
    raws = {raw_environment(name).get(env_prefix(name) + "EVENT_SECRET_KEYS") for name in holders}
    assert len(raws) == 1, f"the sealers and the notifier must share one keyring: {raws}"
    raw = next(iter(raws))
    assert raw is not None and required_variables(raw), "the keyring must come from a required variable"
    assert all(has_field(name, "event_secret_keys") for name in holders)


def test_no_secret_literal_is_committed() -> None:
    for service in compose_services():
        for key, raw in raw_environment(service).items():
            if re.search(r"PASSWORD|TOKEN|SECRET|_KEY$", key):
                assert raw.strip().startswith("${") and variables(raw), f"{service}: {key} is a literal secret"


# ------------------------------------------------------------------------------------------------ PostgreSQL


def with_database() -> list[str]:
    return [name for name in SERVICES if has_field(name, "database_url")]


def test_some_services_have_a_database() -> None:
    assert with_database()


@pytest.mark.parametrize("name", [n for n in SERVICES if has_field(n, "database_url")])
def test_database_url_names_the_service_database_on_compose_postgres(name: str) -> None:
    postgres = image_service("postgres:")
    pg_env = raw_environment(postgres)
    raw_url = raw_environment(name)[env_prefix(name) + "DATABASE_URL"]
    url, default = urlsplit(interpolate(raw_url)), urlsplit(settings_class(name).model_fields["database_url"].default)
    assert url.scheme == default.scheme, f"{name}: driver {url.scheme}, the code uses {default.scheme}"
    assert url.hostname == postgres
    assert url.port == int(pg_env.get("PGPORT", 5432))
    assert url.path == default.path == f"/{name}", f"{name} must use its own database, not {url.path}"
    assert url.username == interpolate(pg_env.get("POSTGRES_USER", "postgres"))
    password_vars = variables(pg_env["POSTGRES_PASSWORD"])
    assert password_vars and variables(urlsplit(raw_url).password or "") == password_vars, (
        f"{name}: the URL's password must be the variable POSTGRES_PASSWORD is set from"
    )


def test_init_script_creates_exactly_the_service_databases() -> None:
    postgres = image_service("postgres:")
    scripts: list[Path] = []
    for source, target in volume_mounts(postgres):
        if target.rstrip("/").startswith(INITDB_DIR):
            path = (COMPOSE_FILE.parent / source).resolve()
            assert path.exists(), f"{source} is mounted into {INITDB_DIR} but does not exist"
            scripts += sorted(path.glob("*")) if path.is_dir() else [path]
    assert scripts, f"postgres mounts no init script into {INITDB_DIR}"
    for script in scripts:
        assert script.is_relative_to(ROOT / "deploy" / "docker"), f"{script} should live under deploy/docker/"
    created = [
        name.lower()
        for script in scripts
        for name in re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)\"?", script.read_text(), re.IGNORECASE)
    ]
    assert len(created) == len(set(created)), f"a database is created twice: {created}"
    wanted = {urlsplit(setting(name, "database_url") or "").path.lstrip("/") for name in with_database()}
    assert set(created) == wanted == set(with_database())
    pg_env = environment(postgres)
    own_db = pg_env.get("POSTGRES_DB") or pg_env.get("POSTGRES_USER") or "postgres"
    assert own_db not in created, f"the image creates {own_db} itself: CREATE DATABASE {own_db} would fail"


def test_postgres_keeps_its_data_and_has_a_healthcheck() -> None:
    postgres = image_service("postgres:")
    tag = str(compose_service(postgres)["image"]).split(":", 1)[1]
    major = int(re.match(r"\d+", tag).group())  # type: ignore[union-attr]
    assert major >= 17
    data_dir = "/var/lib/postgresql" if major >= 18 else "/var/lib/postgresql/data"  # 18 moved PGDATA
    assert data_dir in {target.rstrip("/") for _, target in volume_mounts(postgres)}
    assert "pg_isready" in " ".join(compose_service(postgres)["healthcheck"]["test"])


# ----------------------------------------------------------------------------------------------------- Kafka


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    result = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def kafka_internal_address() -> str:
    kafka = image_service("apache/kafka:")
    env = environment(kafka)
    listener = env.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT")
    host, port = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])[listener]
    assert host in (kafka, compose_service(kafka).get("hostname")), f"{listener} must advertise the service name"
    assert _listeners(env["KAFKA_LISTENERS"])[listener][1] == port
    return f"{host}:{port}"


def test_kafka_is_a_single_kraft_node_of_the_pinned_version() -> None:
    from devstack import kafka_version

    kafka = image_service("apache/kafka:")
    assert compose_service(kafka)["image"] == f"apache/kafka:{kafka_version()}", "same Kafka as the local stack"
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env.get("CLUSTER_ID"), "the apache/kafka image needs CLUSTER_ID in KRaft mode"
    listeners = _listeners(env["KAFKA_LISTENERS"])
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocols)
    assert set(_listeners(env["KAFKA_ADVERTISED_LISTENERS"])) <= set(listeners)
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 1
    node_id, _, address = voters[0].partition("@")
    host, _, port = address.rpartition(":")
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")[0]
    assert node_id == env["KAFKA_NODE_ID"] and host == kafka and int(port) == listeners[controller][1]
    kafka_internal_address()


def test_kafka_settings_fit_one_node() -> None:
    env = environment(image_service("apache/kafka:"))
    brokers = len(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
    ):
        assert key in env, f"{key} defaults to 3, more than this cluster's {brokers} broker(s)"
    for key, value in env.items():
        if key.endswith(("REPLICATION_FACTOR", "MIN_ISR", "MIN_INSYNC_REPLICAS")):
            assert int(value) <= brokers, f"{key}={value} with {brokers} broker(s)"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "the services create their topics"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert "healthcheck" in compose_service(image_service("apache/kafka:"))
    for name in SERVICES:
        if has_field(name, "topic_replication_factor"):
            assert int(effective(name, "topic_replication_factor")) <= brokers, name


@pytest.mark.parametrize("name", [n for n in SERVICES if has_field(n, "kafka_bootstrap_servers")])
def test_kafka_bootstrap_is_the_internal_listener(name: str) -> None:
    servers = (setting(name, "kafka_bootstrap_servers") or "").split(",")
    assert servers == [kafka_internal_address()]


# --------------------------------------------------------------------------------------- links between services


def test_service_urls_point_at_the_services() -> None:
    checked = 0
    for name in SERVICES:
        for field in settings_class(name).model_fields:
            target = field.removesuffix("_url")
            if field.endswith("_url") and target in SERVICES:
                assert setting(name, field) == f"http://{target}:{http_port(target)}", f"{name}.{field}"
                assert target in depends_on(name), f"{name} calls {target}: depend on it"
                checked += 1
    assert has_field("gateway", "accounts_url") and checked >= 1


@pytest.mark.parametrize("name", [n for n in SERVICES if has_field(n, "smtp_host")])
def test_smtp_points_at_the_catcher(name: str) -> None:
    host = setting(name, "smtp_host")
    assert host in compose_services(), f"{name}: SMTP host {host!r} is not a compose service"
    catcher = compose_service(host)
    if "mailpit" in str(catcher.get("image", "")):
        bind = environment(host).get("MP_SMTP_BIND_ADDR", "0.0.0.0:1025")
        smtp_port = int(bind.rpartition(":")[2])
    else:
        smtp_port = int(str((catcher.get("expose") or [0])[0]).partition("/")[0])
    assert int(effective(name, "smtp_port")) == smtp_port
    assert host in depends_on(name)


@pytest.mark.parametrize("name", [n for n in SERVICES if has_field(n, "public_base_url")])
def test_public_base_url_is_the_published_gateway(name: str) -> None:
    url = urlsplit(setting(name, "public_base_url") or "")
    assert url.scheme in ("http", "https") and url.hostname
    assert url.port == container_port_published_at("gateway", http_port("gateway"))


def test_depends_on_existing_services_with_healthchecks() -> None:
    services = compose_services()
    for service in services:
        for dependency, condition in depends_on(service).items():
            assert dependency in services, f"{service} depends on unknown service {dependency!r}"
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"


@pytest.mark.parametrize("name", SERVICES)
def test_services_wait_for_healthy_infrastructure(name: str) -> None:
    deps = depends_on(name)
    if has_field(name, "database_url"):
        assert deps.get(image_service("postgres:")) == "service_healthy", f"{name} needs PostgreSQL"
    if has_field(name, "kafka_bootstrap_servers"):
        assert deps.get(image_service("apache/kafka:")) == "service_healthy", f"{name} needs Kafka"


def test_every_image_not_built_here_is_pinned() -> None:
    """The infrastructure images (PostgreSQL, Kafka, Mailpit, Prometheus, Grafana) name a version, never `latest`."""
    for service, spec in compose_services().items():
        if "build" in spec:
            continue
        image = str(spec.get("image") or "")
        name, _, tag = image.rpartition("/")[2].partition(":")
        assert name and tag and tag != "latest" and "$" not in tag, f"{service}: pin the image's version ({image})"


def test_only_the_gateway_is_published_on_every_interface() -> None:
    for service, spec in compose_services().items():
        for entry in spec.get("ports") or []:
            if service == "gateway":
                continue
            text = interpolate(str(entry["host_ip"] if isinstance(entry, dict) else entry))
            assert text.startswith("127.0.0.1"), f"{service}: bind {entry} to 127.0.0.1"


def test_no_host_port_is_published_twice() -> None:
    published = Counter(port for service in compose_services() for port in host_ports(service))
    assert published, "nothing is published: the gateway at least must be reachable"
    assert not [port for port, count in published.items() if count > 1], published


# ------------------------------------------------------------------------------------------------ Prometheus


def scrape_jobs() -> dict[str, tuple[str, list[str]]]:
    jobs: dict[str, tuple[str, list[str]]] = {}
    for job in prometheus_config().get("scrape_configs") or []:
        assert job["job_name"] not in jobs, f"duplicate job {job['job_name']}"
        targets = [t for static in job.get("static_configs") or [] for t in static.get("targets") or []]
        jobs[job["job_name"]] = (job.get("metrics_path", "/metrics"), targets)
    return jobs


def metrics_port(name: str) -> int:
    """Where Prometheus scrapes a service: its HTTP port, or its own metrics listener when it has one (the
    gateway's `metrics_port`: its public port does not serve /metrics)."""
    if "metrics_port" in settings_class(name).model_fields:
        return int(effective(name, "metrics_port"))
    return http_port(name)


@pytest.mark.parametrize("name", SERVICES)
def test_prometheus_scrapes_the_service(name: str) -> None:
    from servicekit.http import ServiceMetrics

    port = metrics_port(name)
    jobs = [job for job, (_, targets) in scrape_jobs().items() if f"{name}:{port}" in targets]
    assert jobs, f"no Prometheus job scrapes {name}:{port}"
    for job in jobs:
        assert scrape_jobs()[job][0] == ServiceMetrics.path


def test_the_gateway_metrics_listener_is_internal() -> None:
    port = metrics_port("gateway")
    assert port and port != http_port("gateway"), "the gateway's metrics are not on its public port"
    assert effective("gateway", "metrics_host") == "0.0.0.0", "Prometheus reaches it on the compose network"
    exposed = {int(str(p).partition("/")[0]) for p in compose_service("gateway").get("expose") or []}
    assert port in exposed
    assert port not in {published for published, _ in host_ports("gateway")}, "never published on the host"
    with pytest.raises(AssertionError):
        container_port_published_at("gateway", port)


def test_prometheus_targets_are_compose_services() -> None:
    services = compose_services()
    for job, (_, targets) in scrape_jobs().items():
        for target in targets:
            assert target.rpartition(":")[0] in services, f"job {job}: {target} is not a compose service"


def test_prometheus_loads_this_config() -> None:
    prometheus = image_service("prom/prometheus")
    flags = [str(arg) for arg in compose_service(prometheus).get("command") or []]
    config_path = next(
        (f.partition("=")[2] for f in flags if f.startswith("--config.file=")), "/etc/prometheus/prometheus.yml"
    )
    sources = {(COMPOSE_FILE.parent / s).resolve() for s, t in volume_mounts(prometheus) if t == config_path}
    assert sources == {PROMETHEUS_FILE}
    mounted = {t: (COMPOSE_FILE.parent / s).resolve() for s, t in volume_mounts(prometheus)}
    for rule_file in prometheus_config().get("rule_files") or []:  # relative to the config, in the container too
        target = str(Path(config_path).parent / rule_file)
        assert mounted.get(target) == (PROMETHEUS_FILE.parent / rule_file).resolve(), f"{rule_file} is not mounted"


# ------------------------------------------------------------------------------------------- Dockerfile, uv


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line
    ]


def workspace_members() -> dict[str, Path]:
    """Package name -> folder of each uv workspace member."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in ROOT.glob(pattern):
            project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
            members[project["name"]] = folder
    return members


def workspace_closure(package: str) -> set[str]:
    members, seen, todo = workspace_members(), set(), [package]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        project = tomllib.loads((members[current] / "pyproject.toml").read_text())["project"]
        deps = (re.match(r"[A-Za-z0-9._-]+", dep).group() for dep in project.get("dependencies", []))  # type: ignore[union-attr]
        todo += [dep for dep in deps if dep in members]
    return seen


def test_dockerfile_builds_one_service_with_uv_sync_frozen() -> None:
    text = DOCKERFILE.read_text()
    instructions = _instructions(text)
    assert "uv sync --frozen" in text
    syncs = [args for kind, args in instructions if kind == "RUN" and "uv sync" in args]
    assert syncs and all("--frozen" in s and "--no-dev" in s and '"visiopass-${SERVICE}"' in s for s in syncs)
    installs = [s for s in syncs if "--no-install-workspace" not in s]
    assert installs and all("--no-editable" in s for s in installs), "install the packages, not links to sources"
    assert ("ARG", "SERVICE") in instructions
    stages = [args for kind, args in instructions if kind == "FROM"]
    assert len(stages) >= 2, "multi-stage: a builder and a slim runtime"
    runtime = instructions[max(i for i, (kind, _) in enumerate(instructions) if kind == "FROM") :]
    users = [args for kind, args in runtime if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the runtime runs as a non-root user"
    env_vars = [
        m.group(1) for kind, args in runtime if kind == "ENV" for m in re.finditer(r"(\w+)=\$\{?SERVICE\}?", args)
    ]
    assert env_vars, "an ENV must carry the SERVICE build arg into the runtime"
    cmd = next(args for kind, args in reversed(runtime) if kind == "CMD")
    assert "python -m" in cmd and any(f"${var}" in cmd or f"${{{var}}}" in cmd for var in env_vars)


def test_dockerfile_python_matches_the_workspace() -> None:
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    version = re.search(r">=\s*(\d+\.\d+)", requires).group(1)  # type: ignore[union-attr]
    images = re.findall(r"python:(\d+\.\d+)", DOCKERFILE.read_text())
    assert images and set(images) == {version}


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_copies_what_the_service_is_made_of(name: str) -> None:
    members = workspace_members()
    copied = {
        args.split()[0].replace("${SERVICE}", name).replace("$SERVICE", name).rstrip("/")
        for kind, args in _instructions(DOCKERFILE.read_text())
        if kind == "COPY" and not args.startswith("--from")
    }
    for package in workspace_closure(PACKAGE_PREFIX + name):
        folder = members[package].relative_to(ROOT).as_posix()
        assert folder in copied, f"{name} needs {package} ({folder}) but the Dockerfile does not COPY it"


def test_dockerignore_keeps_local_state_out_but_not_the_sources() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and line[0] != "#"]
    for needed in (".venv", ".git", ".run"):
        assert needed in patterns or f"**/{needed}" in patterns, f".dockerignore should exclude {needed}"
    assert any("__pycache__" in p for p in patterns)
    sources = ["pyproject.toml", "uv.lock", "contracts", "services", *(f"services/{n}" for n in SERVICES)]
    for pattern in patterns:
        if not pattern.startswith("!"):
            for source in sources:
                assert not fnmatch.fnmatch(source, pattern.rstrip("/")), f".dockerignore {pattern} drops {source}"


def test_uv_lock_has_every_service_package() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    packages = {package["name"]: package for package in lock["package"]}
    members = workspace_members()
    for name in SERVICES:
        for package in workspace_closure(PACKAGE_PREFIX + name):
            assert package in packages, f"uv.lock lacks {package}: `uv sync --frozen` in the image would fail"
            source = packages[package]["source"]
            assert source.get("editable") == members[package].relative_to(ROOT).as_posix(), package


# ------------------------------------------------------------------ what the image installs is enough to run

_IMPORT_WITH_ONLY = r"""
import importlib, importlib.metadata, re, sys

allowed = set(sys.argv[2].split(","))
owners = importlib.metadata.packages_distributions()


def normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


class NotInTheImage:
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        dists = owners.get(top)
        if dists and not any(normal(dist) in allowed for dist in dists):
            raise ModuleNotFoundError(f"No module named {top!r}: {dists} is not a locked dependency", name=top)
        return None


sys.meta_path.insert(0, NotInTheImage())
importlib.import_module(sys.argv[1] + ".main")
"""


def locked_closure(package: str) -> set[str]:
    """Distributions `uv sync --frozen --no-dev --package <package>` installs, from uv.lock (markers ignored)."""
    entries: dict[str, list[dict[str, Any]]] = {}
    for entry in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        entries.setdefault(entry["name"], []).append(entry)
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = [(package, "")]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        for entry in entries[name]:
            deps = entry.get("optional-dependencies", {}).get(extra, []) if extra else entry.get("dependencies", [])
            for dep in deps:
                todo += [(dep["name"], "")] + [(dep["name"], e) for e in dep.get("extra", [])]
    return {name for name, _ in seen}


@pytest.fixture(scope="module")
def import_checks() -> Iterator[dict[str, subprocess.Popen[str]]]:
    """One child per service, all started at once (each import takes seconds), each importing `<name>.main`."""
    children = {
        name: subprocess.Popen(
            [sys.executable, "-c", _IMPORT_WITH_ONLY, name, ",".join(sorted(locked_closure(PACKAGE_PREFIX + name)))],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "BILLING_WEBHOOK_SECRET": "whsec_import_check"},  # billing requires one to start
        )
        for name in SERVICES
    }
    try:
        yield children
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
            child.communicate()


@pytest.mark.parametrize(
    "name",
    [n for n in SERVICES],
)
def test_service_imports_with_only_its_locked_dependencies(
    name: str, import_checks: dict[str, subprocess.Popen[str]]
) -> None:
    """The image installs visiopass-<name> and its locked dependencies only, not the whole dev venv."""
    _, stderr = import_checks[name].communicate(timeout=240)
    assert import_checks[name].returncode == 0, f"{name} would not start in its image:\n{stderr[-2000:]}"


def test_every_variable_compose_reads_is_in_the_example_env_file() -> None:
    example = (ROOT / "deploy" / "docker" / "compose.env.example").read_text()
    listed = set(re.findall(r"^#? ?(VISIOPASS_[A-Z0-9_]+)=", example, re.MULTILINE))
    read = {name for name in variables(COMPOSE_FILE.read_text()) if name.startswith("VISIOPASS_")}
    assert read - listed == set(), "compose reads variables deploy/docker/compose.env.example does not list"
    assert required_variables(COMPOSE_FILE.read_text()) <= set(re.findall(r"^(VISIOPASS_\w+)=", example, re.MULTILINE))
