"""Scenario 10 checks shared by the Python readers: QUILL_INTEROP_TOPICS lists
`topic=count` pairs, the compression topics other clients wrote in scenario 4 (25 JSON values
per codec, one batch per codec); each must decode and arrive in order."""

import json
import os

from common import check_eq

TEXT = "compressible " * 20


def topics():
    pairs = [item.split("=") for item in os.environ.get("QUILL_INTEROP_TOPICS", "").split(",") if item]
    check_eq(bool(pairs), True, "QUILL_INTEROP_TOPICS set by the runner")
    return [(topic, int(count)) for topic, count in pairs]


def verify(topic, raw_values):
    values = [json.loads(raw) for raw in raw_values]
    codecs = []
    for value in values:
        codec = value["codec"] or "none"
        if not codecs or codecs[-1] != codec:
            codecs.append(codec)
    expected = [(codec, i, TEXT) for codec in codecs for i in range(25)]
    check_eq([(v["codec"] or "none", v["i"], v["text"]) for v in values], expected, "values of %s" % topic)
    print("%s: %d values from codecs %s" % (topic, len(values), codecs), flush=True)
