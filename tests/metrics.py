"""Reading sample values from a service's Prometheus /metrics text in tests."""

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` (e.g. "http_requests_total") whose labels include `labels`; fails if
    there is none."""
    values = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]
    assert values, f"no sample {name}{labels or ''} in the metrics"
    return sum(values)
