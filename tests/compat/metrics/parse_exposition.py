"""Parses a Prometheus text exposition (stdin) with the Prometheus project's own Python parser
(prometheus_client) and prints every sample as JSON: [{"name", "labels", "value"}, ...].
Exits non-zero if the text does not parse. Used by crates/quill/tests/metrics.rs."""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    samples = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        for sample in family.samples:
            value = sample.value
            if math.isinf(value):
                value = "+Inf" if value > 0 else "-Inf"
            elif math.isnan(value):
                value = "NaN"
            samples.append({
                "family": family.name,
                "type": family.type,
                "name": sample.name,
                "labels": sample.labels,
                "value": value,
            })
    print(json.dumps(samples))


if __name__ == "__main__":
    main()
