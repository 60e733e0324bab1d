"""deploy/prometheus: the alert rules checked and unit-tested with promtool (Debian's `prometheus` package,
tests/prometheus_tools.py), the config with the rules it loads, and the rules against the code: every metric they
read is one a service exports, every alert has its unit test and its runbook section."""

import re
import subprocess
from pathlib import Path

import yaml
from prometheus_tools import binary

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
# Litestar's Prometheus middleware names its metrics after servicekit's prefix ("http"): http_requests_total...
LITESTAR_METRICS = {"http_requests_total", "http_request_duration_seconds"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary("promtool")), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, check=False, timeout=120
    )


def rules() -> list[dict]:  # type: ignore[type-arg]
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alerts() -> list[str]:
    return [rule["alert"] for rule in rules() if "alert" in rule]


def test_promtool_checks_the_rules_and_the_config_that_loads_them() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = promtool("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    assert "alerts.yml" in config.stdout  # the config loads the rules


def test_the_alerts_unit_tests_pass() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_unit_tested_and_has_a_runbook_section() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts.test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])}
    assert set(alerts()) <= tested, f"alerts without a unit test: {set(alerts()) - tested}"
    anchors = {line.lstrip("#").strip().lower() for line in RUNBOOK.read_text().splitlines() if line.startswith("#")}
    for rule in rules():
        if "alert" in rule:
            runbook = rule["annotations"]["runbook"]
            assert runbook.startswith("docs/runbook.md#"), rule["alert"]
            assert runbook.partition("#")[2] in anchors, f"{rule['alert']}: no section {runbook} in the runbook"


def metrics_read(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, keywords, labels or durations)."""
    stripped = re.sub(r'"[^"]*"', "", expr)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    names = set(re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", stripped)) - PROMQL_WORDS
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in names}


def recorded_metrics() -> set[str]:
    """The series the recording rules of alerts.yml make (visiopass:http_error_ratio:rate5m...)."""
    return {rule["record"] for rule in rules() if "record" in rule}


def metrics_not_exported(read: set[str]) -> set[str]:
    """Of the metric names read, those nothing makes: no service's code names it (`"name"` in services/*/src), nor
    Litestar's middleware, nor a recording rule of alerts.yml, nor Prometheus (`up`, per scraped target)."""
    sources = "\n".join(path.read_text() for path in ROOT.glob("services/*/src/**/*.py"))
    assert 'prefix="http"' in (ROOT / "services/servicekit/src/servicekit/http.py").read_text()
    return {name for name in read - recorded_metrics() - LITESTAR_METRICS - {"up"} if f'"{name}"' not in sources}


def test_every_metric_the_rules_read_is_exported_by_a_service() -> None:
    read = set().union(*(metrics_read(rule["expr"]) for rule in rules()))
    assert {"kafka_consumer_lag_records", "outbox_oldest_unpublished_age_seconds", "up"} <= read
    assert metrics_not_exported(read) == set(), "the rules read metrics no service exports"


def test_the_metric_names_are_read_from_an_expression_as_promql_does() -> None:
    expr = 'sum by (app_name) (rate(http_requests_total{status_code=~"5.."}[5m])) / on(x) up > 14.4 * 0.001'
    assert metrics_read(expr) == {"http_requests_total", "up"}
