"""deploy/k8s (kustomize base and production overlay) rendered with `kubectl kustomize` and checked offline.

Every rendered resource is validated against the Kubernetes schemas that the kubernetes-validate package ships
(strict: unknown fields are errors), the KEDA ScaledObjects and TriggerAuthentications against KEDA's published CRD
schemas (taken from KEDA's Go module on the Go module proxy, cached under VISIOPASS_CACHE/go), and the Kafka
scaler's parameters against that module's scaler source. The manifests are also checked against the code, as
tests/test_compose.py checks docker-compose.yml (and with its helpers): a Deployment per service, its ports, every
environment variable a settings field, the consumer groups and topics of the KEDA triggers those the services
subscribe with, the autoscalers' cap at the topics' partition count, the network policies, and Kafka in production:
each service (and KEDA, for its lag) as its own SASL principal over TLS, the base plaintext.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from test_compose import SERVICES, env_prefix, has_field, settings_class

from system import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
TREES = {"base": K8S / "base", "production": K8S / "overlays" / "production"}
# KEDA publishes its CRDs in its repository, which its Go module carries: the Go module proxy serves them here.
KEDA_MODULE = "github.com/kedacore/keda/v2@v2.20.2"
KEDA_CRDS = "config/crd/bases"
SCALED_OBJECT_CRD = "keda.sh_scaledobjects.yaml"
TRIGGER_AUTHENTICATION_CRD = "keda.sh_triggerauthentications.yaml"
KAFKA_SCALER = "pkg/scalers/kafka_scaler.go"  # the `kafka` trigger's parameters (its struct tags)
DOCS = ROOT / "docs" / "kubernetes.md"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())  # an older supported release and the newest
KUBECTL = shutil.which("kubectl")
PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}

needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed: cannot render the kustomizations")


@cache
def render(tree: str) -> tuple[dict[str, Any], ...]:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(TREES[tree])], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, f"kubectl kustomize {tree} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(tree: str, kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in render(tree) if doc["kind"] == kind}


def config_map(tree: str, name: str) -> dict[str, Any]:
    """A ConfigMap by its name in the rendered output (generated ones carry a hash suffix)."""
    found = [
        doc
        for doc in of_kind(tree, "ConfigMap").values()
        if re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", doc["metadata"]["name"])
    ]
    assert len(found) == 1, f"{tree}: no ConfigMap {name}"
    return found[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def environment(tree: str, workload: dict[str, Any]) -> dict[str, str | dict[str, Any]]:
    """Name -> value (a literal, or its valueFrom) of every variable the workload's container gets."""
    config_maps = {doc["metadata"]["name"]: doc for doc in of_kind(tree, "ConfigMap").values()}
    spec = container(workload)
    env: dict[str, str | dict[str, Any]] = {}
    for source in spec.get("envFrom", []):
        assert "configMapRef" in source and "prefix" not in source, "envFrom: ConfigMaps only (Secrets by key)"
        name = source["configMapRef"]["name"]
        assert name in config_maps, f"{workload['metadata']['name']}: ConfigMap {name} is not rendered"
        env |= config_maps[name]["data"]
    for item in spec.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    for value in env.values():
        ref = value.get("configMapKeyRef") if isinstance(value, dict) else None
        if ref:
            assert ref["key"] in config_maps[ref["name"]]["data"], f"no key {ref['key']} in ConfigMap {ref['name']}"
    return env


def resolved(tree: str, value: str | dict[str, Any]) -> str | None:
    """A variable's value, looked up in its ConfigMap; None for a Secret's."""
    if isinstance(value, str):
        return value
    ref = value.get("configMapKeyRef")
    if ref is None:
        return None
    return str(of_kind(tree, "ConfigMap")[ref["name"]]["data"][ref["key"]])


def secret_refs(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in container(workload).get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }


def consumers_of(name: str) -> list[tuple[str, str]]:
    """(topic, consumer name) of each `service.consume(topic, name, ...)` in <service>/main.py."""
    tree = ast.parse((ROOT / "services" / name / "src" / name / "main.py").read_text())
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "consume"
            and len(node.args) >= 2
        ):
            topic, consumer = (ast.literal_eval(arg) for arg in node.args[:2])
            found.append((topic, consumer))
    return found


def http_port(name: str) -> int:
    return int(settings_class(name).model_fields["http_port"].default)


def metrics_port(name: str) -> int:
    fields = settings_class(name).model_fields
    return int(fields["metrics_port"].default) if "metrics_port" in fields else http_port(name)


