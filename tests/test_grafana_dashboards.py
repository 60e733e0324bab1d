"""deploy/grafana: the dashboards checked against the code and Prometheus, and their provisioning against compose.

Every dashboard is valid JSON with its own uid and title; there is an overview, a business one and one per service
(deploy/local/system.py's DEFAULT_PORTS); every panel queries the provisioned Prometheus data source, with PromQL
that `promtool` parses and that reads only metrics a service exports (or a recording rule of alerts.yml makes: the
check of tests/test_prometheus_rules.py); docker-compose.yml's Grafana mounts the provisioning and the dashboards
where the provisioning files look for them.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_tools import binary
from test_compose import compose_service, host_ports, interpolate, raw_environment, required_variables, volume_mounts
from test_prometheus_rules import metrics_not_exported, metrics_read, promtool

from system import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[1]
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
PROVISIONING_DIR = GRAFANA_DIR / "provisioning"
DATASOURCES_FILE = PROVISIONING_DIR / "datasources" / "prometheus.yml"
PROVIDERS_FILE = PROVISIONING_DIR / "dashboards" / "visiopass.yml"
DASHBOARDS = sorted(DASHBOARDS_DIR.glob("*.json"))
PANEL_TYPES = {"row", "timeseries", "stat"}


def dashboard(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict), f"{path.name} is not a dashboard object"
    return data


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel of a dashboard, those inside collapsed rows too."""
    found = []
    for panel in board.get("panels") or []:
        found.append(panel)
        found += panel.get("panels") or []
    return found


def targets() -> list[tuple[str, str, dict[str, Any]]]:
    """(dashboard file, panel title, target) of every query of every dashboard."""
    return [
        (path.name, panel["title"], target)
        for path in DASHBOARDS
        for panel in panels(dashboard(path))
        for target in panel.get("targets") or []
    ]


def datasource() -> dict[str, Any]:
    (source,) = yaml.safe_load(DATASOURCES_FILE.read_text())["datasources"]
    return source


def test_the_expected_dashboards_exist_with_unique_uids_and_titles() -> None:
    expected = {"overview", "business", *DEFAULT_PORTS}
    assert {path.stem for path in DASHBOARDS} == expected
    boards = [dashboard(path) for path in DASHBOARDS]
    uids = [board["uid"] for board in boards]
    titles = [board["title"] for board in boards]
    assert len(set(uids)) == len(uids) and len(set(titles)) == len(titles), (uids, titles)
    for path, board in zip(DASHBOARDS, boards, strict=True):
        assert board["uid"] == f"visiopass-{path.stem}", f"{path.name}: a stable uid named after the file"
        assert len(board["uid"]) <= 40, "Grafana refuses longer uids"
        assert board["schemaVersion"] == 39
        assert board.get("id") is None, f"{path.name}: no database id in a provisioned dashboard"
        assert panels(board), f"{path.name} has no panel"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_panel_queries_the_provisioned_prometheus(path: Path) -> None:
    uid = datasource()["uid"]
    ids = [panel["id"] for panel in panels(dashboard(path))]
    assert len(set(ids)) == len(ids), f"{path.name}: panel ids repeat"
    for panel in panels(dashboard(path)):
        assert panel["type"] in PANEL_TYPES, f"{path.name}: {panel['title']} is a {panel['type']}"
        if panel["type"] == "row":
            assert not panel.get("targets")
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, f"{path.name}: {panel['title']}"
        assert panel["targets"], f"{path.name}: {panel['title']} queries nothing"
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs), f"{path.name}: {panel['title']} repeats a refId"
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"]) == panel["datasource"]
            assert target["expr"].strip() and "legendFormat" in target


def test_the_service_dashboards_show_their_service() -> None:
    for name in DEFAULT_PORTS:
        exprs = [target["expr"] for file, _, target in targets() if file == f"{name}.json"]
        assert any(f'app_name="{name}"' in expr for expr in exprs), f"{name}.json: no HTTP panel of {name}"
        assert any(f'job="{name}"' in expr for expr in exprs), f"{name}.json: no `up` of its Prometheus job"
        others = [other for other in DEFAULT_PORTS if other != name]
        for expr in exprs:
            assert not re.search(rf'"(?:{"|".join(others)})"', expr), f"{name}.json reads another service: {expr}"


def test_the_panels_read_only_metrics_that_exist() -> None:
    read = set().union(*(metrics_read(target["expr"]) for _, _, target in targets()))
    wanted = {
        "up",
        "http_requests_total",
        "kafka_consumer_lag_records",
        "outbox_oldest_unpublished_age_seconds",
        "consumer_events_total",
        "visiopass_tokens",
        "visiopass_messages_total",
    }
    assert wanted <= read, f"the dashboards do not show {wanted - read}"
    assert metrics_not_exported(read) == set(), "the dashboards read metrics no service exports"


def test_promtool_parses_every_panel_query(tmp_path: Path) -> None:
    """One recording rule per query, checked by `promtool check rules`; Grafana's own variables ($__rate_interval,
    $__interval...) are not PromQL and are not used: the queries run as they are written."""
    queries = targets()
    for file, title, target in queries:
        assert "$" not in target["expr"], f"{file}: {title} uses a Grafana variable: {target['expr']}"
    rules = [
        {"record": f"grafana:{Path(file).stem}:query{i}", "expr": target["expr"]}
        for i, (file, _, target) in enumerate(queries)
    ]
    rules_file = tmp_path / "dashboards.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
    assert binary("promtool").exists()
    checked = promtool("check", "rules", str(rules_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(rules)} rules found" in checked.stdout, checked.stdout


def test_the_datasource_is_the_compose_prometheus() -> None:
    source = datasource()
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    url = source["url"]
    host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
    prometheus = compose_service(host)
    assert str(prometheus["image"]).startswith("prom/prometheus:")
    assert any(str(entry).endswith(f":{port}") for entry in prometheus.get("ports") or []), url


def test_compose_grafana_mounts_the_provisioning_and_the_dashboards() -> None:
    grafana = compose_service("grafana")
    image = str(grafana["image"])
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", image), "pin Grafana's version (the OSS image)"
    mounts = {target: source for source, target in volume_mounts("grafana")}
    entries = [str(entry) for entry in grafana.get("volumes") or []]
    sources = {target: (ROOT / source).resolve() for target, source in mounts.items() if source.startswith(".")}
    assert sources.get("/etc/grafana/provisioning") == PROVISIONING_DIR
    (provider,) = yaml.safe_load(PROVIDERS_FILE.read_text())["providers"]
    assert provider["type"] == "file"
    assert sources.get(provider["options"]["path"]) == DASHBOARDS_DIR, "the provider reads the mounted dashboards"
    for path in (PROVISIONING_DIR, DASHBOARDS_DIR):
        assert path.is_dir()
        assert any(entry.startswith(f"./{path.relative_to(ROOT)}:") and entry.endswith(":ro") for entry in entries)
    env = raw_environment("grafana")
    assert required_variables(env["GF_SECURITY_ADMIN_PASSWORD"]), "the admin password must be required"
    assert interpolate(env["GF_AUTH_ANONYMOUS_ENABLED"]) == "false"
    home = interpolate(env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", ""))
    if home:
        assert home.startswith(provider["options"]["path"] + "/")
        assert (DASHBOARDS_DIR / home.rpartition("/")[2]).is_file()
    assert "prometheus" in (grafana.get("depends_on") or {})
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
    assert [port for port, _ in host_ports("grafana")] == [3000]
