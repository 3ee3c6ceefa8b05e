"""Scrapes a server's /metrics as Prometheus does and prints every sample as JSON.

The format follows the response's Content-Type, as Prometheus reads it: OpenMetrics text
(application/openmetrics-text) or the Prometheus text format (text/plain; version=0.0.4),
each parsed by prometheus_client's own parser, which refuses text that breaks its format.

    python metrics_scrape.py http://127.0.0.1:PORT/metrics
"""

import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus


def main():
    with urllib.request.urlopen(sys.argv[1], timeout=10) as response:
        content_type = response.headers.get("Content-Type", "")
        text = response.read().decode()
    if content_type.startswith("application/openmetrics-text"):
        families = parse_openmetrics(text)
    elif content_type.startswith("text/plain"):
        families = parse_prometheus(text)
    else:
        sys.exit(f"/metrics answered an unknown Content-Type {content_type!r}")
    samples = [
        {
            "family": family.name,
            "type": family.type,
            "name": sample.name,
            "labels": sample.labels,
            "value": sample.value,
        }
        for family in families
        for sample in family.samples
    ]
    json.dump({"content_type": content_type, "samples": samples}, sys.stdout)


if __name__ == "__main__":
    main()