def callers_of(target: str) -> set[str]:
    """The services whose settings have a `<target>_url` (they call its internal API)."""
    return {name for name in SERVICES if has_field(name, f"{target}_url")}


def named_port(workload: dict[str, Any], name: str) -> int:
    ports = {port["name"]: port["containerPort"] for port in container(workload).get("ports", [])}
    return int(ports[name])


def topic_partitions(tree: str) -> int:
    """Partitions of the topics: every service creating topics must create them alike (the first one wins)."""
    values = set()
    for name in SERVICES:
        if has_field(name, "topic_partitions"):
            env = environment(tree, of_kind(tree, "Deployment")[name])
            value = env.get(env_prefix(name) + "TOPIC_PARTITIONS")
            default = settings_class(name).model_fields["topic_partitions"].default
            values.add(int(resolved(tree, value) or default) if value is not None else int(default))
    assert len(values) == 1, f"the services would create topics with different partition counts: {values}"
    return values.pop()


# ------------------------------------------------------------------------------------------------ schemas


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_resource_validates_against_the_kubernetes_schemas(tree: str, version: str) -> None:
    checked = 0
    for doc in render(tree):
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # not a Kubernetes type: KEDA's CRD below
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{tree}: {doc['kind']}/{doc['metadata']['name']} at {path}: {exc.message}")
        checked += 1
    assert checked > len(SERVICES) * 5


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused (as `kubectl apply --validate=strict` does), except where the
    CRD itself keeps unknown fields."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@cache
def keda_module() -> Path:
    """KEDA's Go module, unpacked (`go mod download`: the Go module proxy, cached between runs)."""
    go = shutil.which("go")
    assert go is not None, "Go is needed to fetch KEDA's CRDs from the Go module proxy"
    gopath = Path(os.environ.get("VISIOPASS_CACHE") or Path.home() / ".cache" / "visiopass") / "go"
    gopath.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [go, "mod", "download", "-json", KEDA_MODULE],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=gopath,  # outside any Go module
        env={**os.environ, "GOPATH": str(gopath), "GOFLAGS": "-modcacherw"},
    )
    assert result.returncode == 0, f"go mod download {KEDA_MODULE} failed:\n{result.stdout}{result.stderr}"
    return Path(json.loads(result.stdout)["Dir"])


def keda_crd(file: str) -> Path:
    """One of KEDA's CRDs (`keda.sh_<plural>.yaml`) from its Go module."""
    return keda_module() / KEDA_CRDS / file


@cache
def keda_schema(file: str, kind: str) -> dict[str, Any]:
    """The v1alpha1 schema of the CRD `file`, which must define `kind`, made strict."""
    crd = yaml.safe_load(keda_crd(file).read_text())
    assert crd["spec"]["group"] == "keda.sh" and crd["spec"]["names"]["kind"] == kind, f"{file} is not {kind}'s CRD"
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return strict(version["schema"]["openAPIV3Schema"])


def assert_valid_keda(tree: str, doc: dict[str, Any], file: str) -> None:
    assert doc["apiVersion"] == "keda.sh/v1alpha1"
    validator = jsonschema.Draft7Validator(keda_schema(file, doc["kind"]))
    body = {key: value for key, value in doc.items() if key not in ("apiVersion", "kind", "metadata")}
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{tree}: {doc['kind']} {doc['metadata']['name']}: " + "; ".join(
        f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors
    )


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_scaled_objects_validate_against_keda_crd(tree: str) -> None:
    scaled = of_kind(tree, "ScaledObject")
    assert scaled
    for doc in scaled.values():
        assert_valid_keda(tree, doc, SCALED_OBJECT_CRD)


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_trigger_authentications_validate_against_keda_crd(tree: str) -> None:
    authentications = of_kind(tree, "TriggerAuthentication")
    assert bool(authentications) == (tree == "production"), "production only: the base's Kafka is plaintext"
    for doc in authentications.values():
        assert_valid_keda(tree, doc, TRIGGER_AUTHENTICATION_CRD)


def test_kedas_crd_schema_rejects_a_broken_scaled_object() -> None:
    validator = jsonschema.Draft7Validator(keda_schema(SCALED_OBJECT_CRD, "ScaledObject"))
    assert list(validator.iter_errors({"spec": {"scaleTargetRef": {"name": "x"}}})), "triggers are required"
    bad_metadata = {"spec": {"scaleTargetRef": {"name": "x"}, "triggers": [{"type": "kafka", "metadata": {"a": 1}}]}}
    assert list(validator.iter_errors(bad_metadata)), "trigger metadata values are strings"
    unknown = {
        "spec": {"scaleTargetRef": {"name": "x"}, "maxReplicas": 3, "triggers": [{"type": "cpu", "metadata": {}}]}
    }
    assert list(validator.iter_errors(unknown)), "unknown fields are refused"


def test_kedas_crd_schema_rejects_a_broken_trigger_authentication() -> None:
    validator = jsonschema.Draft7Validator(keda_schema(TRIGGER_AUTHENTICATION_CRD, "TriggerAuthentication"))
    assert not list(validator.iter_errors({"spec": {"secretTargetRef": [{"parameter": "p", "name": "s", "key": "k"}]}}))
    no_key = {"spec": {"secretTargetRef": [{"parameter": "password", "name": "billing-kafka"}]}}
    assert list(validator.iter_errors(no_key)), "a secretTargetRef names its key"
    assert list(validator.iter_errors({"spec": {"env": [{"parameter": "username"}]}})), "an env names its variable"
    assert list(validator.iter_errors({"spec": {"secretRef": []}})), "unknown fields are refused"


# --------------------------------------------------------------------------------------------- the services


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_a_deployment_service_pdb_and_migration_job_per_service(tree: str) -> None:
    assert set(DEFAULT_PORTS) == set(SERVICES)
    deployments, services = of_kind(tree, "Deployment"), of_kind(tree, "Service")
    assert set(deployments) == set(SERVICES)
    assert set(services) == set(SERVICES)
    assert set(of_kind(tree, "PodDisruptionBudget")) == set(SERVICES)
    assert set(of_kind(tree, "Job")) == {f"{name}-migrate" for name in SERVICES}
    assert not of_kind(tree, "Secret"), "no Secret in git: the platform's secret store provides them"
    for name in SERVICES:
        deployment, service = deployments[name], services[name]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        assert service["spec"]["selector"] == selector
        pdb = of_kind(tree, "PodDisruptionBudget")[name]
        assert pdb["spec"]["selector"]["matchLabels"] == selector
        assert pdb["spec"].get("maxUnavailable") == 1, "maxUnavailable: a drain never blocks, even at one replica"
        image = container(deployment)["image"]
        assert image.partition(":")[0].rsplit("/", 1)[-1] == name and image.startswith("visiopass/")
        assert container(deployment)["command"] == ["python", "-m", name], "the image's CMD (python -m <service>)"


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_ports_match_the_code(tree: str) -> None:
    for name in SERVICES:
        deployment, service = of_kind(tree, "Deployment")[name], of_kind(tree, "Service")[name]
        env = environment(tree, deployment)
        port = http_port(name)
        assert port == DEFAULT_PORTS[name], f"{name}: deploy/local/system.py and the settings disagree"
        assert resolved(tree, env[env_prefix(name) + "HTTP_PORT"]) == str(port)
        assert resolved(tree, env[env_prefix(name) + "HTTP_HOST"]) == "0.0.0.0"
        assert named_port(deployment, "http") == port
        service_ports = {p["name"]: p for p in service["spec"]["ports"]}
        assert service_ports["http"]["port"] == port and service_ports["http"]["targetPort"] == "http"
        if metrics_port(name) != port:  # the gateway: metrics on an internal listener
            assert resolved(tree, env[env_prefix(name) + "METRICS_PORT"]) == str(metrics_port(name))
            assert resolved(tree, env[env_prefix(name) + "METRICS_HOST"]) == "0.0.0.0"
            assert named_port(deployment, "metrics") == metrics_port(name)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(metrics_port(name))


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_probes_hit_the_health_routes(tree: str) -> None:
    from servicekit.http import health_routes
    from servicekit.runtime import STARTUP_TIMEOUT_SECONDS

    paths = {path for route in health_routes({}) for path in getattr(route, "paths", ())}
    assert {"/health/ready", "/health/live"} <= paths
    for name in SERVICES:
        spec = container(of_kind(tree, "Deployment")[name])
        assert spec["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert spec["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        # the app answers only once its start-up (migrations, Kafka: servicekit.runtime) is over
        startup = spec["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] > STARTUP_TIMEOUT_SECONDS


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_env_vars_are_settings_fields(tree: str) -> None:
    """As tests/test_compose.py checks docker-compose.yml: every variable is a field of the service's settings."""
    for name in SERVICES:
        cls, prefix = settings_class(name), env_prefix(name)
        known = {prefix + field.upper() for field in cls.model_fields}
        workloads = [of_kind(tree, "Deployment")[name], of_kind(tree, "Job")[f"{name}-migrate"]]
        for workload in workloads:
            for key in environment(tree, workload):
                assert key in known, f"{workload['metadata']['name']}: {key} is not a field of {cls.__name__}"
        env = environment(tree, workloads[0])
        for field in ("http_host", "http_port", "internal_token", "database_url", "kafka_bootstrap_servers"):
            if has_field(name, field):
                assert prefix + field.upper() in env, f"{name}: {prefix}{field.upper()} must be set"


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_secrets_come_from_secret_refs_only(tree: str) -> None:
    """A secret field (SecretStr) or a database URL (it holds the password) is never a ConfigMap value."""
    documented = DOCS.read_text()
    for name in SERVICES:
        cls, prefix = settings_class(name), env_prefix(name)
        for workload in (of_kind(tree, "Deployment")[name], of_kind(tree, "Job")[f"{name}-migrate"]):
            env, refs = environment(tree, workload), secret_refs(workload)
            for field, info in cls.model_fields.items():
                key = prefix + field.upper()
                if key in env and ("SecretStr" in str(info.annotation) or field == "database_url"):
                    assert key in refs, f"{name}: {key} is a secret: take it from a Secret (secretKeyRef)"
            for ref in refs.values():
                assert f"`{ref['name']}`" in documented and f"`{ref['key']}`" in documented, (
                    f"{name}: Secret {ref['name']} (key {ref['key']}) is not listed in docs/kubernetes.md"
                )


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_shared_secrets_are_shared(tree: str) -> None:
    tokens = {
        (ref["name"], ref["key"])
        for name in SERVICES
        for key, ref in secret_refs(of_kind(tree, "Deployment")[name]).items()
        if key == env_prefix(name) + "INTERNAL_TOKEN"
    }
    assert len(tokens) == 1, f"the services must share one internal token: {tokens}"
    holders = {
        name
        for name in SERVICES
        if env_prefix(name) + "EVENT_SECRET_KEYS" in secret_refs(of_kind(tree, "Deployment")[name])
    }
    assert holders == {"accounts", "enrollment", "notifier"}, "only the sealers and the notifier hold the keyring"
    room = secret_refs(of_kind(tree, "Deployment")["catalogue"])["CATALOGUE_ROOM_SECRET"]
    assert secret_refs(of_kind(tree, "Deployment")["gateway"])["GATEWAY_ROOM_CALLBACK_SECRET"] == room


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_service_urls_point_at_the_services(tree: str) -> None:
    checked = 0
    for name in SERVICES:
        env = environment(tree, of_kind(tree, "Deployment")[name])
        for field in settings_class(name).model_fields:
            target = field.removesuffix("_url")
            if field.endswith("_url") and target in SERVICES:
                value = resolved(tree, env[env_prefix(name) + field.upper()])
                assert value == f"http://{target}:{http_port(target)}", f"{name}.{field}"
                checked += 1
    assert checked >= 5


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_pods_are_locked_down(tree: str) -> None:
    for workload in [*of_kind(tree, "Deployment").values(), *of_kind(tree, "Job").values()]:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001, "the image's visiopass user (deploy/docker/Dockerfile)"
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod.get("automountServiceAccountToken") is False
        spec = container(workload)
        security = spec["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert {"/tmp"} <= {mount["mountPath"] for mount in spec.get("volumeMounts", [])}, "a writable /tmp"
        resources = spec["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and {"cpu", "memory"} <= resources["limits"].keys()


def test_the_dockerfile_user_is_the_pods_user() -> None:
    text = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    assert "--uid 10001" in text and "--gid 10001" in text


@needs_kubectl
def test_the_overlay_sets_tags_replicas_and_bigger_resources() -> None:
    def cpu(value: str) -> float:
        return float(value[:-1]) / 1000 if value.endswith("m") else float(value)

    def memory(value: str) -> int:
        units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
        return int(value[:-2]) * units[value[-2:]] if value[-2:] in units else int(value)

    for name in SERVICES:
        base, production = of_kind("base", "Deployment")[name], of_kind("production", "Deployment")[name]
        assert ":" not in container(base)["image"].rsplit("/", 1)[-1], "the base names no tag"
        image, _, tag = container(production)["image"].partition(":")
        assert image == container(base)["image"] and tag and tag != "latest"
        assert production["metadata"]["namespace"] == "visiopass"
        assert production["spec"]["replicas"] >= 2
        for kind in ("requests", "limits"):
            b, p = container(base)["resources"][kind], container(production)["resources"][kind]
            assert cpu(p["cpu"]) >= cpu(b["cpu"]) and memory(p["memory"]) >= memory(b["memory"])
        requests = container(production)["resources"]["requests"], container(base)["resources"]["requests"]
        assert memory(requests[0]["memory"]) > memory(requests[1]["memory"]), f"{name}: production asks for more"


# -------------------------------------------------------------------------------------------- autoscaling


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_consumers_scale_on_their_lag_up_to_the_partition_count(tree: str) -> None:
    partitions = topic_partitions(tree)
    scaled, hpas = of_kind(tree, "ScaledObject"), of_kind(tree, "HorizontalPodAutoscaler")
    platform = config_map(tree, "visiopass-platform")["data"]
    for name in SERVICES:
        consumers = consumers_of(name) if name != "gateway" else []
        deployment = of_kind(tree, "Deployment")[name]
        if not consumers:  # the gateway and accounts (which consumes nothing): CPU
            assert name not in scaled and name in hpas, f"{name} has no consumer group to scale on: an HPA on CPU"
            continue
        assert name in scaled and name not in hpas, f"{name}: one autoscaler, KEDA's"
        spec = scaled[name]["spec"]
        assert (
            spec["scaleTargetRef"]["name"] == name and spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
        )
        assert 1 <= spec["minReplicaCount"] <= deployment["spec"]["replicas"] <= spec["maxReplicaCount"]
        assert spec["minReplicaCount"] == deployment["spec"]["replicas"], "the Deployment starts at the minimum"
        assert spec["maxReplicaCount"] <= partitions, f"{name}: more replicas than partitions would sit idle"
        triggers = {(t["metadata"]["topic"], t["metadata"]["consumerGroup"]) for t in spec["triggers"]}
        assert all(t["type"] == "kafka" for t in spec["triggers"])
        assert triggers == {(topic, f"{name}.{consumer}") for topic, consumer in consumers}, (
            f"{name}: the triggers must be its consumer groups (servicekit.consumer: <service>.<consumer name>)"
        )
        env = environment(tree, deployment)
        bootstrap = resolved(tree, env[env_prefix(name) + "KAFKA_BOOTSTRAP_SERVERS"])
        assert bootstrap == platform["kafka-bootstrap-servers"]
        for trigger in spec["triggers"]:
            metadata = trigger["metadata"]
            assert metadata["bootstrapServers"] == bootstrap, f"{name}: KEDA must read the Kafka the service uses"
            assert int(metadata["lagThreshold"]) > 0
            assert metadata.get("allowIdleConsumers", "false") == "false"


def test_the_consumer_groups_are_named_as_servicekit_names_them() -> None:
    from servicekit.consumer import Consumer

    source = (ROOT / "services" / "servicekit" / "src" / "servicekit" / "consumer.py").read_text()
    assert "group_id=self.group" in source  # the group a consumer subscribes with
    named = Consumer("billing", "accounts", "accounts.account", None, None, None, None)  # type: ignore[arg-type]
    assert named.group == "billing.accounts"
    assert consumers_of("accounts") == [], "accounts consumes nothing (else give it a ScaledObject)"
    assert all(consumers_of(name) for name in ("billing", "catalogue", "enrollment", "notifier"))


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_http_autoscalers_scale_on_cpu(tree: str) -> None:
    for name, hpa in of_kind(tree, "HorizontalPodAutoscaler").items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert [m["resource"]["name"] for m in spec["metrics"] if m["type"] == "Resource"] == ["cpu"]
        replicas = of_kind(tree, "Deployment")[name]["spec"]["replicas"]
        assert spec["minReplicas"] == replicas <= spec["maxReplicas"]


# ------------------------------------------------------------------------------------ Kafka authentication

KAFKA_AUTH = ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CAFILE")  # servicekit.settings
KAFKA_CA = {"secret": "kafka-ca", "key": "ca.crt"}  # the CA that signed the brokers' certificates


def kafka_clients() -> list[str]:
    return [name for name in SERVICES if has_field(name, "kafka_bootstrap_servers")]


def mounted_file(workload: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(the volume, its mount, the file's path inside the volume) of a file the container sees at `path`."""
    volumes = {volume["name"]: volume for volume in workload["spec"]["template"]["spec"].get("volumes", [])}
    file = PurePosixPath(path)
    for mount in container(workload).get("volumeMounts", []):
        inside = file.relative_to(mount["mountPath"]) if file.is_relative_to(mount["mountPath"]) else None
        if inside is not None and inside.parts:
            assert "subPath" not in mount, "a subPath mount is not updated when its Secret changes"
            return volumes[mount["name"]], mount, str(inside)
    raise AssertionError(f"{workload['metadata']['name']}: {path} is in no mounted volume")


def secret_file(volume: dict[str, Any], inside: str) -> tuple[str, str | None]:
    """(Secret, key) of the file `inside` a Secret volume (key None: no such file, `items` leaves it out)."""
    assert "secret" in volume, f"volume {volume['name']} is not a Secret's"
    items = volume["secret"].get("items")
    key = {item["path"]: item["key"] for item in items}.get(inside) if items else inside
    return volume["secret"]["secretName"], key


@cache
def kafka_scaler_parameters() -> dict[str, dict[str, str]]:
    """name -> its options (order, enum, default, optional) of each parameter of KEDA's kafka scaler: the `keda`
    struct tags of kafkaMetadata in the same Go module as the CRDs."""
    source = (keda_module() / KAFKA_SCALER).read_text()
    struct = source[source.index("type kafkaMetadata struct {") :]
    struct = struct[: struct.index("\n}\n")]
    found = {}
    for tag in re.findall(r'`keda:"([^"]+)"`', struct):
        options = dict(option.partition("=")[::2] for option in tag.split(","))
        found[options["name"]] = options
    return found


def test_the_kafka_scalers_parameters_are_read_from_kedas_source() -> None:
    parameters = kafka_scaler_parameters()
    assert {"bootstrapServers", "consumerGroup", "topic", "lagThreshold", "sasl", "tls", "username"} <= set(parameters)
    assert "authParams" in parameters["password"]["order"].split(";")
    assert "triggerMetadata" not in parameters["password"]["order"].split(";"), "a password is never in a trigger"
    assert "scram_sha512" in parameters["sasl"]["enum"].split(";")


@needs_kubectl
def test_production_services_reach_kafka_as_their_own_principal_over_tls() -> None:
    """Each Kafka client logs in as User:<service> (SCRAM-SHA-512 over TLS, servicekit.kafka): its password from
    its own Secret, the brokers' CA from a file of a read-only Secret volume."""
    assert set(kafka_clients()) == {"accounts", "billing", "catalogue", "enrollment", "notifier"}
    platform = config_map("production", "visiopass-platform")["data"]
    for address in platform["kafka-bootstrap-servers"].split(","):
        assert not address.endswith(":9092"), f"{address}: Kafka's plaintext port; production uses its TLS listener"
    for name in kafka_clients():
        deployment, prefix = of_kind("production", "Deployment")[name], env_prefix(name)
        env = environment("production", deployment)
        for key in KAFKA_AUTH:
            assert has_field(name, key.lower()), f"{name}: {prefix}{key} is not a setting"
            assert prefix + key in env, f"{name}: {prefix}{key} is not set in production"
        assert env[prefix + "KAFKA_SASL_USERNAME"] == name, (
            f"{name}: its principal is User:{name} (servicekit.kafka_acls)"
        )
        password = secret_refs(deployment).get(prefix + "KAFKA_SASL_PASSWORD")
        assert password == {"name": f"{name}-kafka", "key": "password"}, f"{name}: the password of Secret {name}-kafka"
        cafile = env[prefix + "KAFKA_SSL_CAFILE"]
        assert isinstance(cafile, str) and cafile.startswith("/"), f"{name}: the CA file is a path"
        volume, mount, inside = mounted_file(deployment, cafile)
        assert mount.get("readOnly") is True, f"{name}: the CA's volume is mounted read-only"
        assert secret_file(volume, inside) == (KAFKA_CA["secret"], KAFKA_CA["key"]), f"{name}: {cafile} is no CA"


def given_by(authentication: dict[str, Any], deployment: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """parameter -> what a TriggerAuthentication gives it: the value of one of the Deployment's container's
    environment variables (`env`), or a Secret's {name, key}."""
    spec, own = authentication["spec"], container(deployment)["name"]
    assert set(spec) <= {"env", "secretTargetRef"}, f"{authentication['metadata']['name']}: from env and Secrets only"
    given: dict[str, Any] = {}
    for item in spec.get("env", []):
        assert item.get("containerName", own) == own
        given[item["parameter"]] = env.get(item["name"])
    for item in spec.get("secretTargetRef", []):
        given[item["parameter"]] = {"name": item["name"], "key": item["key"]}
    return given


@needs_kubectl
def test_production_autoscalers_read_the_lag_as_the_service() -> None:
    """Every Kafka trigger authenticates (KEDA's kafka scaler: sasl and tls in the trigger, username, password and
    ca from a TriggerAuthentication) as the very principal its service is, with the same Secrets."""
    parameters = kafka_scaler_parameters()
    authentications = of_kind("production", "TriggerAuthentication")
    used = set()
    for name, scaled in of_kind("production", "ScaledObject").items():
        service = scaled["spec"]["scaleTargetRef"]["name"]
        deployment = of_kind("production", "Deployment")[service]
        env, refs, prefix = environment("production", deployment), secret_refs(deployment), env_prefix(service)
        for trigger in scaled["spec"]["triggers"]:
            metadata, ref = trigger["metadata"], trigger.get("authenticationRef")
            assert ref, f"{name}: trigger {trigger.get('name')} has no authenticationRef"
            assert ref.get("kind", "TriggerAuthentication") == "TriggerAuthentication"
            assert ref["name"] in authentications, f"{name}: no TriggerAuthentication {ref['name']}"
            used.add(ref["name"])
            for key in metadata:
                assert key in parameters and "triggerMetadata" in parameters[key]["order"], f"{name}: {key}?"
            assert metadata.get("sasl") == "scram_sha512" and metadata.get("tls") == "enable", name
            given = given_by(authentications[ref["name"]], deployment, env)
            for parameter in given:
                assert parameter in parameters and "authParams" in parameters[parameter]["order"], (
                    f"{ref['name']}: {parameter} is not an authentication parameter of KEDA's kafka scaler"
                )
            assert given.keys() == {"username", "password", "ca"}, f"{ref['name']}: {sorted(given)}"
            assert given["username"] == env[prefix + "KAFKA_SASL_USERNAME"] == service, f"{ref['name']}: User:{service}"
            assert given["password"] == refs[prefix + "KAFKA_SASL_PASSWORD"], f"{ref['name']}: the service's password"
            assert given["ca"] == {"name": KAFKA_CA["secret"], "key": KAFKA_CA["key"]}, f"{ref['name']}: the CA"
    assert used == set(authentications), f"unused TriggerAuthentications: {set(authentications) - used}"
    documented = DOCS.read_text()
    for authentication in authentications.values():
        for item in authentication["spec"].get("secretTargetRef", []):
            assert f"`{item['name']}`" in documented and f"`{item['key']}`" in documented, item


@needs_kubectl
def test_the_base_speaks_plaintext_to_kafka() -> None:
    """The base is for a local cluster with the devstack's plaintext Kafka: no credentials, no CA, no TLS."""
    assert not of_kind("base", "TriggerAuthentication")
    for name in kafka_clients():
        deployment = of_kind("base", "Deployment")[name]
        env = environment("base", deployment)
        assert not {env_prefix(name) + key for key in KAFKA_AUTH} & env.keys(), f"{name}: the base is plaintext"
        volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
        assert not [volume for volume in volumes if "secret" in volume], f"{name}: no Secret volume in the base"
    for name, scaled in of_kind("base", "ScaledObject").items():
        for trigger in scaled["spec"]["triggers"]:
            assert "authenticationRef" not in trigger, name
            assert trigger["metadata"].get("sasl", "none") == "none" and trigger["metadata"].get("tls") is None, name


# ------------------------------------------------------------------------------------------- network policy


def peers(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return rule.get("from", [])


@needs_kubectl
@pytest.mark.parametrize("tree", TREES)
def test_network_policies(tree: str) -> None:
    policies = of_kind(tree, "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and not deny.get("ingress")
    for name in SERVICES:
        deployment = of_kind(tree, "Deployment")[name]
        spec = policies[name]["spec"]
        assert spec["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        assert spec["policyTypes"] == ["Ingress"]
        by_port: dict[int, list[dict[str, Any]]] = {}
        for rule in spec["ingress"]:
            for port in rule["ports"]:
                number = named_port(deployment, port["port"]) if isinstance(port["port"], str) else port["port"]
                by_port.setdefault(number, []).append(rule)
        assert set(by_port) == {http_port(name), metrics_port(name)}, f"{name}: only its API and metrics ports"
        for rule in by_port[metrics_port(name)]:
            assert peers(rule), f"{name}: its metrics port must not be open to all"
        assert any(PROMETHEUS in peers(rule) for rule in by_port[metrics_port(name)]), f"{name}: Prometheus"
        if name == "gateway":
            public = [rule for rule in by_port[http_port(name)] if PROMETHEUS not in peers(rule)]
            assert public, "the gateway takes connections from outside"
            continue
        callers = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in by_port[http_port(name)]
            for peer in peers(rule)
            if peer != PROMETHEUS
        }
        assert all(peers(rule) for rule in by_port[http_port(name)]), f"{name}: its API must not be open to all"
        for rule in by_port[http_port(name)]:
            for peer in peers(rule):
                assert peer == PROMETHEUS or set(peer) == {"podSelector"}, f"{name}: pods of this namespace only"
        assert callers == callers_of(name), f"{name}: reachable from exactly the services calling it"
        assert "gateway" in callers


@needs_kubectl
def test_the_production_ingress_is_tls_to_the_gateway_only() -> None:
    [ingress] = of_kind("production", "Ingress").values()
    spec = ingress["spec"]
    hosts = {rule["host"] for rule in spec["rules"]}
    assert hosts and hosts <= {host for tls in spec["tls"] for host in tls["hosts"]}
    assert all(tls.get("secretName") for tls in spec["tls"])
    backends = [path["backend"]["service"] for rule in spec["rules"] for path in rule["http"]["paths"]]
    assert backends and all(b == {"name": "gateway", "port": {"name": "http"}} for b in backends)
    public = config_map("production", "visiopass-platform")["data"]["public-base-url"]
    assert public.startswith("https://") and public.removeprefix("https://").rstrip("/") in hosts
    env = environment("production", of_kind("production", "Deployment")["gateway"])
    assert resolved("production", env["GATEWAY_COOKIE_SECURE"]) == "true"
    assert int(resolved("production", env["GATEWAY_HSTS_SECONDS"]) or 0) > 0
    assert not of_kind("base", "Ingress"), "the base exposes nothing"


# ------------------------------------------------------------------------------------------------ migrations


@needs_kubectl
@pytest.mark.parametrize("name", SERVICES)
def test_the_migration_job_runs_servicekits_upgrade(name: str) -> None:
    job = of_kind("base", "Job")[f"{name}-migrate"]
    command = container(job)["command"]
    assert command == ["python", "-m", "servicekit.migrations", name], "the package whose migrations the service runs"
    main = (ROOT / "services" / name / "src" / name / "main.py").read_text()
    store = (ROOT / "services" / "gateway" / "src" / "gateway" / "store.py").read_text()
    assert f'migrations_package="{name}"' in main or f'migrations.upgrade(self.db, "{name}")' in store
    assert container(job)["image"] == container(of_kind("base", "Deployment")[name])["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


@needs_kubectl
@pytest.mark.parametrize("name", SERVICES)
async def test_the_migration_job_command_migrates_a_database(name: str, fresh_database: str) -> None:
    """The Job's very command, run here against a new database: it brings the schema to the head revision."""
    import asyncpg

    job = of_kind("base", "Job")[f"{name}-migrate"]
    command = [sys.executable, *container(job)["command"][1:]]
    env_name = env_prefix(name) + "DATABASE_URL"
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=180, env={"PATH": "/usr/bin:/bin", env_name: fresh_database}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    conn = await asyncpg.connect(fresh_database.replace("+asyncpg", ""))
    try:
        assert await conn.fetchval("SELECT count(*) FROM alembic_version") >= 1
    finally:
        await conn.close()


def test_docs_describe_the_layout() -> None:
    text = DOCS.read_text()
    for needed in ("deploy/k8s/base", "deploy/k8s/overlays/production", "kubectl kustomize", "ScaledObject"):
        assert needed in text
    for path in re.findall(r"`(deploy/k8s/[^`\s]+)`", text):
        for name in SERVICES if "<service>" in path else [""]:
            concrete = path.replace("<service>", name)
            assert (ROOT / concrete).exists(), f"docs/kubernetes.md names {concrete}, which does not exist"
